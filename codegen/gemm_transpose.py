"""Packing a transposed B into gemm_pack's panel: square blocks transposed in registers.

The panel holds op(B)[p, j0 + j] = B[j0 + j, p] row p by row p. Gathering each panel vector
(one element of each of `lanes` rows of B) cost ~10% of the MLP 784's forward product
(x[256,784] @ W1^T). Here a block of lanes x lanes elements (lanes rows of B, lanes steps
of p each: contiguous loads) is transposed by log2(lanes) rounds of two-vector shuffles and
stored as lanes panel vectors. The values stored are the gather's ones (zeros past n), so
the product's bits do not change.
"""
from __future__ import annotations

from llvmlite import ir as ll

from codegen.loops import I1, I32, I64, for_range, i64
from codegen.small_gemm import element_at, splat

NUW = ("nuw", "nsw")


def transpose(bld: ll.IRBuilder, rows: list) -> list:
    """The lanes x lanes block rows (one vector each) transposed: round h swaps, between
    rows i and i + h (i without bit h), the lanes whose bit h differs from the row's."""
    lanes = len(rows)
    rows = list(rows)
    h = lanes // 2
    while h:
        low = ll.Constant(ll.VectorType(I32, lanes),
                          [x if x & h == 0 else lanes + (x ^ h) for x in range(lanes)])
        high = ll.Constant(ll.VectorType(I32, lanes),
                           [x ^ h if x & h == 0 else lanes + x for x in range(lanes)])
        for i in range(lanes):
            if i & h == 0:
                a, b = rows[i], rows[i | h]
                rows[i] = bld.shuffle_vector(a, b, low)
                rows[i | h] = bld.shuffle_vector(a, b, high)
        h //= 2
    return rows


def pack_transposed(bld: ll.IRBuilder, packed, p0, kc, j0, width, scratch) -> None:
    """panel[p, v] = B[j0 + v * lanes ..., p0 + p] for p < kc (rounded up to lanes: the
    panel has room), every vector of the panel (zeros past width); packed: the
    gemm_pack.Packed whose panel it is; scratch: room for lanes vectors (scratch_block)."""
    pb, ldb, _ = packed.b
    lanes, elem, vec = packed.lanes, packed.elem, packed.vec
    ivec = ll.VectorType(I64, lanes)
    iota = ll.Constant(ivec, list(range(lanes)))
    zero = ll.Constant(vec, [0.0] * lanes)
    no_lanes = ll.Constant(ll.VectorType(I1, lanes), [0] * lanes)
    steps = bld.udiv(bld.add(kc, i64(lanes - 1), flags=NUW), i64(lanes))
    with for_range(bld, steps, "pq") as q:
        first = bld.mul(q, i64(lanes), flags=NUW)
        # lanes of a row of B: its steps of p below kc
        p_mask = bld.icmp_signed("<", iota, splat(bld, bld.sub(kc, first, flags=NUW), ivec))
        column = bld.add(p0, first, flags=NUW)
        with for_range(bld, i64(packed.vectors), "pv") as v:
            j = bld.add(j0, bld.mul(v, i64(lanes), flags=NUW), flags=NUW)
            left = bld.sub(bld.add(j0, width, flags=NUW), j)     # rows of B left, may be <= 0
            # NOTE: the block's rows loaded by a loop into a scratch block (one masked load
            # in the IR, not lanes of them: the function builds ~10 ms faster)
            with for_range(bld, i64(lanes), "pr") as r:
                mask = bld.select(bld.icmp_signed("<", r, left), p_mask, no_lanes)
                start = bld.add(bld.mul(bld.add(j, r, flags=NUW), ldb, flags=NUW), column,
                                flags=NUW)
                # NOTE: no inbounds: the address of a row past n (all lanes masked) may be
                # past B
                address = bld.gep(pb, [start], source_etype=elem)
                bld.store(packed.masked_load(bld, address, mask, zero),
                          bld.gep(scratch, [r], source_etype=vec), align=elem_bytes(elem))
            block = [bld.load(bld.gep(scratch, [i64(r)], source_etype=vec), typ=vec,
                              align=elem_bytes(elem)) for r in range(lanes)]
            for r, value in enumerate(transpose(bld, block)):
                out = bld.add(bld.mul(bld.add(first, i64(r), flags=NUW), i64(packed.vectors),
                                      flags=NUW), v, flags=NUW)
                bld.store(value, element_at(bld, packed.panel, out, 0, vec),
                          align=elem_bytes(elem))


def scratch_block(bld: ll.IRBuilder, elem, lanes: int):
    """The scratch block of pack_transposed (emit in the entry block)."""
    slot = bld.alloca(ll.VectorType(elem, lanes), size=i64(lanes), name="square")
    slot.align = 64
    return slot


def elem_bytes(elem) -> int:
    return 4 if elem == ll.FloatType() else 8
