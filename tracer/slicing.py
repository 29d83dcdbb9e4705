"""Slices at traced offsets, as jax.lax spells them: dynamic_slice, dynamic_update_slice,
dynamic_index_in_dim and their _in_dim forms.

Start indices may be Python ints or traced integer scalars. As in JAX, a negative start
counts from the end, then every start is clamped so the slice lies inside the operand (a
start of 100 on an axis of 5 with a slice of 2 starts at 3): never an error, never an
out-of-bounds read. Traced offsets become `gather`s along each axis (an iota plus the
offset), and an update becomes a `select` of the update gathered into place, so the VJP,
JVP and batching rules of gather and select apply, and vmap over the offsets works.
"""
from __future__ import annotations

import numpy as np

from tracer import record
from tracer.ops.operands import user_error
from tracer.staging import as_tensor
from tracer.tensor import Tensor

__all__ = ["dynamic_slice", "dynamic_update_slice", "dynamic_index_in_dim",
           "dynamic_slice_in_dim", "dynamic_update_slice_in_dim", "dynamic_update_index_in_dim"]


def _i32(value, shape=()) -> Tensor:
    return record.apply("constant", value=int(value), dtype="i32", shape=tuple(shape))


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _start(s, dim: int, size: int, what: str):
    """The start of a slice of `size` on an axis of `dim`: a Python int if s is one, else
    an i32 scalar Tensor; negatives wrap once, then clamped into [0, dim - size]."""
    if _is_int(s):
        s = int(s) + dim if s < 0 else int(s)
        return min(max(s, 0), dim - size)
    t = as_tensor(s)
    if t._expr.type.shape != () or t._expr.type.dtype not in ("i32", "i64"):
        raise user_error(TypeError, f"{what}: start indices must be integer scalars, got "
                                    f"{t._expr.type}")
    t = record.apply("convert", t, dtype="i32") if t._expr.type.dtype != "i32" else t
    wrapped = record.apply("add", t, _i32(dim))
    t = record.apply("select", record.apply("lt", t, _i32(0)), wrapped, t)
    return record.apply("min", record.apply("max", t, _i32(0)), _i32(dim - size))


def _check_starts(x: Tensor, starts, what: str):
    if len(starts) != x._expr.type.ndim:
        raise user_error(TypeError, f"{what}: got {len(starts)} start indices for an operand "
                                    f"of rank {x._expr.type.ndim} ({x._expr.type})")


def _offsets(start, n: int) -> Tensor:
    """start + [0, 1, ..., n-1] as i32 (start a Python int or an i32 scalar)."""
    iota = record.apply("iota", dtype="i32", shape=(n,), dim=0)
    if _is_int(start):
        return record.apply("add", iota, _i32(start, (n,))) if start else iota
    return record.apply("add", iota, record.apply("broadcast_in_dim", start, shape=(n,), dims=()))


def dynamic_slice(operand, start_indices, slice_sizes):
    """operand[s0:s0+n0, s1:s1+n1, ...] for (possibly traced) starts s and static sizes n
    (jax.lax.dynamic_slice); starts are clamped into range."""
    x = as_tensor(operand)
    shape = x._expr.type.shape
    _check_starts(x, start_indices, "dynamic_slice")
    sizes = tuple(int(n) for n in slice_sizes)
    if len(sizes) != len(shape) or any(not 0 <= n <= d for n, d in zip(sizes, shape)):
        raise user_error(TypeError, f"dynamic_slice: slice sizes {list(sizes)} must be "
                                    f"between 0 and the operand's shape {list(shape)}")
    for axis, (s, n, d) in enumerate(zip(start_indices, sizes, shape)):
        start = _start(s, d, n, "dynamic_slice")
        if _is_int(start):
            if (start, n) != (0, d):
                lo = [0] * len(shape)
                hi = list(x._expr.type.shape)
                lo[axis], hi[axis] = start, start + n
                x = record.apply("slice", x, start=tuple(lo), limit=tuple(hi),
                                 stride=(1,) * len(shape))
        elif n != d:
            x = record.apply("gather", x, _offsets(start, n), axis=axis)
    return x


