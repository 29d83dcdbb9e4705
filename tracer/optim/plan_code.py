"""A group plan's per-step Python (tracer/optim/fast_step.py) as generated straight-line code.

Following a plan checks every array the program reads and points every parameter and state
tensor at its new value: for the transformer block's AdamW (15 parameters) 60 inputs and 45
outputs, each a few attribute reads in a loop with tuple unpacking and iterators, then the
call's own argument check (runtime's `check_args`) and `data_exprs`. Once a plan has been
followed, its steps are generated as one function per direction with the plan's objects
bound by name (as tracer/fn_replay.py does for a replayed Function):

  - `gather(state)`: the same tests as fast_step._input_arrays, in the same order, plus the
    program's own argument test per array (an ndarray of exactly the parameter's dtype and
    shape, C-contiguous), so the program runs without checking again (`run_checked`);
    None as soon as one fails;
  - `store(outs)`: each fresh output (exactly its result type: the program allocated it) in
    a data Expr, as `data_exprs` makes it, assigned to its target as before. A state
    tensor whose new value was written over its own array (tracer/optim/in_place.py: its
    Expr is held by the tensor alone) keeps its Expr, which already holds that array; only
    its version is bumped, as assign bumps it. Not when its storage has members, or its
    Expr or Value is weakly referenced or its Value held elsewhere (something may key on
    them): then a new Expr as before.
"""
from __future__ import annotations

import sys
import weakref

import numpy as np

from ir import Value
from tracer.expr import Expr
from tracer.optim import in_place
from tracer.optim.step_arrays import assign

__all__ = ["REUSE_ENABLED", "make_gather", "make_outputs", "make_store"]

# a state tensor written in place keeps its Expr (a new Value and Expr per state tensor and
# step otherwise: 30 of the transformer's AdamW); off for tests and comparison
REUSE_ENABLED = True
# sys.getrefcount of a Value held by its Expr alone, as store reads it (the Expr's slot,
# getrefcount's argument): a Value held elsewhere (a cache keyed by it) gets a new Expr
SAME_EXPR_REFS = 2


def make_gather(plan):
    """state -> the program's input arrays (without the scalars), or None (see above)."""
    env = {"ndarray": np.ndarray}
    lines = ["def gather(state):"]
    types = iter(plan.types)
    names = []

    def check(tensor: str):
        i = len(names)
        ty = next(types)
        env[f"T{i}"], env[f"D{i}"], env[f"H{i}"] = ty, ty.np_dtype, ty.shape
        lines.append(f"    e = {tensor}._expr")
        lines.append(f"    a{i} = e.data")
        lines.append("    t = e.value.type")
        lines.append(f"    if a{i} is None or (t is not T{i} and t != T{i}) or "
                     f"type(a{i}) is not ndarray or a{i}.dtype is not D{i} or "
                     f"a{i}.shape != H{i} or not a{i}.flags.c_contiguous:")
        lines.append("        return None")
        names.append(f"a{i}")

    for k, (p, st, size, held) in enumerate(zip(plan.params, plan.dicts, plan.sizes,
                                                plan.held)):
        env[f"P{k}"], env[f"S{k}"], env[f"N{k}"] = p, st, size
        lines.append(f"    if state.get(P{k}) is not S{k} or len(S{k}) != N{k}:")
        lines.append("        return None")
        check(f"P{k}")
        lines.append(f"    g = P{k}._grad")
        lines.append("    if g is None:")
        lines.append("        return None")
        check("g")
        for j, (name, t) in enumerate(held):
            env[f"K{k}_{j}"], env[f"X{k}_{j}"] = name, t
            lines.append(f"    if S{k}.get(K{k}_{j}) is not X{k}_{j}:")
            lines.append("        return None")
            check(f"X{k}_{j}")
    lines.append(f"    return [{', '.join(names)}]")
    return _define("gather", lines, env)


def make_store(plan):
    """outs (the program's outputs) -> None, each target pointed at its output."""
    env = {"Expr": Expr, "Value": Value, "assign": assign, "refs": sys.getrefcount,
           "weak": weakref.getweakrefcount, "SAME": SAME_EXPR_REFS}
    lines = ["def store(outs):"]
    n = len(plan.out_types)
    lines.append(f"    {', '.join([f'o{i}' for i in range(n)])}, = outs")
    states = {o for o, _ in in_place.pairs(plan.params, plan.held)}
    for i, (t, ty) in enumerate(zip(plan.targets, plan.out_types)):
        env[f"Q{i}"], env[f"U{i}"] = t, ty
        if i in states and REUSE_ENABLED:
            # written over its own array (in_place.outputs proved its Expr is held by the
            # tensor alone): the Expr already holds the new value
            lines.append(f"    e = Q{i}._expr")
            lines.append(f"    if e.data is o{i} and Q{i}._storage.members is None and "
                         "refs(e.value) == SAME and not weak(e) and not weak(e.value):")
            lines.append(f"        Q{i}._storage.version += 1")
            lines.append("    else:")
            lines.append(f"        assign(Q{i}, Expr(Value(U{i}), None, (), o{i}))")
        else:
            lines.append(f"    assign(Q{i}, Expr(Value(U{i}), None, (), o{i}))")
    return _define("store", lines, env)


def make_outputs(plan, specs: list, found: tuple):
    """arrays (gather's) -> the program's output arrays: in_place.outputs for a program
    whose Executable keeps no outputs for reuse (kept_ids always empty), with found's pairs
    bound by name. The tests gather made (an ndarray of exactly the input's dtype and shape,
    which are the output's) are not made again, nor "no two inputs share an array": a
    second reference from the input list, or a second Expr's, fails the count."""
    env = {"empty": np.empty, "refs": sys.getrefcount, "STATS": in_place.STATS,
           "EXPR": in_place.EXPR_REFS, "ARRAY": in_place.ARRAY_REFS}
    lines = ["def outputs(arrays):", "    n = 0"]
    pairs = dict(found)
    names = []
    for k, (shape, dtype) in enumerate(specs):
        env[f"S{k}"], env[f"D{k}"] = shape, dtype
        names.append(f"o{k}")
        i = pairs.get(k)
        ty = plan.types[i] if i is not None else None
        if i is None or ty.shape != shape or ty.np_dtype != dtype:
            lines.append(f"    o{k} = empty(S{k}, D{k})")
            continue
        env[f"X{k}"] = plan.targets[k]
        lines.append(f"    a = arrays[{i}]")
        lines.append(f"    e = X{k}._expr")
        lines.append("    if refs(e) == EXPR and refs(a) == ARRAY:")
        lines.append("        f = a.flags")
        lines.append("        if f.owndata and f.writeable:")
        lines.append(f"            o{k} = a")
        lines.append("            n += 1")
        lines.append("        else:")
        lines.append(f"            o{k} = empty(S{k}, D{k})")
        lines.append("    else:")
        lines.append(f"        o{k} = empty(S{k}, D{k})")
    lines.append("    e = a = f = None")
    lines.append('    STATS["in_place"] += n')
    lines.append(f'    STATS["fresh"] += {len(specs)} - n')
    lines.append(f"    return [{', '.join(names)}]")
    return _define("outputs", lines, env)


def _define(name: str, lines: list, env: dict):
    code = compile("\n".join(lines), f"<gradjit optimizer plan {name}>", "exec")
    exec(code, env)                                                   # noqa: S102
    return env[name]
