"""optimize: fold, simplify and CSE in one walk, then DCE, repeated to a fixed point.

One walk applies, to each op in turn, constant folding, the simplification rules (scan
accumulator hoisting included) and CSE, so a round costs one pass over the program plus a
DCE pass; a round that changes nothing ends the loop. Rounds are linear in the number of
ops, and a program typically settles in two or three.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager

from ir.core import Function, Op
from ir.passes.cse import cse_rule
from ir.passes.dce import dce_changed
from ir.passes.fold import fold_rule
from ir.passes.rewrite import Context, rewrite
from ir.passes.simplify import simplify_rule

MAX_OPTIMIZE_ROUNDS = 20


def canonicalize_changed(fn: Function) -> tuple[Function, bool]:
    """One walk of fold, simplify and CSE; returns (new fn, changed)."""
    cse = cse_rule()

    def rule(op: Op, ctx: Context):
        for step in (fold_rule, simplify_rule, cse):
            out = step(op, ctx)
            if out is not None:
                return out
        return None
    return rewrite(fn, rule, canonicalize_changed)


def optimize(fn: Function, max_rounds: int = MAX_OPTIMIZE_ROUNDS) -> Function:
    """fold + simplify + cse, then dce, until a round changes nothing (so optimizing an
    optimized function gives it back unchanged).

    Args:
        fn: the Function to optimize; it is not modified.
        max_rounds: a bound on the rounds (a program settles in two or three).
    Returns:
        A new Function with the same params and result types, computing the same values
        (exactly, but for the sign of zeros and the rounding of reassociated sums: see
        ir/passes/simplify.py).
    """
    with _collector_paused():
        for _ in range(max_rounds):
            fn, changed = canonicalize_changed(fn)
            fn, dropped = dce_changed(fn)
            if not (changed or dropped):
                break
    return fn


@contextmanager
def _collector_paused():
    """The passes allocate many small objects and no reference cycles (IR values do not
    point back at ops): the cyclic collector would only rescan them, which made optimize
    superlinear in program size. Refcounting still frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
