"""Structural array ops: tril/triu, diag/diagonal/trace, flip/roll, tile/repeat, meshgrid, pad.

Each is a short composition of existing primitives, so gradients, batching and fusion come
from their rules: triangles are an iota mask and a select; a diagonal is a strided slice of
the flattened trailing matrix; flips and the index-based pad modes are a gather at a
constant index (the VJP is its scatter_add); roll is two slices and a concatenate; tile and
repeat are a broadcast and a reshape. Both spellings are accepted where they differ:
PyTorch's (`dim=`, `dims=`, `diagonal=`) and NumPy's (`axis=`, `k=`, `axis1=`).
"""
from __future__ import annotations

import numbers

import numpy as np

from tracer.ops.operands import (constant, dtype_of, norm_axis, pick_dim, shape_arg, to_tensor,
                                 user_error)
from tracer.ops.reduce import sum as _sum
from tracer.ops.shape import sizes_arg
from tracer.record import apply, torch_op
from tracer.tensor import Tensor, tensor_from_array

__all__ = ["tril", "triu", "diag", "diagonal", "trace", "flip", "fliplr", "flipud", "roll",
           "tile", "repeat", "repeat_interleave", "meshgrid", "pad"]


def _ints(v) -> tuple:
    return (int(v),) if isinstance(v, (numbers.Integral, np.integer)) else tuple(map(int, v))


# ---- triangles ---------------------------------------------------------------------------

def _triangle(x, k: int, lower: bool, name: str) -> Tensor:
    t = to_tensor(x)
    if t.ndim < 2:
        raise user_error(ValueError, f"{name}: input tensor must have at least 2 dimensions")
    shape = tuple(t.shape)
    rows = apply("iota", dtype="i64", shape=shape, dim=t.ndim - 2)
    cols = apply("iota", dtype="i64", shape=shape, dim=t.ndim - 1)
    gap = apply("sub", cols, rows)                       # j - i: the diagonal's number
    keep = apply("le" if lower else "ge", gap, constant(int(k), "i64", shape))
    return apply("select", keep, t, constant(0, dtype_of(t), shape))


@torch_op("Tril")
def tril(input, diagonal: int = 0, *, k=None):
    """The lower triangle of the last two axes (entries with j - i <= diagonal); the rest 0."""
    return _triangle(input, diagonal if k is None else k, True, "tril")


@torch_op("Triu")
def triu(input, diagonal: int = 0, *, k=None):
    """The upper triangle of the last two axes (entries with j - i >= diagonal); the rest 0."""
    return _triangle(input, diagonal if k is None else k, False, "triu")


# ---- diagonals ---------------------------------------------------------------------------

def _diagonal(t: Tensor, offset: int, d1: int, d2: int) -> Tensor:
    """The offset diagonal of axes (d1, d2), as a new last axis: a strided slice of the two
    axes moved last and merged."""
    if d1 == d2:
        raise user_error(ValueError, f"diagonal dimensions cannot be identical {d1}, {d2}")
    rest = [a for a in range(t.ndim) if a not in (d1, d2)]
    n, m = t.shape[d1], t.shape[d2]
    moved = apply("transpose", t, perm=tuple(rest) + (d1, d2))
    lead = tuple(t.shape[a] for a in rest)
    flat = apply("reshape", moved, shape=lead + (n * m,))
    length = max(0, min(n, m - offset) if offset >= 0 else min(n + offset, m))
    start = offset if offset >= 0 else -offset * m
    lo, hi = (start, start + (length - 1) * (m + 1) + 1) if length else (0, 0)
    k = len(lead)
    return apply("slice", flat, start=(0,) * k + (lo,), limit=lead + (hi,),
                 stride=(1,) * k + (m + 1,))


@torch_op("Diagonal")
def diagonal(input, offset: int = 0, dim1: int = 0, dim2: int = 1, *, axis1=None, axis2=None):
    """The offset diagonal of axes dim1, dim2 (NumPy: axis1, axis2), as the last axis."""
    t = to_tensor(input)
    if t.ndim < 2:
        raise user_error(ValueError, "diagonal requires an array of at least two dimensions")
    d1 = norm_axis(dim1 if axis1 is None else axis1, t.ndim)
    d2 = norm_axis(dim2 if axis2 is None else axis2, t.ndim)
    return _diagonal(t, int(offset), d1, d2)


_diagonal_op = diagonal


