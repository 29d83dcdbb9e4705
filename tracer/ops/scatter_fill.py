"""scatter (out of place, with src or a value, reduce=), index_fill, unfold, rsub, and the
real/imag properties of real tensors.

The IR's only scatter is scatter_add. An overwriting scatter is built from it in rounds: the
index entries are numbered by how many earlier entries hit the same element, and round r
writes the entries numbered r (distinct elements within a round, so a scatter_add of them
is a write). Later rounds overwrite earlier ones: the last duplicate wins, as in PyTorch's
serial CPU loop. The rounds need the index's values, so a traced (symbolic) index is refused.
unfold is a copy (a gather), not a view as in PyTorch (docs/compat.md).
"""
from __future__ import annotations

import numpy as np

from tracer.ops import elementwise as ew
from tracer.ops.indexing import _check_index_shape, check_index_values
from tracer.ops.operands import cast, constant, dtype_of, norm_axis, to_tensor, user_error
from tracer.record import apply, torch_op
from tracer.tensor import Tensor, tensor_from_array

__all__ = ["scatter", "index_fill", "unfold", "rsub"]

_REDUCES = (None, "add", "multiply")


def _concrete_index(index, name: str, size: int, dim: int, dtypes=("i32", "i64")):
    t = to_tensor(index)
    if dtype_of(t) not in dtypes:
        if name == "scatter":
            raise user_error(RuntimeError, "scatter(): Expected dtype int32/int64 for index")
        raise user_error(IndexError, f"{name}(): Expected dtype int64 for index.")
    if t._expr.symbolic:
        raise user_error(NotImplementedError, f"{name}() with a traced index is not supported "
                                              "(its values decide which entries win)")
    return t, check_index_values(t, size, dim, wrap=name != "scatter",
                                 error=RuntimeError if name == "scatter" else IndexError)


@torch_op("Scatter", saves=(2,))
def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    """torch.scatter: a copy of input with src's entries (or value) written at index along
    dim; reduce='add' / 'multiply' combine with what is there instead."""
    if reduce not in _REDUCES:
        raise user_error(RuntimeError, "reduce argument must be either add or multiply.")
    if (src is None) == (value is None):
        raise user_error(TypeError, "scatter() needs exactly one of src and value")
    if value is None and not isinstance(src, Tensor):
        src, value = None, src                     # scatter(dim, index, 1.5): the value form
    t = to_tensor(input)
    d = norm_axis(dim, t.ndim)
    idx_t, data = _concrete_index(index, "scatter", t.shape[d] if t.ndim else 1, d)
    _check_index_shape(t, idx_t, d, "scatter()")
    ishape = tuple(idx_t.shape)
    if src is not None:
        s = to_tensor(src)
        if dtype_of(s) != dtype_of(t):
            raise user_error(RuntimeError, "scatter(): Expected self.dtype to be equal to "
                                           "src.dtype")
        if s.ndim != idx_t.ndim or any(i > k for i, k in zip(ishape, s.shape)):
            raise user_error(RuntimeError, f"scatter(): Expected index {list(ishape)} to be "
                                           f"smaller than src {list(s.shape)}")
        if tuple(s.shape) != ishape:
            s = apply("slice", s, start=(0,) * s.ndim, limit=ishape, stride=(1,) * s.ndim)
    else:
        v = to_tensor(value)
        if v.ndim:
            raise user_error(RuntimeError, "scatter(): value must be a number or a 0-d tensor")
        s = apply("broadcast_in_dim", cast(v, dtype_of(t)), shape=ishape, dims=())
    n = t.numel()
    lin = _linear(np.asarray(data, dtype=np.int64).reshape(ishape), d, tuple(t.shape))
    flat_t = apply("reshape", t, shape=(n,))
    flat_s = apply("reshape", s, shape=(lin.size,))
    if reduce == "add":
        out = apply("scatter_add", flat_t, tensor_from_array(lin, "i64"), flat_s, axis=0)
    else:
        out = flat_t
        for entries in _rounds(lin):
            part = apply("gather", flat_s, tensor_from_array(entries, "i64"), axis=0)
            zeros = constant(0, dtype_of(t), (n,))
            written = apply("scatter_add", zeros, tensor_from_array(lin[entries], "i64"),
                            part, axis=0)
            hit = np.zeros(n, dtype=bool)
            hit[lin[entries]] = True
            new = written if reduce is None else apply("mul", out, written)
            out = apply("select", tensor_from_array(hit, "bool"), new, out)
    return apply("reshape", out, shape=tuple(t.shape))


