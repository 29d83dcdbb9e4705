"""A max or min over a nest's innermost axis, in the lanes of a strip-mined loop.

A nest with a float sum over its innermost axis runs that axis in chunks of LANES elements
(codegen.nest). A max or min in the same nest, kept in one scalar accumulator, made LLVM end
every chunk with a horizontal max of its vector (NaN-propagating, so a long sequence on x86)
inside the loop-carried chain: the cross-entropy nest over [512, 96] (max of the logits and
sum of the gradient) took ~50 us where either reduction alone took 3-9 us.

Here such a max or min gets LANES lanes of its own (element i of a chunk in lane i, as the
sum's), combined in a fixed tree once its rows are done. max and min (llvm.maximum/minimum
for floats: NaN-propagating, -0 below +0; compare and select for integers) give the same
value in any order of combination, so results do not change (a NaN's payload aside, which
LLVM's vectoriser already does not keep in order).
"""
from __future__ import annotations

from llvmlite import ir as ll

from codegen.elemental import reduce_combine, reduce_identity
from codegen.loops import i64
from codegen.lower import LLVM_TYPES
from codegen.summation import LANES

STATS = {"emitted": 0}      # reductions given lanes (tests count them)


def applies(strip_mined: bool, plan) -> bool:
    """Whether a reduction (a nest_plan.ReductionPlan) gets lanes: a max or min over the
    innermost axis (`order_free`) of a nest strip-mined for a sum's lanes."""
    return strip_mined and plan.order_free


class ExtremumLanes:
    """LANES accumulators of a max or min (kind) of dtype, in an alloca."""

    def __init__(self, ctx, kind: str, dtype: str):
        assert kind in ("max", "min"), kind
        STATS["emitted"] += 1
        self.kind, self.dtype = kind, dtype
        self.lanes = ctx.alloca(ll.ArrayType(LLVM_TYPES[dtype], LANES), "extremum_lanes")

    def _lane(self, bld: ll.IRBuilder, lane):
        return bld.gep(self.lanes, [i64(0), lane], inbounds=True)

    def start(self, bld: ll.IRBuilder):
        for k in range(LANES):
            bld.store(reduce_identity(self.kind, self.dtype), self._lane(bld, i64(k)))

    def add(self, bld: ll.IRBuilder, lane, v):
        ptr = self._lane(bld, lane)
        bld.store(reduce_combine(bld, self.kind, bld.load(ptr), v), ptr)

    def total(self, bld: ll.IRBuilder):
        """The lanes combined in a fixed pairwise tree."""
        vals = [bld.load(self._lane(bld, i64(k))) for k in range(LANES)]
        while len(vals) > 1:
            pairs = [reduce_combine(bld, self.kind, vals[k], vals[k + 1])
                     for k in range(0, len(vals) - 1, 2)]
            vals = pairs + vals[len(vals) - len(vals) % 2:]
        return vals[0]
