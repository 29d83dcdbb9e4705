"""The elemental emitter (XLA's idea): the scalar value of any tensor at a given index.

`Elemental.gen(v, idx)` returns the LLVM value of tensor v at Index idx. A materialised v
(one with a Buffer) is loaded; otherwise its producer's rule computes the element from its
operands' elements, so whole chains of elementwise and index-remapping ops (broadcast,
transpose, reshape, slice, pad, concatenate, gather, iota, constant) inline into the loop
that consumes them without ever being stored. Elementwise ops pass the very same Index
object to their operands; codegen.fusion relies on that ("same-index" reads).

Rules: `elemental_rules[name](em, op, idx) -> value` for the non-elementwise primitives;
the elementwise ones use the scalar table codegen.lower.scalar_rules.
"""
from __future__ import annotations

import itertools
import math
from contextlib import contextmanager

import numpy as np
from llvmlite import ir as ll

from codegen.affine_index import emit_affine, in_range_form
from codegen.buffers import Buffer, KernelContext, storage_type
from codegen.concat_split import piece_in_range
from codegen.loops import I1, I64, delinearize, for_nest, for_range, i64, linearize
from codegen.lower import (LLVM_TYPES, compare, const, convert_value, is_float_type, scalar_rule,
                           scalar_rules)
from ir.core import TensorType, Value


class Index:
    """A position in a tensor of `shape`: its multi-index `dims` and its C-order `linear` index."""
    __slots__ = ("shape", "dims", "linear")

    def __init__(self, shape, dims, linear):
        self.shape = tuple(shape)
        self.dims = list(dims)
        self.linear = linear


class Elemental:
    """Generates element values inside one LLVM function; memoised per (value, Index) in scopes.

    A scope is opened around every nested loop, so a value computed inside a loop body is
    never reused after the loop, where its instruction would not dominate the use.
    """

    def __init__(self, ctx: KernelContext, buffers: dict, producers: dict):
        self.ctx = ctx
        self.bld = ctx.bld
        self.buffers = buffers          # Value -> Buffer
        self.producers = producers      # Value -> Op (for values computed elementally)
        self.memo = [{}]
        self.known = {}                 # id(loop variable) -> (variable, lo, hi): its range

    def index(self, shape, dims) -> Index:
        return Index(shape, dims, linearize(self.bld, dims, shape))

    def index_of_linear(self, shape, linear) -> Index:
        return Index(shape, delinearize(self.bld, linear, shape), linear)

    def lookup(self, v: Value, idx: Index):
        for scope in reversed(self.memo):
            hit = scope.get((v, id(idx)))
            if hit is not None:
                return hit[1]
        return None

    def gen(self, v: Value, idx: Index):
        val = self.lookup(v, idx)
        if val is not None:
            return val
        buf = self.buffers.get(v)
        if buf is not None:
            val = buf.load(idx.linear)
        else:
            self.gen_elementwise_operands(v, idx)
            val = self.compute(v, idx)
        self.remember(v, idx, val)
        return val

    def gen_elementwise_operands(self, v: Value, idx: Index):
        """Generates, operands first and without recursion, every value that v's chain of
        elementwise producers reads at idx, so compute(v) finds its operands memoised: a
        fused chain of thousands of elementwise ops would otherwise recurse ~3 frames per op.
        """
        order, expanded, stack = [], set(), [(v, False)]
        while stack:
            u, finished = stack.pop()
            if finished:
                order.append(u)
                continue
            op = self.producers.get(u)
            if (u in expanded or op is None or op.prim.name not in scalar_rules
                    or u in self.buffers):
                continue              # a leaf of the chain: gen() reaches it when asked
            expanded.add(u)
            stack.append((u, True))
            stack.extend((x, False) for x in op.inputs
                         if x not in expanded and self.lookup(x, idx) is None)
        for u in order[:-1]:          # depth-first post-order: operands before users; v last
            if self.lookup(u, idx) is None:
                self.remember(u, idx, self.compute(u, idx))

    def remember(self, v: Value, idx: Index, val):
        self.memo[-1][(v, id(idx))] = (idx, val)     # idx kept alive so its id stays unique

    def remember_root(self, v: Value, idx: Index, val):
        """Notes the value a loop nest's root computed at its index, for root_at."""
        self.memo[-1][(v, tuple(map(id, idx.dims)))] = (idx, val)

    def root_at(self, v: Value, dims: list):
        """The value a root of this nest computed at the element whose index is dims (the
        very same loop variables): a broadcast that undoes a small reduction's window reads
        its nest's own output element (codegen.fusion's reads_of). None if not noted."""
        key = (v, tuple(map(id, dims)))
        for scope in reversed(self.memo):
            hit = scope.get(key)
            if hit is not None:
                return hit[1]
        return None

    def compute(self, v: Value, idx: Index):
        op = self.producers[v]
        name = op.prim.name
        if name in scalar_rules:
            args = [self.gen(x, idx) for x in op.inputs]
            return scalar_rule(name, self.ctx.vmath)(self.bld, *args, **op.params)
        return elemental_rules[name](self, op, idx)

    @contextmanager
    def scope(self):
        self.memo.append({})
        try:
            yield
        finally:
            self.memo.pop()


