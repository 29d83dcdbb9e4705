"""The tiny call's Python, generated per call plan: guards, outputs, one builtin call, Tensors.

A CallPlan whose arguments are C-contiguous arrays and NumPy scalars (tracer/call_plan.py)
gets a function written for its exact arity, so that a call runs straight-line code: no
loops over arguments, no list comprehensions, no keyword arguments, and the results' tree
(value_and_grad's `(value, (grad,))`) rebuilt by one expression. For a plan of one NumPy
scalar and two outputs it reads:

    def call_fast(args):
        if len(args) != 1 or Executable.run is not RUN:
            return None
        a0, = args
        if type(a0) is not T0:
            return None
        o0 = empty(S0, D0)
        o1 = empty(S1, D1)
        fast(a0, o0, o1, workspace())
        t0 = new(Tensor)
        t0._expr = Expr(V0, None, (), o0)
        t0._storage = Storage()
        ...
        return (t0, (t1, ), )

NOTE: measured on the tiny benchmark (3*x**2 on a 0-d f32, value_and_grad), loaded 2-core
EPYC: the same steps written as loops over the plan's lists took ~0.6 us more per call.
"""
from __future__ import annotations

import math

import numpy as np

from runtime.executable import Executable
from tracer.autograd.grad_mode import is_grad_enabled
from tracer.expr import Expr
from tracer.pytree import TreeDef
from tracer.tensor import Storage, Tensor


# the guard's dtype slot of an argument that is a static Python scalar (call_plan.py): its
# value is traced into the program, so the guard compares the value and nothing is passed
STATIC = "static"
_KEY_TYPES = (str, int)


def tree_expression(tree: TreeDef, names: list) -> str | None:
    """Python source building tree from the given leaf expressions, or None when it has a
    node other than a leaf, None, a tuple, a list or a dict keyed by strings and ints."""
    it = iter(names)

    def walk(t: TreeDef) -> str | None:
        if t.kind == "leaf":
            return next(it)
        if t.kind == "none":
            return "None"
        if t.kind == "dict" and not all(type(k) in _KEY_TYPES for k in t.data):
            return None           # (bool keys are ints whose repr would not say so)
        if t.kind not in ("tuple", "list", "dict"):
            return None
        parts = [walk(c) for c in t.children]
        if None in parts:
            return None
        if t.kind == "list":
            return "[" + ", ".join(parts) + "]"
        if t.kind == "dict":
            # keys in the tree's order, as tree_unflatten builds it
            return "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(t.data, parts)) + "}"
        return "(" + "".join(p + ", " for p in parts) + ")"
    return walk(tree)


def _tensor_lines(name: str, ty, strides, env: dict) -> list:
    """Reads the array of Tensor `name` into `name`d, or returns None from call_fast when it
    cannot be passed as it is: not computed yet, another type, not C-contiguous, or
    requiring grad with grad mode on (the general path records the call for autograd)."""
    env.update({f"TY_{name}": ty, f"D_{name}": ty.np_dtype, f"R_{name}": strides})
    return [f"    e_{name} = {name}._expr",
            f"    {name}d = e_{name}.data",
            f"    if {name}d is None or e_{name}.value.type is not TY_{name}"
            f" and e_{name}.value.type != TY_{name} or type({name}d) is not ndarray"
            f" or {name}d.dtype is not D_{name} or {name}d.strides != R_{name}"
            f" or {name}.requires_grad and grad_enabled():",
            "        return None"]


def _static_test(name: str, t: type, value, env: dict) -> str:
    """The guard refusing anything but exactly the traced Python scalar: the same type and
    value, and for a float the same sign (-0.0 is not 0.0; a NaN never passes: general path)."""
    env[f"V_{name}"] = value
    if t is bool:
        return f"{name} is not V_{name}"
    test = f"type({name}) is not {t.__name__} or {name} != V_{name}"
    if t is float:
        env[f"S_{name}"] = math.copysign(1.0, value)
        test += f" or copysign(1.0, {name}) != S_{name}"
    return test


def make(guards: tuple, captures: list, owned: dict, specs: list, values: list, tree: TreeDef,
         fast, workspace):
    """call_fast(args) for one plan, or None when its result tree has other nodes.

    guards: per argument (type, dtype, shape, strides), dtype None for a NumPy scalar and
    the parameter's TensorType for a Tensor;
    captures: the arrays passed after the arguments; owned: capture index -> (Tensor, type,
    strides) for captures a Tensor holds, read on every call (CallPlan.__call__'s checks:
    computed, same type, C-contiguous, no autograd to record); specs: (shape, dtype) per
    output; values: the ir.Value per output; fast: the builtin trampoline; workspace: a
    function returning the workspace array."""
    outs = [f"t{k}" for k in range(len(values))]
    result = tree_expression(tree, outs)
    if result is None:
        return None
    env = {"empty": np.empty, "ndarray": np.ndarray, "new": object.__new__, "Tensor": Tensor,
           "Expr": Expr, "Storage": Storage, "fast": fast, "workspace": workspace,
           "grad_enabled": is_grad_enabled, "Executable": Executable, "RUN": Executable.run}
    env["copysign"] = math.copysign
    args = [f"a{i}" for i in range(len(guards))]
    # a profiling session (runtime/profile.py) swaps Executable.run: the general path then
    lines = ["def call_fast(args):",
             f"    if len(args) != {len(args)} or Executable.run is not RUN:",
             "        return None"]
    if args:
        lines.append(f"    {', '.join(args)}, = args")
    args = list(args)          # the names passed to the kernel (a Tensor's array: a{i}d)
    for i, (t, dt, shape, strides) in enumerate(guards):
        env.update({f"T{i}": t, f"D{i}": dt, f"S{i}": shape, f"R{i}": strides})
        test = f"type(a{i}) is not T{i}"
        if dt is STATIC:
            lines += [f"    if {_static_test(f'a{i}', t, shape, env)}:", "        return None"]
            args[i] = None
            continue
        if issubclass(t, Tensor):
            lines += [f"    if {test}:", "        return None"]
            lines += _tensor_lines(f"a{i}", dt, strides, env)
            args[i] = f"a{i}d"
            continue
        if dt is not None:
            test += (f" or a{i}.dtype is not D{i} or a{i}.shape != S{i}"
                     f" or a{i}.strides != R{i}")
        lines += [f"    if {test}:", "        return None"]
    for k, (shape, dt) in enumerate(specs):
        env.update({f"OS{k}": shape, f"OD{k}": dt, f"V{k}": values[k]})
        lines.append(f"    o{k} = empty(OS{k}, OD{k})")
    caps = []
    for j, c in enumerate(captures):
        env[f"C{j}"] = c
        caps.append(f"C{j}")
        if j in owned:
            tensor, ty, strides = owned[j]
            env[f"c{j}"] = tensor
            lines += _tensor_lines(f"c{j}", ty, strides, env)
            caps[j] = f"c{j}d"
    buffers = [a for a in args if a is not None] + caps + [f"o{k}" for k in range(len(specs))]
    buffers.append("workspace()")
    lines.append(f"    fast({', '.join(buffers)})")
    for k in range(len(specs)):
        lines += [f"    t{k} = new(Tensor)",
                  f"    t{k}._expr = Expr(V{k}, None, (), o{k})",
                  f"    t{k}._storage = Storage()"]
    lines.append(f"    return {result}")
    exec(compile("\n".join(lines), "<gradjit call_fast>", "exec"), env)   # noqa: S102
    return env["call_fast"]
