"""The sort primitive: sort(x; axis, descending) -> (values, indices i64) along one axis.

Stable: equal elements keep their order (in both directions). NaN sorts as the largest
value, last ascending and first descending (NumPy's and PyTorch's order). The VJP scatters
the values' cotangent back through the indices, the JVP gathers the tangent at them: the
same rules as cummax (ir/cumulative/rules.py), whose helpers they use.
"""
from __future__ import annotations

import numpy as np

from ir.core import ShapeError, TensorType


def _shape(x, *, axis, descending):
    if x.dtype == "bool" or x.ndim == 0 or not (isinstance(axis, int) and 0 <= axis < x.ndim):
        raise ShapeError(f"sort: needs a numeric operand of rank >= 1 and an axis in range, "
                         f"got {x} with axis {axis!r}")
    if not isinstance(descending, bool):
        raise ShapeError(f"sort: descending must be a bool, got {descending!r}")
    return x, TensorType("i64", x.shape)


def descending_order(x: np.ndarray, axis: int) -> np.ndarray:
    """Stable argsort from the largest, NaN first (a lexsort: NaN-ness, then -x; ~x for
    integers, which reverses their order without overflow)."""
    a = np.moveaxis(x, axis, -1)
    if a.dtype.kind == "f":
        keys = (-a, ~np.isnan(a))
    else:
        keys = (~a,)
    return np.moveaxis(np.lexsort(keys, axis=-1), -1, axis)


def _impl(x, *, axis, descending):
    order = (descending_order(x, axis) if descending
             else np.argsort(x, axis=axis, kind="stable"))
    return np.take_along_axis(x, order, axis), order.astype(np.int64)


SHAPE_RULES = {"sort": _shape}
IMPL_RULES = {"sort": _impl}
