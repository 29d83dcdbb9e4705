"""Sorting ops: sort, argsort, msort, topk, kthvalue, each over the `sort` primitive
(ir/cumulative/sort.py: stable, NaN as the largest value), so the gradient reaches the
selected elements through the indices (the sort's VJP scatters it back).

PyTorch's spelling (a positional or `dim=` axis) returns PyTorch's named tuples: sort, topk
and kthvalue give (values, indices). NumPy's and JAX's spelling (`axis=`, `kind=`) returns
the values only, as numpy.sort does. median and quantile are in tracer/ops/quantiles.py.
"""
from __future__ import annotations

from tracer.ops.indexing import take_along
from tracer.ops.operands import cast, constant, dtype_of, norm_axis, to_tensor, user_error
from tracer.ops.reduce import _ReturnType, kept_shape
from tracer.record import apply, torch_op
from tracer.tensor import Tensor

__all__ = ["sort", "argsort", "msort", "topk", "kthvalue"]


class SortResult(_ReturnType):
    kind = "sort"


class TopkResult(_ReturnType):
    kind = "topk"


class KthvalueResult(_ReturnType):
    kind = "kthvalue"


def sorted_along(t: Tensor, d: int, descending: bool = False) -> tuple[Tensor, Tensor]:
    """(values, indices) of t sorted along axis d (a 0-d t is its own sort)."""
    if t.ndim == 0:
        return apply("reshape", t, shape=()), constant(0, "i64", ())
    if dtype_of(t) == "bool":
        values, indices = apply("sort", cast(t, "i64"), axis=d, descending=bool(descending))
        return cast(values, "bool"), indices
    return apply("sort", t, axis=d, descending=bool(descending))


def _slice_axis(t: Tensor, d: int, lo: int, hi: int) -> Tensor:
    start = tuple(lo if i == d else 0 for i in range(t.ndim))
    limit = tuple(hi if i == d else s for i, s in enumerate(t.shape))
    return apply("slice", t, start=start, limit=limit, stride=(1,) * t.ndim)


_UNSET = object()      # axis not given: PyTorch's spelling (NumPy's axis=None flattens)


def _numpy_spelling(axis, kind) -> bool:
    return axis is not _UNSET or kind is not None


@torch_op("Sort")
def sort(input, dim=-1, descending=False, stable=False, *, axis=_UNSET, kind=None, order=None):
    """(values, indices) along dim, as torch.return_types.sort; always stable (equal elements
    keep their order); NaN sorts last (first when descending). NumPy's spelling (axis=,
    kind=) returns the values only (axis=None: the flattened x)."""
    t = to_tensor(input)
    if _numpy_spelling(axis, kind):
        axis = -1 if axis is _UNSET else axis
        if axis is None:
            t, axis = apply("reshape", t, shape=(t.numel(),)), 0
        return sorted_along(t, norm_axis(axis, t.ndim), descending)[0]
    return SortResult(*sorted_along(t, norm_axis(dim, t.ndim), descending))


@torch_op("Sort")
def argsort(input, dim=-1, descending=False, stable=False, *, axis=_UNSET, kind=None,
            order=None):
    """The int64 indices that sort x along dim (stable; NumPy's axis=None flattens)."""
    t = to_tensor(input)
    if axis is None:
        t, dim = apply("reshape", t, shape=(t.numel(),)), 0
    elif axis is not _UNSET:
        dim = axis
    return sorted_along(t, norm_axis(dim, t.ndim), descending)[1]


@torch_op("Sort")
def msort(input):
    """x sorted along its first axis (the values)."""
    t = to_tensor(input)
    return sorted_along(t, 0 if t.ndim else norm_axis(0, 0))[0]


@torch_op("Topk")
def topk(input, k, dim=-1, largest=True, sorted=True):
    """The k largest (or smallest) elements along dim and their indices, largest first; NaN
    counts as the largest. Among equal elements the earlier index comes first (PyTorch leaves
    their order unspecified)."""
    t = to_tensor(input)
    d = norm_axis(dim, t.ndim)
    n = t.shape[d] if t.ndim else 1
    if not 0 <= int(k) <= n:
        raise user_error(RuntimeError, "selected index k out of range")
    values, indices = sorted_along(t, d, descending=bool(largest))
    if t.ndim == 0:
        return TopkResult(values, indices)
    return TopkResult(_slice_axis(values, d, 0, int(k)), _slice_axis(indices, d, 0, int(k)))


def pick(values: Tensor, indices: Tensor, d: int, pos, keepdim: bool, result_type):
    """values and indices at position pos along d (an int, or an i64 tensor of the kept
    shape), the axis dropped unless keepdim."""
    kept = kept_shape(values.shape, (d,))
    if isinstance(pos, int):
        v, i = _slice_axis(values, d, pos, pos + 1), _slice_axis(indices, d, pos, pos + 1)
    else:
        v, i = take_along(values, pos, d), take_along(indices, pos, d)
    if not keepdim:
        kept = tuple(s for a, s in enumerate(values.shape) if a != d)
    return result_type(apply("reshape", v, shape=kept), apply("reshape", i, shape=kept))


@torch_op("Kthvalue")
def kthvalue(input, k, dim=-1, keepdim=False):
    """The k-th smallest element along dim (k from 1) and its index: the k-th of the stable
    sort, so equal elements count in index order (PyTorch leaves ties unspecified)."""
    t = to_tensor(input)
    d = norm_axis(dim, t.ndim)
    n = t.shape[d] if t.ndim else 1
    if not 1 <= int(k) <= n:
        raise user_error(RuntimeError, f"kthvalue(): selected number k out of range for "
                                       f"dimension {d}")
    if t.ndim == 0:
        return KthvalueResult(*sorted_along(t, 0))
    values, indices = sorted_along(t, d)
    return pick(values, indices, d, int(k) - 1, keepdim, KthvalueResult)
