"""gather / take_along_dim / index_select / index_add / scatter_add, and the index helpers.

The IR has one gather primitive (numpy.take along one axis) and its transpose scatter_add.
PyTorch's gather (take_along_axis) is a gather on the flattened tensor at a linear index
built from iota coordinates, so its VJP is a scatter_add and vice versa. Indices known at
trace time are bounds-checked (IndexError naming the user's line) and negative ones wrapped;
indices computed in traced code are wrapped with a select (out-of-range ones are clamped by
the kernels, never read out of bounds).
"""
from __future__ import annotations

import math

import numpy as np

from ir.core import is_float
from tracer import op_memo
from tracer.ops.operands import (broadcast, broadcast_shapes, cast, constant, dtype_of,
                                 norm_axis, to_tensor, user_error)
from tracer.record import apply, torch_op
from tracer.tensor import Tensor, tensor_from_array

__all__ = ["gather", "take_along_dim", "index_select", "index_add", "scatter_add"]


def index_tensor(v, size: int, dim: int, wrap: bool = True, error=IndexError) -> Tensor:
    """v (list, array or integer Tensor) as an i64 index into an axis of length size; a
    concrete value out of range raises error (PyTorch: IndexError for x[i] and index_select,
    RuntimeError for gather, index_add and scatter_add)."""
    if isinstance(v, (list, tuple)):
        arr = np.array(v)
        v = arr.astype(np.int64) if arr.size == 0 else arr
    t = to_tensor(v)
    if dtype_of(t) not in ("i32", "i64"):
        raise user_error(IndexError, "tensors used as indices must be long, int, byte or bool "
                                     f"tensors, got {dtype_of(t)}")
    data = check_index_values(t, size, dim, wrap, error)
    if data is not None:
        if wrap and (data < 0).any():
            return tensor_from_array(np.where(data < 0, data + size, data), "i64")
        return cast(t, "i64")
    t = _wrapped(cast(t, "i64"), size, wrap)
    # traced: out-of-bounds indices clamp to the axis (JAX's rule for gathers), per axis,
    # so that a multi-axis index never lands in a neighbouring row
    return _clamp(t, size)


def check_index_values(t: Tensor, size: int, dim: int, wrap: bool = True, error=IndexError):
    """An integer index Tensor's values (computed if pending), or None when symbolic; an
    out-of-range value is PyTorch's IndexError, naming the user's line."""
    data = t._expr.data
    if data is None and not t._expr.symbolic:
        data = _reshaped_data(t._expr)
        if data is None:
            data = np.asarray(t)    # imperative: the index is concrete, so PyTorch's check
    if data is not None:
        bad = data[(data >= size) | (data < (-size if wrap else 0))]
        if bad.size:
            raise user_error(error, f"index {int(bad.flat[0])} is out of bounds for "
                                         f"dimension {dim} with size {size}")
    return data


def _reshaped_data(e) -> np.ndarray | None:
    """The values of a pending chain of reshapes of a data leaf (embedding's
    `idx.reshape(-1)`), reshaped by NumPy: the check reads them without realising the chain
    (a read of its own each step, ~80-120 us of a transformer's step); None otherwise."""
    shape = e.type.shape
    while e.data is None and e.op is not None and e.op.prim.name == "reshape":
        e = e.args[0]
    return None if e.data is None else e.data.reshape(shape)


def _wrapped(t: Tensor, size: int, wrap: bool) -> Tensor:
    """A traced i64 index with negative entries counted from the end (when wrap)."""
    if not wrap:
        return t
    negative = apply("lt", t, constant(0, "i64", t.shape))
    return apply("select", negative, apply("add", t, constant(size, "i64", t.shape)), t)


def _clamp(t: Tensor, size: int) -> Tensor:
    low = constant(0, "i64", t.shape)
    high = constant(max(size - 1, 0), "i64", t.shape)
    return apply("min", apply("max", t, low), high)


def scatter_index(v, size: int, dim: int, wrap: bool = True, error=RuntimeError):
    """(index, valid) for a scatter: the index as index_tensor makes it, and, when it is
    traced, a bool Tensor marking the entries inside the axis (None when concrete: those were
    checked). Updates at invalid entries are dropped, as JAX's scatters do."""
    idx = index_tensor(v, size, dim, wrap, error)
    t = to_tensor(v)
    if not t._expr.symbolic or isinstance(v, (list, tuple)):
        return idx, None
    raw = _wrapped(cast(t, "i64"), size, wrap)
    valid = apply("logical_and", apply("ge", raw, constant(0, "i64", raw.shape)),
                  apply("lt", raw, constant(size, "i64", raw.shape)))
    return idx, valid


