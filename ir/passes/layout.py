"""Simplification rules for ops that move elements: broadcast, reshape, transpose, the
sums of broadcasts, and dot_general (whose dimension numbers can absorb a transpose).

These are the patterns reverse mode leaves behind: the VJP of dot_general transposes its
result, the VJP of a broadcast sums what the VJP of a reduction broadcast, and the tracer
reshapes before it broadcasts. Every rule here only re-indexes elements, except the sum of
a broadcast, which becomes a multiplication by the number of copies (more accurate than
the sum it replaces; equal for inf and nan).
"""
from __future__ import annotations

import math

import numpy as np

from ir.core import dot_free_axes
from ir.passes.rewrite import Context, Rule, same_results, splat


def unit_alignment(src, dst) -> list[int] | None:
    """For a reshape src -> dst that only inserts or removes size-1 axes: the dst axis of
    each src axis (increasing). None for any other reshape."""
    mapping, j = [], 0
    for d in src:
        while j < len(dst) and dst[j] != d and dst[j] == 1:
            j += 1
        if j == len(dst) or dst[j] != d:
            return None
        mapping.append(j)
        j += 1
    return mapping if all(d == 1 for d in dst[j:]) else None


def _broadcast_in_dim(op, ctx):
    """Identity; broadcast of a broadcast is one broadcast; a reshape that only adds or
    drops size-1 axes before a broadcast folds into its dims."""
    x, shape, dims = op.inputs[0], op.params["shape"], op.params["dims"]
    if x.type == op.results[0].type:             # dims are increasing: the identity map
        return x
    inner = ctx.def_of(x)
    if inner is None:
        return None
    if inner.prim.name == "broadcast_in_dim":
        new_dims = tuple(dims[d] for d in inner.params["dims"])
        return same_results(op, "broadcast_in_dim", inner.inputs, shape=shape, dims=new_dims)
    if inner.prim.name == "reshape":
        src = inner.inputs[0]
        mapping = unit_alignment(src.shape, x.shape)
        if mapping is not None:
            new_dims = tuple(dims[m] for m in mapping)
            return same_results(op, "broadcast_in_dim", (src,), shape=shape, dims=new_dims)
    return None


def _reshape(op, ctx):
    """Identity; reshape of a reshape; a reshape that only adds or drops size-1 axes of a
    broadcast is the broadcast to the new shape."""
    x, shape = op.inputs[0], tuple(op.params["shape"])
    if x.shape == shape:
        return x
    inner = ctx.def_of(x)
    if inner is None:
        return None
    if inner.prim.name == "reshape":
        src = inner.inputs[0]
        return src if src.shape == shape else same_results(op, "reshape", (src,), shape=shape)
    if inner.prim.name == "broadcast_in_dim":
        mapping = unit_alignment(x.shape, shape)
        if mapping is not None:
            dims = tuple(mapping[d] for d in inner.params["dims"])
            return same_results(op, "broadcast_in_dim", inner.inputs, shape=shape, dims=dims)
    return None


def _transpose(op, ctx):
    """Identity; transpose of a transpose; a transpose of a dot_general that swaps the two
    operands' free axes is the dot_general with its operands swapped."""
    x, perm = op.inputs[0], tuple(op.params["perm"])
    if perm == tuple(range(len(perm))):
        return x
    inner = ctx.def_of(x)
    if inner is None:
        return None
    if inner.prim.name == "transpose":
        # out axis i is inner axis perm[i], which is x axis inner_perm[perm[i]]
        src, perm = inner.inputs[0], tuple(inner.params["perm"][p] for p in perm)
        if perm == tuple(range(len(perm))):
            return src
        return same_results(op, "transpose", (src,), perm=perm)
    if inner.prim.name == "dot_general" and ctx.single_use(x):
        return _swap_dot(op, inner, perm)
    return None


def _swap_dot(op, dot, perm):
    """transpose(dot_general(a, b), perm) as dot_general(b, a) when perm keeps the batch
    axes first (in any order) and puts b's free axes before a's, each in order."""
    a, b = dot.inputs
    (ac, bc), (ab, bb) = dot.params["contract"], dot.params["batch"]
    nb, na = len(ab), len(dot_free_axes(a.ndim, ac, ab))
    nf = len(perm) - nb - na
    if sorted(perm[:nb]) != list(range(nb)):
        return None
    if perm[nb:] != tuple(range(nb + na, nb + na + nf)) + tuple(range(nb, nb + na)):
        return None
    batch = (tuple(bb[p] for p in perm[:nb]), tuple(ab[p] for p in perm[:nb]))
    return same_results(op, "dot_general", (b, a), contract=(tuple(bc), tuple(ac)), batch=batch)


