"""Reductions with dim=/axis= (int or tuple, negative allowed) and keepdim=/keepdims=.

sum/max/min/amax/amin are the reduce_* primitives; the rest are compositions chosen to
differentiate well: mean is sum / n, var and std go through the centred sum of squares,
logsumexp shifts by the max (finite for logits of any size), prod multiplies halves
(so zeros get the right gradient, unlike exp(sum(log))), and max/min with a dim gather the
value at the arg-max index, so the gradient goes to that element as in PyTorch.
"""
from __future__ import annotations

import builtins
import math
from collections import namedtuple

import numpy as np

from ir.core import is_float
from tracer.dialect import torch_spellings
from tracer.ops.operands import (cast, constant, dtype_of, float_dtype, ir_dtype, norm_axes,
                                 norm_axis, pick_dim, to_tensor, user_error)
from tracer.ops.elementwise import maximum, minimum
from tracer.ops.indexing import take_along
from tracer.ops.jax_nn import weighted_logsumexp
from tracer.record import apply, torch_op
from tracer.tensor import Tensor

__all__ = ["sum", "mean", "max", "min", "amax", "amin", "prod", "var", "std", "logsumexp",
           "argmax", "argmin", "all", "any"]


class _ReturnType(namedtuple("_ReturnType", ["values", "indices"])):
    """(values, indices), printed as PyTorch prints torch.return_types.max."""
    kind = "max"

    def __repr__(self) -> str:
        return (f"torch.return_types.{self.kind}(\nvalues={self.values!r},\n"
                f"indices={self.indices!r})")


class MaxResult(_ReturnType):
    kind = "max"


class MinResult(_ReturnType):
    kind = "min"


def _keep(dim, axis, keepdim, keepdims):
    return pick_dim(dim, axis), bool(keepdim or keepdims)


def kept_shape(shape, axes) -> tuple:
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def reduce(prim: str, t: Tensor, axes: tuple, keepdim: bool) -> Tensor:
    """One reduce_* primitive, reshaped back to keepdim's shape when asked."""
    if dtype_of(t) == "bool" and prim in ("reduce_max", "reduce_min"):
        # PyTorch's amax/max of bools (any/all); the IR's reduce_max takes numbers
        out = cast(apply(prim, cast(t, "i64"), axes=axes), "bool")
    else:
        out = apply(prim, t, axes=axes)
    return apply("reshape", out, shape=kept_shape(t.shape, axes)) if keepdim else out


def broadcast_back(r: Tensor, shape, axes: tuple) -> Tensor:
    """A reduction's result r (axes dropped) broadcast back over the input's shape."""
    dims = tuple(i for i in range(len(shape)) if i not in axes)
    return apply("broadcast_in_dim", r, shape=tuple(shape), dims=dims)


def count(t: Tensor, axes: tuple) -> int:
    return math.prod(t.shape[a] for a in axes)


def _check_nonempty(name: str, t: Tensor, dim, axes: tuple):
    """max/min/argmax have no value over an empty axis: PyTorch's errors, not +-inf."""
    if t.numel() != 0:
        return
    if dim is None:
        if name.startswith("arg"):
            raise user_error(IndexError, f"{name}(): Expected reduction dim to be specified "
                                         "for input.numel() == 0.")
        raise user_error(RuntimeError, f"{name}(): Expected reduction dim to be specified for "
                                       "input.numel() == 0. Specify the reduction dim with the "
                                       "'dim' argument.")
    for a in axes:
        if t.shape[a] == 0:
            shown = dim if isinstance(dim, int) else a
            raise user_error(IndexError, f"{name}(): Expected reduction dim {shown} to have "
                                         "non-zero size.")


@torch_op("Sum")
def sum(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=False):
    """Sum over dim (all when None); bool and int inputs sum in int64, as in PyTorch."""
    dim, keepdim = _keep(dim, axis, keepdim, keepdims)
    t = to_tensor(input)
    if dtype is not None:
        t = cast(t, ir_dtype(dtype))
    elif not is_float(dtype_of(t)):
        t = cast(t, "i64")
    return reduce("reduce_sum", t, norm_axes(dim, t.ndim), keepdim)


