"""`x[key] = value` computed out of place: the new value of x (see inplace.py).

With a concrete key (Python ints and slices, NumPy arrays, realised Tensors) the written
positions are known now: the value is scattered into place and selected over x, and when
several writes hit one element the last one wins, as PyTorch does on CPU. A boolean mask
Tensor with a value that fills every masked element alike (`grad_h[h < 0] = 0`, as
pytorch/tutorials' two_layer_net_tensor.py writes) is `where(mask, v, x)` whether the mask
is traced or not: the mask is never read, so the step stays one lazy program of fixed
shapes instead of a new program for every count of masked elements.

With a traced key (inside jit/grad, an index or a mask computed from traced data) the
positions are data, but the result's shape is not, so it still traces:
  - a boolean mask `x[mask] = v` is `where(mask, v, x)` (v broadcastable to the elements
    one mask entry selects; a data-dependent count of values cannot be traced);
  - integer indices use the same indexing rules as `x[key]` on a tensor of positions, then
    scatter. Repeated indices get the mean of their values (exact when they agree, e.g.
    `x[i] = 0.`); PyTorch and JAX leave that case unspecified.
"""
from __future__ import annotations

import numpy as np

from ir.primitives import ShapeError
from tracer.errors import TracerError
from tracer.ops.getitem import check_empty_key
from tracer.ops.write_last import last_of_concrete, scatter_base, write_last
from tracer.ops.operands import (broadcast, user_error, where_am_i,
                                 written_as)
from tracer.record import apply
from tracer.tensor import Tensor, tensor_from_array


def _entries(key) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def is_traced_key(key) -> bool:
    return any(isinstance(k, Tensor) and k._expr.symbolic for k in _entries(key))


_TORCH_NAMES = {"f32": "Float", "f64": "Double", "i32": "Int", "i64": "Long", "bool": "Bool"}


def check_dtypes(x: Tensor, key, value):
    """PyTorch's refusal of an advanced-index write (index_put_) of a Tensor of another
    dtype; a bool mask alone with a one-element value is masked_fill_, which casts. Traced
    values (jit, grad, vmap: JAX's `.at[].set`, which casts) are not checked."""
    if not isinstance(value, Tensor) or value._expr.type.dtype == x._expr.type.dtype or \
            x._expr.symbolic or value._expr.symbolic:
        return
    if not any(isinstance(k, list) or isinstance(k, Tensor) and k.ndim for k in _entries(key)):
        return                                    # basic indexing: copy_, which casts
    if isinstance(key, Tensor) and key._expr.type.dtype == "bool" and value.numel() == 1:
        return
    raise user_error(RuntimeError, "Index put requires the source and destination dtypes "
                     f"match, got {_TORCH_NAMES[x._expr.type.dtype]} for the destination and "
                     f"{_TORCH_NAMES[value._expr.type.dtype]} for the source.")


def concrete_key(key):
    """The index with Tensors replaced by NumPy arrays (their values are needed here)."""
    if isinstance(key, tuple):
        return tuple(concrete_key(k) for k in key)
    if isinstance(key, Tensor):
        return np.asarray(key._realize())
    if isinstance(key, list):
        return np.asarray([concrete_key(k) for k in key])
    return key


def concrete_positions(x: Tensor, key) -> np.ndarray:
    """The flat positions in x that x[key] reads (a concrete key), NumPy's refusals in
    PyTorch's words."""
    t = x._expr.type
    try:
        return np.arange(t.size, dtype=np.int64).reshape(t.shape)[concrete_key(key)]
    except IndexError as e:
        text = str(e)
        if "out of bounds" in text:
            text = text.replace(" axis ", " dimension ")
        elif "integer (or boolean)" in text:
            text = "tensors used as indices must be long, int, byte or bool tensors"
        elif "too many indices" in text:
            got = len(key) if isinstance(key, tuple) else 1
            text = f"too many indices for tensor of dimension {len(t.shape)} (got {got})"
        raise user_error(IndexError, text) from None


def value_at(value, dtype: str, shape) -> Tensor:
    """_value, with PyTorch's text when value does not broadcast to the written shape."""
    try:
        return _value(value, dtype, shape)
    except ShapeError:
        vshape = list(value.shape) if isinstance(value, Tensor) else []
        raise user_error(RuntimeError, f"shape mismatch: value tensor of shape {vshape} cannot "
                         f"be broadcast to indexing result of shape {list(shape)}") from None


def _value(value, dtype: str, shape) -> Tensor:
    """value as dtype, broadcast to shape (PyTorch first drops its extra leading 1s)."""
    v = written_as(value, dtype)
    kept = _without_leading_ones(tuple(v.shape), len(shape))
    if kept != tuple(v.shape):
        v = apply("reshape", v, shape=kept)
    return broadcast(v, tuple(shape))