def _drop_invalid(src: Tensor, valid, axis: int) -> Tensor:
    """src with the updates at invalid index entries replaced by zeros (valid broadcast along
    the other axes of src, whose axis `axis` it runs along; or of src's shape)."""
    if valid is None:
        return src
    if tuple(valid.shape) != tuple(src.shape):
        valid = apply("broadcast_in_dim", valid, shape=tuple(src.shape), dims=(axis,))
    return apply("select", valid, src, constant(0, dtype_of(src), tuple(src.shape)))


def linear_index(coords: list[Tensor], sizes) -> Tensor:
    """sum_k coords[k] * stride_k for a row-major array of shape sizes (coords: one shape)."""
    strides = [math.prod(sizes[k + 1:]) for k in range(len(sizes))]
    lin = None
    for c, stride in zip(coords, strides):
        term = c if stride == 1 else apply("mul", c, constant(stride, "i64", c.shape))
        lin = term if lin is None else apply("add", lin, term)
    return lin


def take_along(x: Tensor, idx: Tensor, axis: int) -> Tensor:
    """out[..., j, ...] = x[..., idx[..., j, ...], ...] along axis; idx (i64) has x's rank
    and no larger sizes (numpy.take_along_axis, torch.gather)."""
    if x.ndim <= 1:
        flat = x if x.ndim == 1 else apply("reshape", x, shape=(1,))
        return apply("gather", flat, idx, axis=0)
    shape = tuple(idx.shape)
    coords = [idx if d == axis else apply("iota", dtype="i64", shape=shape, dim=d)
              for d in range(x.ndim)]
    flat = apply("reshape", x, shape=(x.numel(),))
    return apply("gather", flat, linear_index(coords, tuple(x.shape)), axis=0)


def _check_index_shape(t: Tensor, idx: Tensor, dim: int, what: str):
    if idx.ndim != t.ndim and not (idx.ndim <= 1 and t.ndim <= 1):
        raise user_error(IndexError, f"{what}: Index tensor must have the same number of "
                                     f"dimensions as input tensor ({idx.ndim} vs {t.ndim})")
    for d, (i, s) in enumerate(zip(idx.shape, t.shape)):
        if d != dim and i > s:
            raise user_error(IndexError, f"{what}: Size does not match at dimension {d}: index "
                                         f"{list(idx.shape)} vs input {list(t.shape)}")


@torch_op("Gather", saves=(0, 2))
def gather(input, dim, index, *, sparse_grad=False):
    """out[i][j][k] = x[i][index[i][j][k]][k] for dim=1 (torch.gather); out has index's shape."""
    t = to_tensor(input)
    d = norm_axis(dim, t.ndim)
    idx = index_tensor(index, t.shape[d] if t.ndim else 1, d, wrap=False, error=RuntimeError)
    _check_index_shape(t, idx, d, "gather()")
    if t.ndim == 0:
        return apply("reshape", take_along(t, apply("reshape", idx, shape=(1,)), 0), shape=())
    return take_along(t, idx if idx.ndim == t.ndim else apply("reshape", idx, shape=(1,)), d)


@torch_op("Gather", saves=(0,))     # (PyTorch's node checks not the user's indices' version)
def take_along_dim(input, indices, dim=None):
    """numpy.take_along_axis with broadcasting; dim=None works on the flattened tensor."""
    t = to_tensor(input)
    if dim is None:
        t = apply("reshape", t, shape=(t.numel(),))
        idx = index_tensor(indices, t.shape[0], 0)
        return take_along(t, apply("reshape", idx, shape=(idx.numel(),)), 0)
    d = norm_axis(dim, t.ndim)
    idx = index_tensor(indices, t.shape[d], d)
    if idx.ndim != t.ndim:
        raise user_error(IndexError, "take_along_dim: input and indices should have the same "
                                     f"number of dimensions, got {t.ndim} and {idx.ndim}")
    rest = broadcast_shapes(*(tuple(a.shape[:d] + (1,) + a.shape[d + 1:]) for a in (t, idx)))
    t = broadcast(t, rest[:d] + (t.shape[d],) + rest[d + 1:])
    idx = broadcast(idx, rest[:d] + (idx.shape[d],) + rest[d + 1:])
    return take_along(t, idx, d)


@torch_op("IndexSelect", saves=(2,))
def index_select(input, dim, index):
    """The slices of x at index (1-d) along dim."""
    t = to_tensor(input)
    d = norm_axis(dim, t.ndim)
    if t.ndim == 0:
        t = apply("reshape", t, shape=(1,))
    idx = _select_index(index, t.shape[d], d)
    if idx.ndim > 1:
        raise user_error(IndexError, "index_select(): Index is supposed to be a vector")
    idx = apply("reshape", idx, shape=(idx.numel(),))
    out = apply("gather", t, idx, axis=d)
    return apply("reshape", out, shape=()) if to_tensor(input).ndim == 0 else out


