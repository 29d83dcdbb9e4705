"""Sample rows of the control-flow primitives: cond, while, scan."""
from __future__ import annotations

import numpy as np

from tests.gradcheck import make_fn as grad_fn
from tests.prim_samples.cases import (NUMERIC, CompiledCase, F, Row, T, grad_cases, index,
                                      make_fn, pred, sample_array)

ROWS: dict[str, Row] = {}

# ---- derivative cases ----------------------------------------------------------------------


def _cond(b, p, x, y, k):
    """Two results of each branch depend on different operands; the third is an integer."""
    true_fn = grad_fn(lambda b, x, y, k: (b.mul(x, y), b.sin(x), b.add(k, k)),
                      x.type, y.type, k.type, name="on_true")
    false_fn = grad_fn(lambda b, x, y, k: (b.add(x, b.convert(k, dtype=x.dtype)),
                                           b.mul(b.cos(y), x), k),
                       x.type, y.type, k.type, name="on_false")
    return b.emit("cond", p, x, y, k, regions=(true_fn, false_fn))


def _cond_one_sided(b, p, x, y):
    """Each branch reads only one operand, so each branch's VJP returns a zero for the other."""
    true_fn = grad_fn(lambda b, x, y: b.mul(x, x), x.type, y.type, name="on_true")
    false_fn = grad_fn(lambda b, x, y: b.exp(y), x.type, y.type, name="on_false")
    return b.emit("cond", p, x, y, regions=(true_fn, false_fn))


def _rnn(reverse):
    """carry (h, w), xs x: h <- tanh(h * w + x), w passes through; ys h * x."""
    def build(b, h, w, xs):
        def body(b, h, w, x):
            h_new = b.tanh(b.add(b.mul(h, w), x))
            return h_new, w, b.mul(h_new, x)
        region = grad_fn(body, h.type, w.type, h.type, name="rnn_step")
        return b.emit("scan", h, w, xs, num_carry=2, length=xs.shape[0], reverse=reverse,
                      regions=(region,))
    return build


def _counter_scan(b, h, xs):
    """An integer carry counts iterations and feeds the float computation."""
    def body(b, i, h, x):
        scale = b.broadcast_to(b.convert(b.add(i, b.full_like(1, i)), dtype=h.dtype), h.shape)
        count = b.convert(i, dtype=h.dtype)
        return b.add(i, b.full_like(1, i)), b.sin(b.mul(b.mul(h, x), scale)), count
    i0 = b.const(0, "i64")
    region = grad_fn(body, i0.type, h.type, h.type.with_shape(xs.shape[1:]), name="count_step")
    return b.emit("scan", i0, h, xs, num_carry=2, length=xs.shape[0], reverse=False,
                  regions=(region,))


def _fori_scan(b, h, w):
    """No xs at all: a fori_loop of static length."""
    region = grad_fn(lambda b, h, w: (b.sin(b.mul(h, w)), w), h.type, w.type, name="loop_step")
    return b.emit("scan", h, w, num_carry=2, length=3, reverse=False, regions=(region,))


def _scan_with_cond(b, h, xs):
    """Control flow nested in control flow: a cond on the iteration's parity inside a scan."""
    def body(b, i, h, x):
        even = b.eq(b.sub(i, b.mul(b.div(i, b.full_like(2, i)), b.full_like(2, i))),
                    b.full_like(0, i))
        on_even = grad_fn(lambda b, h, x: b.mul(b.sin(h), x), h.type, x.type, name="even")
        on_odd = grad_fn(lambda b, h, x: b.add(b.tanh(h), b.mul(x, x)), h.type, x.type,
                         name="odd")
        (h_new,) = b.emit("cond", even, h, x, regions=(on_even, on_odd))
        return b.add(i, b.full_like(1, i)), h_new, b.exp(h_new)
    i0 = b.const(0, "i64")
    region = grad_fn(body, i0.type, h.type, h.type.with_shape(xs.shape[1:]), name="parity_step")
    return b.emit("scan", i0, h, xs, num_carry=2, length=xs.shape[0], reverse=False,
                  regions=(region,))


