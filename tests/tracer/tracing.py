"""Tracing helpers for the op tests: a gradjit function on symbolic params -> ir.Function."""
from __future__ import annotations

import numpy as np

from ir.core import Function, TensorType, dtype_of_numpy
from ir.interpret import interpret
from tracer.expr import build_function, param_expr
from tracer.tensor import Tensor


def trace(fn, *types: TensorType, name: str = "f") -> tuple[Function, list[np.ndarray]]:
    """fn traced on symbolic params of types: (Function, data of the captured leaves).

    The Function's params are the traced params, then one per captured array (index
    arrays, constants made from NumPy data), whose values are returned alongside.
    """
    params = [param_expr(t, f"x{i}") for i, t in enumerate(types)]
    out = fn(*(Tensor(p) for p in params))
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    func, captures = build_function(name, params, [o._expr for o in outs])
    return func, [np.asarray(c.data) for c in captures]


def type_of(a: np.ndarray) -> TensorType:
    a = np.asarray(a)
    return TensorType(dtype_of_numpy(a.dtype), a.shape)


def trace_on(fn, args) -> tuple[Function, list[np.ndarray]]:
    """fn traced on params typed like args; returns (Function, full argument list)."""
    func, captured = trace(fn, *(type_of(a) for a in args))
    return func, [np.asarray(a) for a in args] + captured


def run_traced(fn, args) -> list[np.ndarray]:
    """fn traced on args' types and run on args by the reference interpreter."""
    func, full = trace_on(fn, args)
    return interpret(func, *full)
