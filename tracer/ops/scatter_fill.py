"""scatter (out of place, with src or a value, reduce=), index_fill, unfold, rsub, and the
real/imag properties of real tensors.

An overwriting scatter is tracer/ops/write_last.py's: the last duplicate wins, as in
PyTorch's serial CPU loop, and every entry of src gets the gradient of the element it was
written to (PyTorch's grad.gather(dim, index)). reduce='multiply' multiplies in rounds:
round r holds each element's (r+1)-th entry. A traced index (compile, jit) is accepted but
for reduce='multiply'; its out-of-range entries are dropped.
unfold is a copy (a gather), not a view as in PyTorch (docs/compat.md).
"""
from __future__ import annotations

import numpy as np

from tracer.ops import elementwise as ew
from tracer.ops.indexing import (_check_index_shape, _drop_invalid, check_index_values,
                                 linear_index, scatter_index)
from tracer.ops.operands import (cast, constant, dtype_of, norm_axis, to_tensor, user_error,
                                 written_as)
from tracer.ops.write_last import (MAX_TRACED_ENTRIES, last_of_concrete, last_of_traced,
                                   write_last)
from tracer.record import apply, torch_op
from tracer.tensor import Tensor, tensor_from_array

__all__ = ["scatter", "index_fill", "unfold", "rsub"]

_REDUCES = (None, "add", "multiply")


def _index(index, name: str, size: int, dim: int, dtypes=("i32", "i64")):
    """(index Tensor, its values or None when traced, valid): values are checked as
    PyTorch checks them; a traced index is wrapped and clamped (indexing.scatter_index),
    `valid` marking its entries inside the axis (None when concrete)."""
    t = to_tensor(index)
    if dtype_of(t) not in dtypes:
        if name == "scatter":
            raise user_error(RuntimeError, "scatter(): Expected dtype int32/int64 for index")
        raise user_error(IndexError, f"{name}(): Expected dtype int64 for index.")
    wrap, error = name != "scatter", RuntimeError if name == "scatter" else IndexError
    if not t._expr.symbolic:
        return t, check_index_values(t, size, dim, wrap=wrap, error=error), None
    idx, valid = scatter_index(t, size, dim, wrap=wrap, error=error)
    return idx, None, valid


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
    idx_t, data, valid = _index(index, "scatter", t.shape[d] if t.ndim else 1, d)
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
    n, m = t.numel(), int(np.prod(ishape, dtype=np.int64))
    flat_t = apply("reshape", t, shape=(n,))
    flat_s = apply("reshape", s, shape=(m,))
    if data is None:
        out = _scatter_traced(flat_t, idx_t, valid, flat_s, d, tuple(t.shape), reduce)
        return apply("reshape", out, shape=tuple(t.shape))
    lin = _linear(np.asarray(data, dtype=np.int64).reshape(ishape), d, tuple(t.shape))
    if reduce == "add":
        out = apply("scatter_add", flat_t, tensor_from_array(lin, "i64"), flat_s, axis=0)
    elif reduce is None:                 # the last duplicate wins, each gets its gradient
        hit = np.zeros(n, dtype=bool)
        hit[lin] = True
        out = write_last(flat_t, tensor_from_array(lin, "i64"), flat_s,
                         tensor_from_array(last_of_concrete(lin), "bool"),
                         tensor_from_array(hit, "bool"))
    else:
        out = flat_t
        for entries in _rounds(lin):
            part = apply("gather", flat_s, tensor_from_array(entries, "i64"), axis=0)
            zeros = constant(0, dtype_of(t), (n,))
            written = apply("scatter_add", zeros, tensor_from_array(lin[entries], "i64"),
                            part, axis=0)
            hit = np.zeros(n, dtype=bool)
            hit[lin[entries]] = True
            out = apply("select", tensor_from_array(hit, "bool"), apply("mul", out, written), out)
    return apply("reshape", out, shape=tuple(t.shape))


def _scatter_traced(flat_t, idx, valid, flat_s, d: int, shape: tuple, reduce):
    """scatter's flat result for a traced index: out-of-range entries are dropped (JAX's
    rule; PyTorch raises, which a traced value cannot)."""
    ishape = tuple(idx.shape)
    m = flat_s._expr.type.shape[0]
    if len(shape) > 1:
        coords = [idx if k == d else apply("iota", dtype="i64", shape=ishape, dim=k)
                  for k in range(len(shape))]
        idx = linear_index(coords, shape)
    lin = apply("reshape", idx, shape=(m,))
    ok = None if valid is None else apply("reshape", valid, shape=(m,))
    if reduce == "add":
        return apply("scatter_add", flat_t, lin, _drop_invalid(flat_s, ok, 0), axis=0)
    if reduce is not None or m > MAX_TRACED_ENTRIES:
        why = ("reduce='multiply'" if reduce is not None else
               f"more than {MAX_TRACED_ENTRIES} index entries")
        raise user_error(NotImplementedError, f"scatter() with a traced index and {why} is "
                                              "not supported")
    ones = constant(1, "i32", (m,)) if ok is None else apply("convert", ok, dtype="i32")
    counts = apply("scatter_add", constant(0, "i32", (flat_t._expr.type.shape[0],)), lin, ones,
                   axis=0)
    hit = apply("ne", counts, constant(0, "i32", tuple(counts.shape)))
    last = last_of_traced(lin, ok)
    if ok is not None:
        last = apply("logical_and", last, ok)
    return write_last(flat_t, lin, flat_s, last, hit)


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
    idx_t, data, valid = _index(index, "index_fill_", size, d, dtypes=("i64",))
    if idx_t.ndim > 1:
        raise user_error(RuntimeError, "Index has to be a vector/scalar")
    v = to_tensor(value)
    if v.ndim:
        raise user_error(RuntimeError, "index_fill_ only supports a 0-dimensional value "
                                       f"tensor, but got tensor with {v.ndim} dimension(s).")
    shape = tuple(t.shape)
    fill = apply("broadcast_in_dim", written_as(value, dtype_of(t)), shape=shape, dims=())
    if data is None:                   # traced: the slices hit, counted (invalid ones not)
        k = idx_t._expr.type.size
        lin = apply("reshape", idx_t, shape=(k,))
        ones = constant(1, "i32", (k,)) if valid is None else \
            apply("convert", apply("reshape", valid, shape=(k,)), dtype="i32")
        counts = apply("scatter_add", constant(0, "i32", (size,)), lin, ones, axis=0)
        hit = apply("ne", counts, constant(0, "i32", (size,)))
        hit = hit if t.ndim else apply("reshape", hit, shape=())
        mask = apply("broadcast_in_dim", hit, shape=shape, dims=(d,) if t.ndim else ())
        return apply("select", mask, fill, t)
    hit = np.zeros(size, dtype=bool)
    hit[np.asarray(data, dtype=np.int64).reshape(-1)] = True
    mask = hit.reshape([size if k == d else 1 for k in range(t.ndim)]) if t.ndim else hit[0]
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

