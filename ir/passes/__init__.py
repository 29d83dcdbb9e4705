"""Optimisation passes: dce, cse, simplify, fold, and optimize (all of them to a fixed point).

Every pass returns a new Function and never mutates its input. Value identity is kept:
the output's params are the input's params, a kept op keeps its result Values, and an op
rewritten in place (say pow -> integer_pow) defines the same result Values as before, so
name hints survive. An op replaced by an existing value has its results renamed to that
value in every later use, including the function's results. Regions are closed, so each
one is optimised on its own, recursively.

    rewrite.py   the driver and the helpers rules share
    dce.py       dead code, including unused results of cond and scan
    cse.py       common subexpressions
    fold.py      constants (small results, and splats of any size)
    simplify.py  exact algebraic identities (elementwise)
    layout.py    broadcast / reshape / transpose / reduce_sum / dot_general rules
    loops.py     scan accumulators hoisted into one stacked reduction
    pipeline.py  optimize
"""
from ir.passes.cse import COMMUTATIVE, cse
from ir.passes.dce import dce
from ir.passes.fold import FOLDABLE, MAX_FOLD_ELEMENTS, fold
from ir.passes.pipeline import MAX_OPTIMIZE_ROUNDS, optimize
from ir.passes.simplify import simplify, simplify_rules

__all__ = ["dce", "cse", "fold", "simplify", "optimize", "simplify_rules", "COMMUTATIVE",
           "FOLDABLE", "MAX_FOLD_ELEMENTS", "MAX_OPTIMIZE_ROUNDS"]
