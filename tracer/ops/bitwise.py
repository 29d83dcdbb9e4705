"""Integer bit operations (torch.bitwise_*, and the operators & | ^ ~ << >>).

On integer tensors they are the IR's bit primitives; on bool tensors & | ^ ~ are the logical
ops, as in PyTorch. A shift by a negative amount or by the width or more gives 0, or the sign
fill for >> (PyTorch 2.13's values, which are also XLA's). Floating operands raise PyTorch's
NotImplementedError.
"""
from __future__ import annotations

from ir.core import is_float
from tracer.ops import compare
from tracer.ops.operands import cast, constant, dtype_of, operands, to_tensor, user_error
from tracer.record import apply, torch_op

__all__ = ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "bitwise_left_shift",
           "bitwise_right_shift"]

_TYPE_NAMES = {"f32": "Float", "f64": "Double"}
_LOGICAL = {"bitwise_and": compare.logical_and, "bitwise_or": compare.logical_or,
            "bitwise_xor": compare.logical_xor}


def _int_operands(x, y, kernel: str):
    a, b = operands(x, y)
    if is_float(dtype_of(a)):
        raise user_error(NotImplementedError,
                         f'"{kernel}_cpu" not implemented for \'{_TYPE_NAMES[dtype_of(a)]}\'')
    return a, b


def _logic(prim: str, node: str):
    def op(input, other):
        a, b = _int_operands(input, other, prim)
        if dtype_of(a) == "bool":
            return _LOGICAL[prim](a, b)
        return apply(prim, a, b)
    op.__name__ = op.__qualname__ = prim
    op.__doc__ = (f"Elementwise {prim} of integer tensors (logical on bool), with "
                  "broadcasting and PyTorch's promotion.")
    return torch_op(node)(op)


bitwise_and = _logic("bitwise_and", "BitwiseAnd")
bitwise_or = _logic("bitwise_or", "BitwiseOr")
bitwise_xor = _logic("bitwise_xor", "BitwiseXor")


@torch_op("BitwiseNot")
def bitwise_not(input):
    """~x: every bit flipped (integers), logical not (bool)."""
    t = to_tensor(input)
    if is_float(dtype_of(t)):
        raise user_error(TypeError, "~ (operator.invert) is only implemented on integer and "
                                    "Boolean-type tensors")
    if dtype_of(t) == "bool":
        return compare.logical_not(t)
    return apply("bitwise_xor", t, constant(-1, dtype_of(t), t.shape))


def _shift(prim: str, kernel: str):
    def op(x, y):
        a, b = _int_operands(x, y, kernel)
        if dtype_of(a) == "bool":             # PyTorch shifts bools as int64
            a, b = cast(a, "i64"), cast(b, "i64")
        return apply(prim, a, b)
    return op


@torch_op("BitwiseLeftShift")
def bitwise_left_shift(input, other):
    """x << y; amounts outside [0, bits) give 0."""
    return _shift("shift_left", "lshift")(input, other)


@torch_op("BitwiseRightShift")
def bitwise_right_shift(input, other):
    """x >> y, arithmetic (sign-filling); amounts outside [0, bits) give 0 or -1."""
    return _shift("shift_right_arithmetic", "rshift")(input, other)
