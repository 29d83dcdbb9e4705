"""Unrolling a nest's innermost loop by a small factor f when its body splits that axis's
index w into (w // f, w % f): a reshape merging axes (..., n / f, f) into the innermost n.

Written as `for p in range(n / f): body(f * p + 0) ... body(f * p + f - 1)`, every index the
body derives from w is affine in p (w // f is p, w % f a constant), so LLVM's vectoriser
loads at unit or constant stride. Left as one loop over w it computed w // f per element and
read through gathers: the CNN's 2x2 max pool gradient nest over [32,16,32,32] (relu mask,
window hits, share of the gradient; four gathers per 8 elements) 680 -> 405 us (1 thread,
CPU, same bits). The elements run in the same order, and in a strip-mined nest each keeps
its lane (lane f * p + k), so results do not change.
"""
from __future__ import annotations

from codegen.fusion import LoopNest, inlined_ops

FACTORS = (2, 4)            # larger factors made the unrolled loop too short to vectorise
STATS = {"unrolled": 0}     # nests planned with an unrolled innermost loop (tests count them)


def factor(nest: LoopNest, producers: dict, buffers: dict, lanes: int) -> int:
    """f (FACTORS) when an op inlined in nest reshapes (..., n / f, f) into the innermost
    axis of extent n, and f divides lanes (the strip-mined chunk); else 1."""
    inner = [n for n in nest.space if n != 1]
    if not inner:
        return 1
    n = inner[-1]
    for op in inlined_ops(nest, buffers, producers):
        f = _merged_factor(op, n)
        if f in FACTORS and lanes % f == 0 and n % f == 0:
            STATS["unrolled"] += 1
            return f
    return 1


def _merged_factor(op, n: int) -> int:
    """f when op is a reshape whose last axis n merges its operand's last two (n / f, f)."""
    if op.prim.name != "reshape":
        return 1
    src, out = op.inputs[0].shape, op.results[0].shape
    if len(src) < 2 or not out or out[-1] != n or src[-2] * src[-1] != n or src[-1] >= n:
        return 1
    return src[-1]
