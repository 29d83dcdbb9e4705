"""Comparisons (bool results) and logical ops on bool tensors.

Comparisons and logical ops are not differentiable: their results are bool. The dtype
conversions (`.float()`, `.to(dtype)`) are in convert.py.
"""
from __future__ import annotations

import math

from tracer.ops.operands import constant, dtype_of, operands, to_tensor
from tracer.record import apply, torch_op
from tracer.tensor import Tensor

__all__ = ["eq", "ne", "lt", "le", "gt", "ge", "equal", "not_equal", "less", "less_equal",
           "greater", "greater_equal", "logical_and", "logical_or", "logical_not",
           "logical_xor", "isnan", "isinf", "isfinite"]

_NODE = {"eq": "Eq", "ne": "Ne", "lt": "Lt", "le": "Le", "gt": "Gt", "ge": "Ge"}


def _comparison(prim: str):
    def op(input, other):
        a, b = operands(input, other)
        return apply(prim, a, b)
    op.__name__ = op.__qualname__ = prim
    op.__doc__ = f"Elementwise `{prim}` with broadcasting and promotion; gives bool."
    return torch_op(_NODE[prim])(op)


eq, ne, lt, le, gt, ge = (_comparison(p) for p in ("eq", "ne", "lt", "le", "gt", "ge"))
not_equal, less, less_equal, greater, greater_equal = ne, lt, le, gt, ge


def equal(input, other) -> bool:
    """True when x and y have the same shape and values (torch.equal)."""
    a, b = to_tensor(input), to_tensor(other)
    if tuple(a.shape) != tuple(b.shape):
        return False
    return bool(logical_not(eq(a, b)).__array__().sum() == 0)


def _as_bool(x) -> Tensor:
    t = to_tensor(x)
    if dtype_of(t) == "bool":
        return t
    return apply("ne", t, constant(0, dtype_of(t), t.shape))


@torch_op("LogicalAnd")
def logical_and(input, other):
    """Elementwise and; non-bool operands count as true when nonzero."""
    a, b = operands(_as_bool(input), _as_bool(other))
    return apply("logical_and", a, b)


@torch_op("LogicalOr")
def logical_or(input, other):
    a, b = operands(_as_bool(input), _as_bool(other))
    return apply("logical_or", a, b)


@torch_op("LogicalXor")
def logical_xor(input, other):
    a, b = operands(_as_bool(input), _as_bool(other))
    return apply("ne", a, b)


@torch_op("LogicalNot")
def logical_not(input):
    return apply("logical_not", _as_bool(input))


@torch_op("IsNan")
def isnan(input):
    t = to_tensor(input)
    return apply("ne", t, t)


@torch_op("IsInf")
def isinf(input):
    t = to_tensor(input)
    if dtype_of(t) not in ("f32", "f64"):
        return constant(False, "bool", t.shape)
    return apply("eq", apply("abs", t), constant(math.inf, dtype_of(t), t.shape))


@torch_op("IsFinite")
def isfinite(input):
    t = to_tensor(input)
    return logical_not(logical_or(isnan(t), isinf(t)))
