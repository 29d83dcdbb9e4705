"""Kernels of the cumulative primitives: one sequential loop along the axis per row.

For every position of the other axes (outer loops over the axes before, then after, so the
innermost loop walks the axis) an accumulator in a register runs along the axis, in order
(or from the end with `reverse`), and each step stores its running value: O(n) per row and
the same order of operations as NumPy's accumulate, so compiled results match the
interpreter. cummax/cummin carry the index too (a tie moves it on, a NaN sticks).
"""
from __future__ import annotations

import math

from codegen.kernels import KernelCall, kernel_rules
from codegen.loops import I64, for_nest, for_range, i64
from codegen.lower import LLVM_TYPES, compare, const, is_float_type, scalar_rule, scalar_rules


def _logaddexp(k: KernelCall, a, v):
    """log(exp(a) + exp(v)) as NumPy's npy_logaddexp: a == v (infinities too) gives
    a + log 2; otherwise the larger plus log1p(exp(-|a - v|)); NaN stays NaN."""
    bld, vmath = k.bld, k.em.ctx.vmath
    d = bld.fsub(a, v)
    big = bld.select(bld.fcmp_ordered(">", d, const(d.type, 0)), a, v)
    neg_abs = bld.fneg(scalar_rules["abs"](bld, d))
    tail = scalar_rule("log1p", vmath)(bld, scalar_rule("exp", vmath)(bld, neg_abs))
    same = bld.fcmp_ordered("==", a, v)
    return bld.select(same, bld.fadd(a, const(a.type, math.log(2.0))), bld.fadd(big, tail))


def _combine(name: str):
    if name == "cumsum":
        return lambda k, acc, v: scalar_rules["add"](k.bld, acc, v)
    if name == "cumprod":
        return lambda k, acc, v: scalar_rules["mul"](k.bld, acc, v)
    return _logaddexp


def _rows(k: KernelCall, step):
    """Calls step(at, positions) inside the loops over the other axes: at(j) is the Index of
    x's element j along the axis, positions the axis indices in accumulation order."""
    op, em, bld = k.op, k.em, k.bld
    x, axis = op.inputs[0], op.params["axis"]
    n = x.shape[axis]
    if x.type.size == 0:
        return
    reverse = op.params.get("reverse", False)
    with em.scope(), for_nest(bld, x.shape[:axis], "p") as pre:
        with for_nest(bld, x.shape[axis + 1:], "q") as post:
            def at(j):
                return em.index(x.shape, pre + [j] + post)
            step(at, n, reverse)


def _position(bld, s, n: int, reverse: bool):
    return bld.sub(i64(n - 1), s) if reverse else s


def _accumulate(k: KernelCall):
    op, em, bld = k.op, k.em, k.bld
    x, out = op.inputs[0], k.buffer(op.results[0])
    combine = _combine(op.prim.name)

    def step(at, n, reverse):
        acc = em.ctx.alloca(LLVM_TYPES[x.dtype])
        first = at(i64(n - 1 if reverse else 0))
        v0 = em.gen(x, first)
        bld.store(v0, acc)
        out.store(first.linear, v0)
        with em.scope(), for_range(bld, n, "s", start=1) as s:
            idx = at(_position(bld, s, n, reverse))
            value = combine(k, bld.load(acc), em.gen(x, idx))
            bld.store(value, acc)
            out.store(idx.linear, value)
    _rows(k, step)


def _takes(bld, name: str, v, best):
    """Whether v becomes the running extreme: as good or better (ties move on), or the
    first NaN; nothing replaces a NaN."""
    take = compare(bld, ">=" if name == "cummax" else "<=", v, best)
    if is_float_type(v.type):
        take = bld.or_(take, bld.fcmp_unordered("uno", v, v))
        take = bld.and_(take, bld.fcmp_ordered("ord", best, best))
    return take


def _extreme(k: KernelCall):
    op, em, bld = k.op, k.em, k.bld
    x = op.inputs[0]
    values, indices = k.buffer(op.results[0]), k.buffer(op.results[1])

    def step(at, n, reverse):
        best_v, best_i = em.ctx.alloca(LLVM_TYPES[x.dtype]), em.ctx.alloca(I64)
        first = at(i64(0))
        v0 = em.gen(x, first)
        bld.store(v0, best_v)
        bld.store(i64(0), best_i)
        values.store(first.linear, v0)
        indices.store(first.linear, i64(0))
        with em.scope(), for_range(bld, n, "s", start=1) as s:
            idx = at(s)
            v, best = em.gen(x, idx), bld.load(best_v)
            take = _takes(bld, op.prim.name, v, best)
            new_v, new_i = bld.select(take, v, best), bld.select(take, s, bld.load(best_i))
            bld.store(new_v, best_v)
            bld.store(new_i, best_i)
            values.store(idx.linear, new_v)
            indices.store(idx.linear, new_i)
    _rows(k, step)


kernel_rules.update({"cumsum": _accumulate, "cumprod": _accumulate,
                     "cumlogsumexp": _accumulate, "cummax": _extreme, "cummin": _extreme})