@torch_op("Mean")
def mean(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=False):
    """sum / n over dim; the input must be floating point (or dtype= given)."""
    dim, keepdim = _keep(dim, axis, keepdim, keepdims)
    t = to_tensor(input)
    if dtype is not None:
        t = cast(t, ir_dtype(dtype))
    if not is_float(dtype_of(t)):
        raise user_error(RuntimeError, "mean(): could not infer output dtype. Input dtype must be "
                                    f"either a floating point or complex dtype. Got: {dtype_of(t)}")
    axes = norm_axes(dim, t.ndim)
    s = reduce("reduce_sum", t, axes, keepdim)
    return apply("div", s, constant(count(t, axes), dtype_of(t), s.shape))


# ---- max / min ------------------------------------------------------------------------------

def _nan_routed(prim: str, t):
    """reduce_max/min of all of t as PyTorch's max()/min(): NaN if any entry is, with the
    gradient shared evenly by the NaN entries (evenly_distribute_backward). The reduction
    itself sees NaNs replaced by its identity, so its (discarded) gradient is never 0/0."""
    axes = tuple(range(t.ndim))
    dt = dtype_of(t)
    if not is_float(dt):
        return reduce(prim, t, axes, False)
    nan = apply("ne", t, t)
    fill = constant(-math.inf if prim == "reduce_max" else math.inf, dt, t.shape)
    extreme = apply(prim, apply("select", nan, fill, t), axes=axes)
    nan_count = apply("reduce_sum", apply("convert", nan, dtype=dt), axes=axes)
    nan_sum = apply("reduce_sum", apply("select", nan, t, constant(0, dt, t.shape)), axes=axes)
    shared = apply("div", nan_sum, apply("max", nan_count, constant(1, dt, ())))
    return apply("select", apply("gt", nan_count, constant(0, dt, ())), shared, extreme)


@torch_op("Max", saves=(0, "out"))
def _max_all(x):
    t = to_tensor(x)
    _check_nonempty("max", t, None, ())
    return _nan_routed("reduce_max", t)


@torch_op("Min", saves=(0, "out"))
def _min_all(x):
    t = to_tensor(x)
    _check_nonempty("min", t, None, ())
    return _nan_routed("reduce_min", t)


def _extreme_dim(x, dim, keepdim: bool, arg: str, result_type):
    t = to_tensor(x)
    a = norm_axis(dim, t.ndim)
    _check_nonempty(result_type.kind, t, dim, (a,))
    if t.ndim == 0:
        return result_type(apply("reshape", t, shape=()), constant(0, "i64", ()))
    idx = apply(arg, t, axis=a)
    kept = kept_shape(t.shape, (a,))
    values = take_along(t, apply("reshape", idx, shape=kept), a)
    if not keepdim:
        values = apply("reshape", values, shape=idx.shape)
    else:
        idx = apply("reshape", idx, shape=kept)
    return result_type(values, idx)


@torch_op("Max", saves=())
def _max_dim(x, dim, keepdim=False):
    return _extreme_dim(x, dim, keepdim, "argmax", MaxResult)


@torch_op("Min", saves=())
def _min_dim(x, dim, keepdim=False):
    return _extreme_dim(x, dim, keepdim, "argmin", MinResult)


def max(input, dim=None, keepdim=False, *, other=None, axis=None, keepdims=False):
    """max(x): the largest element (ties share the gradient); max(x, dim): (values, indices)
    named tuple, the gradient going to the index; max(x, other): elementwise maximum.
    The NumPy spelling max(x, axis=...) gives the values only, as NumPy and JAX do."""
    if other is not None or isinstance(dim, (Tensor, np.ndarray)):
        return maximum(input, dim if other is None else other)
    if axis is not None and dim is None:
        return amax(input, axis=axis, keepdims=keepdim or keepdims)   # NumPy/JAX: values only
    dim, keepdim = _keep(dim, axis, keepdim, keepdims)
    return _max_all(input) if dim is None else _max_dim(input, dim, keepdim)