def _linear(idx: np.ndarray, d: int, shape: tuple) -> np.ndarray:
    """The flat (row-major) positions in an array of `shape` that index entries hit along d."""
    if len(shape) <= 1:
        return idx.reshape(-1)
    coords = list(np.indices(idx.shape))
    coords[d] = idx
    return np.ravel_multi_index(tuple(coords), shape).reshape(-1)


def _rounds(lin: np.ndarray) -> list[np.ndarray]:
    """The entries of lin split by occurrence: round r holds each position's (r+1)-th hit."""
    order = np.argsort(lin, kind="stable")
    ranked = lin[order]
    starts = np.r_[0, np.flatnonzero(ranked[1:] != ranked[:-1]) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, ranked.size]))
    occurrence = np.empty_like(lin)
    occurrence[order] = np.arange(ranked.size) - group_start
    return [np.flatnonzero(occurrence == r) for r in range(int(occurrence.max(initial=-1)) + 1)]


@torch_op("IndexFill", saves=(2,))
def index_fill(input, dim, index, value):
    """A copy of input with the slices at index (a vector or a scalar) along dim set to
    value (a number or a 0-d tensor); the gradient is zero there."""
    t = to_tensor(input)
    d = norm_axis(dim, t.ndim)
    size = t.shape[d] if t.ndim else 1
    idx_t, data = _concrete_index(index, "index_fill_", size, d, dtypes=("i64",))
    if idx_t.ndim > 1:
        raise user_error(RuntimeError, "Index has to be a vector/scalar")
    v = to_tensor(value)
    if v.ndim:
        raise user_error(RuntimeError, "index_fill_ only supports a 0-dimensional value "
                                       f"tensor, but got tensor with {v.ndim} dimension(s).")
    hit = np.zeros(size, dtype=bool)
    hit[np.asarray(data, dtype=np.int64).reshape(-1)] = True
    shape = tuple(t.shape)
    mask = hit.reshape([size if k == d else 1 for k in range(t.ndim)]) if t.ndim else hit[0]
    fill = apply("broadcast_in_dim", cast(v, dtype_of(t)), shape=shape, dims=())
    return apply("select", tensor_from_array(np.broadcast_to(mask, shape).copy(), "bool"),
                 fill, t)


@torch_op("Unfold")
def unfold(input, dimension, size, step):
    """Tensor.unfold: every slice of `size` along `dimension`, `step` apart, in a new last
    axis (a copy here; a view in PyTorch)."""
    t = to_tensor(input)
    d = norm_axis(dimension, max(t.ndim, 1))
    length = t.shape[d] if t.ndim else 1
    if size < 0:
        raise user_error(RuntimeError, f"size is {size} but must be >= 0")
    if size > length:
        raise user_error(RuntimeError, f"maximum size for tensor at dimension {d} is {length} "
                                       f"but size is {size}")
    if step <= 0:
        raise user_error(RuntimeError, f"step is {step} but must be > 0")
    if t.ndim == 0:
        return apply("reshape", t, shape=(1,))
    count = (length - size) // step + 1
    picks = (np.arange(count)[:, None] * step + np.arange(size)[None, :]).reshape(-1)
    out = apply("gather", t, tensor_from_array(picks.astype(np.int64), "i64"), axis=d)
    shape = tuple(t.shape)
    out = apply("reshape", out, shape=shape[:d] + (count, size) + shape[d + 1:])
    perm = tuple(k for k in range(t.ndim + 1) if k != d + 1) + (d + 1,)
    return apply("transpose", out, perm=perm)


@torch_op("Rsub")
def rsub(input, other, *, alpha=1):
    """torch.rsub: other - alpha * input."""
    return ew.sub(other, input, alpha=alpha)


def real(self):
    """Tensor.real of a real tensor: the tensor itself (gradjit has no complex dtypes)."""
    return self


def imag(self):
    raise user_error(RuntimeError, "imag is not implemented for tensors with non-complex "
                                   "dtypes.")

