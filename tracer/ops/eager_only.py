"""Ops whose result shape depends on the data: nonzero, argwhere, unique, masked_select,
bincount (and where with one argument, in tracer/ops/elementwise.py).

They run on concrete values (imperative code). Under a functional trace (jit, grad, vmap)
the data is unknown, so they raise TracerError naming the op and the user's line, and
point to JAX's static-size arguments where JAX has them: nonzero / argwhere (`size=`,
`fill_value=`) and bincount (`length=`) then work under a trace too, computed in the graph
with a cumulative sum and a scatter. count_nonzero has a static shape and always works.
masked_select is differentiable in x (a gather at the mask's concrete positions).
"""
from __future__ import annotations

import math

import numpy as np

from tracer.errors import TracerError
from tracer.ops.operands import (broadcast, broadcast_shapes, cast, constant, dtype_of,
                                 norm_axes, to_tensor, user_error)
from tracer.record import apply, torch_op
from tracer.tensor import Tensor, tensor_from_array

__all__ = ["nonzero", "argwhere", "count_nonzero", "unique", "masked_select", "bincount"]


def concrete(x, op: str, static_hint: str = "") -> np.ndarray:
    """x's data; TracerError naming op (and the user's line) when x is traced."""
    t = to_tensor(x)
    if t._expr.symbolic:
        raise user_error(TracerError, f"{op}() has a data-dependent output shape, so it cannot "
                                      f"run under a trace (jit, grad, vmap){static_hint}")
    return np.asarray(t)


def _indices(arr: np.ndarray) -> Tensor:
    return tensor_from_array(np.ascontiguousarray(arr, dtype=np.int64), "i64")


# ---- nonzero / argwhere ------------------------------------------------------------------

def _nonzero_static(t: Tensor, size: int, fill_value) -> tuple:
    """JAX's nonzero(size=, fill_value=): the first `size` non-zero positions of each axis,
    padded with fill_value, computed in the graph (traceable)."""
    n = t.numel()
    flat = apply("reshape", t, shape=(n,))
    hit = apply("ne", flat, constant(0, dtype_of(flat), (n,)))
    rank = apply("cumsum", cast(hit, "i64"), axis=0, reverse=False) if n else hit
    # the k-th hit goes to slot k; misses (and hits past size) to the spare slot `size`
    slot = apply("sub", rank, constant(1, "i64", (n,))) if n else cast(hit, "i64")
    keep = apply("logical_and", hit, apply("lt", slot, constant(size, "i64", (n,))))
    slot = apply("select", keep, slot, constant(size, "i64", (n,)))
    where = apply("iota", dtype="i64", shape=(n,), dim=0)
    found = apply("scatter_add", constant(0, "i64", (size + 1,)), slot, where, axis=0)
    found = apply("slice", found, start=(0,), limit=(size,), stride=(1,))
    count = apply("reduce_sum", cast(hit, "i64"), axes=(0,))
    valid = apply("lt", apply("iota", dtype="i64", shape=(size,), dim=0),
                  apply("broadcast_in_dim", count, shape=(size,), dims=()))
    out = []
    shape = tuple(t.shape) or (1,)
    for d, s in enumerate(shape):
        stride = math.prod(shape[d + 1:])
        coord = apply("div", found, constant(stride, "i64", (size,)))
        if d:
            coord = apply("sub", coord, apply("mul", apply("div", coord, constant(
                s, "i64", (size,))), constant(s, "i64", (size,))))
        fill = fill_value if fill_value is not None else 0
        out.append(apply("select", valid, coord, constant(fill, "i64", (size,))))
    return tuple(out)


@torch_op("Nonzero")
def nonzero(input, *, as_tuple=False, size=None, fill_value=None):
    """The indices of x's non-zero elements: PyTorch's (count, ndim) int64 tensor, or one
    1-d tensor per axis with as_tuple (numpy.nonzero's form). Eager only, unless JAX's size=
    is given: then a tuple of `size` indices per axis, padded with fill_value (default 0)."""
    if size is not None:
        return _nonzero_static(to_tensor(input), int(size), fill_value)
    arr = concrete(input, "nonzero", "; give size= (and fill_value=) for a static shape")
    coords = np.nonzero(np.atleast_1d(arr)) if arr.ndim == 0 else np.nonzero(arr)
    if as_tuple:
        return tuple(_indices(c) for c in coords)
    return _indices(np.stack(coords, axis=1) if arr.ndim else
                    np.zeros((int(arr != 0), 0), np.int64))


