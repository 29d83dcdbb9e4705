"""Followed calls straight from Tensor's operators and the op wrappers (tracer/step_follow.py
`follow`, tracer/surface.py `_operator`), and a Tensor's Storage made on first use
(tracer/storage.py `StorageOnFirstUse`). Each reader of a followed result's Storage (the
version counter, views, NumPy sharing, copies, autograd's saved-tensor checks) runs on a
followed step's results, mid-step and after the read, bitwise against capture off; the
followed calls are counted (step_capture.STATS)."""

import copy

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.api.capture_check import plain_capture, run_off_and_on  # noqa: F401
from tracer import pending_expr, step_capture
from tracer.expr import build_function
from ir.printer import print_function

AT = 6
MATERIALISED = [0, 0]   # pending_expr.STATS at the end of loop()'s last step, and its start


pytestmark = pytest.mark.usefixtures("plain_capture")


def _version(t) -> list:
    v0 = t._version
    t.mul_(1.0)
    return [v0, t._version, t.numpy().copy()]


def _view_write(t) -> list:
    v = t.view(4, 16)
    v[1].add_(0.5)                       # shared storage: the base sees it
    return [t.numpy().copy(), t._version, v._version]


def _numpy_shared(t) -> list:
    d = t.detach()
    arr = d.numpy()
    arr[0] = 7.0                         # a leaf's array shares memory with the tensor
    return [d.numpy().copy(), (d * 1.0).numpy().copy()]


def _deepcopy(t) -> list:
    c = copy.deepcopy(t)
    c.add_(1.0)
    return [c.numpy().copy(), t.numpy().copy()]


def _saved_check(t) -> list:
    w = gj.tensor(0.5, requires_grad=True)
    out = (w * t).sum()
    t.add_(0.0)                          # bumps t's version: the saved t is stale
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()
    return [t._version]


READERS = {"version": _version, "view write": _view_write, "numpy shared": _numpy_shared,
           "deepcopy": _deepcopy, "saved-tensor check": _saved_check}


def loop(steps: int, reader=None, which: int = 0, after_read: bool = False) -> list:
    """polynomial_tensor.py's shape: operators, methods and a function, then a read."""
    x = gj.linspace(-2.0, 2.0, 64)
    y = gj.sin(x)
    a, b, c = gj.tensor(0.1), gj.tensor(0.2), gj.tensor(-0.05)
    out = []
    MATERIALISED[1] = pending_expr.STATS["materialised"]
    for i in range(steps):
        h = b * x                        # operator
        p = a + h + c * x.pow(2)         # operators and a method
        r = p - y
        mids = (h, p, r)
        if i == AT and reader is not None and not after_read:
            out += reader(mids[which])
        loss = r.pow(2).sum().item()
        if i == AT and reader is not None and after_read:
            out += reader(mids[which])
        g = -2.0 * r                     # a reflected operator
        a -= 1e-2 * g.sum()
        b -= 1e-2 * gj.matmul(g, x).sum()
        c -= 1e-3 * (g * x.pow(2)).sum()
        out.append(loss)
    MATERIALISED[0] = pending_expr.STATS["materialised"]   # (before the reads below walk)
    return out + [a.numpy().copy(), b.numpy().copy(), c.numpy().copy()]


def run_both(steps: int, *args) -> tuple:
    on, delta, off = run_off_and_on(loop, steps, *args)
    return on, delta["calls"], off


def assert_same(on: list, off: list):
    assert len(on) == len(off)
    for u, v in zip(on, off):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
        assert np.asarray(u).dtype == np.asarray(v).dtype


def test_operators_methods_and_functions_are_followed():
    on, calls, off = run_both(12)
    assert_same(on, off)
    # 17 calls a step (the 3 in-place updates' subtractions among them), followed from the
    # third step on
    assert calls >= 17 * (12 - 3)
    assert MATERIALISED[0] == MATERIALISED[1]       # (of the run with capture on)


def test_a_followed_result_makes_no_storage_until_asked():
    x = gj.linspace(-1.0, 1.0, 16)
    w = gj.tensor(0.5)
    made = []
    for _ in range(6):
        h = w * x
        made.append("_storage" in vars(h))
        (h - x).pow(2).sum().item()
        w -= 1e-1 * (h - x).sum()
    # (the first steps take the general path: learning the templates reads the versions)
    assert step_capture.STATS["calls"] > 0 and made[3:] == [False] * 3
    assert h._version == 0 and "_storage" in vars(h)
    h.add_(1.0)
    assert h._version == 1 and h._storage is h._storage       # kept once made


@pytest.mark.parametrize("after_read", [False, True], ids=["mid-step", "after the read"])
@pytest.mark.parametrize("which", [0, 1, 2], ids=["b*x", "a+h+c*x^2", "p-y"])
@pytest.mark.parametrize("name", sorted(READERS))
def test_each_storage_reader_equals_capture_off(name, which, after_read):
    on, calls, off = run_both(10, READERS[name], which, after_read)
    assert_same(on, off)
    assert calls > 0


@settings(max_examples=12, deadline=None)
@given(name=st.sampled_from(sorted(READERS)), which=st.integers(0, 2),
       after_read=st.booleans(), steps=st.integers(AT + 1, AT + 4))
def test_random_storage_readers_equal_capture_off(name, which, after_read, steps):
    on, _, off = run_both(steps, READERS[name], which, after_read)
    assert_same(on, off)


def _scaled(t, k):
    """gradjit's own-code stand-in is not needed: a user helper one frame down."""
    return t * k


def test_the_user_line_of_a_followed_operator_is_its_call_site():
    """A followed operator called directly, through a user helper, and as the subtraction
    of an in-place update: the materialised IR names the same lines as capture off."""
    def run():
        x = gj.linspace(-1.0, 1.0, 16)
        w = gj.tensor(0.5)
        kept = []
        for _ in range(7):
            h = _scaled(x, w) + w * x
            kept.append(h)
            (h - x).pow(2).sum().item()
            w -= 1e-1 * (h - x).sum()
        fn, _ = build_function("f", [], [kept[5]._expr])
        return print_function(fn, locs=True), kept[5].numpy().copy()
    step_capture.ENABLED = False
    step_capture.reset()
    off = run()
    step_capture.ENABLED = True
    step_capture.reset()
    calls = step_capture.STATS["calls"]
    on = run()
    assert step_capture.STATS["calls"] > calls
    assert on[0] == off[0] and "test_step_capture_direct.py" in on[0]
    np.testing.assert_array_equal(on[1], off[1])


def test_an_operator_inside_an_op_body_is_not_a_step_call():
    """A non-memoised op (its body applies operators) ends the tape; the operators inside
    its body are not matched against the tape's next calls."""
    def run():
        x = gj.linspace(-1.0, 1.0, 16)
        w = gj.tensor(0.5)
        out = []
        for i in range(9):
            h = w * x
            if i == 6:
                h = gj.nn.functional.softplus(h)   # its body: operators on h
            out.append((h - x).pow(2).sum().item())
            w -= 1e-1 * (h - x).sum()
        return out + [w.numpy().copy()]
    step_capture.ENABLED = False
    step_capture.reset()
    off = run()
    step_capture.ENABLED = True
    step_capture.reset()
    breaks = step_capture.STATS["breaks"]
    on = run()
    assert step_capture.STATS["breaks"] > breaks
    assert_same(on, off)
