"""Max or min over short rows, GROUP rows at a time, combined across rows in vectors.

A max over rows of 32 (the attention softmax's, [16, 4, 32, 32]) ran one row at a time: LLVM
reduced each row's vector horizontally, ending in a scalar NaN-propagating max chain (a GPR
round trip per step on x86), ~40 cycles a row, 2-5x the row's own loads and maxima. Here a
nest whose every root is such a reduction runs GROUP rows per group: row g of the group
takes element i into lane i % LANES of its own accumulator (a lane loop LLVM vectorises),
then the group's GROUP accumulators are combined in vectors, each step taking the maximum of
the even and odd lanes of two rows' partial results (a shuffle and a vector max), until one
vector holds the GROUP rows' results in row order.

max and min (llvm.maximum/minimum: NaN-propagating, -0 below +0) give the same value in any
order of combination, so the bits are those of the row-by-row loop (a NaN's payload aside,
which LLVM's vectoriser does not keep either).
"""
from __future__ import annotations

from llvmlite import ir as ll

from codegen.elemental import reduce_identity
from codegen.loops import declare, for_range, i64, iadd, imul, linearize
from codegen.lower import LLVM_TYPES
from codegen.summation import LANES

GROUP = LANES          # rows per group: the combination ends with one vector of results
SHORT_ROW = 128        # rows up to this long; longer ones amortise their horizontal tail
STATS = {"emitted": 0}  # nests emitted this way (tests count them)


def row_axis(nest_emitter) -> int | None:
    """The loop axis whose rows are grouped, or None when the nest does not qualify: every
    root a float32 max or min over its innermost loop axis alone (rows of a multiple of
    LANES, at most SHORT_ROW), the loop before it kept with a multiple of GROUP rows, one
    thread, no bounds checks (the lanes are addressed by hand)."""
    ne = nest_emitter
    space, inner = ne.nest.space, ne.inner
    if ne.split is not None or ne.rows is not None or ne.em.ctx.bounds_check or ne.cuts \
            or inner is None or not ne.reductions:
        return None
    if len(ne.reductions) != len(ne.nest.roots):
        return None
    if space[inner] % LANES or space[inner] > SHORT_ROW:
        return None
    rows = max((a for a in range(inner) if space[a] != 1), default=None)
    if rows is None or space[rows] % GROUP:
        return None
    for red in ne.reductions.values():
        if red.kind not in ("max", "min") or red.dtype != "f32" or red.level is None \
                or rows in red.axes or red.tail <= rows:
            return None
    return rows


def emit(ne, level: int, dims: list):
    """The loops of ne from the row axis `level` in (outer indices dims), GROUP rows a
    group; each reduction's results stored once per group."""
    STATS["emitted"] += 1
    bld, em, space, inner = ne.bld, ne.em, ne.nest.space, ne.inner
    reds = list(ne.reductions.values())
    lanes = {}
    for red in reds:
        lanes[id(red)] = em.ctx.alloca(ll.ArrayType(LLVM_TYPES[red.dtype], GROUP * LANES),
                                       "row_lanes")
        lanes[id(red)].align = 64
    with for_range(bld, space[level] // GROUP, "rowgroup") as q:
        first = imul(bld, q, GROUP)
        with for_range(bld, GROUP, "grouprow") as g:
            row = iadd(bld, first, g)
            base = imul(bld, g, LANES)
            for red in reds:
                with for_range(bld, LANES, "start") as k:
                    bld.store(reduce_identity(red.kind, red.dtype),
                              _lane(bld, lanes[id(red)], iadd(bld, base, k)))
            with for_range(bld, space[inner] // LANES, "chunk") as c:
                start = imul(bld, c, LANES)
                with for_range(bld, LANES, "lane") as k:
                    at_row = dims + [row] + [i64(0)] * (len(space) - level - 1)
                    at_row[inner] = iadd(bld, start, k)
                    idx = em.index(space, at_row)
                    with em.scope():
                        for red in reds:
                            op = em.producers[red.root.value]
                            v = em.gen(op.inputs[0], idx)
                            ptr = _lane(bld, lanes[id(red)], iadd(bld, base, k))
                            bld.store(_combine(bld, red.kind, bld.load(ptr), v), ptr)
        for red in reds:
            results = _across_rows(bld, red.kind, lanes[id(red)], LLVM_TYPES[red.dtype])
            out = ne.buffers[red.root.value]
            for r in range(GROUP):
                at_row = dims + [iadd(bld, first, r)] + [i64(0)] * (len(space) - level - 1)
                at = linearize(bld, [at_row[a] for a in red.kept], red.out_shape)
                out.store(at, bld.extract_element(results, i64(r)))


def _lane(bld, array, k):
    return bld.gep(array, [i64(0), k], inbounds=True)


def _combine(bld, kind: str, a, b):
    """llvm.maximum / llvm.minimum on scalars or vectors (NaN-propagating, -0 below +0)."""
    t = a.type
    suffix = f"v{t.count}f32" if isinstance(t, ll.VectorType) else "f32"
    name = f"llvm.{'maximum' if kind == 'max' else 'minimum'}.{suffix}"
    return bld.call(declare(bld.module, name, t, [t, t]), [a, b])


def _across_rows(bld, kind: str, array, elem):
    """The GROUP rows' LANES accumulators combined: each step maximises the even and odd
    lanes of the concatenation of two rows' vectors, halving the lanes per row, until one
    vector holds row r's result in lane r."""
    vec = ll.VectorType(elem, LANES)
    rows = [bld.load(bld.gep(array, [i64(0), i64(r * LANES)], inbounds=True), typ=vec,
                     align=4) for r in range(GROUP)]       # (the alloca is 64-byte aligned)
    mask = ll.VectorType(ll.IntType(32), LANES)
    even = ll.Constant(mask, [2 * i for i in range(LANES)])
    odd = ll.Constant(mask, [2 * i + 1 for i in range(LANES)])
    while len(rows) > 1:
        rows = [_combine(bld, kind, bld.shuffle_vector(a, b, even), bld.shuffle_vector(a, b, odd))
                for a, b in zip(rows[::2], rows[1::2])]
    return rows[0]
