"""Cumulative ops: cumsum, cumprod, cummax, cummin, logcumsumexp, each one primitive of
ir/cumulative (a native loop along the axis) with its derivative and batching rules.

PyTorch's spelling takes `dim` (and returns (values, indices) named tuples from cummax and
cummin); NumPy's and JAX's `axis=` is accepted too, and with no axis at all the input is
flattened first, as numpy.cumsum does. Integer and bool inputs accumulate in int64 (as in
PyTorch); logcumsumexp of integers gives the default float dtype.
"""
from __future__ import annotations

from ir.core import is_float
from tracer.ops.operands import (cast, dtype_of, float_dtype, ir_dtype, norm_axis, pick_dim,
                                 to_tensor)
from tracer.ops.reduce import _ReturnType
from tracer.record import apply, torch_op
from tracer.tensor import Tensor

__all__ = ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"]


class CummaxResult(_ReturnType):
    kind = "cummax"


class CumminResult(_ReturnType):
    kind = "cummin"


def _operand(x, dim, axis, dtype=None) -> tuple[Tensor, int, tuple]:
    """(x as a tensor of rank >= 1, the axis, the shape to give the results)."""
    t = to_tensor(x)
    if dtype is not None:
        t = cast(t, ir_dtype(dtype))
    dim = pick_dim(dim, axis)
    if dim is None:                       # NumPy: over the flattened array
        return apply("reshape", t, shape=(t.numel(),)), 0, (t.numel(),)
    d = norm_axis(dim, t.ndim)
    if t.ndim == 0:
        return apply("reshape", t, shape=(1,)), 0, ()
    return t, d, tuple(t.shape)


def _shaped(out: Tensor, shape: tuple) -> Tensor:
    return out if tuple(out.shape) == shape else apply("reshape", out, shape=shape)


def _accumulate(prim: str, x, dim, axis, dtype, **params) -> Tensor:
    t, d, shape = _operand(x, dim, axis, dtype)
    if not is_float(dtype_of(t)):
        t = cast(t, "i64")
    return _shaped(apply(prim, t, axis=d, **params), shape)


@torch_op("Cumsum")
def cumsum(input, dim=None, *, dtype=None, axis=None):
    """Running sums along dim (None: the flattened x)."""
    return _accumulate("cumsum", input, dim, axis, dtype, reverse=False)


@torch_op("Cumprod")
def cumprod(input, dim=None, *, dtype=None, axis=None):
    """Running products along dim; the gradient is exact where x holds zeros, as PyTorch's."""
    return _accumulate("cumprod", input, dim, axis, dtype)


@torch_op("Logcumsumexp")
def logcumsumexp(input, dim=None, *, axis=None, reverse=False):
    """log(cumsum(exp(x))) along dim, computed without overflow (JAX's cumlogsumexp,
    with its reverse=)."""
    t, d, shape = _operand(input, dim, axis)
    if not is_float(dtype_of(t)):
        t = cast(t, float_dtype(dtype_of(t)))
    return _shaped(apply("cumlogsumexp", t, axis=d, reverse=bool(reverse)), shape)


def _extreme(prim: str, result_type, x, dim, axis):
    t, d, shape = _operand(x, dim, axis)
    values, indices = apply(prim, t, axis=d)
    return result_type(_shaped(values, shape), _shaped(indices, shape))


@torch_op("Cummax")
def cummax(input, dim=None, *, axis=None):
    """(values, indices): the running maximum along dim and the index where it was reached
    (a tie moves the index on; a NaN sticks), as torch.return_types.cummax."""
    return _extreme("cummax", CummaxResult, input, dim, axis)


@torch_op("Cummin")
def cummin(input, dim=None, *, axis=None):
    """(values, indices): the running minimum along dim, as cummax."""
    return _extreme("cummin", CumminResult, input, dim, axis)