def _without_leading_ones(shape: tuple, ndim: int) -> tuple:
    """shape without the leading 1s beyond ndim dims (PyTorch drops them from a value)."""
    while len(shape) > ndim and shape[0] == 1:
        shape = shape[1:]
    return shape


def _fills_alike(x: Tensor, key, value) -> bool:
    """key is a boolean mask over x's leading dims and value one element's worth of data."""
    if not (isinstance(key, Tensor) and key._expr.type.dtype == "bool"):
        return False
    shape = tuple(x._expr.type.shape)
    if tuple(key.shape) != shape[:key.ndim]:
        return False                     # the concrete path raises PyTorch's error
    if not isinstance(value, Tensor):
        return isinstance(value, (bool, int, float))
    v_shape = _without_leading_ones(tuple(value.shape), len(shape) - key.ndim)
    try:
        return np.broadcast_shapes(v_shape, shape[key.ndim:]) == shape[key.ndim:]
    except ValueError:
        return False


def put_concrete(x: Tensor, key, value) -> Tensor:
    """x with x[key] replaced by value: a select between x and value scattered into place."""
    if _fills_alike(x, key, value):
        return _put_by_mask(x, key, value)
    t = x._expr.type
    n = t.size
    if n == 0:                     # no element to write: PyTorch checks no bound (getitem.py)
        check_empty_key(x, key)
        return x
    positions = concrete_positions(x, key)
    flat = positions.reshape(-1)
    v = apply("reshape", value_at(value, t.dtype, positions.shape), shape=(flat.size,))
    mask = np.zeros(n, dtype=bool)
    mask[flat] = True
    flat_x = apply("reshape", x, shape=(n,))
    if np.unique(flat).size != flat.size:
        # several writes to one element: the last one wins (as PyTorch does on CPU), and
        # each gets the element's gradient, as PyTorch's (tracer/ops/write_last.py)
        out = write_last(flat_x, tensor_from_array(flat), v,
                         tensor_from_array(last_of_concrete(flat)), tensor_from_array(mask))
        return apply("reshape", out, shape=t.shape)
    placed = apply("scatter_add", scatter_base(t.dtype, n), tensor_from_array(flat), v, axis=0)
    out = apply("select", tensor_from_array(mask), placed, flat_x)
    return apply("reshape", out, shape=t.shape)


def put_traced(x: Tensor, key, value) -> Tensor:
    """x with x[key] replaced by value, for a key holding traced Tensors (module docstring)."""
    t = x._expr.type
    if isinstance(key, Tensor) and key._expr.type.dtype == "bool":
        if tuple(key.shape) != tuple(t.shape[:key.ndim]):
            raise user_error(IndexError, f"The shape of the mask {list(key.shape)} does not "
                                         f"match the shape of the indexed tensor {list(t.shape)}")
        return _put_by_mask(x, key, value)
    return _scatter_traced(x, key, value)


def _put_by_mask(x: Tensor, m: Tensor, value) -> Tensor:
    """where(m, value, x), m over x's leading dims, value broadcast to one masked element."""
    t = x._expr.type
    rest = tuple(t.shape[m.ndim:])
    try:
        v = _value(value, t.dtype, rest)
    except Exception:
        raise TracerError(f"x[mask] = values at {where_am_i()}: with a traced mask the "
                          "values must be a scalar or broadcastable to one masked element "
                          f"{list(rest)} (their number would depend on data)") from None
    v = apply("broadcast_in_dim", v, shape=t.shape, dims=tuple(range(m.ndim, t.ndim)))
    mb = apply("broadcast_in_dim", m, shape=t.shape, dims=tuple(range(m.ndim)))
    return apply("select", mb, v, x)


def _scatter_traced(x: Tensor, key, value) -> Tensor:
    n, t = x._expr.type.size, x._expr.type
    iota = apply("iota", dtype="i64", shape=(n,), dim=0)
    positions = apply("reshape", iota, shape=tuple(t.shape))
    pos = positions[key]
    flat = apply("reshape", pos, shape=(pos.numel(),))
    work = t.dtype if t.dtype in ("f32", "f64") else "f64"
    v = apply("reshape", _value(value, work, pos.shape), shape=(pos.numel(),))
    zeros = apply("constant", value=0, dtype=work, shape=(n,))
    ones = apply("constant", value=1, dtype=work, shape=(pos.numel(),))
    count = apply("scatter_add", zeros, flat, ones, axis=0)
    placed = apply("scatter_add", zeros, flat, v, axis=0)
    one = apply("constant", value=1, dtype=work, shape=(n,))
    placed = apply("div", placed, apply("max", count, one))     # the mean of repeated writes
    if work != t.dtype:
        placed = apply("convert", placed, dtype=t.dtype)
    written = apply("gt", count, apply("constant", value=0, dtype=work, shape=(n,)))
    out = apply("select", written, placed, apply("reshape", x, shape=(n,)))
    return apply("reshape", out, shape=tuple(t.shape))
