"""Which LLVM pipeline a program's kernels get: O1 where O3 makes code no faster, else O3.

LLVM is most of a cold compile (chain value_and_grad: ~40 ms of pipeline and ~22 ms of machine
code for ~20 ms of Python). Measured on the benchmark programs (2-core Zen 3, AVX2, minimum of
9, `GRADJIT_OPT_LEVEL` 1 against 3, both with the loop and SLP vectorisers on): the O1
pipeline takes 7-19% less time (chain 65.7 -> 61.3 ms, mlp 102 -> 91, sin chain 115 -> 97, a
log-sum-exp of distances 145 -> 126) and the code it makes runs at the same speed and gives
the same bits (also the gmm row, whose gradient has a scatter_add). What O1 lacks (GVN, non-
trivial loop unswitching, argument promotion, higher inlining thresholds) is what loop nests
with loads to forward and branches to hoist need, which gradjit's fused elementwise loops and
reductions do not have.

So `tiered` (the default) picks per program, from its ops, once, before anything is compiled:
  - O1 ("quick") when every op is fused into loops (elementwise, index remapping, creation,
    reductions), is a float dot_general (a BLAS call, or a plain contiguous loop nest) or a
    scatter_add (gather's gradient: a scalar loop of loads, adds and stores);
  - O3 when any other kernel op is present: control flow (while, scan, cond), sort,
    cumulative ops, linear algebra, custom calls, integer dots.
Nothing is compiled twice: measured, recompiling the O1 programs at O3 later would cost a
second compile and win nothing, so there is no tier-up. GRADJIT_OPT_LEVEL=3 compiles
everything at O3 (as before the tiers), `1` everything at O1 (for comparing). The level is
part of the disk cache's key.
"""
from __future__ import annotations

from ir.core import FLOAT_DTYPES, Function, walk_ops
from runtime import config

QUICK, FULL = 1, 3
# programs compiled at each level in this process (tests read counters, never timings)
compiles = {QUICK: 0, FULL: 0}


def speed_level(fn: Function) -> int:
    """The pipeline level (1 or 3) for fn's kernels under GRADJIT_OPT_LEVEL.

    Raises:
        ValueError: GRADJIT_OPT_LEVEL is not 'tiered', '3' or '1'.
    """
    chosen = config.opt_level()
    if chosen != "tiered":
        return int(chosen)
    return QUICK if all(_loop_only(op) for op in walk_ops(fn)) else FULL


def _loop_only(op) -> bool:
    if op.prim.fusion != "kernel":
        return True
    if op.prim.name == "dot_general":
        return op.inputs[0].dtype in FLOAT_DTYPES
    return op.prim.name == "scatter_add"


def counted(level: int) -> int:
    """Counts one program compiled at level; returns level."""
    compiles[level] += 1
    return level
