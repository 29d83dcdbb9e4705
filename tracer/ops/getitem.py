"""x[key]: basic indexing (ints, slices with steps, None, ...) and advanced indexing
(integer arrays, and boolean masks whose value is known, i.e. outside traced code).

Basic entries become one `slice` and one `reshape`; integer arrays become one `gather`
(several arrays index the flattened product of their axes at a linear index). As in
PyTorch, integers are applied first (they drop their axis), then the advanced indices,
which follow NumPy's placement rule: their broadcast shape replaces the indexed axes when
those are adjacent, and goes first otherwise.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from tracer.errors import TracerError
from tracer.ops.operands import broadcast, broadcast_shapes, to_tensor, user_error, where_am_i
from tracer.ops.indexing import index_tensor, linear_index
from tracer.record import apply, torch_op
from tracer.tensor import Tensor, tensor_from_array


class _Mask:
    """A boolean index, realised to a NumPy array (it decides the result's shape)."""
    def __init__(self, array: np.ndarray):
        self.array = array


def _classify(k):
    """One key entry as None, Ellipsis, slice, int, _Mask or an index Tensor."""
    if k is None or k is Ellipsis or isinstance(k, slice):
        return k
    if isinstance(k, (bool, np.bool_)):
        raise user_error(IndexError, "indexing with a Python bool is not supported")
    if isinstance(k, (numbers.Integral, np.integer)):
        return int(k)
    if isinstance(k, (list, tuple, range)):        # range(n): a list of ints, as in PyTorch
        arr = np.array(k)
        k = arr.astype(np.int64) if arr.size == 0 else arr
    if isinstance(k, (Tensor, np.ndarray)):
        t = to_tensor(k)
        if t._expr.type.dtype == "bool":
            return _Mask(_realise_mask(t))
        if t.ndim == 0 and t._expr.data is not None and t._expr.type.dtype in ("i32", "i64"):
            return int(t._expr.data)
        return t
    raise user_error(IndexError, f"unsupported index {k!r} of type {type(k).__name__}")


def _realise_mask(t: Tensor) -> np.ndarray:
    if t._expr.symbolic:
        raise TracerError(
            f"boolean mask indexing (x[mask]) at {where_am_i()} needs the mask's value, but it "
            "is traced: the result's shape would depend on data. Use gj.where(mask, x, 0) "
            "or a fixed-size gather instead.")
    return np.asarray(t)


def _expand(x: Tensor, key) -> list:
    """The key as entries covering every axis of x: masks split into index arrays."""
    entries = [_classify(k) for k in (key if isinstance(key, tuple) else (key,))]
    used = sum(e.array.ndim if isinstance(e, _Mask) else 1 for e in entries
               if e is not None and e is not Ellipsis)
    if entries.count(Ellipsis) > 1:
        raise user_error(IndexError, "an index can only have a single ellipsis ('...')")
    if used > x.ndim:
        raise user_error(IndexError, f"too many indices for tensor of dimension {x.ndim}")
    full = [slice(None)] * (x.ndim - used)
    if Ellipsis in entries:
        at = entries.index(Ellipsis)
        entries = entries[:at] + full + entries[at + 1:]
    else:
        entries = entries + full
    out, dim = [], 0
    for e in entries:
        if isinstance(e, _Mask):
            want = tuple(x.shape[dim:dim + e.array.ndim])
            if e.array.shape != want:
                raise user_error(IndexError, f"The shape of the mask {list(e.array.shape)} at "
                                             f"index {dim} does not match the shape of the "
                                             f"indexed tensor {list(want)}")
            out.extend(tensor_from_array(a, "i64") for a in np.nonzero(e.array))
            dim += e.array.ndim
            continue
        out.append(e)
        dim += e is not None
    return out


def _basic(x: Tensor, entries: list):
    """Applies ints, slices and None; returns (tensor, [(axis, index tensor)])."""
    ranges, shape, advanced = [], [], []          # ranges: (start, limit, stride) per axis
    dim = 0
    for e in entries:
        if e is None:
            shape.append(1)
            continue
        size = x.shape[dim]
        if isinstance(e, int):
            i = e + size if e < 0 else e
            if not 0 <= i < size:
                raise user_error(IndexError, f"index {e} is out of bounds for dimension {dim} "
                                             f"with size {size}")
            ranges.append((i, i + 1, 1))
        elif isinstance(e, slice):
            if e.step is not None and e.step <= 0:
                raise user_error(ValueError, "step must be greater than zero")
            s, stop, st = e.indices(size)
            ranges.append((s, max(stop, s), st))
            shape.append(len(range(s, stop, st)))
        else:
            ranges.append((0, size, 1))
            advanced.append((len(shape), _index_for(x, e, size, dim)))
            shape.append(size)
        dim += 1
    y = x
    if ranges != [(0, d, 1) for d in x.shape]:
        start, limit, stride = zip(*ranges)
        y = apply("slice", x, start=start, limit=limit, stride=stride)
    return apply("reshape", y, shape=tuple(shape)), advanced


def _index_for(x: Tensor, e, size: int, dim: int) -> Tensor:
    """An index entry as an i64 Tensor. Into a tensor with no elements PyTorch's kernel runs
    over nothing and checks no bound (`zeros(3, 0)[[0, 5]]` is a [2, 0] result), except
    along an axis of length 0, which refuses any index."""
    if x.numel():
        return index_tensor(e, size, dim)
    shape = tuple(to_tensor(np.asarray(e) if isinstance(e, list) else e).shape)
    if size == 0 and math.prod(shape):
        raise user_error(IndexError, "index is out of bounds for dimension with size 0")
    return tensor_from_array(np.zeros(shape, dtype=np.int64), "i64")


def check_empty_key(x: Tensor, key) -> None:
    """PyTorch's only checks of a key into a tensor with no elements (`_index_for`)."""
    _basic(x, _expand(x, key))


def _advanced(y: Tensor, advanced: list) -> Tensor:
    """Gathers y at the index arrays (axis positions in y)."""
    axes = [a for a, _ in advanced]
    try:
        bshape = broadcast_shapes(*(tuple(t.shape) for _, t in advanced))
    except TypeError:
        shown = ", ".join(str(list(t.shape)) for _, t in advanced)
        raise user_error(IndexError, "shape mismatch: indexing tensors could not be broadcast "
                                     f"together with shapes {shown}") from None
    idx = [broadcast(t, bshape) for _, t in advanced]
    if len(axes) == 1:
        return apply("gather", y, idx[0], axis=axes[0])
    rest = [d for d in range(y.ndim) if d not in axes]
    moved = apply("transpose", y, perm=tuple(axes + rest))
    sizes = tuple(y.shape[a] for a in axes)
    flat = apply("reshape", moved, shape=(math.prod(sizes),) + tuple(y.shape[d] for d in rest))
    out = apply("gather", flat, linear_index(idx, sizes), axis=0)
    first, nb = axes[0], len(bshape)
    if axes != list(range(first, first + len(axes))) or first == 0:
        return out
    # adjacent advanced axes: their result axes replace them in place (NumPy's rule)
    perm = (tuple(range(nb, nb + first)) + tuple(range(nb))
            + tuple(range(nb + first, out.ndim)))
    return apply("transpose", out, perm=perm)


def _getitem(x, key):
    t = to_tensor(x)
    if t.ndim == 0 and isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        raise user_error(IndexError, "invalid index of a 0-dim tensor. Use `tensor.item()` "
                                     "to convert a 0-dim tensor to a number")
    y, advanced = _basic(t, _expand(t, key))
    return _advanced(y, advanced) if advanced else y


_VARIANTS = {name: torch_op(name, saves=saves)(_getitem) for name, saves in (
    ("Select", ()), ("Slice", ()), ("Unsqueeze", ()), ("Alias", ()), ("Index", (1,)))}


def _node_name(key) -> str:
    """PyTorch's grad_fn for x[key]: the last basic view op, or Index for arrays."""
    name = None
    entries = key if isinstance(key, tuple) else (key,)
    for e in entries:
        if isinstance(e, (list, range, np.ndarray)) or (isinstance(e, Tensor) and e.ndim > 0):
            return "Index"
        if e is None:
            name = "Unsqueeze"
        elif isinstance(e, slice):
            name = name if e == slice(None) else "Slice"
        elif e is not Ellipsis:
            name = "Select"
    if name is None:
        return "Slice" if any(isinstance(e, slice) for e in entries) else "Alias"
    return name


def getitem(x, key):
    """x[key] (see the module docstring)."""
    return _VARIANTS[_node_name(key)](x, key)


getitem.torch_name = "Index"


def iterate(x):
    """Iterating a tensor yields its slices along the first axis."""
    t = to_tensor(x)
    if t.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (getitem(t, i) for i in range(t.shape[0]))