def _while(b, h, w):
    """i counts to 3 while h <- sin(h) * w. Forward mode only: reverse mode is refused."""
    i0 = b.const(0, "i64")
    cond_fn = grad_fn(lambda b, i, h, w: b.lt(i, b.full_like(3, i)),
                      i0.type, h.type, w.type, name="below_3")
    body_fn = grad_fn(lambda b, i, h, w: (b.add(i, b.full_like(1, i)), b.mul(b.sin(h), w), w),
                      i0.type, h.type, w.type, name="while_step")
    return b.emit("while", i0, h, w, regions=(cond_fn, body_fn))


# ---- compiled cases --------------------------------------------------------------------------

def _compiled_cond(dt):
    v = T(dt, (3,))
    then = make_fn("then", [v, v], lambda b, x, y: [b.add(x, y), x])
    other = make_fn("other", [v, v], lambda b, x, y: [b.mul(x, y), b.sub(x, y)])

    def body(b, p, x, y):
        first = b.emit("cond", p, x, y, regions=(then, other))
        second = b.emit("cond", b.logical_not(p), x, y, regions=(then, other))
        return list(first) + list(second)
    return make_fn("cond", [T("bool", ()), v, v], body)


def _compiled_while(dt):
    i, v = T("i32", ()), T(dt, (3,))
    test = make_fn("test", [i, i, v], lambda b, k, n, x: [b.lt(k, n)])

    def step(b, k, n, x):
        one = b.const(1, "i32")
        return [b.add(k, one), n, b.add(b.mul(x, b.const(2, dt, (3,))), b.const(1, dt, (3,)))]
    body_fn = make_fn("step", [i, i, v], step)

    def body(b, n, x):
        zero = b.const(0, "i32")
        looped = b.emit("while", zero, n, x, regions=(test, body_fn))
        skipped = b.emit("while", n, zero, x, regions=(test, body_fn))
        return list(looped) + list(skipped)
    return make_fn("while", [i, v], body)


def _while_sample(rng, types):
    return [np.array(rng.integers(0, 5), np.int32), sample_array(rng, types[1], -1, 1)]


def _compiled_scan(dt):
    c, x = T(dt, (3,)), T(dt, (3,))
    step = make_fn("step", [c, x], lambda b, c, x: [b.add(c, x), b.mul(c, x), c])

    def body(b, c0, xs, empty):
        fwd = b.emit("scan", c0, xs, num_carry=1, length=4, reverse=False, regions=(step,))
        rev = b.emit("scan", c0, xs, num_carry=1, length=4, reverse=True, regions=(step,))
        none = b.emit("scan", c0, empty, num_carry=1, length=0, reverse=False, regions=(step,))
        return list(fwd) + list(rev) + list(none)
    return make_fn("scan", [c, T(dt, (4, 3)), T(dt, (0, 3))], body)


ROWS["cond"] = Row(
    [c for p in (True, False) for c in
     grad_cases("cond", f"pred-{p}", _cond, pred(p), F(3), F(3), index(3, bound=4))
     + grad_cases("cond", f"one-sided-{p}", _cond_one_sided, pred(p), F(2, 2), F(2, 2))],
    [CompiledCase(_compiled_cond, NUMERIC)])
ROWS["while"] = Row(grad_cases("while", "counted", _while, F(3), F(3), modes=("fwd",)),
                    [CompiledCase(_compiled_while, NUMERIC, sample=_while_sample)])
ROWS["scan"] = Row(
    grad_cases("scan", "rnn", _rnn(False), F(3), F(3), F(4, 3))
    + grad_cases("scan", "nested-cond", _scan_with_cond, F(2), F(3, 2))
    + grad_cases("scan", "rnn-reverse", _rnn(True), F(3), F(3), F(4, 3))
    + grad_cases("scan", "int-counter", _counter_scan, F(2), F(3, 2))
    + grad_cases("scan", "no-xs", _fori_scan, F(2, 2), F(2, 2))
    + grad_cases("scan", "length-0", _rnn(False), F(3), F(3), F(0, 3)),
    [CompiledCase(_compiled_scan, NUMERIC, -1.5, 1.5)])
