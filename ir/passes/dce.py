"""Dead-code elimination, including the unused results of cond and scan.

Every primitive but debug_print (EFFECTS: it prints when it runs, so it stays) is pure, so
an op none of whose results is read goes. A control op whose
results are partly read is rebuilt smaller: a cond drops the unused results and the
operands neither branch still reads; a scan drops unused ys, the carries that feed only
dead values, and the xs its body no longer reads.

One dce_changed call shares a memo among its passes over regions: pruning a scan already
restricts its body, and what a pass keeps it keeps again, so the recursion into that body
does not scan it a second time (each restriction of a body is computed once per call).
"""
from __future__ import annotations

from ir.core import Function, Op, Value
from ir.passes.rewrite import shared

EFFECTS = frozenset({"debug_print"})


# A memo of one dce_changed call: (id(ops), ids of roots) -> (ops, roots, kept). The key's
# objects are held in the value, so their ids stay theirs while the memo lives.
Memo = dict


def dce_ops(ops: list[Op], roots, protected=frozenset(), memo: Memo | None = None) -> list[Op]:
    """The ops needed to compute roots, control ops pruned to their live results;
    protected ops are kept whole regardless. Regions are left as they are. With a memo, a
    (ops, roots) pair seen before gives the list it gave then."""
    roots = tuple(roots)
    key = None
    if memo is not None and not protected:
        key = (id(ops), tuple(map(id, roots)))
        hit = memo.get(key)
        if hit is not None:
            return hit[2]
    live = set(roots)
    kept = []
    for op in reversed(ops):
        if op not in protected:
            if not any(r in live for r in op.results) and op.prim.name not in EFFECTS:
                continue
            op = prune_control(op, live, memo)
        live.update(op.inputs)
        kept.append(op)
    kept.reverse()
    if key is not None:
        memo[key] = (ops, roots, kept)
        # what dce keeps, it keeps again (same ops): the recursion into a pruned region
        # (whose body is this very list) is then a lookup
        memo[(id(kept), key[1])] = (kept, roots, kept)
    return kept


def dce_function(fn: Function, memo: Memo | None = None) -> Function:
    """fn without the ops its results do not need (regions are left as they are)."""
    return Function(fn.name, list(fn.params), dce_ops(fn.body, fn.results, memo=memo),
                    list(fn.results))


def dce_changed(fn: Function, memo: Memo | None = None) -> tuple[Function, bool]:
    """dce, and whether it dropped or pruned anything (in regions too)."""
    memo = {} if memo is None else memo
    kept = dce_ops(fn.body, fn.results, memo=memo)
    changed = len(kept) != len(fn.body) or any(a is not b for a, b in zip(kept, fn.body))
    run_region = shared(lambda region: dce_changed(region, memo))
    body = []
    for op in kept:
        if not op.regions:
            body.append(op)        # ops are never modified in place: no copy needed
            continue
        regions = []
        for r in op.regions:
            new, region_changed = run_region(r)
            regions.append(new)
            changed |= region_changed
        body.append(Op(op.prim, op.inputs, op.results, dict(op.params), tuple(regions), op.loc))
    return Function(fn.name, list(fn.params), body, list(fn.results)), changed


def dce(fn: Function) -> Function:
    """Drops ops none of whose results are used and the unused results of cond/scan;
    recurses into the regions of the ops it keeps."""
    return dce_changed(fn)[0]


def used_values(fn: Function) -> set[Value]:
    """The values fn's ops and results read."""
    used = set(fn.results)
    for op in fn.body:
        used.update(op.inputs)
    return used


def _restrict(fn: Function, results, memo: Memo | None = None) -> Function:
    """fn computing only the given results (its ops are reused: fn itself is discarded)."""
    return dce_function(Function(fn.name, list(fn.params), fn.body, list(results)), memo)


def prune_control(op: Op, live, memo: Memo | None = None) -> Op:
    """op rebuilt without the results that are not live (cond and scan; others as they are)."""
    pruner = _PRUNERS.get(op.prim.name)
    return pruner(op, live, memo) if pruner else op


def _prune_cond(op: Op, live, memo: Memo | None = None) -> Op:
    """Drops unused results of a cond, then the operands neither branch still reads."""
    keep = [i for i, r in enumerate(op.results) if r in live]
    if len(keep) == len(op.results):
        return op
    branches = [_restrict(r, [r.results[i] for i in keep], memo) for r in op.regions]
    used = set().union(*(used_values(r) for r in branches))
    args = [i for i in range(len(op.inputs) - 1)
            if any(r.params[i] in used for r in branches)]
    branches = tuple(Function(r.name, [r.params[i] for i in args], r.body, r.results)
                     for r in branches)
    inputs = (op.inputs[0],) + tuple(op.inputs[1 + i] for i in args)
    results = tuple(op.results[i] for i in keep)
    return Op(op.prim, inputs, results, dict(op.params), branches, op.loc)


def _prune_scan(op: Op, live, memo: Memo | None = None) -> Op:
    """Drops unused ys, carries that feed only dead values, and xs no longer read."""
    (body,) = op.regions
    nc = op.params["num_carry"]
    ny = len(body.results) - nc
    carries = {i for i in range(nc) if op.results[i] in live}
    ys = [k for k in range(ny) if op.results[nc + k] in live]
    while True:    # a kept carry keeps alive every carry its update reads
        kc = sorted(carries)
        pruned = _restrict(body, [body.results[i] for i in kc] + [body.results[nc + k] for k in ys],
                           memo)
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