def zero_of(dtype: str):
    return const(LLVM_TYPES[dtype], 0)


elemental_rules: dict = {}


def _broadcast_in_dim(em, op, idx):
    x = op.inputs[0]
    dims = [idx.dims[d] if x.shape[i] != 1 else i64(0) for i, d in enumerate(op.params["dims"])]
    val = em.root_at(x, dims)
    return val if val is not None else em.gen(x, em.index(x.shape, dims))


def _transpose(em, op, idx):
    x = op.inputs[0]
    dims = [None] * x.ndim
    for j, p in enumerate(op.params["perm"]):
        dims[p] = idx.dims[j]
    return em.gen(x, em.index(x.shape, dims))


def reshape_groups(in_shape, out_shape):
    """Pairs of (input axes, output axes) whose sizes multiply to the same number."""
    pin, pout = np.cumprod((1,) + tuple(in_shape)), np.cumprod((1,) + tuple(out_shape))
    groups, a, b = [], 0, 0
    while a < len(in_shape) or b < len(out_shape):
        if a < len(in_shape) and in_shape[a] == 1:
            groups.append(([a], []))
            a += 1
        elif b < len(out_shape) and out_shape[b] == 1:
            groups.append(([], [b]))
            b += 1
        else:
            a2, b2 = a + 1, b + 1
            while pin[a2] != pout[b2]:
                a2, b2 = (a2 + 1, b2) if pin[a2] < pout[b2] else (a2, b2 + 1)
            groups.append((list(range(a, a2)), list(range(b, b2))))
            a, b = a2, b2
    return groups


def _reshape(em, op, idx):
    x = op.inputs[0]
    if x.type.size == 0:
        return zero_of(x.dtype)
    dims = [i64(0)] * x.ndim
    out_shape = op.results[0].shape
    for in_axes, out_axes in reshape_groups(x.shape, out_shape):
        if not in_axes:
            continue
        lin = linearize(em.bld, [idx.dims[b] for b in out_axes], [out_shape[b] for b in out_axes])
        for a, d in zip(in_axes, delinearize(em.bld, lin, [x.shape[a] for a in in_axes])):
            dims[a] = d
    # a reshape keeps the C-order linear index, so a buffered operand needs no div/rem at all
    return em.gen(x, Index(x.shape, dims, idx.linear))


def _slice(em, op, idx):
    x, p = op.inputs[0], op.params
    dims = []
    for d, s, st in zip(idx.dims, p["start"], p["stride"]):
        if st != 1:
            d = em.bld.mul(d, i64(st), flags=("nuw", "nsw"))
        dims.append(em.bld.add(d, i64(s), flags=("nuw", "nsw")) if s else d)
    return em.gen(x, em.index(x.shape, dims))


def _pad_axis(bld, d, size: int, lo: int, hi: int, interior: int):
    """(in-range predicate or None, operand index clamped into range) along one axis."""
    if lo == 0 and hi == 0 and interior == 0:
        return None, d
    j = bld.sub(d, i64(lo)) if lo else d
    ok = bld.icmp_unsigned("<", j, i64(size + max(size - 1, 0) * interior))
    if interior:
        step = i64(interior + 1)
        ok = bld.and_(ok, bld.icmp_unsigned("==", bld.urem(j, step), i64(0)))
        j = bld.udiv(j, step)
    return ok, bld.select(ok, j, i64(0))


# pads whose innermost axis was read in a loop range known to lie inside the operand (a
# unit-stride load, no clamp) or inside the padding (zeros); tests count them
PAD_STATS = {"inner_reads": 0, "inner_zeros": 0}


def _pad_inner_range(em, op, d) -> str | None:
    """'inside' or 'padding' when the loop range of d, the innermost index, is known
    (codegen.concat_split cut the loop at the pad's edges) and lies wholly inside the operand
    or wholly in the padding along that axis; else None (the clamped, select form)."""
    p = op.params
    if p["interior"][-1] or not (p["lo"][-1] or p["hi"][-1]):
        return None                # interior zeros, or no padding: the plain form
    known = em.known.get(id(d))
    if known is None or known[0] is not d:
        return None
    lo, size = p["lo"][-1], op.inputs[0].shape[-1]
    first, stop = known[1:]
    if lo <= first and stop <= lo + size:
        PAD_STATS["inner_reads"] += 1
        return "inside"
    if stop <= lo or first >= lo + size:
        PAD_STATS["inner_zeros"] += 1
        return "padding"
    return None