def dynamic_update_slice(operand, update, start_indices):
    """operand with update written at (possibly traced) starts (jax.lax.dynamic_update_slice);
    starts are clamped so the update fits. Differentiable in both operand and update."""
    x, u = as_tensor(operand), as_tensor(update)
    xt, ut = x._expr.type, u._expr.type
    _check_starts(x, start_indices, "dynamic_update_slice")
    if ut.ndim != xt.ndim or any(a > b for a, b in zip(ut.shape, xt.shape)):
        raise user_error(TypeError, f"dynamic_update_slice: update {ut} must have the "
                                    f"operand's rank and fit inside it ({xt})")
    if ut.dtype != xt.dtype:
        u = record.apply("convert", u, dtype=xt.dtype)
    if ut.size == 0:
        return x
    placed, mask = u, None
    for axis, (s, n, d) in enumerate(zip(start_indices, ut.shape, xt.shape)):
        start = _start(s, d, n, "dynamic_update_slice")
        pos = record.apply("iota", dtype="i32", shape=(d,), dim=0)
        first = start if not _is_int(start) else _i32(start)
        rel = record.apply("sub", pos, record.apply("broadcast_in_dim", first, shape=(d,),
                                                     dims=()))
        inside = record.apply("logical_and", record.apply("ge", rel, _i32(0, (d,))),
                              record.apply("lt", rel, _i32(n, (d,))))
        rel = record.apply("min", record.apply("max", rel, _i32(0, (d,))), _i32(n - 1, (d,)))
        placed = record.apply("gather", placed, rel, axis=axis)
        inside = record.apply("broadcast_in_dim", inside, shape=xt.shape, dims=(axis,))
        mask = inside if mask is None else record.apply("logical_and", mask, inside)
    return record.apply("select", mask, placed, x)


def dynamic_slice_in_dim(operand, start_index, slice_size: int, axis: int = 0):
    """dynamic_slice along one axis (jax.lax.dynamic_slice_in_dim)."""
    x = as_tensor(operand)
    shape = x._expr.type.shape
    axis = _axis(axis, len(shape), "dynamic_slice_in_dim")
    starts = [0] * len(shape)
    starts[axis] = start_index
    sizes = list(shape)
    sizes[axis] = slice_size
    return dynamic_slice(x, starts, sizes)


def dynamic_index_in_dim(operand, index, axis: int = 0, keepdims: bool = True):
    """The slice at (possibly traced) `index` along axis, kept as a size-1 axis or dropped
    (jax.lax.dynamic_index_in_dim)."""
    x = as_tensor(operand)
    axis = _axis(axis, x._expr.type.ndim, "dynamic_index_in_dim")
    out = dynamic_slice_in_dim(x, index, 1, axis)
    if keepdims:
        return out
    shape = out._expr.type.shape
    return record.apply("reshape", out, shape=shape[:axis] + shape[axis + 1:])


def dynamic_update_slice_in_dim(operand, update, start_index, axis: int = 0):
    """dynamic_update_slice along one axis (jax.lax.dynamic_update_slice_in_dim)."""
    x = as_tensor(operand)
    axis = _axis(axis, x._expr.type.ndim, "dynamic_update_slice_in_dim")
    starts = [0] * x._expr.type.ndim
    starts[axis] = start_index
    return dynamic_update_slice(x, update, starts)


def dynamic_update_index_in_dim(operand, update, index, axis: int = 0):
    """Writes update (with or without the size-1 axis) at index along axis."""
    x, u = as_tensor(operand), as_tensor(update)
    axis = _axis(axis, x._expr.type.ndim, "dynamic_update_index_in_dim")
    if u._expr.type.ndim == x._expr.type.ndim - 1:
        shape = u._expr.type.shape
        u = record.apply("reshape", u, shape=shape[:axis] + (1,) + shape[axis:])
    return dynamic_update_slice_in_dim(x, u, index, axis)


def _axis(axis: int, ndim: int, what: str) -> int:
    if not -ndim <= axis < max(ndim, 1):
        raise user_error(ValueError, f"{what}: axis {axis} out of range for rank {ndim}")
    return axis % max(ndim, 1)
