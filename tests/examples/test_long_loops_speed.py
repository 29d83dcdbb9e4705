"""The bounded tier's fast path on time_sequence_prediction's shape (two LSTMCells and a
Linear stepped in Python): the node-by-node backward runs kept per-structure VJP programs
(tracer/autograd/node_plans.py). Checked against the path it bypasses (bitwise), with
counters showing it was taken, against NumPy and float64 finite differences, and with the
cases that must refuse it (a node output rewritten in place, an op without a Template) or
key apart (repeated operands)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj
import runtime
from tracer import bounded, realize_plans
from tracer.autograd import node_plans


class Sequence(gj.nn.Module):
    """time_sequence_prediction's model, with the sizes as arguments."""

    def __init__(self, hidden):
        super().__init__()
        self.hidden = hidden
        self.lstm1 = gj.nn.LSTMCell(1, hidden)
        self.lstm2 = gj.nn.LSTMCell(hidden, hidden)
        self.linear = gj.nn.Linear(hidden, 1)

    def forward(self, x, square=False, inplace=False, unmemoised=False):
        n, h = x.size(0), self.hidden
        h1, c1, h2, c2 = (gj.zeros(n, h, dtype=x.dtype) for _ in range(4))
        outputs = []
        for x_t in x.split(1, dim=1):
            h1, c1 = self.lstm1(x_t, (h1, c1))
            if square:
                h1 = h1 * h1                      # one Tensor as both operands
            h2, c2 = self.lstm2(h1, (h2, c2))
            out = self.linear(h2)
            if inplace:                           # f32 += f64: a converted value becomes
                out.add_(gj.zeros(out.shape, dtype=gj.float64))     # the node's output
            if unmemoised:
                out = gj.sin(out)                 # an op op_memo does not replay
            outputs.append(out)
        return gj.cat(outputs, dim=1)