def _select_index(index, size: int, dim: int) -> Tensor:
    """index_tensor for index_select (and so F.embedding), whose indices PyTorch does not
    count from the end: a concrete negative value is its IndexError, as one >= size. A
    concrete integer Tensor is used as it is (no new array: the ops recorded then depend on
    the index's type only, so op_memo replays them, as for the embedding of every eager
    transformer step, after _index_select_guard has redone the check). A traced index's
    values are unknown: wrapped, then clamped, as every traced gather's."""
    symbolic = isinstance(index, Tensor) and index._expr.symbolic
    return index_tensor(index, size, dim, wrap=symbolic)


def _index_select_guard(args, kwargs):
    """The value check of _select_index before op_memo replays index_select(input, dim,
    index): the same IndexError as the body's."""
    named = dict(zip(("input", "dim", "index"), args), **kwargs)
    t, index = named.get("input"), named.get("index")
    if isinstance(t, Tensor) and isinstance(index, Tensor) and \
            dtype_of(index) in ("i32", "i64"):
        d = norm_axis(named.get("dim"), t.ndim)
        check_index_values(index, t.shape[d] if t.ndim else 1, d, wrap=False)


op_memo.GUARDS["IndexSelect"] = _index_select_guard


@torch_op("IndexAdd", saves=(2, 3))
def index_add(input, dim, index, source, *, alpha=1):
    """x with source's slices added at index along dim (duplicates accumulate)."""
    t = to_tensor(input)
    d = norm_axis(dim, t.ndim)
    flat0 = t.ndim == 0
    if flat0:
        t = apply("reshape", t, shape=(1,))
    idx, valid = scatter_index(index, t.shape[d], d)
    idx = apply("reshape", idx, shape=(idx.numel(),))
    if valid is not None:
        valid = apply("reshape", valid, shape=(idx.numel(),))
    src = _source(source, t)
    want = tuple(t.shape[:d]) + (idx.shape[0],) + tuple(t.shape[d + 1:])
    if tuple(src.shape) != want and not (flat0 and src.numel() == idx.shape[0]):
        raise user_error(IndexError, f"index_add(): source of shape {list(src.shape)} does not "
                                     f"fit {list(t.shape)} with {idx.shape[0]} indices along "
                                     f"dim {d} (want {list(want)})")
    src = apply("reshape", src, shape=want)
    if alpha != 1:
        src = apply("mul", src, constant(alpha, dtype_of(t), want))
    out = apply("scatter_add", t, idx, _drop_invalid(src, valid, d), axis=d)
    return apply("reshape", out, shape=()) if flat0 else out


def _source(source, t: Tensor) -> Tensor:
    """source in t's dtype; a conversion that would lose the kind (float -> int) is an error."""
    src = to_tensor(source)
    if is_float(dtype_of(src)) and not is_float(dtype_of(t)):
        raise user_error(TypeError, f"source dtype {dtype_of(src)} does not match the "
                                    f"tensor's dtype {dtype_of(t)}")
    return cast(src, dtype_of(t))


@torch_op("ScatterAdd", saves=(2,))
def scatter_add(input, dim, index, src):
    """out[i][index[i][j]][k] += src[i][j][k] for dim=1 (torch.scatter_add), on a copy of x."""
    t = to_tensor(input)
    d = norm_axis(dim, t.ndim)
    idx, valid = scatter_index(index, t.shape[d] if t.ndim else 1, d, wrap=False)
    _check_index_shape(t, idx, d, "scatter_add()")
    s = _source(src, t)
    if s.ndim != idx.ndim or any(i > k for i, k in zip(idx.shape, s.shape)):
        raise user_error(IndexError, f"scatter_add(): index {list(idx.shape)} is larger than "
                                     f"src {list(s.shape)}")
    if tuple(s.shape) != tuple(idx.shape):
        s = apply("slice", s, start=(0,) * s.ndim, limit=tuple(idx.shape), stride=(1,) * s.ndim)
    s = _drop_invalid(s, valid, d)
    flat = apply("reshape", t, shape=(t.numel(),))
    if t.ndim <= 1:
        lin = apply("reshape", idx, shape=(idx.numel(),))
        s = apply("reshape", s, shape=(idx.numel(),))
    else:
        shape = tuple(idx.shape)
        coords = [idx if k == d else apply("iota", dtype="i64", shape=shape, dim=k)
                  for k in range(t.ndim)]
        lin = linear_index(coords, tuple(t.shape))
    if dtype_of(t) == "bool":     # bools add as "or": counted in ints (the primitive wraps)
        counts = apply("scatter_add", cast(flat, "i64"), lin, cast(s, "i64"), axis=0)
        out = apply("ne", counts, constant(0, "i64", counts.shape))
    else:
        out = apply("scatter_add", flat, lin, s, axis=0)
    return apply("reshape", out, shape=tuple(t.shape))
