"""Gather indices that are affine in the loop indices: computed inline, range-checked once.

The im2col gather of a convolution (tracer/nn/functional_conv.py) reads its input at
positions that are sums of scaled iotas. Loaded from a stored index array and clamped per
element, the gather is a scalar loop (NOTE: the CNN step's 3->16 conv: ~0.5-0.7 ms). When
the index is such an expression, its range is known from the shape: if it lies inside the
gathered axis no clamp is needed, and the index computed from the loop counters with
no-wrap flags lets LLVM see consecutive loads along the innermost loop and vectorise them.
"""
from __future__ import annotations

from codegen.loops import i64

_INT = ("i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64")


def affine_form(v, producers: dict, memo: dict | None = None):
    """(coeffs {axis of v: int}, constant) with v[i] = constant + sum(coeffs[a] * i[a]),
    when v is built from iota, scalar constants, add, sub and mul by a constant; else None."""
    memo = {} if memo is None else memo
    if v in memo:
        return memo[v]
    memo[v] = None
    op = producers.get(v)
    if op is None or v.dtype not in _INT:
        return None
    name, p = op.prim.name, op.params
    form = None
    if name == "iota":
        form = ({p["dim"]: 1}, 0)
    elif name == "constant" and not isinstance(p["value"], (list, tuple)):
        form = ({}, int(p["value"]))
    elif name in ("add", "sub", "mul"):
        a, b = (affine_form(x, producers, memo) for x in op.inputs)
        if a is not None and b is not None:
            form = _combine(name, a, b)
    memo[v] = form
    return form


def _combine(name, a, b):
    if name == "mul":
        if a[0] and b[0]:
            return None                       # a product of two indices: not affine
        (coeffs, c), k = (a, b[1]) if not b[0] else (b, a[1])
        return {d: k * s for d, s in coeffs.items()}, k * c
    sign = 1 if name == "add" else -1
    coeffs = dict(a[0])
    for d, s in b[0].items():
        coeffs[d] = coeffs.get(d, 0) + sign * s
    return coeffs, a[1] + sign * b[1]


def affine_range(form, shape) -> tuple[int, int]:
    """The least and greatest value of the affine form over an index space of `shape`."""
    coeffs, c = form
    lo = c + sum(min(0, s * (shape[d] - 1)) for d, s in coeffs.items())
    hi = c + sum(max(0, s * (shape[d] - 1)) for d, s in coeffs.items())
    return lo, hi


def in_range_form(v, producers: dict, size: int):
    """v's affine form when every value it takes lies in [0, size) (a non-empty v), else
    None: such an index needs no clamp."""
    form = affine_form(v, producers)
    if form is None or v.type.size == 0:
        return None
    lo, hi = affine_range(form, v.shape)
    return form if 0 <= lo and hi < size else None


def emit_affine(bld, form, dims):
    """The form's value at loop indices `dims` (i64), for a form whose range is
    non-negative: the positive terms are added first, so every partial sum lies between the
    final value and the form's maximum and the no-wrap flags hold."""
    coeffs, c = form
    pos = [(d, s) for d, s in sorted(coeffs.items()) if s > 0]
    neg = [(d, s) for d, s in sorted(coeffs.items()) if s < 0]
    total = None
    for d, s in pos:
        term = dims[d] if s == 1 else bld.mul(dims[d], i64(s), flags=("nuw", "nsw"))
        total = term if total is None else bld.add(total, term, flags=("nuw", "nsw"))
    if total is None:
        total = i64(0)
    if c > 0:
        total = bld.add(total, i64(c), flags=("nuw", "nsw"))
    for d, s in neg:
        term = bld.mul(dims[d], i64(-s), flags=("nuw", "nsw"))
        total = bld.sub(total, term, flags=("nsw",))
    if c < 0:
        total = bld.sub(total, i64(-c), flags=("nsw",))
    return total


def affine_gathers(ops, params) -> tuple[set, set]:
    """(indices, sources) of the gathers whose index is in-range affine: the indices are
    never stored (computed inline from the loop counters is cheaper than a load), and a
    computed gathered operand is stored (a zero-padded input inlined would put a select
    per element on the address, which LLVM cannot vectorise). A reshape of a parameter is
    read in place."""
    producers = {r: op for op in ops for r in op.results}
    indices, sources = set(), set()
    for op in ops:
        if op.prim.name != "gather":
            continue
        x, ind = op.inputs
        if in_range_form(ind, producers, x.shape[op.params["axis"]]) is None:
            continue
        indices.add(ind)
        src = x
        while src not in params and producers.get(src) is not None \
                and producers[src].prim.name == "reshape":
            src = producers[src].inputs[0]
        if src not in params:
            sources.add(src)        # stored in its own shape: the reshape reads it in place
    return indices, sources
