"""Dots of vectors summed side by side: independent 1-D dot_generals of one length, one loop.

A dot of two vectors (x[n] . y[n] -> a scalar) is one chain of n additions in contract order
(codegen.kernels' loop: the bits depend on that order only), so its loop runs at the adder's
latency, whatever the vector width: 2000 f32 elements ~2.3 us on the Xeon, where a reduction
summed in lanes takes ~0.3. pytorch/tutorials' polynomial_tensor.py reads three such dots
over the same 2000 elements each step (`matmul(grad_y_pred, x ** k)`). `group` puts
independent dots of one dtype and length into one internal `vector_dots` op, emitted as one
loop that keeps each dot's own chain, in its own order, from the same +0.0: the same
additions, so the same bits, while the chains overlap in the core (three dots ~6.7 -> ~2.6 us).

Dots are grouped when neither depends on the other's result; the ops after the first member
that read a member's result (directly or not) move after the group, in their order. Nothing
else changes: every other op keeps its place.
"""
from __future__ import annotations

import llvmlite.ir as ll

from codegen.kernels import KernelCall, internal_rules
from codegen.loops import for_range, i64
from codegen.lower import LLVM_TYPES, const
from ir.core import Op
from ir.primitives import Primitive

VECTOR_DOTS = Primitive("vector_dots", lambda *xs, **params: params["out_types"], "other")
_DTYPES = ("f32", "f64")
_PLAIN = {"contract": ((0,), (0,)), "batch": ((), ())}
# dots per group: one register chain each (more would spill)
MAX_GROUP = 8
ENABLED = True          # tests build the same programs without it (bitwise the same)
STATS = {"groups": 0, "dots": 0}


def _key(op: Op):
    """(dtype, length) of a dot of two vectors this module can group, else None."""
    if op.prim.name != "dot_general" or op.regions:
        return None
    x, y = op.inputs
    if x.ndim != 1 or y.ndim != 1 or x.dtype not in _DTYPES or y.dtype != x.dtype:
        return None
    if x.shape[0] < 1 or y.shape != x.shape or op.results[0].shape != ():
        return None
    contract, batch = op.params["contract"], op.params["batch"]
    if tuple(map(tuple, contract)) != _PLAIN["contract"] or \
            tuple(map(tuple, batch)) != _PLAIN["batch"]:
        return None
    return x.dtype, x.shape[0]


def group(ops: list[Op]) -> list[Op]:
    """ops with each set of >= 2 independent vector dots of one dtype and length (in body
    order, up to MAX_GROUP) replaced by one vector_dots op, in an order valid for it."""
    if not ENABLED:
        return ops
    keys = {}
    for op in ops:
        k = _key(op)
        if k is not None:
            keys[k] = keys.get(k, 0) + 1
    for k, count in keys.items():
        if count >= 2:
            ops = _group_one(ops, k)
    return ops


def _group_one(ops: list[Op], key) -> list[Op]:
    members, tainted = [], set()           # tainted: values reading a member's result
    for op in ops:
        if any(x in tainted for x in op.inputs):
            tainted.update(op.results)
        elif len(members) < MAX_GROUP and _key(op) == key:
            members.append(op)
            tainted.update(op.results)
    if len(members) < 2:
        return ops
    last = members[-1]
    inputs = tuple([x for m in members for x in m.inputs])
    results = tuple([m.results[0] for m in members])
    fused = Op(VECTOR_DOTS, inputs, results, {"out_types": tuple([r.type for r in results])},
               (), members[0].loc)
    chosen = set(members)
    STATS["groups"] += 1
    STATS["dots"] += len(members)
    out, later, seen_first = [], [], False
    for op in ops:
        if op is last:
            out.append(fused)
            out.extend(later)
            later = None
        elif op in chosen:
            seen_first = True
        elif later is not None and seen_first and any(r in tainted for r in op.results):
            later.append(op)               # (reads a member's result: after the group)
        else:
            out.append(op)
    return out


def _vector_dots(k: KernelCall):
    """Each pair's dot as codegen.kernels' loop sums it (from +0.0, fadd of the product, in
    order of the index), all in one loop: a register chain per dot."""
    em, bld, op = k.em, k.bld, k.op
    pairs = list(zip(op.inputs[0::2], op.inputs[1::2]))
    zero = const(LLVM_TYPES[op.inputs[0].dtype], 0)
    accs = []
    for _ in pairs:
        acc = em.ctx.alloca(zero.type)
        bld.store(zero, acc)
        accs.append(acc)
    n = op.inputs[0].shape[0]
    # NOTE: llvm.fmuladd, not fadd(fmul): the lone loop's pair is contracted into an FMA by
    # the backend, but side by side the loop vectoriser may take the chains as ordered
    # reductions, which round each product first (1 ulp off); fmuladd is fused exactly when
    # the lone loop's contraction is (FMA targets) in every form of the loop
    fmuladd = bld.module.declare_intrinsic(
        "llvm.fmuladd", [zero.type], ll.FunctionType(zero.type, [zero.type] * 3))
    with em.scope(), for_range(bld, n, "k") as i:
        for (x, y), acc in zip(pairs, accs):
            xv = em.gen(x, em.index(x.shape, [i]))
            yv = em.gen(y, em.index(y.shape, [i]))
            bld.store(bld.call(fmuladd, [xv, yv, bld.load(acc)]), acc)
    for r, acc in zip(op.results, accs):
        k.buffer(r).store(i64(0), bld.load(acc))


internal_rules[VECTOR_DOTS.name] = _vector_dots
