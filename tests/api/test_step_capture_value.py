"""A followed call's pending result keeps its TensorType in the Expr's `value` slot and gets
its Value only when something reads `value` (tracer/pending_expr.py: value_of): the read at
the step's end settles the roots with a Value each, a mid-step reader gets one Value that
the built Ops then use, and every result is bitwise what capture off computes."""

import threading

import numpy as np
import pytest

import gradjit as gj
from ir import TensorType, Value
from ir.printer import print_function
from tests.api.capture_check import plain_capture, run_off_and_on  # noqa: F401
from tracer import pending_expr, step_capture
from tracer.expr import Expr, build_function

pytestmark = pytest.mark.usefixtures("plain_capture")


def _raw(e):
    """What e's `value` slot holds, read without making a Value."""
    return pending_expr._VALUE.__get__(e)


def loop(steps: int, probe=None) -> list:
    """A polynomial_tensor-like step; probe(h, loss_expr, params) runs on the last step."""
    x = gj.linspace(-2.0, 2.0, 64)
    y = gj.sin(x)
    a, b = gj.tensor(0.1), gj.tensor(0.2)
    out = []
    for i in range(steps):
        h = b * x
        r = a + h - y
        if probe is not None and i == steps - 1:
            out += probe(h)
        loss = r.pow(2).sum().item()
        g = -2.0 * r
        a -= 1e-2 * g.sum()
        b -= 1e-2 * (g * x).sum()
        out.append(loss)
    return out + [a.numpy().copy(), b.numpy().copy()]


def _same(on: list, off: list):
    assert len(on) == len(off)
    for p, q in zip(on, off):
        if isinstance(p, str):
            assert p == q
        else:
            np.testing.assert_array_equal(np.asarray(p), np.asarray(q))


def test_a_followed_result_holds_its_type_until_its_value_is_read():
    x = gj.linspace(-1.0, 1.0, 16)
    w = gj.tensor(0.5)
    seen = []
    for _ in range(8):
        h = w * x
        seen.append((type(h._expr), _raw(h._expr)))
        (h - x).pow(2).sum().item()
        w -= 1e-1 * (h - x).sum()
    kind, raw = seen[-1]
    assert kind is pending_expr.PendingExpr and type(raw) is TensorType
    e = h._expr
    assert type(e) is pending_expr.PendingExpr and type(_raw(e)) is TensorType
    t = _raw(e)
    assert e.type is t and type(_raw(e)) is TensorType      # (type: no Value made)
    assert h.shape == (16,) and h.dtype == gj.float32 and type(_raw(e)) is TensorType
    v = e.value                                             # made now, once
    assert type(v) is Value and v.type is t and v.name_hint is None
    assert e.value is v and _raw(e) is v and e.type is t


def test_the_read_settles_the_roots_with_values():
    x = gj.linspace(-1.0, 1.0, 16)
    w = gj.tensor(0.5)
    for _ in range(8):
        loss = ((w * x) - x).pow(2).sum()
        raw = _raw(loss._expr)
        before = step_capture.STATS["reads"]
        loss.item()
        w -= 1e-1 * loss
    assert step_capture.STATS["reads"] == before + 1        # (the last read followed)
    assert type(raw) is TensorType
    for e in (loss._expr, ):
        assert type(e) is Expr and type(_raw(e)) is Value and e.value.type is raw
        assert e.data is not None
    w.numpy()
    assert type(w._expr) is Expr and type(_raw(w._expr)) is Value


@pytest.mark.parametrize("when", ["value first", "ops first"])
def test_a_value_read_mid_step_is_the_one_its_ops_use(when):
    def probe(h):
        e = h._expr
        if step_capture.ENABLED:                            # (capture off: a plain Expr)
            assert type(e) is pending_expr.PendingExpr and type(_raw(e)) is TensorType
        if when == "value first":
            v = e.value
            assert e.op.results == (v,) and e.value is v
        else:
            op = e.op                                       # materialised: Value made
            assert type(e) is Expr and op.results == (e.value,)
        fn, _ = build_function("f", [], [e])
        return [print_function(fn, locs=True)]
    on, delta, off = run_off_and_on(loop, 10, probe, stats=(step_capture.STATS,))
    assert delta["calls"] > 0
    _same(on, off)


def test_the_loop_equals_capture_off():
    on, delta, off = run_off_and_on(loop, 20, stats=(step_capture.STATS,))
    assert delta["reads"] >= 15
    _same(on, off)


def test_threads_reading_one_value_get_the_same_value():
    x = gj.linspace(-1.0, 1.0, 16)
    w = gj.tensor(0.5)
    for _ in range(8):
        h = [w * x]
        (h[0] - x).pow(2).sum().item()
        w -= 1e-1 * (h[0] - x).sum()
    es = [(w * x)._expr for _ in range(1)]
    es += [pending_expr.replay(*_mul_recipe(es[0]))._expr for _ in range(200)]
    assert all(type(_raw(e)) is TensorType for e in es)
    got = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def read(k):
        start.wait()
        got[k] = [e.value for e in es]
    threads = [threading.Thread(target=read, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(1, 4):
        assert all(a is b for a, b in zip(got[0], got[k]))
    assert all(_raw(e) is v for e, v in zip(es, got[0]))


def _mul_recipe(e):
    """pending_expr.replay's arguments for another call of e's recipe (e: a pending result
    of a one-result template)."""
    template, operands, loc, slot = pending_expr.recipe(e)
    outs = pending_expr.out_types(template, len(operands))
    assert outs[0] == ("new", slot, _raw(e))
    return template, outs, list(operands), [], loc, gj.Tensor
