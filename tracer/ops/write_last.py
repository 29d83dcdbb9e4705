"""Writing values at positions that may repeat, the last write winning, with PyTorch's
gradient: every value written gets the gradient of the element it was written to, the
overwritten ones too (index_put_ and scatter's backward gather the gradient at the index).

The IR has no overwriting scatter, only scatter_add. Each position gets the sum of its
last value and, from every earlier value v written there, `silent(v)`: -0.0 forward (so
the sum is the last value bit for bit, -0.0 included) and gradient 1. The sum starts from
-0.0, which adds nothing to any value (0.0 + -0.0 would be 0.0). silent is a custom_vjp
(one custom_vjp_call op): no composition of IR ops has that forward and that gradient for
an inf or nan v (`v - stop_gradient(v)` is nan there, and anything that masks it out masks
its gradient out too).
"""
from __future__ import annotations

import numpy as np

from ir.core import is_float
from tracer.custom_call import record_custom_vjp
from tracer.expr import apply_op, param_expr
from tracer.ops.operands import constant, dtype_of
from tracer.record import apply
from tracer.tensor import Tensor, tensor_from_array

# a traced index's last writes are found by comparing every pair of entries: refused
# past this many entries (a 4M-element compare)
MAX_TRACED_ENTRIES = 2048


def silent(v: Tensor) -> Tensor:
    """-0.0 in v's shape whose gradient is v's (the module docstring): one custom_vjp_call
    whose body is the constant and whose backward rule passes the cotangent through."""
    t = v._expr.type
    param, g = param_expr(t, "v"), param_expr(t, "g")
    zero = apply_op("constant", (), None, value=-0.0, dtype=t.dtype, shape=t.shape)[0]
    (out,) = record_custom_vjp("silent", [param], [v._expr], [zero], [zero], [], [], [g], [g])
    return out


def scatter_base(dtype: str, n: int) -> Tensor:
    """What a scatter_add that writes each element at most once adds to: -0.0 for floats,
    so that a written -0.0 stays -0.0."""
    value = False if dtype == "bool" else -0.0 if is_float(dtype) else 0
    return apply("constant", value=value, dtype=dtype, shape=(n,))


def last_of_concrete(lin: np.ndarray) -> np.ndarray:
    """Whether each entry of lin is the last one at its position."""
    last = np.zeros(lin.size, dtype=bool)
    last[lin.size - 1 - np.unique(lin[::-1], return_index=True)[1]] = True
    return last


def last_of_traced(lin: Tensor, valid: Tensor | None) -> Tensor:
    """last_of_concrete for a traced i64 vector lin (entries not valid shadow nothing)."""
    m = lin._expr.type.shape[0]
    rows = apply("broadcast_in_dim", lin, shape=(m, m), dims=(0,))
    cols = apply("broadcast_in_dim", lin, shape=(m, m), dims=(1,))
    later = np.triu(np.ones((m, m), dtype=bool), 1)          # [i, j]: j comes after i
    shadowed = apply("logical_and", apply("eq", rows, cols), tensor_from_array(later, "bool"))
    if valid is not None:
        shadowed = apply("logical_and", shadowed,
                         apply("broadcast_in_dim", valid, shape=(m, m), dims=(1,)))
    hits = apply("reduce_sum", apply("convert", shadowed, dtype="i32"), axes=(1,))
    return apply("eq", hits, constant(0, "i32", (m,)))


def write_last(flat_x: Tensor, lin: Tensor, values: Tensor, is_last: Tensor,
               written: Tensor) -> Tensor:
    """flat_x (a vector) with values[k] written at position lin[k] where is_last[k] (the
    module docstring); `written` marks the positions any entry writes (bool, flat_x's
    shape). lin and values are vectors of one length."""
    dt = dtype_of(flat_x)
    shape = tuple(values.shape)
    quiet = silent(values) if is_float(dt) else constant(0, dt, shape)
    summed = apply("select", is_last, values, quiet)
    placed = apply("scatter_add", scatter_base(dt, flat_x._expr.type.shape[0]), lin, summed,
                   axis=0)
    return apply("select", written, placed, flat_x)
