"""PyTorch's argument errors at nn entry points that gradjit would otherwise compute through
(promoting dtypes, broadcasting): raised only once the cheap test on the hot path failed."""
from __future__ import annotations

from tracer.ops.operands import user_error

# PyTorch's ScalarType names and the C++ type names some of its checks print
SCALAR_NAMES = {"f32": "Float", "f64": "Double", "i32": "Int", "i64": "Long", "bool": "Bool"}
_CPP_NAMES = {"f32": "float", "f64": "double", "i32": "int", "i64": "long int", "bool": "bool"}


def dtype_name(t) -> str:
    d = t._expr.type.dtype
    return SCALAR_NAMES.get(d, d)


def refuse_linear(input, weight, bias):
    """linear's error for input that failed the fast test: 0-d, wrong width or dtype."""
    if input.ndim == 0 or weight.ndim == 0:
        raise user_error(RuntimeError, "both arguments to linear need to be at least 1D, but "
                                       f"they are {input.ndim}D and {weight.ndim}D")
    if input.shape[-1] != weight.shape[-1]:
        rows = input.numel() // input.shape[-1] if input.shape[-1] else 0
        raise user_error(RuntimeError, f"mat1 and mat2 shapes cannot be multiplied "
                         f"({rows}x{input.shape[-1]} and "
                         f"{weight.shape[-1]}x{weight.shape[0]})")
    if bias is not None:                                # PyTorch's addmm, at any rank
        raise user_error(RuntimeError, "mat1 and mat2 must have the same dtype, but got "
                                       f"{dtype_name(input)} and {dtype_name(weight)}")
    a, b = input._expr.type.dtype, weight._expr.type.dtype
    raise user_error(RuntimeError, "expected m1 and m2 to have the same dtype, but got: "
                                   f"{_CPP_NAMES.get(a, a)} != {_CPP_NAMES.get(b, b)}")
