"""Dead-code elimination for the ops the autodiff transforms emit, with result pruning.

Rules compute cotangents for every floating-point operand; the ones nobody asked for die
here. For cond and scan that means more than dropping whole ops: a control op whose results
are partly unused is rebuilt with smaller regions (a scan also loses the carries that only
fed dead values), so the cotangent of, say, a scan's data xs is never computed.
"""
from __future__ import annotations

from ir.core import Function, Op, Value


def dce_ops(ops: list[Op], roots, protected=frozenset()) -> list[Op]:
    """The ops needed to compute roots; protected ops are kept (and not pruned) regardless."""
    live = set(roots)
    kept = []
    for op in reversed(ops):
        if op not in protected:
            if not any(r in live for r in op.results):
                continue
            op = _PRUNERS.get(op.prim.name, lambda op, live: op)(op, live)
        live.update(op.inputs)
        kept.append(op)
    kept.reverse()
    return kept


def dce_function(fn: Function) -> Function:
    return Function(fn.name, list(fn.params), dce_ops(fn.body, fn.results), list(fn.results))


def used_values(fn: Function) -> set[Value]:
    used = set(fn.results)
    for op in fn.body:
        used.update(op.inputs)
    return used


def _restrict(fn: Function, results) -> Function:
    """fn computing only the given results (its ops are reused: fn itself is discarded)."""
    return dce_function(Function(fn.name, list(fn.params), fn.body, list(results)))


def _prune_cond(op: Op, live) -> Op:
    """Drops unused results of a cond, then the operands neither branch still reads."""
    keep = [i for i, r in enumerate(op.results) if r in live]
    if len(keep) == len(op.results):
        return op
    branches = [_restrict(r, [r.results[i] for i in keep]) for r in op.regions]
    used = set().union(*(used_values(r) for r in branches))
    args = [i for i in range(len(op.inputs) - 1)
            if any(r.params[i] in used for r in branches)]
    branches = tuple(Function(r.name, [r.params[i] for i in args], r.body, r.results)
                     for r in branches)
    inputs = (op.inputs[0],) + tuple(op.inputs[1 + i] for i in args)
    results = tuple(op.results[i] for i in keep)
    return Op(op.prim, inputs, results, dict(op.params), branches, op.loc)


def _prune_scan(op: Op, live) -> Op:
    """Drops unused ys, carries that feed only dead values, and xs no longer read."""
    (body,) = op.regions
    nc = op.params["num_carry"]
    ny = len(body.results) - nc
    carries = {i for i in range(nc) if op.results[i] in live}
    ys = [k for k in range(ny) if op.results[nc + k] in live]
    while True:    # a kept carry keeps alive every carry its update reads
        kc = sorted(carries)
        pruned = _restrict(body, [body.results[i] for i in kc] + [body.results[nc + k] for k in ys])
        used = used_values(pruned)
        more = {i for i in range(nc) if body.params[i] in used} - carries
        if not more:
            break
        carries |= more
    xs = [j for j in range(len(op.inputs) - nc) if body.params[nc + j] in used]
    if len(kc) == nc and len(ys) == ny and len(xs) == len(op.inputs) - nc:
        return op
    params = [body.params[i] for i in kc] + [body.params[nc + j] for j in xs]
    region = Function(body.name, params, pruned.body, pruned.results)
    inputs = tuple(op.inputs[i] for i in kc) + tuple(op.inputs[nc + j] for j in xs)
    results = tuple(op.results[i] for i in kc) + tuple(op.results[nc + k] for k in ys)
    return Op(op.prim, inputs, results, {**op.params, "num_carry": len(kc)}, (region,), op.loc)


_PRUNERS = {"cond": _prune_cond, "scan": _prune_scan}