@torch_op("DiagEmbed")
def _diag_embed(v: Tensor, k: int) -> Tensor:
    n = v.shape[0]
    wide = apply("broadcast_in_dim", v, shape=(n, n), dims=(0,))
    eye = apply("eq", apply("iota", dtype="i64", shape=(n, n), dim=0),
                apply("iota", dtype="i64", shape=(n, n), dim=1))
    square = apply("select", eye, wide, constant(0, dtype_of(v), (n, n)))
    lo = (0, k) if k >= 0 else (-k, 0)
    hi = (k, 0) if k >= 0 else (0, -k)
    return apply("pad", square, lo=lo, hi=hi, interior=(0, 0))


def diag(input, diagonal: int = 0, *, k=None):
    """1-d: the square matrix with x on the diagonal-th diagonal; 2-d: that diagonal."""
    t = to_tensor(input)
    k = int(diagonal if k is None else k)
    if t.ndim == 1:
        return _diag_embed(t, k)
    if t.ndim != 2:
        raise user_error(ValueError, f"diag(): Supports 1D or 2D tensors. Got {t.ndim}D")
    return _diagonal_op(t, k, 0, 1)


diag.torch_name = "Diagonal"


@torch_op("Trace")
def trace(input, offset: int = 0, axis1=None, axis2=None, dtype=None):
    """The sum of the diagonal (integers sum in int64, as PyTorch); NumPy's offset and axes
    are accepted (PyTorch's trace takes a matrix only)."""
    t = to_tensor(input)
    if t.ndim != 2 and axis1 is None and axis2 is None:
        raise user_error(ValueError, f"trace: expected a matrix, but got tensor with dim "
                                     f"{t.ndim}")
    d1 = norm_axis(0 if axis1 is None else axis1, t.ndim)
    d2 = norm_axis(1 if axis2 is None else axis2, t.ndim)
    return _sum(_diagonal(t, int(offset), d1, d2), -1, dtype=dtype)


# ---- flips and rolls -----------------------------------------------------------------------

def _reverse(t: Tensor, axis: int) -> Tensor:
    n = t.shape[axis]
    if n <= 1:
        return t
    return apply("gather", t, tensor_from_array(np.arange(n - 1, -1, -1), "i64"), axis=axis)


def _flip_axes(t: Tensor, dims) -> Tensor:
    axes = [norm_axis(d, t.ndim) for d in dims]
    if len(set(axes)) != len(axes):
        raise user_error(ValueError, f"dim {axes[0]} appears multiple times in the list of dims")
    out = t
    for a in axes:
        out = _reverse(out, a)
    return apply("reshape", out, shape=tuple(t.shape)) if out is t else out


@torch_op("Flip")
def flip(input, dims=None, *, axis=None):
    """x reversed along dims (NumPy: axis; None reverses every axis)."""
    t = to_tensor(input)
    dims = pick_dim(dims, axis)
    return _flip_axes(t, range(t.ndim) if dims is None else _ints(dims))


@torch_op("Flip")
def fliplr(input):
    """x reversed along axis 1 (rank >= 2)."""
    t = to_tensor(input)
    if t.ndim < 2:
        raise user_error(ValueError, "Input must be >= 2-d.")
    return _flip_axes(t, (1,))


@torch_op("Flip")
def flipud(input):
    """x reversed along axis 0 (rank >= 1)."""
    t = to_tensor(input)
    if t.ndim < 1:
        raise user_error(ValueError, "Input must be >= 1-d.")
    return _flip_axes(t, (0,))


def _roll_axis(t: Tensor, shift: int, axis: int) -> Tensor:
    n = t.shape[axis]
    s = shift % n if n else 0
    if s == 0:
        return t
    cut = n - s
    start0, start1 = (0,) * t.ndim, tuple(cut if i == axis else 0 for i in range(t.ndim))
    mid = tuple(cut if i == axis else d for i, d in enumerate(t.shape))
    one = (1,) * t.ndim
    head = apply("slice", t, start=start0, limit=mid, stride=one)
    tail = apply("slice", t, start=start1, limit=tuple(t.shape), stride=one)
    return apply("concatenate", tail, head, axis=axis)


@torch_op("Roll")
def roll(input, shifts=None, dims=None, *, shift=None, axis=None):
    """Elements moved shifts places along dims (wrapping round); without dims, along the
    flattened x. NumPy's spelling: roll(a, shift, axis)."""
    t = to_tensor(input)
    shifts = _ints(shifts if shift is None else shift)
    dims = pick_dim(dims, axis)
    if dims is None:
        if len(shifts) != 1:
            raise user_error(ValueError, "roll: shifts and dims must align (no dims: one shift)")
        flat = apply("reshape", t, shape=(t.numel(),))
        return apply("reshape", _roll_axis(flat, shifts[0], 0), shape=tuple(t.shape))
    dims = _ints(dims)
    if len(shifts) != len(dims):
        raise user_error(ValueError, f"shifts and dimensions must align. shifts: "
                                     f"{len(shifts)}, dims:{len(dims)}")
    out = t
    for s, d in zip(shifts, dims):
        out = _roll_axis(out, s, norm_axis(d, t.ndim))
    return apply("reshape", out, shape=tuple(t.shape)) if out is t else out


