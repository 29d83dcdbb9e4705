"""A recorded (grad) memoised op leaves its Ops pending (record.PENDING: Template.replay_pending;
tracer/pending_expr.py), and zero_ is memoised. Training loops as users write them
(two_layer_net_autograd.py's hand-written update, an MLP with cross_entropy and SGD) give
bitwise the values and gradients of the eager replay and of no memo at all; a replayed
backward builds none of the forward's Ops (counters); gradients match f64 finite
differences."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
import gradjit.nn.functional as F
from tests.gradcheck import numeric_grad
from tracer import op_memo, pending_expr, record, step_capture


@pytest.fixture(autouse=True)
def restore():
    yield
    record.PENDING = True
    step_capture.ENABLED = True
    step_capture.reset()


def two_layer(steps: int, n=16, d_in=12, h=8, d_out=3, read_every=3, dtype=np.float32):
    rng = np.random.default_rng(5)
    x, y = (gj.tensor(rng.standard_normal(s).astype(dtype)) for s in ((n, d_in), (n, d_out)))
    ws = [gj.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True)
          for s in ((d_in, h), (h, d_out))]
    out = []
    for i in range(steps):
        w1, w2 = ws
        loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
        if i % read_every == 0:
            out.append(loss.item())
        loss.backward()
        with gj.no_grad():
            for w in ws:
                w -= 1e-3 * w.grad
                out.append(w.grad.numpy().copy())
                w.grad.zero_()
    return out + [w.detach().numpy().copy() for w in ws]


def mlp(steps: int, batch=8, d_in=6, hidden=5, classes=3):
    rng = np.random.default_rng(7)
    model = gj.nn.Sequential(gj.nn.Linear(d_in, hidden), gj.nn.ReLU(),
                             gj.nn.Linear(hidden, classes))
    for p, a in zip(model.parameters(), [rng.standard_normal(tuple(p.shape)) * 0.3
                                         for p in model.parameters()]):
        with gj.no_grad():
            p.copy_(gj.tensor(a.astype(np.float32)))
    opt = gj.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = gj.tensor(rng.standard_normal((batch, d_in)).astype(np.float32))
    y = gj.tensor(rng.integers(0, classes, batch))
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        out.append(loss.item())
    return out + [p.detach().numpy().copy() for p in model.parameters()]


def three_ways(run, *args, **kw):
    """run with pending forward Ops, with eager Ops, and with no op memo at all."""
    record.PENDING = True
    on = run(*args, **kw)
    record.PENDING = False
    eager = run(*args, **kw)
    record.PENDING = True
    key_of = op_memo.key_of
    op_memo.key_of = lambda fn, a, k: None
    try:
        none = run(*args, **kw)
    finally:
        op_memo.key_of = key_of
    return on, eager, none


def assert_bitwise(*runs):
    for other in runs[1:]:
        assert len(other) == len(runs[0])
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("capture", [True, False])
def test_two_layer_loop_equals_eager_replay_and_no_memo(capture):
    step_capture.ENABLED = capture
    step_capture.reset()
    assert_bitwise(*three_ways(two_layer, 9))


def test_mlp_loop_equals_eager_replay_and_no_memo():
    assert_bitwise(*three_ways(mlp, 8))


def test_a_replayed_backward_builds_no_forward_ops():
    mlp(6)                                   # warm: templates, backward plans, programs
    before = pending_expr.STATS["materialised"]
    losses = mlp(6)[:6]
    # each run's first steps learn (their backward walks the forward); the read of each
    # loss (.item() after backward) finds it computed: later steps build nothing
    first = pending_expr.STATS["materialised"] - before
    before = pending_expr.STATS["materialised"]
    mlp(12)
    assert pending_expr.STATS["materialised"] - before == first
    assert all(np.isfinite(losses))


def test_zero_is_memoised():
    before = dict(op_memo.STATS)
    two_layer(6)
    assert op_memo.STATS["replays"] > before["replays"]
    zeros = [k for k in op_memo._MEMO if getattr(k[0], "__name__", "") == "_zeros"]
    assert zeros and all(op_memo.template(k) is not None for k in zeros)
    g = gj.tensor(np.arange(4, dtype=np.float32))
    g.zero_()                  # records zero_'s template for f32[4], or replays an earlier one
    replays = op_memo.STATS["replays"]
    g.zero_()                  # (counted from here: the outcome does not hang on test order)
    assert op_memo.STATS["replays"] == replays + 1 and g.numpy().tolist() == [0.0] * 4


def test_two_layer_gradients_match_finite_differences_in_float64():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 4))
    y = rng.standard_normal((5, 2))
    w1 = rng.standard_normal((4, 3))
    w2 = rng.standard_normal((3, 2))

    def loss_of(a, grad=False):
        t1 = gj.tensor(a, requires_grad=grad)
        loss = (gj.tensor(x).mm(t1).clamp(min=0).mm(gj.tensor(w2)) - gj.tensor(y)).pow(2).sum()
        return t1, loss

    for _ in range(3):                       # the third call replays pending templates
        t1, loss = loss_of(w1, True)
        loss.backward()
    np.testing.assert_allclose(t1.grad.numpy(),
                               numeric_grad(lambda a: loss_of(a)[1].item(), w1),
                               rtol=1e-6, atol=1e-6)


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 9), d_in=st.integers(1, 7), h=st.integers(1, 6),
       read_every=st.integers(1, 4), f64=st.booleans())
def test_random_two_layer_loops_equal_eager(n, d_in, h, read_every, f64):
    dtype = np.float64 if f64 else np.float32
    on, eager, none = three_ways(two_layer, 5, n=n, d_in=d_in, h=h, read_every=read_every,
                                 dtype=dtype)
    assert_bitwise(on, eager, none)
