"""What a `constant` op's value may be: a scalar (splatted) or a nested list of the result
shape, whose elements are of the result dtype. The constant shape rule checks it, so the
Builder, the parser and the verifier all refuse the same values.
"""
from __future__ import annotations

import numpy as np

from ir.core import DTYPES, INT_DTYPES, TensorType


def constant_value_problem(value, t: TensorType) -> str | None:
    """Why a constant's value does not fit type t (None if it does).

    A scalar is splatted over any shape; a nested list must have exactly t's shape. Each
    element must be of t's dtype: a bool for bool; an int (not a bool) within range for
    i32/i64; a bool, int or float for f32/f64 (ints and bools read as numbers, as in NumPy).
    """
    if isinstance(value, (list, tuple)):
        shape = _nested_shape(value)
        if shape is None:
            return "constant value is a ragged list"
        if shape != t.shape and not (t.size == 0 and shape == (0,)):
            return f"constant value of shape {list(shape)} does not fit {t}"
        elements = _flatten(value)
    elif isinstance(value, (bool, int, float)):
        elements = [value]
    else:
        return f"constant value {value!r} is neither a scalar nor a nested list"
    for e in elements:
        problem = _element_problem(e, t.dtype)
        if problem:
            return f"constant value {problem}"
    return None


def _element_problem(e, dtype: str) -> str | None:
    if dtype == "bool":
        return None if isinstance(e, bool) else f"{e!r} is not a bool"
    if dtype in INT_DTYPES:
        if isinstance(e, bool) or not isinstance(e, int):
            return f"{e!r} is not an {dtype}"
        info = np.iinfo(DTYPES[dtype])
        return None if info.min <= e <= info.max else f"{e} does not fit {dtype}"
    if not isinstance(e, (bool, int, float)):
        return f"{e!r} is not a number"
    try:
        float(e)
    except OverflowError:
        return f"{e} does not fit {dtype}"
    return None


def _flatten(value) -> list:
    if not isinstance(value, (list, tuple)):
        return [value]
    return [e for item in value for e in _flatten(item)]


def _nested_shape(value) -> tuple[int, ...] | None:
    if not isinstance(value, (list, tuple)):
        return ()
    inner = {_nested_shape(e) for e in value}
    if None in inner or len(inner) > 1:
        return None
    return (len(value),) + (inner.pop() if inner else ())
