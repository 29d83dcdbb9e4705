"""A memoised op's Template and user line found by call site (tracer/op_sites.py), and a
no-grad operator replayed straight from Tensor's operator (tracer/autograd/quiet_sites.py).

Every loop runs with sites on and off (op_sites.ENABLED, quiet_sites.ENABLED): the values,
dtypes, grad_fns, the IR text with the user's lines and the exceptions must be the same,
and the counters say the site path was taken (or refused: another scalar, shape, alias,
dtype, a 0.0 or NaN, an operand requiring grad, op_memo cleared)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from ir.printer import print_function
from tests.api.capture_check import assert_bitwise, plain_capture  # noqa: F401
from tests.api.test_two_layer_step import _loop
from tracer import op_memo, op_sites, step_capture
from tracer.autograd import quiet_sites
from tracer.expr import build_function

pytestmark = pytest.mark.usefixtures("plain_capture")


def _both(run, *args, **kw) -> tuple:
    """(run's values with sites on, the change of the site counters over that run, its
    values with sites off)."""
    stats = (op_sites.STATS, quiet_sites.STATS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(op_sites, "ENABLED", False)
        patch.setattr(quiet_sites, "ENABLED", False)
        op_memo.clear()
        off = run(*args, **kw)
    op_memo.clear()
    before = [dict(s) for s in stats]
    on = run(*args, **kw)
    delta = {}
    for s, b in zip(stats, before):
        delta.update({k: s[k] - b[k] for k in b})
    return on, delta, off


def _same(on: list, off: list):
    assert len(on) == len(off)
    for a, b in zip(on, off):
        if isinstance(a, (str, type(None), tuple)):
            assert a == b
        else:
            assert_bitwise([np.asarray(a)], [np.asarray(b)])


def _text(t) -> str:
    """The IR of t's pending graph with the user's line on each op."""
    fn, _ = build_function("f", [], [t._expr])
    return print_function(fn, locs=True)


def test_tutorial_loop_bitwise_and_taken():
    """two_layer_net_autograd.py's loop, 200 steps (a read every 10th): the same bits every
    step; the forward's ops, the updates' `lr * w.grad` and in-place ops take sites."""
    on, delta, off = _both(_loop, 200)
    assert len(on) == len(off)
    for a, b in zip(on, off):
        assert_bitwise(a, b)
    assert delta["hits"] >= 200 * 8          # 4-6 forward ops and 4-6 updates a step
    assert delta["operators"] >= 2 * 200 * 0.8   # (not after a read: its cycle is clean)


def _updates(steps: int) -> list:
    """A no-grad update loop; per step the IR text (with lines) of the updated weight's
    pending value, before the read that computes it, and the value."""
    w = gj.tensor(np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(3, 4),
                  requires_grad=True)
    x = gj.tensor(np.ones((2, 3), np.float32))
    out = []
    for _ in range(steps):
        (x.mm(w) ** 2).sum().backward()
        with gj.no_grad():
            w -= 0.125 * w.grad
            w.grad.zero_()
        out += [_text(w), w.detach().numpy().copy()]
    return out


def test_user_lines_and_ir_text_are_the_general_paths():
    on, delta, off = _both(_updates, 6)
    _same(on, off)
    assert delta["hits"] > 0 and delta["operators"] > 0
    assert "test_op_sites.py:" in on[-2]


def _scalars(values: list, x) -> list:
    out = []
    for s in values:
        y = s * x                             # one site, another scalar each call
        out += [y.numpy().copy(), str(y.dtype)]
    return out


@pytest.mark.parametrize("values", [
    [2.0, 2.0, 3.0, 2.0, 2.0],
    [2.0, 0.0, -0.0, 0.0, -0.0, 2.0],
    [1.5, math.nan, math.nan, 1.5, math.inf, -math.inf, math.inf],
    [2, 2.0, True, 2, 2.0, True, False, 0],
], ids=["changed", "signed zeros", "nan inf", "int float bool"])
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_scalar_arguments_change_the_key(values, dtype):
    """A scalar that differs (by value, by type, or by bits `==` cannot see) is another key:
    the site does not give the old Template (int64 * 2.0 is float, * 2 is int64; x * -0.0
    keeps the sign)."""
    x = gj.tensor(np.array([[1, -2], [3, 4]]), dtype=dtype)
    with gj.no_grad():
        on, delta, off = _both(_scalars, values, x)
    _same(on, off)
    for s, (got, _) in zip(values, zip(on[::2], on[1::2])):
        want = np.asarray(s) * np.array([[1, -2], [3, 4]], dtype=dtype)
        np.testing.assert_array_equal(got, want.astype(got.dtype))
        assert np.signbit(got).tolist() == np.signbit(want).tolist()


def _shapes_and_aliases(pairs: list) -> list:
    out = []
    for a, b in pairs:
        y = a * b                             # one site: other shapes, other aliasing
        out.append(y.numpy().copy())
    return out


def test_shapes_and_aliases_change_the_key(monkeypatch):
    """(Step capture off: a clean cycle would note these calls, and the operator path
    leaves them to the wrapper.)"""
    monkeypatch.setattr(step_capture, "ENABLED", False)
    a = gj.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    b = gj.tensor(np.full((2, 3), 0.5, np.float32))
    c = gj.tensor(np.arange(3.0, dtype=np.float32))
    pairs = [(a, b), (a, b), (a, a), (a, b), (b, b), (a, c), (c, c), (a, b)]
    on, delta, off = _both(_shapes_and_aliases, pairs)
    _same(on, off)
    for (x, y), got in zip(pairs, on):
        np.testing.assert_array_equal(got, x.numpy() * y.numpy())
    # taken from the operator: (a, b) the 2nd, 4th and last time, and (b, b) (the key of
    # (a, a): same types, same aliasing), the (a, b)s from the site noted at the 2nd
    # ((a, a) was noted where the wrapper is called); (a, c), (c, c) learnt by the wrapper
    assert delta["operators"] == 4 and delta["hits"] >= 2


def test_requires_grad_operand_takes_the_wrapper():
    """An operand that requires grad (set between two calls at a noted site) is recorded:
    the op's node and its gradient, as without sites."""
    def run():
        t = gj.tensor([1.0, 2.0, 3.0])
        out = []
        for i in range(6):
            t.requires_grad_(i >= 3)
            y = 2.5 * t
            out.append(y.grad_fn.name() if y.grad_fn is not None else None)
            if y.requires_grad:
                y.sum().backward()
                out.append(t.grad.numpy().copy())
                t.grad = None
        return out
    on, _, off = _both(run)
    _same(on, off)
    assert on[0] is None and on[-2] == "MulBackward0"


