"""NumPy references of the cumulative primitives (the interpreter's rules)."""
from __future__ import annotations

import numpy as np

from ir.cumulative.sort import IMPL_RULES as SORT_IMPL


def _rev(fn, x, axis, reverse):
    if not reverse:
        return fn(x, axis)
    return np.flip(fn(np.flip(x, axis), axis), axis)


def _cumsum(x, *, axis, reverse):
    return _rev(lambda a, k: np.cumsum(a, axis=k, dtype=a.dtype), x, axis, reverse)


def _cumprod(x, *, axis):
    return np.cumprod(x, axis=axis, dtype=x.dtype)


def _cumlogsumexp(x, *, axis, reverse):
    return _rev(lambda a, k: np.logaddexp.accumulate(a, axis=k), x, axis, reverse)


def _extreme(better):
    def rule(x, *, axis):
        a = np.moveaxis(x, axis, -1)
        values, indices = np.empty_like(a), np.zeros(a.shape, np.int64)
        if a.shape[-1]:
            best, where = a[..., 0].copy(), np.zeros(a.shape[:-1], np.int64)
            for i in range(a.shape[-1]):
                v = a[..., i]
                take = better(v, best)
                if a.dtype.kind == "f":        # a NaN sticks: taken once, never replaced
                    take = (take | np.isnan(v)) & ~np.isnan(best)
                best, where = np.where(take, v, best), np.where(take, i, where)
                values[..., i], indices[..., i] = best, where
        return np.moveaxis(values, -1, axis), np.moveaxis(indices, -1, axis)
    return rule


IMPL_RULES = {"cumsum": _cumsum, "cumprod": _cumprod, "cumlogsumexp": _cumlogsumexp,
              "cummax": _extreme(np.greater_equal), "cummin": _extreme(np.less_equal),
              **SORT_IMPL}
