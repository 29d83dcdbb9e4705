"""Derivative and batching rules of the cumulative primitives, written in IR primitives.

VJP rules: rule(b, g, out, x, **params) (cummax/cummin: gs and outs are pairs). JVP rules:
rule(b, ts, out, x, **params). Batching rules: rule(b, n, xs, flags, **params) with the batch
axis first. References for the product and the log-sum-exp are PyTorch's
(FunctionsManual.cpp: cumprod_backward, logcumsumexp_backward): a product with zeros is
differentiated exactly (before the first zero by division, at the first zero by the product
of the others, after it zero), and a log-sum-exp through the positive and negative parts of
the cotangent, so nothing overflows.
"""
from __future__ import annotations

import math

from ir.builder import Builder
from ir.core import Value


def _cumsum(b: Builder, x: Value, axis: int, reverse: bool = False) -> Value:
    return b.cumsum(x, axis=axis, reverse=reverse)


def _zero_masks(b: Builder, x: Value, axis: int):
    """(before, first, others): no zero up to here; the first zero; x with that zero as 1."""
    zero, one = b.full_like(0, x), b.full_like(1, x)
    is_zero = b.eq(x, zero)
    count = _cumsum(b, b.convert(is_zero, dtype=x.dtype), axis)
    before = b.eq(count, zero)
    first = b.logical_and(is_zero, b.eq(count, one))
    return before, first, b.select(first, one, x)


def _cumprod_vjp(b, g, out, x, *, axis):
    before, first, others = _zero_masks(b, x, axis)
    zero, one = b.full_like(0, x), b.full_like(1, x)
    by_division = b.div(_cumsum(b, b.mul(g, out), axis, True), b.select(before, x, one))
    at_first = _cumsum(b, b.mul(g, b.cumprod(others, axis=axis)), axis, True)
    return (b.select(before, by_division, b.select(first, at_first, zero)),)


def _cumprod_jvp(b, ts, out, x, *, axis):
    (t,) = ts
    before, first, others = _zero_masks(b, x, axis)
    zero, one = b.full_like(0, x), b.full_like(1, x)
    ratio = b.select(before, b.div(t, b.select(before, x, one)), zero)
    no_zero = b.mul(out, _cumsum(b, ratio, axis))
    one_zero = b.mul(b.cumprod(others, axis=axis), _cumsum(b, b.select(first, t, zero), axis))
    count = _cumsum(b, b.convert(b.eq(x, zero), dtype=x.dtype), axis)
    return b.select(before, no_zero, b.select(b.eq(count, one), one_zero, zero))


def _signed_parts(b: Builder, g: Value):
    """(log of g's positive part, log of its negative part), -inf where the part is 0. The
    log reads 1 where its part is 0 (the select's other side), so derivatives of the rules
    stay finite: a second derivative never meets log(0)."""
    zero, one, low = b.full_like(0, g), b.full_like(1, g), b.full_like(float("-inf"), g)
    out = []
    for mask, part in ((b.gt(g, zero), g), (b.lt(g, zero), b.neg(g))):
        out.append(b.select(mask, b.log(b.select(mask, part, one)), low))
    return out


def _finite_floor(b: Builder, out: Value) -> Value:
    """out with -inf (an all -inf prefix) read as 0: such a position only weighs inputs that
    are -inf themselves, whose terms exp(-inf - finite) are 0. NOTE: PyTorch's formula gives
    NaN there; this gives the limit, 0."""
    low = b.full_like(float("-inf"), out)
    return b.select(b.eq(out, low), b.full_like(0, out), out)


def _cumlogsumexp_vjp(b, g, out, x, *, axis, reverse):
    # dx_i = sum_{j >= i} g_j exp(x_i - out_j), accumulated in log space per sign of g
    parts, floor = [], _finite_floor(b, out)
    for log_g in _signed_parts(b, g):
        acc = b.cumlogsumexp(b.sub(log_g, floor), axis=axis, reverse=not reverse)
        parts.append(b.exp(b.add(acc, x)))
    return (b.sub(parts[0], parts[1]),)


def _cumlogsumexp_jvp(b, ts, out, x, *, axis, reverse):
    # dout_j = sum_{i <= j} t_i exp(x_i - out_j)
    parts, floor = [], _finite_floor(b, out)
    for log_t in _signed_parts(b, ts[0]):
        acc = b.cumlogsumexp(b.add(log_t, x), axis=axis, reverse=reverse)
        parts.append(b.exp(b.sub(acc, floor)))
    return b.sub(parts[0], parts[1])


def _row_index(b: Builder, idx: Value, axis: int) -> Value:
    """The flat (C-order) position of x[..., idx[...], ...] for an index of x's shape."""
    shape, lin = idx.shape, None
    for d in range(len(shape)):
        coord = idx if d == axis else b.iota(dtype="i64", shape=shape, dim=d)
        stride = math.prod(shape[d + 1:])
        term = coord if stride == 1 else b.mul(coord, b.const(stride, "i64", shape))
        lin = term if lin is None else b.add(lin, term)
    return lin


# cummax, cummin and sort: the values are x's elements at the indices along the axis
def _extreme_vjp(b, gs, outs, x, *, axis, **params):
    g, idx = gs[0], outs[1]
    if g is None:
        return (None,)
    flat = b.broadcast_to(b.const(0, x.dtype), (math.prod(x.shape),))
    lin = _row_index(b, idx, axis)
    return (b.reshape(b.scatter_add(flat, lin, g, axis=0), shape=x.shape),)


def _extreme_jvp(b, ts, outs, x, *, axis, **params):
    flat = b.reshape(ts[0], shape=(math.prod(x.shape),))
    return b.gather(flat, _row_index(b, outs[1], axis), axis=0), None


VJP_RULES = {
    "cumsum": lambda b, g, out, x, *, axis, reverse: (_cumsum(b, g, axis, not reverse),),
    "cumprod": _cumprod_vjp, "cumlogsumexp": _cumlogsumexp_vjp,
    "cummax": _extreme_vjp, "cummin": _extreme_vjp, "sort": _extreme_vjp,
}
JVP_RULES = {
    "cumsum": lambda b, ts, out, x, *, axis, reverse: _cumsum(b, ts[0], axis, reverse),
    "cumprod": _cumprod_jvp, "cumlogsumexp": _cumlogsumexp_jvp,
    "cummax": _extreme_jvp, "cummin": _extreme_jvp, "sort": _extreme_jvp,
}


def _batched(name: str):
    def rule(b, n, xs, flags, /, *, axis, **params):
        out = b.emit(name, xs[0], axis=axis + 1, **params)
        return [(v, True) for v in (out if isinstance(out, tuple) else (out,))]
    return rule


BATCH_RULES = {name: _batched(name) for name in VJP_RULES}
