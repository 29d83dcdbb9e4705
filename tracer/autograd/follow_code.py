"""A kept backward shape's check (follow.py `_check`) as generated straight-line code.

follow._check walks the new graph against the kept shape with a loop per node and per
input: which position an edge's node takes first, whether an input is a node's output or a
leaf slot seen before, are worked out anew each step although the shape fixes them. Once a
shape has been followed `CODE_AFTER` times its check is generated as one function with
those answers unrolled (as tracer/optim/plan_code.py does for the optimizer's plan): the
same tests in the same order on the same objects, the shape's classes and Templates bound
by name, and the same outcome: follow._finish's tuple, or a reason (a str) for a refusal.
_finish is written out too (the targets' old .grads, the Exprs at the plan's positions),
for a shape with pending slots around the same call of follow._pending_walk. A position
first reached by an edge of a later node (never in a kept toposort order) or a graph past
`MAX_NODES` keeps the loop.
"""
from __future__ import annotations

from tracer import bounded

__all__ = ["make_check", "CODE_AFTER", "MAX_NODES"]

CODE_AFTER = 3          # follows of a shape before its check is generated
MAX_NODES = 512         # larger graphs keep the loop (the code grows with the graph)


def make_check(shape, check_leaf, pending_walk, same_updates, stats):
    """root -> follow._check(shape, root)'s result, or None when the shape's order cannot be
    unrolled. check_leaf, pending_walk and same_updates are follow's functions of those
    names, stats its STATS."""
    n = len(shape.classes)
    if n > MAX_NODES:
        return None
    env = {"shape": shape, "STATS": bounded.STATS, "check_leaf": check_leaf,
           "pending_walk": pending_walk, "same_updates": same_updates, "FSTATS": stats,
           "NLEAVES": len(shape.leaf_types)}
    lines = ["def check(root):",
             "    n0 = root._grad_fn",
             "    if n0 is None or type(n0) is not C0 or root._output_nr != ROOT:",
             "        return 'another root'",
             "    if root._expr is not n0.output_exprs[ROOT]:",
             "        return 'the root was changed in place'",
             "    placed = {n0}",
             "    reads = STATS['reads']",
             "    leaves = [None] * NLEAVES",
             "    seen = set()"]
    env["ROOT"] = shape.root_nr
    for i, cls in enumerate(shape.classes):
        env[f"C{i}"] = cls
    placed = {0}
    used = set()                         # leaf slots met already
    for i in range(n):
        if i not in placed:
            return None                  # the loop would refuse every graph here
        _node_lines(lines, env, shape, i, placed, used)
    _finish_lines(lines, shape, n)
    code = compile("\n".join(lines), "<gradjit backward follow check>", "exec")
    exec(code, env)                                                   # noqa: S102
    return env["check"]


def _node_lines(lines: list, env: dict, shape, i: int, placed: set, used: set):
    """The tests of node i (its hooks, Template, edges and inputs), as _check runs them."""
    nd = f"n{i}"
    lines.append(f"    if {nd}.hooks or {nd}.retained:")
    lines.append(f"        return f'{{{nd}.name()}} has a tensor hook or retain_grad'")
    tm = shape.templates[i]
    if tm is not None:                   # follow._same_template and _replayed, inline
        env[f"TM{i}"] = tm
        has = shape.has_data[i]
        lines.append(f"    tm = {nd}.template")
        lines.append(f"    if tm is None or tm[0] is not TM{i} or tm[2] != reads or "
                     f"{nd}.output_exprs != tm[1] or ({nd}._local is not None and "
                     f"{nd}.given_fn is None) or len(tm[1]) != {len(has)}:")
        lines.append(f"        return f'{{{nd}.name()}} is not the kept template node'")
        for k, h in enumerate(has):
            test = "is None" if h else "is not None"
            lines.append(f"    if tm[1][{k}].data {test}:")
            lines.append("        return 'a value of the graph was read (it holds data now)'")
    want = shape.edges[i]
    lines.append(f"    es = {nd}.edges")
    lines.append(f"    if len(es) != {len(want)}:")
    lines.append("        return 'another graph'")
    lines.append(f"    ins = {nd}.input_exprs")
    for k, w in enumerate(want):
        lines.append(f"    e = es[{k}]")
        if w is None:
            lines.append("    if e is not None:")
            lines.append("        return 'another graph'")
        else:
            p, nr = w
            lines.append(f"    if e is None or e[1] != {nr} or type(e[0]) is not C{p}:")
            lines.append("        return 'another graph'")
            if p in placed:
                lines.append(f"    if n{p} is not e[0]:")
                lines.append("        return 'another graph'")
            else:
                placed.add(p)
                lines.append(f"    n{p} = e[0]")
                lines.append(f"    if n{p} in placed:")
                lines.append("        return 'another graph'")
                lines.append(f"    placed.add(n{p})")
        _input_lines(lines, shape.ins[i][k], k, used)