def min(input, dim=None, keepdim=False, *, other=None, axis=None, keepdims=False):
    """min(x), min(x, dim) -> (values, indices), or min(x, other) (elementwise)."""
    if other is not None or isinstance(dim, (Tensor, np.ndarray)):
        return minimum(input, dim if other is None else other)
    if axis is not None and dim is None:
        return amin(input, axis=axis, keepdims=keepdim or keepdims)   # NumPy/JAX: values only
    dim, keepdim = _keep(dim, axis, keepdim, keepdims)
    return _min_all(input) if dim is None else _min_dim(input, dim, keepdim)


max.torch_name, min.torch_name = "Max", "Min"


@torch_op("Amax", saves=(0, "out"))
def amax(input, dim=None, keepdim=False, *, axis=None, keepdims=False):
    """Max over dim (all when empty); ties share the gradient evenly."""
    dim, keepdim = _keep(dim, axis, keepdim, keepdims)
    t = to_tensor(input)
    axes = norm_axes(dim, t.ndim)
    _check_nonempty("amax", t, dim, axes)
    return reduce("reduce_max", t, axes, keepdim)


@torch_op("Amin", saves=(0, "out"))
def amin(input, dim=None, keepdim=False, *, axis=None, keepdims=False):
    dim, keepdim = _keep(dim, axis, keepdim, keepdims)
    t = to_tensor(input)
    axes = norm_axes(dim, t.ndim)
    _check_nonempty("amin", t, dim, axes)
    return reduce("reduce_min", t, axes, keepdim)


def _arg(prim: str, x, dim, keepdim: bool) -> Tensor:
    t = to_tensor(x)
    _check_nonempty(prim, t, dim, () if dim is None else (norm_axis(dim, t.ndim),))
    if dim is None:
        flat = apply("reshape", t, shape=(t.numel(),))
        idx = apply(prim, flat, axis=0)
        return apply("reshape", idx, shape=(1,) * t.ndim) if keepdim else idx
    a = norm_axis(dim, t.ndim)
    if t.ndim == 0:
        return constant(0, "i64", ())
    idx = apply(prim, t, axis=a)
    return apply("reshape", idx, shape=kept_shape(t.shape, (a,))) if keepdim else idx


@torch_op("Argmax")
def argmax(input, dim=None, keepdim=False, *, axis=None, keepdims=False):
    """Index (int64) of the first maximum along dim, or in the flattened tensor."""
    dim, keepdim = _keep(dim, axis, keepdim, keepdims)
    _no_bool("argmax", input)
    return _arg("argmax", input, dim, keepdim)


@torch_op("Argmin")
def argmin(input, dim=None, keepdim=False, *, axis=None, keepdims=False):
    dim, keepdim = _keep(dim, axis, keepdim, keepdims)
    _no_bool("argmin", input)
    return _arg("argmin", input, dim, keepdim)


def _no_bool(name: str, x):
    if isinstance(x, Tensor) and dtype_of(x) == "bool":
        raise user_error(RuntimeError, f"{name}(): does not support bool input")


# ---- compositions ---------------------------------------------------------------------------

def _prod_last(t: Tensor) -> Tensor:
    """Product over the last axis by multiplying halves: log2(n) multiplies, exact gradients
    at zeros (every factor's cotangent is the product of the others)."""
    n = t.shape[-1]
    lead = tuple(t.shape[:-1])
    if n == 0:
        return constant(1, dtype_of(t), lead)
    while n > 1:
        if n % 2:
            one = constant(1, dtype_of(t), lead + (1,))
            t = apply("concatenate", t, one, axis=t.ndim - 1)
            n += 1
        half = n // 2
        a = _slice_last(t, 0, half)
        b = _slice_last(t, half, n)
        t = apply("mul", a, b)
        n = half
    return apply("reshape", t, shape=lead)