def test_op_memo_cleared_is_not_a_stale_site():
    x = gj.tensor([1.0, 2.0])
    with gj.no_grad():
        for _ in range(3):
            y = 3.0 * x
        before = dict(op_sites.STATS)
        op_memo.clear()
        y = 3.0 * x
    assert op_sites.STATS["hits"] == before["hits"]        # learnt again, not the old site
    np.testing.assert_array_equal(y.numpy(), [3.0, 6.0])


def test_default_dtype_is_part_of_the_site():
    x = gj.tensor(np.array([1, 2]))
    out = []
    try:
        for dtype in (gj.float32, gj.float32, gj.float64, gj.float64, gj.float32):
            gj.set_default_dtype(dtype)
            out.append(str((x * 0.5).dtype))
    finally:
        gj.set_default_dtype(gj.float32)
    assert out == ["torch.float32", "torch.float32", "torch.float64", "torch.float64",
                   "torch.float32"]


def test_many_calls_from_one_user_line():
    """One user line calling an op on many shapes (as an optimizer's loop inside one call
    of gradjit's own): past _PER_FRAME changes the site stops being noted; values stay."""
    tensors = [gj.tensor(np.full((k + 1,), float(k), np.float32)) for k in range(20)]

    def run():
        out = []
        for _ in range(3):
            out += [(1.5 * t).numpy().copy() for t in tensors]
        return out
    with gj.no_grad():
        on, _, off = _both(run)
    _same(on, off)


def test_each_user_line_its_own_location():
    """The operator's frame is shared by every user line that uses `*`: each line's op
    carries its own line."""
    x = gj.tensor([1.0, 2.0])
    with gj.no_grad():
        for _ in range(3):
            a = 2.0 * x
            b = 2.0 * x
    line_a, line_b = a._expr.op.loc, b._expr.op.loc
    assert line_a != line_b
    assert line_a.startswith("test_op_sites.py:") and line_b.startswith("test_op_sites.py:")
    assert int(line_b.split(":")[1]) == int(line_a.split(":")[1]) + 1


def test_a_shape_error_names_the_users_line():
    def run():
        a = gj.tensor(np.ones((2, 3), np.float32))
        out = []
        for b in (gj.tensor(np.ones((2, 3), np.float32)),) * 3 + (gj.tensor(np.ones(4)),):
            try:
                out.append((a * b).numpy().copy())
            except Exception as e:           # noqa: BLE001 (compared on and off)
                out.append(f"{type(e).__name__}: {e}")
        return out
    with gj.no_grad():
        on, _, off = _both(run)
    _same(on, off)
    assert isinstance(on[-1], str)


def test_parameter_arguments():
    """nn.Parameter (a Tensor subclass) arguments match sites as the key treats them."""
    lin = gj.nn.Linear(3, 2)
    x = gj.tensor(np.ones((4, 3), np.float32))

    def run():
        with gj.no_grad():
            return [gj.nn.functional.linear(x, lin.weight, lin.bias).numpy().copy()
                    for _ in range(4)]
    on, _, off = _both(run)
    _same(on, off)


@settings(max_examples=30, deadline=None)
@given(calls=st.lists(st.tuples(st.sampled_from([0.5, 2.0, 0.0, -0.0, 3, True]),
                                st.sampled_from([(2, 3), (3,), (1, 3)]),
                                st.booleans()), min_size=1, max_size=10),
       dtype=st.sampled_from(["float32", "float64"]))
def test_random_calls_at_one_site(calls, dtype):
    base = {s: gj.tensor(np.arange(math.prod(s), dtype=dtype).reshape(s) - 1.0)
            for s in [(2, 3), (3,), (1, 3)]}

    def run():
        out = []
        with gj.no_grad():
            for s, shape, alias in calls:
                a = base[shape]
                b = a if alias else base[(2, 3)]
                y = s * a + b                  # two sites, varying keys
                out.append(y.numpy().copy())
        return out
    on, _, off = _both(run)
    _same(on, off)