# ---- tile, repeat -------------------------------------------------------------------------

def _tile(t: Tensor, reps: tuple) -> Tensor:
    """t repeated reps[i] times along each axis (rank max(t.ndim, len(reps)))."""
    rank = max(t.ndim, len(reps))
    reps = (1,) * (rank - len(reps)) + tuple(reps)
    src = apply("reshape", t, shape=(1,) * (rank - t.ndim) + tuple(t.shape))
    wide = tuple(x for r, d in zip(reps, src.shape) for x in (r, d))
    out = apply("broadcast_in_dim", src, shape=wide, dims=tuple(range(1, 2 * rank, 2)))
    return apply("reshape", out, shape=tuple(r * d for r, d in zip(reps, src.shape)))


@torch_op("Repeat")
def tile(input, dims=None, *, reps=None):
    """x repeated along each axis (NumPy's and PyTorch's tile; reps fill from the right)."""
    reps = _ints(dims if reps is None else reps)
    if any(r < 0 for r in reps):
        raise user_error(ValueError, f"Trying to create tensor with negative dimension: {reps}")
    return _tile(to_tensor(input), reps)


@torch_op("Repeat")
def tensor_repeat(x, *sizes, repeats=None):
    """Tensor.repeat(*sizes): PyTorch's repeat (NumPy's tile, but sizes cover every axis);
    PyTorch's keyword form x.repeat(repeats=(2, 3)) too."""
    t = to_tensor(x)
    sizes = shape_arg(sizes_arg("repeat", sizes, repeats, "repeats"))
    if len(sizes) < t.ndim:
        raise user_error(RuntimeError, "Number of dimensions of repeat dims can not be smaller "
                                       "than number of dimensions of tensor")
    if any(r < 0 for r in sizes):
        raise user_error(RuntimeError, f"Trying to create tensor with negative dimension: "
                                       f"{list(sizes)}")
    return _tile(t, sizes)


def _repeat_counts(repeats, n: int):
    """The repeat counts as a Python int (every element the same) or a NumPy array of n."""
    if isinstance(repeats, (numbers.Integral, np.integer)):
        return int(repeats)
    r = to_tensor(repeats)
    if r._expr.symbolic:
        raise user_error(ValueError, "repeat_interleave with traced repeats has a data-dependent "
                                     "shape: pass the repeats as a list or an array (under jit, "
                                     "a static argument)")
    counts = np.asarray(r).astype(np.int64).reshape(-1)
    if counts.size == 1:
        return int(counts[0])
    if counts.size != n:
        raise user_error(ValueError, f"repeats must have the same size as input along dim, "
                                     f"got {counts.size} repeats for size {n}")
    if (counts < 0).any():          # (said "got 3 repeats for size 3" before)
        raise user_error(ValueError, f"repeats can not be negative, got {int(counts.min())}")
    return counts


def _repeat_along(t: Tensor, repeats, axis) -> Tensor:
    if axis is None:
        t, axis = apply("reshape", t, shape=(t.numel(),)), 0
    else:
        axis = norm_axis(axis, t.ndim)
    if t.ndim == 0:
        t = apply("reshape", t, shape=(1,))
    n = t.shape[axis]
    counts = _repeat_counts(repeats, n)
    if isinstance(counts, int):
        if counts < 0:
            raise user_error(ValueError, f"repeats can not be negative, got {counts}")
        shape = tuple(t.shape)
        wide = shape[:axis + 1] + (counts,) + shape[axis + 1:]
        dims = tuple(range(axis + 1)) + tuple(range(axis + 2, t.ndim + 1))
        out = apply("broadcast_in_dim", t, shape=wide, dims=dims)
        return apply("reshape", out, shape=shape[:axis] + (n * counts,) + shape[axis + 1:])
    idx = np.repeat(np.arange(n), counts)
    return apply("gather", t, tensor_from_array(idx, "i64"), axis=axis)


@torch_op("IndexSelect")
def repeat_interleave(input, repeats=None, dim=None, *, output_size=None, axis=None,
                      total_repeat_length=None):
    """Each element repeated `repeats` times (an int, or one count per element) along dim
    (None: the flattened x). `repeat_interleave(counts)` alone gives indices, as PyTorch."""
    if repeats is None:
        counts = np.asarray(to_tensor(input)).astype(np.int64)
        return tensor_from_array(np.repeat(np.arange(counts.size), counts), "i64")
    return _repeat_along(to_tensor(input), repeats, pick_dim(dim, axis))


