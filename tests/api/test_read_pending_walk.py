"""A read keys pending Exprs by their Template without building their Ops (structure_key.walk
pending=, realize_plans.PENDING): two_layer_net_autograd.py's `loss.item()` after a forward
whose recorded ops are pending. Each loop runs with the pending walk on and off: the same
bits every step, the same values held along (autograd node outputs, large products the
user holds), the same IR text when the Ops are built later; with it on, the read builds
none of the forward's Ops and its kept program is rerun."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from ir.printer import print_function
from tests.api.capture_check import assert_bitwise, plain_capture  # noqa: F401
from tracer import pending_expr, realize_plans, step_capture
from tracer.expr import build_function

pytestmark = pytest.mark.usefixtures("plain_capture")


def _autograd_loop(steps: int, sizes=(7, 5, 3), n=4, dtype="float32", read_every=2):
    """The tutorial's loop; per step the loss read (or None), both gradients and weights,
    and how many pending Exprs each read materialised."""
    d, h, o = sizes
    rng = np.random.default_rng(4)
    x = gj.tensor(rng.standard_normal((n, d)), dtype=dtype)
    y = gj.tensor(rng.standard_normal((n, o)), dtype=dtype)
    w1 = gj.tensor(rng.standard_normal((d, h)), dtype=dtype, requires_grad=True)
    w2 = gj.tensor(rng.standard_normal((h, o)), dtype=dtype, requires_grad=True)
    out, built = [], []
    for t in range(steps):
        hidden = x.mm(w1).clamp(min=0)
        loss = (hidden.mm(w2) - y).pow(2).sum()
        if t % read_every == 0:
            before = pending_expr.STATS["materialised"]
            out.append(loss.item())
            built.append(pending_expr.STATS["materialised"] - before)
            out.append(hidden._expr.data is not None)      # a node output: computed along
        loss.backward()
        out += [w1.grad.numpy().copy(), w2.grad.numpy().copy()]
        with gj.no_grad():
            w1 -= 1e-3 * w1.grad
            w2 -= 1e-3 * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
    return out + [w1.detach().numpy().copy(), w2.detach().numpy().copy()], built


def _both(run, *args, **kw):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(realize_plans, "PENDING", False)
        realize_plans.clear()
        off = run(*args, **kw)
    realize_plans.clear()
    hits = realize_plans.STATS["hits"]
    on = run(*args, **kw)
    return on, off, realize_plans.STATS["hits"] - hits


def _same(on: list, off: list):
    assert len(on) == len(off)
    for a, b in zip(on, off):
        if isinstance(a, (bool, float)):
            assert a == b or (a != a and b != b)
        else:
            assert_bitwise([a], [b])


def test_tutorial_reads_build_no_ops_and_match():
    (on, built_on), (off, built_off), hits = _both(_autograd_loop, 40)
    _same(on, off)
    assert built_on[2:] == [0] * len(built_on[2:])      # (after the first step's learning)
    assert min(built_off[2:]) > 0                          # the old walk built the forward
    assert hits >= len(built_on) - 3                       # the kept program reran


@settings(max_examples=12, deadline=None)
@given(sizes=st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 4)),
       n=st.integers(1, 5), dtype=st.sampled_from(["float32", "float64"]),
       read_every=st.integers(1, 4))
def test_random_sizes_and_read_frequencies(sizes, n, dtype, read_every):
    (on, _), (off, _), _ = _both(_autograd_loop, 9, sizes, n, dtype, read_every)
    _same(on, off)


def _read_then_ir(steps: int) -> list:
    """A read of a recorded forward, then the graph of a pending value over it built (its
    IR with the user's lines) and differentiated."""
    w = gj.tensor(np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3),
                  requires_grad=True)
    x = gj.tensor(np.ones((4, 2), np.float32))
    out = []
    for _ in range(steps):
        h = x.mm(w).clamp(min=0)
        s = h.sum()
        out.append(s.item())
        z = (h * 2.0).pow(2).sum()                         # pending over h (holds data)
        fn, _ = build_function("f", [], [z._expr])
        out.append(print_function(fn, locs=True))
        z.backward()
        out.append(w.grad.numpy().copy())
        w.grad = None
    return out


def test_ir_text_and_gradients_after_the_read():
    on, off, _ = _both(_read_then_ir, 5)
    assert len(on) == len(off)
    for a, b in zip(on, off):
        if isinstance(a, str):
            assert a == b and "test_read_pending_walk.py:" in a
        elif isinstance(a, float):
            assert a == b
        else:
            assert_bitwise([a], [b])


def _tensor_loop(steps: int) -> list:
    """two_layer_net_tensor.py's step (its shapes: the products are large enough to be
    held), followed by step capture, with a read of another value mid-step from step 5 on
    (it drops the tape: the general read then meets the followed pending products)."""
    rng = np.random.default_rng(6)
    x = gj.tensor(rng.standard_normal((64, 1000)), dtype="float32")
    y = gj.tensor(rng.standard_normal((64, 10)), dtype="float32")
    w1 = gj.tensor(rng.standard_normal((1000, 100)), dtype="float32")
    w2 = gj.tensor(rng.standard_normal((100, 10)), dtype="float32")
    out = []
    for t in range(steps):
        h = x.mm(w1)
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(w2)
        if t >= 5:
            out.append(y_pred.sum().item())
            out.append(h._expr.data is not None)           # the held product
        out.append((y_pred - y).pow(2).sum().item())
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.t().mm(grad_y_pred)
        grad_h = grad_y_pred.mm(w2.t()).clone()
        grad_h[h < 0] = 0
        grad_w1 = x.t().mm(grad_h)
        w1 -= 1e-6 * grad_w1
        w2 -= 1e-6 * grad_w2
    return out + [w1.numpy().copy(), w2.numpy().copy()]


def test_held_products_of_a_followed_step():
    on, off, _ = _both(_tensor_loop, 8)
    _same(on, off)
    assert step_capture.STATS["tapes"] > 0
    assert on[on.index(True)] is True
