"""Common-subexpression elimination: the first of several equal ops is reused.

Two region-free ops are equal when they have the same primitive, the same operands (in
any order for commutative primitives) and the same params; equal constants merge. Regions
are closed, so CSE runs inside each region on its own.
"""
from __future__ import annotations

from ir.core import Function, Op
from ir.passes.rewrite import Context, freeze, rewrite
from ir.primitives import having

COMMUTATIVE = having(commutative=True)


def cse_key(op: Op) -> tuple:
    """What two ops must share to compute the same values (operands by identity)."""
    operands = [id(v) for v in op.inputs]
    if op.prim.name in COMMUTATIVE:
        operands.sort()
    return (op.prim.name, tuple(operands), freeze(op.params))


def cse_rule():
    """A fresh CSE rule (it remembers the ops it has seen) for one walk of one body."""
    first: dict[tuple, Op] = {}

    def rule(op: Op, ctx: Context):
        if op.regions:
            return None
        key = cse_key(op)
        seen = first.get(key)
        if seen is not None:
            return seen.results
        first[key] = op
        return None
    return rule


def cse_changed(fn: Function) -> tuple[Function, bool]:
    """cse, and whether it merged anything (in regions too)."""
    return rewrite(fn, cse_rule(), cse_changed)


def cse(fn: Function) -> Function:
    """Reuses the first of several region-free ops with the same primitive, operands and
    params (equal constants are merged); recurses into regions."""
    return cse_changed(fn)[0]