@torch_op("IndexSelect")
def repeat(x, repeats, axis=None, *, total_repeat_length=None):
    """numpy.repeat / jax.numpy.repeat (Tensor.repeat is PyTorch's, which tiles)."""
    return _repeat_along(to_tensor(x), repeats, axis)


# ---- meshgrid --------------------------------------------------------------------------------

@torch_op("Expand")
def meshgrid(*tensors, indexing: str | None = None, sparse: bool = False, copy: bool = True):
    """Coordinate grids of 1-d tensors. indexing "ij" (PyTorch's default) or "xy" (NumPy's
    default: gradjit follows PyTorch when indexing is not given)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    indexing = indexing or "ij"
    if indexing not in ("ij", "xy"):
        raise user_error(ValueError, f'torch.meshgrid: indexing must be one of "xy" or "ij", '
                                     f'but received: {indexing}')
    ts = [to_tensor(v) for v in tensors]
    ts = [apply("reshape", v, shape=(v.numel(),)) if v.ndim != 1 else v for v in ts]
    sizes = [v.shape[0] for v in ts]
    if indexing == "xy" and len(ts) >= 2:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, v in enumerate(ts):
        axis = ((1, 0) + tuple(range(2, len(ts))))[i] if indexing == "xy" and len(ts) >= 2 else i
        shape = tuple(sizes) if not sparse else tuple(
            s if a == axis else 1 for a, s in enumerate(sizes))
        out.append(apply("broadcast_in_dim", v, shape=shape, dims=(axis,)))
    return tuple(out)


# ---- pad (NumPy's spelling) ------------------------------------------------------------------

_INDEX_MODES = ("edge", "reflect", "symmetric", "wrap")


def _pad_pairs(pad_width, ndim: int) -> list:
    pairs = np.broadcast_to(np.asarray(pad_width, dtype=np.int64).reshape(-1, 2)
                            if np.ndim(pad_width) else np.asarray(pad_width), (ndim, 2))
    if (pairs < 0).any():
        raise user_error(ValueError, "index can't contain negative values")
    return [(int(a), int(b)) for a, b in pairs]


def _block(like: Tensor, axis: int, width: int, value) -> list:
    """[a constant block like `like` but `width` long on axis], or [] when width is 0."""
    shape = tuple(width if i == axis else d for i, d in enumerate(like.shape))
    return [constant(value, dtype_of(like), shape)] if width else []


def _pad_constant(t: Tensor, pairs, values) -> Tensor:
    if not np.any(values):
        return apply("pad", t, lo=tuple(a for a, _ in pairs), hi=tuple(b for _, b in pairs),
                     interior=(0,) * t.ndim)
    out = t
    for axis, ((lo, hi), (vlo, vhi)) in enumerate(zip(pairs, values)):
        parts = _block(out, axis, lo, vlo) + [out] + _block(out, axis, hi, vhi)
        if len(parts) > 1:
            out = apply("concatenate", *parts, axis=axis)
    return out


def _pad_index(t: Tensor, pairs, mode: str) -> Tensor:
    out = t
    for axis, (lo, hi) in enumerate(pairs):
        if not lo and not hi:
            continue
        n = t.shape[axis]
        if n == 0:
            raise user_error(ValueError, f"can't extend empty axis {axis} using modes other "
                                         f"than 'constant' or 'empty'")
        idx = np.pad(np.arange(n), (lo, hi), mode=mode)     # NumPy's own index rule
        out = apply("gather", out, tensor_from_array(idx, "i64"), axis=axis)
    return out


@torch_op("ConstantPadNd")
def pad(array, pad_width, mode: str = "constant", *, constant_values=0):
    """numpy.pad: pad_width is an int, a (before, after) pair, or one pair per axis; mode
    "constant" (constant_values), "edge", "reflect", "symmetric" or "wrap". PyTorch's
    spelling (pad pairs from the last axis) is torch.nn.functional.pad."""
    t = to_tensor(array)
    pairs = _pad_pairs(pad_width, t.ndim)
    if mode == "constant":
        values = np.broadcast_to(np.asarray(constant_values, dtype=np.float64), (t.ndim, 2))
        return _pad_constant(t, pairs, values.tolist())
    if mode not in _INDEX_MODES:
        raise user_error(ValueError, f"mode '{mode}' is not supported (constant, "
                                     f"{', '.join(_INDEX_MODES)})")
    out = _pad_index(t, pairs, mode)
    return apply("reshape", out, shape=tuple(t.shape)) if out is t else out