def _pad(em, op, idx):
    x, p = op.inputs[0], op.params
    if x.type.size == 0:
        return zero_of(x.dtype)
    inner = _pad_inner_range(em, op, idx.dims[-1]) if idx.dims else None
    if inner == "padding":
        return zero_of(x.dtype)
    valid, dims = ll.Constant(I1, 1), []
    for k, d in enumerate(idx.dims):
        if inner == "inside" and k == len(idx.dims) - 1:
            # same element as the clamped form, read at an affine index: the loop vectorises
            lo = p["lo"][k]
            dims.append(em.bld.sub(d, i64(lo)) if lo else d)
            continue
        ok, j = _pad_axis(em.bld, d, x.shape[k], p["lo"][k], p["hi"][k], p["interior"][k])
        if ok is not None:
            valid = em.bld.and_(valid, ok)
        dims.append(j)
    # the operand is read at a clamped index, so no branch: the loop stays vectorisable
    return em.bld.select(valid, em.gen(x, em.index(x.shape, dims)), zero_of(x.dtype))


def _concatenate(em, op, idx):
    axis, bld = op.params["axis"], em.bld
    d, offset, pieces = idx.dims[axis], 0, []
    known = em.known.get(id(d))
    piece = piece_in_range(op, known[1:]) if known is not None and known[0] is d else None
    if piece is not None:       # the loop was split at the boundaries (codegen.concat_split)
        x, offset = piece
        dims = idx.dims[:axis] + [bld.sub(d, i64(offset)) if offset else d] + idx.dims[axis + 1:]
        return em.gen(x, em.index(x.shape, dims))
    for x in op.inputs:
        size = x.shape[axis]
        if size and x.type.size:
            local = bld.sub(d, i64(offset)) if offset else d
            local = bld.select(bld.icmp_unsigned("<", local, i64(size)), local, i64(size - 1))
            dims = idx.dims[:axis] + [local] + idx.dims[axis + 1:]
            pieces.append((offset, em.gen(x, em.index(x.shape, dims))))
        offset += size
    if not pieces:
        return zero_of(op.results[0].dtype)
    val = pieces[-1][1]
    for k in range(len(pieces) - 2, -1, -1):
        val = bld.select(bld.icmp_unsigned("<", d, i64(pieces[k + 1][0])), pieces[k][1], val)
    return val


def _iota(em, op, idx):
    return convert_value(em.bld, idx.dims[op.params["dim"]], LLVM_TYPES[op.params["dtype"]])


def _constant(em, op, idx):
    p, t = op.params, op.results[0].type
    if not isinstance(p["value"], (list, tuple)):
        return const(LLVM_TYPES[t.dtype], p["value"])
    flat = np.broadcast_to(np.asarray(p["value"], dtype=t.np_dtype), t.shape).ravel()
    if flat.size == 0:
        return zero_of(t.dtype)
    elem = storage_type(t.dtype)
    values = [ll.Constant(elem, float(v) if is_float_type(elem) else int(v)) for v in flat]
    gv = ll.GlobalVariable(em.ctx.module, ll.ArrayType(elem, flat.size),
                           em.ctx.module.get_unique_name("const"))
    gv.global_constant = True
    gv.linkage = "internal"
    gv.initializer = ll.Constant(ll.ArrayType(elem, flat.size), values)
    return Buffer(gv, TensorType(t.dtype, (flat.size,)), em.ctx).load(idx.linear)


def clamp_index(bld, j, size: int):
    """An integer index (i32 or i64) as i64, clamped into [0, size): never out of bounds."""
    if j.type != I64:
        j = bld.sext(j, I64)
    j = bld.select(bld.icmp_signed("<", j, i64(0)), i64(0), j)
    return bld.select(bld.icmp_signed(">", j, i64(size - 1)), i64(size - 1), j)


def _gather(em, op, idx):
    x, ind = op.inputs
    axis, k = op.params["axis"], ind.ndim
    if x.shape[axis] == 0:
        return zero_of(x.dtype)
    form = in_range_form(ind, em.producers, x.shape[axis])
    if form is not None:        # an affine index inside the axis: inline, no clamp
        j = emit_affine(em.bld, form, idx.dims[axis:axis + k])
    else:
        j = em.gen(ind, em.index(ind.shape, idx.dims[axis:axis + k]))
        j = clamp_index(em.bld, j, x.shape[axis])
    dims = idx.dims[:axis] + [j] + idx.dims[axis + k:]
    return em.gen(x, em.index(x.shape, dims))