def _input_lines(lines: list, code, k: int, used: set):
    """The test of input k (the edge's node output, none, or a leaf slot), as _check's."""
    lines.append(f"    x = ins[{k}]")
    if code == -1:
        lines.append("    if x is None or e[0].output_exprs[e[1]] is not x:")
        lines.append('        return "an input is not its node\'s output"')
    elif code is None:
        lines.append("    if x is not None:")
        lines.append("        return 'another graph'")
    elif code in used:                   # _check_leaf would find the slot taken
        lines.append(f"    if leaves[{code}] is not x:")
        lines.append("        return 'another sharing of inputs'")
    else:
        used.add(code)
        lines.append(f"    why = check_leaf({code}, x, leaves, seen, shape)")
        lines.append("    if why:")
        lines.append("        return why")


def _finish_lines(lines: list, shape, n: int):
    """follow._finish: the targets' old .grads, the updated tensors, the pending slots'
    walk (when the shape has pending slots), the Exprs at the plan's walk positions, its
    captures holding data."""
    for j, (p, want) in enumerate(zip(shape.targets, shape.grads)):
        lines.append(f"    t{j} = n{p}.variable")
        lines.append("    g = t{j}._grad".format(j=j))
        if want is None:
            lines.append("    if g is not None:")
            lines.append("        return 'a .grad appeared or has a grad_fn'")
            continue
        lines.append("    if g is None:")
        lines.append("        return 'a .grad is gone'")
        lines.append("    if g._grad_fn is not None:")
        lines.append("        return 'a .grad appeared or has a grad_fn'")
        lines.append(f"    if leaves[{want}] is not g._expr:")
        lines.append(f"        why = check_leaf({want}, g._expr, leaves, seen, shape)")
        lines.append("        if why:")
        lines.append("            return f'a .grad: {why}'")
    targets = ", ".join([f"((n{p}, 0), t{j})" for j, p in enumerate(shape.targets)])
    lines.append(f"    targets = [{targets}]")
    lines.append("    why = same_updates(shape, leaves)")
    lines.append("    if why is not None:")
    lines.append("        return why")
    pending = shape.pending_key is not None
    if pending:                          # (the walk reads the order only for its outputs)
        order = ", ".join([f"n{i}" for i in range(n)])
        lines.append(f"    found = pending_walk(shape.pending, leaves, seen, [{order}])")
        lines.append("    if found.__class__ is str:")
        lines.append("        return found")
        lines.append("    if found[0] != shape.pending_key:")
        lines.append("        return \"a pending input's graph is another\"")
        lines.append("    sub = found[1]")
    parts = []
    for p, (kind, a, b) in shape.sources.items():
        where = {"in": f"n{a}.input_exprs[{b}]", "out": f"n{a}.output_exprs[{b}]",
                 "grad": f"t{a}._grad._expr", "sub": f"sub[{b}]"}[kind]
        parts.append(f"{p}: {where}")
    lines.append(f"    exprs = {{{', '.join(parts)}}}")
    for p in shape.plan.captures:
        lines.append(f"    if exprs[{p}].data is None:")
        lines.append("        return 'an input of the program is pending'")
    if pending:
        lines.append("    FSTATS['pending'] += 1")
    executed = ", ".join([f"n{p}" for p in shape.executed])
    lines.append(f"    return shape.plan, exprs, targets, [{executed}]")