@torch_op("Nonzero")
def argwhere(input, *, size=None, fill_value=None):
    """(count, ndim) int64 indices of the non-zero elements (torch.argwhere); JAX's size=
    makes it static (and traceable), padded with fill_value."""
    if size is not None:
        coords = _nonzero_static(to_tensor(input), int(size), fill_value)
        cols = [apply("reshape", c, shape=(int(size), 1)) for c in coords]
        return apply("concatenate", *cols, axis=1)
    return nonzero(input)


@torch_op("CountNonzero")
def count_nonzero(input, dim=None, *, axis=None, keepdims=False):
    """The number of non-zero elements over dim (all when None), int64; traceable."""
    t = to_tensor(input)
    axes = norm_axes(dim if axis is None else axis, t.ndim)
    hit = cast(apply("ne", t, constant(0, dtype_of(t), tuple(t.shape))), "i64")
    out = apply("reduce_sum", hit, axes=axes)
    if keepdims:
        out = apply("reshape", out, shape=tuple(1 if a in axes else s
                                                for a, s in enumerate(t.shape)))
    return out


# ---- unique, masked_select, bincount --------------------------------------------------------

@torch_op("Unique")
def unique(x, sorted=True, return_inverse=False, return_counts=False, dim=None, *,
           return_index=False, axis=None, equal_nan=False):
    """The distinct values in ascending order (torch.unique; NumPy's return_index and axis=
    accepted); with return_inverse / return_counts, a tuple as PyTorch returns. NaNs stay
    distinct, as in PyTorch (NumPy merges them: equal_nan=True). Eager only."""
    arr = concrete(x, "unique")
    axis = dim if axis is None else axis
    got = np.unique(arr, return_index=return_index, return_inverse=return_inverse,
                    return_counts=return_counts, axis=axis, equal_nan=equal_nan)
    if not isinstance(got, tuple):
        return tensor_from_array(got, dtype_of(to_tensor(x)))
    values, *rest = got
    if return_inverse:
        k = 1 if return_index else 0
        rest[k] = rest[k].reshape(arr.shape if axis is None else (arr.shape[axis],))
    return (tensor_from_array(values, dtype_of(to_tensor(x))),) + tuple(map(_indices, rest))


@torch_op("MaskedSelect")
def masked_select(input, mask):
    """x's elements where mask (broadcast together) is true, as a 1-d tensor; differentiable
    in x. The mask must be concrete (eager); x may be traced."""
    t = to_tensor(input)
    m = concrete(mask, "masked_select")
    if m.dtype != np.bool_:
        raise user_error(RuntimeError, f"masked_select: expected BoolTensor for mask, got "
                                       f"{m.dtype}")
    shape = broadcast_shapes(tuple(t.shape), m.shape)
    flat = apply("reshape", broadcast(t, shape), shape=(math.prod(shape),))
    where = np.flatnonzero(np.broadcast_to(m, shape))
    return apply("gather", flat, _indices(where), axis=0)


def _bincount_static(t: Tensor, weights, length: int) -> Tensor:
    """JAX's bincount(length=): counts of 0..length-1 in the graph; others are dropped."""
    n = t.numel()
    idx = cast(t, "i64")
    inside = apply("logical_and", apply("ge", idx, constant(0, "i64", (n,))),
                   apply("lt", idx, constant(length, "i64", (n,))))
    idx = apply("select", inside, idx, constant(length, "i64", (n,)))
    w = to_tensor(weights) if weights is not None else constant(1, "i64", (n,))
    w = apply("select", inside, w, constant(0, dtype_of(w), (n,)))
    out = apply("scatter_add", constant(0, dtype_of(w), (length + 1,)), idx, w, axis=0)
    return apply("slice", out, start=(0,), limit=(length,), stride=(1,))


@torch_op("Bincount")
def bincount(input, weights=None, minlength=0, *, length=None):
    """Counts (or summed weights) of each value 0..max(x) of a 1-d non-negative integer x.
    Eager only, unless JAX's length= is given (then values >= length are dropped)."""
    t = to_tensor(input)
    if t.ndim != 1 or dtype_of(t) not in ("i32", "i64"):
        raise user_error(RuntimeError, "bincount only supports 1-d non-negative integral "
                                       "inputs.")
    if length is not None:
        return _bincount_static(t, weights, int(length))
    arr = concrete(t, "bincount", "; give length= for a static shape")
    if (arr < 0).any():
        raise user_error(RuntimeError, "bincount only supports 1-d non-negative integral "
                                       "inputs.")
    size = max(int(arr.max()) + 1 if arr.size else 0, int(minlength))
    return _bincount_static(t, weights, size)
