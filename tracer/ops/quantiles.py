"""median, quantile and nanquantile over a sort (tracer/ops/sorting.py).

A quantile q of a row of n sorted values sits at position q (n - 1); the methods pick the
elements around it (lower, higher, nearest: ties to even) or combine them (linear, with
PyTorch's and NumPy's lerp; midpoint). nanquantile counts the non-NaN elements of each row
(NaN sorts last), so its positions are computed in the graph. PyTorch's median is the lower
middle element (with its index); NumPy's is the mean of the two middle ones.
"""
from __future__ import annotations

import numpy as np

from ir.core import is_float
from tracer.ops.indexing import take_along
from tracer.ops.operands import (cast, constant, dtype_of, norm_axis, pick_dim, to_tensor,
                                 user_error)
from tracer.ops.reduce import _ReturnType, kept_shape
from tracer.ops.rounding import ceil, floor, round as round_even
from tracer.ops.sorting import pick, sorted_along
from tracer.record import apply, torch_op
from tracer.tensor import Tensor

__all__ = ["median", "quantile", "nanquantile"]

METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


class MedianResult(_ReturnType):
    kind = "median"


def _lower_median(t: Tensor, d: int, keepdim: bool) -> MedianResult:
    """PyTorch's median along d: the lower middle element, or the first NaN if any."""
    if t.ndim == 0:
        return MedianResult(*sorted_along(t, 0))
    n = t.shape[d]
    if n == 0:
        raise user_error(IndexError, f"median(): Expected reduction dim {d} to have non-zero "
                                     f"size.")
    values, indices = sorted_along(t, d)
    if not is_float(dtype_of(t)):
        return pick(values, indices, d, (n - 1) // 2, keepdim, MedianResult)
    kept = kept_shape(t.shape, (d,))
    nans = apply("reshape", apply("reduce_sum", cast(apply("ne", t, t), "i64"), axes=(d,)),
                 shape=kept)
    first_nan = apply("sub", constant(n, "i64", kept), nans)
    pos = apply("select", apply("gt", nans, constant(0, "i64", kept)), first_nan,
                constant((n - 1) // 2, "i64", kept))
    return pick(values, indices, d, pos, keepdim, MedianResult)


def _median_all(t: Tensor) -> Tensor:
    """The lower median of every element; the gradient is shared by the elements equal to
    it (PyTorch's rule); NaN if any element is NaN or t is empty."""
    if t.numel() == 0:
        return constant(float("nan"), dtype_of(t) if is_float(dtype_of(t)) else "f32", ())
    flat = apply("reshape", t, shape=(t.numel(),))
    m = _lower_median(flat, 0, False).values
    if not is_float(dtype_of(t)):
        return m
    level = apply("broadcast_in_dim", apply("stop_gradient", m), shape=flat.shape, dims=())
    equal = cast(apply("eq", flat, level), dtype_of(t))
    total = apply("reduce_sum", apply("mul", flat, equal), axes=(0,))
    return apply("div", total, apply("reduce_sum", equal, axes=(0,)))


@torch_op("Median")
def median(input, dim=None, keepdim=False, *, axis=None, keepdims=False, overwrite_input=False):
    """PyTorch: median(x) is the lower median of all elements; median(x, dim) is
    (values, indices), as torch.return_types.median; a NaN gives NaN (and its index).
    NumPy's spelling (axis=, keepdims=) is numpy.median: the mean of the two middle
    elements (over all elements when axis is None), NaN if any is NaN."""
    t = to_tensor(input)
    if axis is not None or keepdims:
        return _quantile(t, 0.5, axis, bool(keepdims), "midpoint", False)
    if dim is None:
        return _median_all(t)
    return _lower_median(t, norm_axis(dim, t.ndim), bool(keepdim))


# ---- quantiles ------------------------------------------------------------------------------

def _levels(q) -> np.ndarray:
    if isinstance(q, Tensor) and q._expr.symbolic:
        raise user_error(TypeError, "quantile(): q must be known when tracing (a number, a "
                                    "list or an array); a traced q is not supported")
    qs = np.asarray(q, dtype=np.float64)
    if qs.ndim > 1:
        raise user_error(RuntimeError, "quantile() q must be a scalar or 1D tensor")
    if ((qs < 0) | (qs > 1)).any():
        raise user_error(RuntimeError, f"quantile() q must be in the range [0, 1] but got "
                                       f"{float(qs[(qs < 0) | (qs > 1)][0]):g}")
    return qs


def _rows(t: Tensor, dim):
    """t with the reduced axis last ((n,) for dim None), and the kept shape of keepdim."""
    if dim is None:
        return apply("reshape", t, shape=(t.numel(),)), (1,) * t.ndim, ()
    d = norm_axis(dim, t.ndim)
    if t.ndim == 0:
        return apply("reshape", t, shape=(1,)), (), ()
    perm = tuple(a for a in range(t.ndim) if a != d) + (d,)
    rest = tuple(t.shape[a] for a in perm[:-1])
    return apply("transpose", t, perm=perm), kept_shape(t.shape, (d,)), rest


def _positions(s: Tensor, qs: np.ndarray, ignore_nan: bool) -> Tensor:
    """q (n - 1) per row and level: shape s.shape[:-1] + (len(qs),), in s's dtype."""
    dt, n, lead = dtype_of(s), s.shape[-1], tuple(s.shape[:-1])
    shape = lead + (len(qs),)
    levels = apply("broadcast_in_dim", constant(0, dt, ()), shape=shape, dims=())
    levels = apply("add", levels, apply("broadcast_in_dim", _const_vector(qs, dt),
                                        shape=shape, dims=(len(lead),)))
    if not ignore_nan:
        return apply("mul", levels, constant(n - 1, dt, shape))
    count = apply("reduce_sum", cast(apply("eq", s, s), dt), axes=(s.ndim - 1,))
    last = apply("sub", count, constant(1, dt, lead))
    return apply("mul", levels, apply("broadcast_in_dim", last, shape=shape,
                                      dims=tuple(range(len(lead)))))


def _const_vector(qs: np.ndarray, dtype: str) -> Tensor:
    return apply("constant", value=qs.tolist(), dtype=dtype, shape=qs.shape)


def _at(s: Tensor, pos: Tensor) -> Tensor:
    """s's elements at float positions pos along the last axis (clamped into the row)."""
    n = s.shape[-1]
    idx = cast(pos, "i64")
    idx = apply("min", apply("max", idx, constant(0, "i64", idx.shape)),
                constant(n - 1, "i64", idx.shape))
    return take_along(s, idx, s.ndim - 1)


def _interpolate(s: Tensor, pos: Tensor, method: str) -> Tensor:
    if method in ("lower", "higher", "nearest"):
        snap = {"lower": floor, "higher": ceil, "nearest": round_even}[method]
        return _at(s, snap(pos))
    lo_pos, hi_pos = floor(pos), ceil(pos)
    lo, hi = _at(s, lo_pos), _at(s, hi_pos)
    if method == "midpoint":
        return apply("mul", apply("add", lo, hi), constant(0.5, dtype_of(s), lo.shape))
    w = apply("sub", pos, lo_pos)              # PyTorch's and NumPy's lerp
    gap = apply("sub", hi, lo)
    one = constant(1, dtype_of(s), w.shape)
    near_lo = apply("add", lo, apply("mul", gap, w))
    near_hi = apply("sub", hi, apply("mul", gap, apply("sub", one, w)))
    return apply("select", apply("lt", w, constant(0.5, dtype_of(s), w.shape)), near_lo, near_hi)


def _quantile(t: Tensor, q, dim, keepdim: bool, method: str, ignore_nan: bool) -> Tensor:
    if method not in METHODS:
        raise user_error(RuntimeError, f"quantile() interpolation must be one of linear, "
                                       f"lower, higher, midpoint or nearest, but got {method}")
    if not is_float(dtype_of(t)):
        raise user_error(RuntimeError, "quantile() input tensor must be either float or double "
                                       "dtype")
    qs = _levels(q)
    rows, kept, rest = _rows(t, dim)
    if rows.shape[-1] == 0:
        raise user_error(IndexError, "quantile() input tensor must be non-empty")
    s = sorted_along(rows, rows.ndim - 1)[0]
    out = _interpolate(s, _positions(s, qs.reshape(-1), ignore_nan), method)
    if not ignore_nan:                          # any NaN in the row (sorted last) gives NaN
        last = apply("broadcast_in_dim", _slice_last(s), shape=out.shape,
                     dims=tuple(range(out.ndim)))
        out = apply("select", apply("ne", last, last), last, out)
    out = apply("transpose", out, perm=(out.ndim - 1,) + tuple(range(out.ndim - 1)))
    shape = (kept if keepdim else rest)
    return apply("reshape", out, shape=qs.shape + tuple(shape))


def _slice_last(s: Tensor) -> Tensor:
    n = s.shape[-1]
    return apply("slice", s, start=(0,) * (s.ndim - 1) + (n - 1,), limit=tuple(s.shape),
                 stride=(1,) * s.ndim)


def _spelling(dim, axis, interpolation, method, keepdim, keepdims):
    return (pick_dim(dim, axis), method or interpolation or "linear",
            bool(keepdim or keepdims))


@torch_op("Quantile")
def quantile(input, q, dim=None, keepdim=False, *, interpolation=None, axis=None, method=None,
             keepdims=False):
    """The q-th quantiles along dim (None: all elements); q a number or a 1-d list/array
    (its axis comes first in the result). interpolation (NumPy: method) is linear, lower,
    higher, midpoint or nearest. A NaN in a row gives NaN."""
    dim, method, keepdim = _spelling(dim, axis, interpolation, method, keepdim, keepdims)
    return _quantile(to_tensor(input), q, dim, keepdim, method, False)


@torch_op("Nanquantile")
def nanquantile(input, q, dim=None, keepdim=False, *, interpolation=None, axis=None,
                method=None, keepdims=False):
    """quantile ignoring NaNs (a row of NaNs only gives NaN)."""
    dim, method, keepdim = _spelling(dim, axis, interpolation, method, keepdim, keepdims)
    return _quantile(to_tensor(input), q, dim, keepdim, method, True)
