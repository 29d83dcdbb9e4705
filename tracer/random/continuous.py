"""Continuous distributions from a key: uniform, normal, truncated_normal, gumbel.

Each follows jax.random's construction: uniform fills a float's mantissa with random bits
under the exponent of 1.0 and subtracts 1 (so uniform bits are bitwise JAX's for the same
key), normal is sqrt(2) * erfinv(u) of a uniform u in (-1, 1), truncated_normal inverts the
normal CDF between erf(lower/sqrt2) and erf(upper/sqrt2), gumbel is -log(-log(u)). Values
built from erfinv and log agree with JAX to float rounding, not bitwise.
"""
from __future__ import annotations

import math

import numpy as np

from ir.core import DTYPES, is_float
from tracer.dtypes import default_float
from tracer.ops import compare as cmp
from tracer.ops import elementwise as ew
from tracer.ops.operands import (broadcast, broadcast_shapes, cast, constant, dtype_of,
                                 ir_dtype, is_scalar, shape_arg, to_tensor,
                                 user_error)
from tracer.random.keys import random_bits
from tracer.record import apply
from tracer.tensor import Tensor

__all__ = ["uniform", "normal", "truncated_normal", "gumbel"]

_INT_OF = {"f32": "i32", "f64": "i64"}
_MANTISSA = {"f32": 23, "f64": 52}
# erfinv in float32 (M. Giles, "Approximating the erfinv function", 2010): the polynomials
# XLA uses; float64 adds Newton steps on erf
_GILES_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                  0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_GILES_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
               0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def float_dtype_arg(dtype) -> str:
    dt = default_float() if dtype is None else ir_dtype(dtype)
    if not is_float(dt):
        raise user_error(TypeError, f"dtype argument must be a float dtype, got {dtype!r}")
    return dt


def _shape(shape) -> tuple:
    return () if shape is None else shape_arg((shape,) if isinstance(shape, int) else
                                              (tuple(shape),))


def as_float(v, dt: str) -> Tensor:
    """v in dtype dt; a Python scalar is taken exactly (not through the default float)."""
    return constant(v, dt) if is_scalar(v) else cast(to_tensor(v), dt)


def _bounded(v, dt: str, shape) -> Tensor:
    t = as_float(v, dt)
    if broadcast_shapes(tuple(t.shape), shape) != tuple(shape):
        raise user_error(ValueError, f"bounds of shape {list(t.shape)} do not broadcast to the "
                                     f"requested shape {list(shape)}")
    return broadcast(t, shape)


def unit_floats(key, shape, dt: str) -> Tensor:
    """Floats in [0, 1) from the key: random mantissa bits under 1.0's exponent, minus 1."""
    width = 32 if dt == "f32" else 64
    bits = random_bits(key, width, shape)
    it = _INT_OF[dt]
    one_bits = int(np.array(1.0, DTYPES[dt]).view(DTYPES[it]))
    mantissa = apply("shift_right_logical", bits, constant(width - _MANTISSA[dt], it, shape))
    as_float = apply("bitcast_convert", apply("bitwise_or", mantissa,
                                              constant(one_bits, it, shape)), dtype=dt)
    return apply("sub", as_float, constant(1.0, dt, shape))


def uniform(key, shape=(), dtype=None, minval=0.0, maxval=1.0) -> Tensor:
    """Uniform floats in [minval, maxval) (jax.random.uniform)."""
    dt, shape = float_dtype_arg(dtype), _shape(shape)
    lo, hi = _bounded(minval, dt, shape), _bounded(maxval, dt, shape)
    u = unit_floats(key, shape, dt)
    return apply("max", lo, apply("add", apply("mul", u, apply("sub", hi, lo)), lo))


def erfinv(x: Tensor) -> Tensor:
    """The inverse error function on (-1, 1), elementwise (Giles; f64 refined by Newton)."""
    dt = dtype_of(x)
    w = ew.neg(ew.log(ew.mul(ew.sub(1.0, x), ew.add(1.0, x))))
    central, tail = ew.sub(w, 2.5), ew.sub(ew.sqrt(w), 3.0)
    p_central, p_tail = (constant(c[0], dt, x.shape) for c in (_GILES_CENTRAL, _GILES_TAIL))
    for a, b in zip(_GILES_CENTRAL[1:], _GILES_TAIL[1:]):
        p_central = ew.add(ew.mul(p_central, central), a)
        p_tail = ew.add(ew.mul(p_tail, tail), b)
    y = ew.mul(ew.where(cmp.lt(w, 5.0), p_central, p_tail), x)
    if dt == "f64":
        for _ in range(2):
            slope = ew.mul(2 / math.sqrt(math.pi), ew.exp(ew.neg(ew.mul(y, y))))
            y = ew.sub(y, ew.div(ew.sub(ew.erf(y), x), slope))
    return y


def normal(key, shape=(), dtype=None) -> Tensor:
    """Standard normal floats (jax.random.normal): sqrt(2) erfinv(u), u uniform in (-1, 1)."""
    dt = float_dtype_arg(dtype)
    lo = float(np.nextafter(DTYPES[dt].type(-1.0), DTYPES[dt].type(0.0)))
    u = uniform(key, shape, dt, lo, 1.0)
    return ew.mul(math.sqrt(2), erfinv(u))


def next_float(x: Tensor, up: bool) -> Tensor:
    """The float after x toward +inf (up) or -inf, by stepping its bits (np.nextafter)."""
    dt = dtype_of(x)
    it = _INT_OF[dt]
    bits = apply("bitcast_convert", x, dtype=it)
    away = cmp.gt(x, 0.0) if up else cmp.lt(x, 0.0)    # the step grows the magnitude
    stepped = ew.add(bits, ew.where(away, constant(1, it, x.shape), constant(-1, it, x.shape)))
    tiny = constant(1 if up else -1, it, x.shape)      # from +-0: the smallest subnormal
    tiny = apply("bitcast_convert", tiny, dtype=dt)
    return ew.where(cmp.eq(x, 0.0), tiny, apply("bitcast_convert", stepped, dtype=dt))


def truncated_normal(key, lower, upper, shape=None, dtype=None) -> Tensor:
    """Normal floats truncated to (lower, upper) (jax.random.truncated_normal)."""
    dt = float_dtype_arg(dtype)
    lo, hi = as_float(lower, dt), as_float(upper, dt)
    shape = broadcast_shapes(tuple(lo.shape), tuple(hi.shape)) if shape is None else _shape(
        shape)
    lo, hi = _bounded(lo, dt, shape), _bounded(hi, dt, shape)
    a = ew.erf(ew.div(lo, math.sqrt(2)))
    b = ew.erf(ew.div(hi, math.sqrt(2)))
    out = ew.mul(math.sqrt(2), erfinv(uniform(key, shape, dt, a, b)))
    low_edge = next_float(ew.stop_gradient(lo), up=True)
    high_edge = next_float(ew.stop_gradient(hi), up=False)
    return ew.minimum(ew.maximum(out, low_edge), high_edge)


def gumbel(key, shape=(), dtype=None) -> Tensor:
    """Standard Gumbel floats (jax.random.gumbel): -log(-log(u)), u in [tiny, 1)."""
    dt = float_dtype_arg(dtype)
    tiny = float(np.finfo(DTYPES[dt]).tiny)
    return ew.neg(ew.log(ew.neg(ew.log(uniform(key, shape, dt, tiny, 1.0)))))
