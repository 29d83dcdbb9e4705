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
    a data Expr, as `data_exprs` makes it, assigned to its target as before.
"""
from __future__ import annotations

import numpy as np

from ir import Value
from tracer.expr import Expr
from tracer.optim.step_arrays import assign

__all__ = ["make_gather", "make_store"]


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
    """outs (the program's fresh outputs) -> None, each target pointed at its output."""
    env = {"Expr": Expr, "Value": Value, "assign": assign}
    lines = ["def store(outs):"]
    n = len(plan.out_types)
    lines.append(f"    {', '.join([f'o{i}' for i in range(n)])}, = outs")
    for i, (t, ty) in enumerate(zip(plan.targets, plan.out_types)):
        env[f"Q{i}"], env[f"U{i}"] = t, ty
        lines.append(f"    assign(Q{i}, Expr(Value(U{i}), None, (), o{i}))")
    return _define("store", lines, env)


def _define(name: str, lines: list, env: dict):
    code = compile("\n".join(lines), f"<gradjit optimizer plan {name}>", "exec")
    exec(code, env)                                                   # noqa: S102
    return env[name]