def _slice_last(t: Tensor, lo: int, hi: int) -> Tensor:
    k = t.ndim
    start = (0,) * (k - 1) + (lo,)
    limit = tuple(t.shape[:-1]) + (hi,)
    return apply("slice", t, start=start, limit=limit, stride=(1,) * k)


@torch_op("Prod", saves=(0, "out"))
def prod(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=False):
    """Product over dim (int) or all elements; ints multiply in int64."""
    dim, keepdim = _keep(dim, axis, keepdim, keepdims)
    t = to_tensor(input)
    if dtype is not None:
        t = cast(t, ir_dtype(dtype))
    elif not is_float(dtype_of(t)):
        t = cast(t, "i64")
    axes = norm_axes(dim, t.ndim)
    rest = tuple(i for i in range(t.ndim) if i not in axes)
    moved = apply("transpose", t, perm=rest + axes) if rest + axes != tuple(range(t.ndim)) else t
    lead = tuple(t.shape[i] for i in rest)
    flat = apply("reshape", moved, shape=lead + (count(t, axes),))
    out = _prod_last(flat)
    return apply("reshape", out, shape=kept_shape(t.shape, axes)) if keepdim else out


def _correction(unbiased, correction) -> float:
    if correction is not None:
        if unbiased is not None:
            raise user_error(ValueError, "give unbiased or correction, not both")
        return float(correction)
    return 1.0 if unbiased is None or unbiased else 0.0


def _var(x, dim, unbiased, keepdim, correction) -> Tensor:
    t = to_tensor(x)
    if not is_float(dtype_of(t)):
        raise user_error(RuntimeError, "std and var only support floating point and complex "
                                       "dtypes")
    axes = norm_axes(dim, t.ndim)
    n = count(t, axes)
    s = apply("reduce_sum", t, axes=axes)
    mu = apply("div", s, constant(n, dtype_of(t), s.shape))
    d = apply("sub", t, broadcast_back(mu, t.shape, axes))
    ss = reduce("reduce_sum", apply("mul", d, d), axes, keepdim)
    denom = builtins.max(n - _correction(unbiased, correction), 0.0)
    return apply("div", ss, constant(denom, dtype_of(t), ss.shape))


def _spelling(name: str, dim, unbiased, correction, axis, ddof):
    """The correction of var/std, decided by the spelling: dim=/unbiased=/correction= (or a
    positional dim) follow PyTorch (correction=1 by default), axis=/ddof= follow NumPy and JAX
    (ddof=0 by default). A call that mixes the two spellings is ambiguous: TypeError.
    Under `gradjit torch` (a PyTorch script) axis= alone is PyTorch's alias of dim=, as in
    torch 2.13 (docs/numerics.md)."""
    if torch_spellings() and axis is not None and ddof is None:
        if dim is not None:
            raise user_error(TypeError, f"{name}() got both axis= and dim= (the same argument)")
        dim, axis = axis, None
    torch_args = [n for n, v in (("dim", dim), ("unbiased", unbiased),
                                 ("correction", correction)) if v is not None]
    numpy_args = [n for n, v in (("axis", axis), ("ddof", ddof)) if v is not None]
    if torch_args and numpy_args:
        raise user_error(TypeError, f"{name}() got {numpy_args[0]}= (NumPy's spelling, ddof=0 "
                         f"by default) together with {torch_args[0]}= (PyTorch's spelling, "
                         "correction=1 by default); use dim=/unbiased=/correction= or "
                         "axis=/ddof=, not both")
    if numpy_args:
        return axis, None, 0 if ddof is None else ddof
    return dim, unbiased, correction


@torch_op("Var", saves=(0,))
def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
        keepdims=False, ddof=None):
    """Variance over dim. The spelling decides the default correction: PyTorch's
    (dim=/unbiased=/correction=, or a positional dim, or no arguments) subtracts 1 from the
    count (Bessel's correction); NumPy's and JAX's (axis=/ddof=) use ddof=0 unless given.
    Mixing the two spellings is a TypeError."""
    if isinstance(dim, bool):          # torch.var(x, False): the second argument is unbiased
        dim, unbiased = None, dim
    dim, unbiased, correction = _spelling("var", dim, unbiased, correction, axis, ddof)
    keepdim = bool(keepdim or keepdims)
    return _var(input, dim, unbiased, keepdim, correction)