def _untransposed(v, contract, batch, ctx):
    """(source, contract, batch) when v = transpose(source) and the transpose can be folded
    into dot dimension numbers: it must keep v's free axes in source order."""
    t = ctx.def_of(v, "transpose")
    if t is None:
        return None
    perm = t.params["perm"]
    free = [perm[k] for k in dot_free_axes(v.ndim, contract, batch)]
    if free != sorted(free):
        return None
    return (t.inputs[0], tuple(perm[k] for k in contract), tuple(perm[k] for k in batch))


def _dot_general(op, ctx):
    """dot_general(transpose(a), b) -> dot_general(a, b) with re-mapped dimension numbers
    (likewise for b), when the transpose keeps the operand's free axes in order."""
    (ac, bc), (ab, bb) = op.params["contract"], op.params["batch"]
    operands = [list(op.inputs), [ac, bc], [ab, bb]]
    changed = False
    for side in (0, 1):
        found = _untransposed(op.inputs[side], operands[1][side], operands[2][side], ctx)
        if found is not None:
            operands[0][side], operands[1][side], operands[2][side] = found
            changed = True
    if not changed:
        return None
    return same_results(op, "dot_general", operands[0],
                        contract=tuple(map(tuple, operands[1])),
                        batch=tuple(map(tuple, operands[2])))


def _reduce_sum(op, ctx):
    """Summing nothing is the identity; summing a splat or the copies a broadcast made is
    a multiplication by the number of copies."""
    x, axes = op.inputs[0], tuple(op.params["axes"])
    if not axes:
        return x
    out = op.results[0]
    count = math.prod(x.shape[a] for a in axes)     # exact: a broadcast may pass 2^63
    c = splat(x, ctx)
    if c is not None:
        # the sum of no elements is 0, even of inf or nan ones
        value = np.multiply(np.asarray(c, out.type.np_dtype), _count_as(count, out.type),
                            dtype=out.type.np_dtype) if count else np.zeros((), out.type.np_dtype)
        return same_results(op, "constant", (), value=value.item(), dtype=out.dtype,
                            shape=out.shape)
    inner = ctx.def_of(x)
    if inner is not None and inner.prim.name == "neg" and ctx.single_use(x):
        # the sum of negations is the negated sum, exactly: negate the smaller array
        total = ctx.emit("reduce_sum", inner.inputs[0], axes=axes, loc=op.loc)
        return same_results(op, "neg", (total,))
    if inner is None or inner.prim.name != "broadcast_in_dim":
        return None
    return _sum_of_broadcast(op, inner, set(axes), count, ctx)


def _sum_of_broadcast(op, bcast, axes: set, count: int, ctx: Context):
    src, dims = bcast.inputs[0], bcast.params["dims"]
    if any(d in axes and src.shape[i] != 1 for i, d in enumerate(dims)):
        return None                             # some summed elements are distinct
    out = op.results[0]
    if count == 0:
        return same_results(op, "constant", (), value=0 if out.dtype[0] == "i" else 0.0,
                            dtype=out.dtype, shape=out.shape)
    kept = [i for i, d in enumerate(dims) if d not in axes]
    if len(kept) != src.ndim:                   # drop the summed size-1 axes of src
        src = ctx.emit("reshape", src, shape=tuple(src.shape[i] for i in kept), loc=op.loc)
    position = {a: k for k, a in enumerate(a for a in range(len(bcast.params["shape"]))
                                           if a not in axes)}
    new_dims = tuple(position[dims[i]] for i in kept)
    if src.shape != out.shape or new_dims != tuple(range(out.ndim)):
        src = ctx.emit("broadcast_in_dim", src, shape=out.shape, dims=new_dims, loc=op.loc)
    if count == 1:
        return src
    n = ctx.emit("constant", value=float(count) if out.dtype[0] == "f" else
                 _wrapped(count, 8 * out.type.np_dtype.itemsize), dtype=out.dtype,
                 shape=out.shape, loc=op.loc)
    return same_results(op, "mul", (src, n))


def _count_as(count: int, t) -> np.generic:
    """A number of summed copies as the factor np.multiply takes for t's dtype: an int64
    while it fits (as before), else for floats the count rounded, for integers the count
    wrapped (a broadcast's count can pass 2^63: np.prod in int64 wrapped it to 0, and
    `expand(2**40, 2**40).sum()` of ones was 0)."""
    if t.dtype[0] == "f" and count >= 1 << 63:
        return np.asarray(float(count), t.np_dtype)[()]
    return np.int64(_wrapped(count, 64))


def _wrapped(count: int, bits: int) -> int:
    """count modulo 2^bits, signed: what adding that many ones gives in wrapping integers."""
    half = 1 << (bits - 1)
    return (count + half) % (2 * half) - half


layout_rules: dict[str, Rule] = {
    "broadcast_in_dim": _broadcast_in_dim,
    "reshape": _reshape,
    "transpose": _transpose,
    "dot_general": _dot_general,
    "reduce_sum": _reduce_sum,
}