# ---- reductions (the elemental form: an inner loop per output element) ------------------

REDUCE_KINDS = {"reduce_sum": "sum", "reduce_max": "max", "reduce_min": "min"}
UNROLLED_REDUCTION = 16     # a reduction of at most this many elements per output is inlined
                            # as straight-line code (no loop)


def reduce_identity(kind: str, dtype: str):
    t = LLVM_TYPES[dtype]
    if kind == "sum":
        return const(t, 0)
    if is_float_type(t):
        return const(t, float("-inf") if kind == "max" else float("inf"))
    info = np.iinfo(TensorType(dtype, ()).np_dtype)
    return const(t, info.min if kind == "max" else info.max)


def reduce_combine(bld, kind: str, acc, v):
    return scalar_rules["add" if kind == "sum" else kind](bld, acc, v)


def full_dims(kept_dims, reduced_dims, axes, ndim):
    """Interleaves an output index (kept axes) and reduced-axis indices into an input index."""
    kept, red = iter(kept_dims), iter(reduced_dims)
    return [next(red) if a in axes else next(kept) for a in range(ndim)]


def _reduce(em, op, idx):
    x, axes = op.inputs[0], tuple(op.params["axes"])
    kind, bld = REDUCE_KINDS[op.prim.name], em.bld
    reduced = [x.shape[a] for a in axes]
    if math.prod(reduced) <= UNROLLED_REDUCTION:
        return _unrolled_reduce(em, kind, x, axes, reduced, idx)
    acc = em.ctx.alloca(LLVM_TYPES[x.dtype])
    bld.store(reduce_identity(kind, x.dtype), acc)
    with em.scope(), for_nest(bld, [x.shape[a] for a in axes], "r") as rdims:
        v = em.gen(x, em.index(x.shape, full_dims(idx.dims, rdims, axes, x.ndim)))
        bld.store(reduce_combine(bld, kind, bld.load(acc), v), acc)
    return bld.load(acc)


def _unrolled_reduce(em, kind: str, x: Value, axes: tuple, reduced: list, idx):
    """The loop of _reduce written out: the same combinations in the same order (C order of
    the reduced indices, from the identity), as straight-line code. A loop nest over the
    output then vectorises along its last axis, reading each window element at a constant
    offset (codegen.fusion.small_reduction: the 2x2 max pool's windows)."""
    bld = em.bld
    acc = reduce_identity(kind, x.dtype)
    with em.scope():
        for rdims in itertools.product(*(range(n) for n in reduced)):
            dims = full_dims(idx.dims, [i64(r) for r in rdims], axes, x.ndim)
            acc = reduce_combine(bld, kind, acc, em.gen(x, em.index(x.shape, dims)))
    return acc


def arg_better(bld, name: str, v, best):
    """Whether v replaces best: strictly better, or the first NaN (NumPy's argmax/argmin)."""
    better = compare(bld, ">" if name == "argmax" else "<", v, best)
    if is_float_type(v.type):
        first_nan = bld.and_(bld.fcmp_unordered("uno", v, v), bld.fcmp_ordered("ord", best, best))
        better = bld.or_(better, first_nan)
    return better


def _arg_reduce(em, op, idx):
    x, axis, bld = op.inputs[0], op.params["axis"], em.bld

    def at(k):
        return em.index(x.shape, idx.dims[:axis] + [k] + idx.dims[axis:])
    best_v, best_i = em.ctx.alloca(LLVM_TYPES[x.dtype]), em.ctx.alloca(I64)
    bld.store(em.gen(x, at(i64(0))), best_v)
    bld.store(i64(0), best_i)
    with em.scope(), for_range(bld, x.shape[axis], "a", start=1) as k:
        v, best = em.gen(x, at(k)), bld.load(best_v)
        better = arg_better(bld, op.prim.name, v, best)
        bld.store(bld.select(better, v, best), best_v)
        bld.store(bld.select(better, k, bld.load(best_i)), best_i)
    return bld.load(best_i)


elemental_rules.update({
    "broadcast_in_dim": _broadcast_in_dim, "transpose": _transpose, "reshape": _reshape,
    "slice": _slice, "pad": _pad, "concatenate": _concatenate, "iota": _iota,
    "constant": _constant, "gather": _gather, "reduce_sum": _reduce, "reduce_max": _reduce,
    "reduce_min": _reduce, "argmax": _arg_reduce, "argmin": _arg_reduce,
})

# ops whose elemental rule hands its operands the very Index it was given
SAME_INDEX_PRIMS = frozenset(scalar_rules)
