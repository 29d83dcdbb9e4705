"""Shape rules and traits of the cumulative primitives (registered by ir/primitives.py).

Each runs along one axis and keeps x's shape; `reverse=True` accumulates from the end.

    cumsum(x; axis, reverse)         running sum (numeric dtypes)
    cumprod(x; axis)                 running product (numeric dtypes)
    cumlogsumexp(x; axis, reverse)   running log(sum(exp)) (floating dtypes)
    cummax(x; axis) / cummin(x; axis)
                                     -> (values, indices i64): the running extreme and where
                                        it is; a tie moves the index to the later element and
                                        a NaN sticks (PyTorch's cummax/cummin)
    sort(x; axis, descending)        -> (values, indices i64): stable (ir/cumulative/sort.py)
"""
from __future__ import annotations

from ir.core import ShapeError, TensorType, is_float
from ir.cumulative.sort import SHAPE_RULES as SORT_SHAPES


def _check(cond: bool, msg: str):
    if not cond:
        raise ShapeError(msg)


def _along(name: str, x: TensorType, axis, floating: bool = False):
    _check(x.dtype != "bool", f"{name} needs a numeric operand, got {x}")
    _check(not floating or is_float(x.dtype), f"{name} needs a floating operand, got {x}")
    _check(isinstance(axis, int) and 0 <= axis < max(x.ndim, 1) and x.ndim >= 1,
           f"{name}: axis {axis!r} out of range for {x}")


def _flag(name: str, reverse):
    _check(isinstance(reverse, bool), f"{name}: reverse must be a bool, got {reverse!r}")


def _cumsum(x, *, axis, reverse):
    _along("cumsum", x, axis)
    _flag("cumsum", reverse)
    return x


def _cumprod(x, *, axis):
    _along("cumprod", x, axis)
    return x


def _cumlogsumexp(x, *, axis, reverse):
    _along("cumlogsumexp", x, axis, floating=True)
    _flag("cumlogsumexp", reverse)
    return x


def _extreme(name):
    def rule(x, *, axis):
        _along(name, x, axis)
        return x, TensorType("i64", x.shape)
    return rule


SHAPE_RULES = {"cumsum": _cumsum, "cumprod": _cumprod, "cumlogsumexp": _cumlogsumexp,
               "cummax": _extreme("cummax"), "cummin": _extreme("cummin"), **SORT_SHAPES}
TRAITS = {"fusion": "kernel"}