@torch_op("Std", saves=(0, "out"))
def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
        keepdims=False, ddof=None):
    """sqrt(var(...)) with the same arguments (and the same spelling rule for the default
    correction: PyTorch's dim=/unbiased=/correction= subtract 1, NumPy's axis=/ddof= 0);
    where the variance is 0 (constant input) the gradient is 0, not 0/0, as PyTorch masks
    that case."""
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    dim, unbiased, correction = _spelling("std", dim, unbiased, correction, axis, ddof)
    v = _var(input, dim, unbiased, bool(keepdim or keepdims), correction)
    zero = apply("eq", v, constant(0, dtype_of(v), v.shape))
    # sqrt of 1 where v is 0, so neither branch's derivative is inf * 0
    root = apply("sqrt", apply("select", zero, constant(1, dtype_of(v), v.shape), v))
    return apply("select", zero, constant(0, dtype_of(v), v.shape), root)


def logsumexp_impl(t: Tensor, axes: tuple, keepdim: bool) -> Tensor:
    """m + log(sum(exp(x - m))) with m the max (0 where it is infinite, so -inf rows stay -inf).
    The gradient through m cancels exactly, so m is a stop_gradient: softmax(x) is the result."""
    m = apply("reduce_max", t, axes=axes)
    inf = constant(math.inf, dtype_of(t), m.shape)
    m = apply("select", apply("eq", apply("abs", m), inf), constant(0, dtype_of(t), m.shape), m)
    m = apply("stop_gradient", m)             # its gradient cancels exactly: skip it
    s = apply("reduce_sum", apply("exp", apply("sub", t, broadcast_back(m, t.shape, axes))),
              axes=axes)
    out = apply("add", apply("log", s), m)
    return apply("reshape", out, shape=kept_shape(t.shape, axes)) if keepdim else out


@torch_op("Logsumexp", saves=(0, "out"))
def logsumexp(input, dim=None, keepdim=False, *, axis=None, keepdims=False, b=None,
              return_sign=False):
    """log(sum(exp(x))) over dim, stable for inputs of any magnitude; JAX's b= (weights)
    and return_sign= go to tracer/ops/jax_nn.py."""
    dim, keepdim = _keep(dim, axis, keepdim, keepdims)
    if b is not None or return_sign:
        return weighted_logsumexp(input, norm_axes(dim, to_tensor(input).ndim), keepdim, b,
                                  return_sign)
    t = to_tensor(input)
    t = cast(t, float_dtype(dtype_of(t)))
    return logsumexp_impl(t, norm_axes(dim, t.ndim), keepdim)


def _bool_reduce(prim: str, x, dim, keepdim) -> Tensor:
    """any / all as counts (a reduce_sum has an identity over empty axes in every backend):
    any = some element is nonzero, all = no element is zero."""
    t = to_tensor(x)
    b = t if dtype_of(t) == "bool" else apply("ne", t, constant(0, dtype_of(t), t.shape))
    if prim == "all":
        b = apply("logical_not", b)
    n = reduce("reduce_sum", cast(b, "i64"), norm_axes(dim, t.ndim), keepdim)
    return apply("gt" if prim == "any" else "eq", n, constant(0, "i64", n.shape))


@torch_op("All")
def all(input, dim=None, keepdim=False, *, axis=None, keepdims=False):
    """True where every element (along dim) is nonzero."""
    dim, keepdim = _keep(dim, axis, keepdim, keepdims)
    return _bool_reduce("all", input, dim, keepdim)


@torch_op("Any")
def any(input, dim=None, keepdim=False, *, axis=None, keepdims=False):
    """True where some element (along dim) is nonzero."""
    dim, keepdim = _keep(dim, axis, keepdim, keepdims)
    return _bool_reduce("any", input, dim, keepdim)
