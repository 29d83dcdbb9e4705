"""Discrete distributions from a key: bernoulli, randint, categorical (as jax.random)."""
from __future__ import annotations

import numbers

import numpy as np

from tracer.ops import compare as cmp
from tracer.ops import elementwise as ew
from tracer.ops.operands import (broadcast, broadcast_shapes, cast, constant, dtype_of,
                                 ir_dtype, norm_axis, to_tensor, user_error)
from tracer.ops.reduce import argmax
from tracer.random.continuous import _shape, as_float, float_dtype_arg, gumbel, uniform
from tracer.random.keys import random_bits, split
from tracer.record import apply
from tracer.tensor import Tensor

__all__ = ["bernoulli", "randint", "categorical"]

_U32 = 0xFFFFFFFF
_INT32 = (-(1 << 31), (1 << 31) - 1)


def bernoulli(key, p=0.5, shape=None) -> Tensor:
    """Bools that are true with probability p (jax.random.bernoulli: uniform < p)."""
    pt = to_tensor(p)
    dt = dtype_of(pt) if dtype_of(pt) in ("f32", "f64") else float_dtype_arg(None)
    shape = tuple(pt.shape) if shape is None else _shape(shape)
    return cmp.lt(uniform(key, shape, dt), broadcast(as_float(p, dt), shape))


def _unsigned(t: Tensor) -> Tensor:
    """int32 bits as their uint32 value, in int64."""
    return apply("bitwise_and", cast(t, "i64"), constant(_U32, "i64", t.shape))


def _rem(x: Tensor, y: Tensor) -> Tensor:
    """x mod y for non-negative int64 x, y (y = 0 gives x, as XLA's unsigned rem)."""
    return ew.sub(x, ew.mul(apply("div", x, y), y))


def _wrap32(x: Tensor) -> Tensor:
    return apply("bitwise_and", x, constant(_U32, "i64", x.shape))


def _bound(v, shape, dtype: str) -> tuple[Tensor, bool]:
    """v clipped to the int32 range as int64, broadcast; and whether a Python int was above."""
    if isinstance(v, (numbers.Integral, np.integer)):
        v = int(v)
        return constant(min(max(v, _INT32[0]), _INT32[1]), "i64", shape), v > _INT32[1]
    t = to_tensor(v)
    if dtype_of(t) not in ("i32", "i64"):
        raise user_error(TypeError, f"randint bounds must be integers, got {dtype_of(t)}")
    t = ew.clamp(cast(t, "i64"), _INT32[0], _INT32[1])
    return broadcast(t, broadcast_shapes(tuple(t.shape), shape)), False


def _static_span(minval: int, maxval: int) -> tuple[int, int, int]:
    """(minval, span, 2**32 mod span) for Python int bounds (rem by 0 gives x, as XLA)."""
    lo, hi = (min(max(v, _INT32[0]), _INT32[1]) for v in (minval, maxval))
    span = 1 if hi <= lo else (hi - lo + (maxval > _INT32[1])) & _U32
    multiplier = (1 << 16) % span if span else 1 << 16
    multiplier = (multiplier * multiplier) & _U32
    return lo, span, multiplier % span if span else multiplier


def _span(minval, maxval, shape) -> tuple[Tensor, Tensor, Tensor]:
    """int64 tensors: the clipped minval, the span of values, and 2**32 mod span (JAX's
    randint steps, in uint32 arithmetic held in int64)."""
    if all(isinstance(v, (numbers.Integral, np.integer)) for v in (minval, maxval)):
        return tuple(constant(v, "i64", shape) for v in _static_span(int(minval), int(maxval)))
    lo, _ = _bound(minval, shape, "i64")
    hi, hi_above = _bound(maxval, shape, "i64")
    span = _wrap32(ew.sub(hi, lo))
    span = ew.where(cmp.le(hi, lo), constant(1, "i64", shape), span)
    if hi_above:     # the span is one more than maxval - minval: wrap it (2**32 wraps to 0)
        span = ew.where(cmp.gt(hi, lo), _wrap32(ew.add(span, 1)), span)
    multiplier = _rem(constant(1 << 16, "i64", shape), span)
    return lo, span, _rem(_wrap32(ew.mul(multiplier, multiplier)), span)


def randint(key, shape, minval, maxval, dtype=None) -> Tensor:
    """Integers in [minval, maxval) (jax.random.randint, its 64-bit folding of two 32-bit
    draws; int32 by default). Bounds are clipped to int32: an int64 result holds int32
    values (JAX draws 64-bit words there)."""
    dt = "i32" if dtype is None else ir_dtype(dtype)
    if dt not in ("i32", "i64"):
        raise user_error(TypeError, f"randint needs an integer dtype, got {dtype!r}")
    shape = _shape(shape)
    k1, k2 = (apply("reshape", apply("slice", split(key), start=(i, 0), limit=(i + 1, 2),
                                     stride=(1, 1)), shape=(2,)) for i in (0, 1))
    higher, lower = (_unsigned(random_bits(k, 32, shape)) for k in (k1, k2))
    lo, span, multiplier = _span(minval, maxval, shape)
    offset = _wrap32(ew.add(_wrap32(ew.mul(_rem(higher, span), multiplier)),
                            _rem(lower, span)))
    offset = _rem(offset, span)
    return cast(cast(ew.add(lo, offset), "i32"), dt)


def categorical(key, logits, axis=-1, shape=None) -> Tensor:
    """Indices drawn with probabilities softmax(logits) along axis, by the Gumbel-max trick
    (jax.random.categorical); int32."""
    lg = to_tensor(logits)
    dt = dtype_of(lg) if dtype_of(lg) in ("f32", "f64") else float_dtype_arg(None)
    lg = cast(lg, dt)
    ax = norm_axis(axis, lg.ndim)
    batch = tuple(lg.shape[:ax]) + tuple(lg.shape[ax + 1:])
    shape = batch if shape is None else _shape(shape)
    if broadcast_shapes(batch, shape) != shape:
        raise user_error(ValueError, f"categorical: shape {list(shape)} is not compatible "
                                     f"with the batch shape {list(batch)} of the logits")
    prefix = shape[:len(shape) - len(batch)]
    full = list(shape[len(shape) - len(batch):])
    full.insert(ax, lg.shape[ax])
    noisy = ew.add(gumbel(key, prefix + tuple(full), dt), broadcast(lg, prefix + tuple(full)))
    return cast(argmax(noisy, len(prefix) + ax), "i32")