def _data(n, steps, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sin(np.arange(steps)[None, :] / 4.0 + rng.uniform(0, 6, (n, 1)))
    return x, np.roll(x, -1, axis=1) + 0.01 * rng.standard_normal((n, steps))


def _run(x, y, hidden, dtype=gj.float64, **flags):
    """(loss, gradients) of one closure, from the same initial parameters each time."""
    gj.manual_seed(5)
    model = Sequence(hidden)
    if dtype == gj.float64:
        model = model.double()
    loss = gj.nn.functional.mse_loss(model(gj.tensor(x, dtype=dtype), **flags),
                                     gj.tensor(y, dtype=dtype))
    loss.backward()
    return [loss.detach().numpy().copy()] + [p.grad.numpy().copy()
                                             for p in model.parameters()]


@pytest.fixture
def low_bounds(monkeypatch):
    """Short sequences take the bounded tier (the real program is over the bounds)."""
    _lower_bounds(monkeypatch, 16)


def _lower_bounds(m, bound: int):
    # (a read's one-program walk gives up past realize_plans._MAX_EXPRS, then the bound)
    m.setattr(bounded, "MAX_OPS", bound)
    m.setattr(bounded, "MAX_NODES", bound)
    m.setattr(realize_plans, "_MAX_EXPRS", bound)


def _without_fast_paths(monkeypatch):
    monkeypatch.setattr(node_plans, "lookup", lambda key: None)


def _assert_bitwise(a, b):
    for u, v in zip(a, b):
        assert u.dtype == v.dtype and np.array_equal(u, v)


@pytest.mark.parametrize("dtype", [gj.float32, gj.float64], ids=["f32", "f64"])
def test_plans_are_taken_and_equal_the_emitting_path_bitwise(dtype, low_bounds, monkeypatch):
    x, y = _data(5, 12)
    run_before = dict(node_plans.STATS)
    backwards = bounded.STATS["backwards"]
    fast = _run(x, y, 4, dtype)
    assert bounded.STATS["backwards"] == backwards + 1       # the node-by-node tier ran
    # every step after the first repeats the first's node structures
    assert node_plans.STATS["planned"] - run_before["planned"] > 10 * 20
    with monkeypatch.context() as m:
        _without_fast_paths(m)
        planned = node_plans.STATS["planned"]
        slow = _run(x, y, 4, dtype)
        assert node_plans.STATS["planned"] == planned
    _assert_bitwise(fast, slow)


def _numpy_loss(params, x, y):
    """The model in NumPy, float64 (PyTorch's LSTMCell equations)."""
    w1, u1, b1, d1, w2, u2, b2, d2, wl, bl = params
    sig = lambda z: 1 / (1 + np.exp(-z))                 # noqa: E731

    def cell(inp, h, c, w, u, b, d):
        i, f, g, o = np.split(inp @ w.T + b + h @ u.T + d, 4, axis=1)
        c = sig(f) * c + sig(i) * np.tanh(g)
        return sig(o) * np.tanh(c), c

    n, hidden = x.shape[0], u1.shape[1]
    h1 = c1 = h2 = c2 = np.zeros((n, hidden))
    outs = []
    for t in range(x.shape[1]):
        h1, c1 = cell(x[:, t:t + 1], h1, c1, w1, u1, b1, d1)
        h2, c2 = cell(h1, h2, c2, w2, u2, b2, d2)
        outs.append(h2 @ wl.T + bl)
    return np.mean((np.concatenate(outs, 1) - y) ** 2)


def test_the_planned_backward_matches_numpy_and_finite_differences(low_bounds):
    x, y = _data(4, 30, seed=1)
    gj.manual_seed(5)
    model = Sequence(5).double()
    planned = node_plans.STATS["planned"]
    loss = gj.nn.functional.mse_loss(model(gj.tensor(x)), gj.tensor(y))
    loss.backward()
    assert node_plans.STATS["planned"] > planned
    params = [p.detach().numpy().copy() for p in model.parameters()]
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    np.testing.assert_allclose(loss.item(), _numpy_loss(params, x, y), rtol=1e-12)
    rng = np.random.default_rng(2)
    eps = 1e-6
    for _ in range(3):                        # directional derivatives, central differences
        d = [rng.standard_normal(p.shape) for p in params]
        up = _numpy_loss([p + eps * e for p, e in zip(params, d)], x, y)
        down = _numpy_loss([p - eps * e for p, e in zip(params, d)], x, y)
        analytic = sum(float(np.sum(g * e)) for g, e in zip(grads, d))
        np.testing.assert_allclose(analytic, (up - down) / (2 * eps), rtol=1e-6)


def test_a_second_closure_emits_and_compiles_nothing_new(low_bounds):
    """LBFGS re-runs the closure: the structures kept by the first serve the next."""
    x, y = _data(3, 10, seed=3)
    first = _run(x, y, 4)
    emitted, compiles = node_plans.STATS["emitted"], runtime.cache_info()["compiles"]
    second = _run(x, y, 4)
    assert node_plans.STATS["emitted"] == emitted
    assert runtime.cache_info()["compiles"] == compiles
    _assert_bitwise(first, second)


@pytest.mark.parametrize("case", ["inplace", "unmemoised"])
def test_nodes_without_their_templates_outputs_refuse_the_plan(case, low_bounds, monkeypatch,
                                                               gradjit_env, caplog):
    """`out.add_(f64)` on an f32 output converts the sum: the node's output is no longer
    its Template's; `sin` keeps no Template. Those nodes emit their programs (unkeyed), the
    others keep their plans, and the numbers equal the path without plans."""
    x, y = _data(3, 8, seed=4)
    unkeyed, planned = node_plans.STATS["unkeyed"], node_plans.STATS["planned"]
    gradjit_env("GRADJIT_LOG", "1")
    with caplog.at_level("INFO", logger="gradjit"):
        fast = _run(x, y, 3, gj.float32, **{case: True})
    assert "emitted their own VJP program" in caplog.text     # GRADJIT_LOG says why
    assert node_plans.STATS["unkeyed"] - unkeyed >= 8          # one per step at least
    assert node_plans.STATS["planned"] > planned
    with monkeypatch.context() as m:
        _without_fast_paths(m)
        slow = _run(x, y, 3, gj.float32, **{case: True})
    _assert_bitwise(fast, slow)
    plain = _run(x, y, 3, gj.float32)
    assert (case == "inplace") == np.array_equal(plain[0], fast[0])   # (adds zeros)


def test_repeated_operands_get_their_own_plan(low_bounds, monkeypatch):
    """`h * h` is keyed apart from `a * b` (its gradient goes in once, doubled): equal to
    the path without plans and to finite differences of the same loss."""
    x, y = _data(3, 8, seed=5)
    fast = _run(x, y, 3, square=True)
    with monkeypatch.context() as m:
        _without_fast_paths(m)
        slow = _run(x, y, 3, square=True)
    _assert_bitwise(fast, slow)
    plain = _run(x, y, 3)
    assert not np.array_equal(plain[0], fast[0])            # the square changed the loss


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 4), steps=st.integers(2, 6), hidden=st.integers(1, 4),
       f64=st.booleans())
def test_fast_paths_equal_the_general_path_for_any_shape(n, steps, hidden, f64):
    x, y = _data(n, steps, seed=steps)
    dtype = gj.float64 if f64 else gj.float32
    with pytest.MonkeyPatch.context() as m:
        _lower_bounds(m, 4)
        fast = _run(x, y, hidden, dtype)
        _without_fast_paths(m)
        slow = _run(x, y, hidden, dtype)
    _assert_bitwise(fast, slow)
