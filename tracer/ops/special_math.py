"""Elementwise functions composed of primitives: logaddexp(2), hypot, lerp, heaviside, sinc,
xlogy, logit, nan_to_num, isclose/allclose and NumPy's clip.

Each is a short composition recorded through the other ops, so its gradient comes from
theirs. Where a branch would produce inf or nan that a `where` then discards, the branch's
input is first made safe (x_safe = where(bad, 1, x)): a discarded branch still receives a zero
cotangent, and 0 * inf would turn the gradient into NaN. NaN propagation and the values at
0, +-inf follow PyTorch 2.13 (tests/api/test_special_math.py records them).
"""
from __future__ import annotations

import math

import numpy as np

from ir.core import is_float
from tracer.ops.compare import (eq, isfinite, isinf, isnan, le, logical_and, logical_not,
                                logical_or)
from tracer.ops.elementwise import (abs, add, clamp, div, exp, log, log1p, maximum, minimum,
                                    mul, sigmoid, sin, sqrt, stop_gradient, sub, where)
from tracer.ops.operands import (cast, constant, dtype_of, float_dtype, is_scalar, operands,
                                 result_type, to_tensor, user_error)
from tracer.ops.reduce import all as all_
from tracer.ops.special import exp2
from tracer.record import torch_op
from tracer.tensor import Tensor

__all__ = ["logaddexp", "logaddexp2", "hypot", "lerp", "heaviside", "sinc", "xlogy", "logit",
           "expit", "nan_to_num", "isclose", "allclose", "clip"]

expit = sigmoid


def _floats(*args):
    return operands(*args, dtype=float_dtype(result_type(*args)))


def _both_inf_equal(a, b):
    return logical_and(isinf(a), eq(a, b))


@torch_op("Logaddexp", saves=(0, 1))
def logaddexp(input, other) -> Tensor:
    """log(e^input + e^other) = max + log1p(e^-|input - other|); equal infinities give
    themselves (their difference is nan), a NaN operand gives NaN."""
    a, b = _floats(input, other)
    same = _both_inf_equal(a, b)
    gap = abs(sub(a, where(same, constant(0, dtype_of(a)), b)))
    return where(same, a, add(maximum(a, b), log1p(exp(-gap))))


@torch_op("Logaddexp2", saves=(0, 1))
def logaddexp2(input, other) -> Tensor:
    """log2(2^input + 2^other) = max + log1p(2^-|input - other|) / ln 2."""
    a, b = _floats(input, other)
    same = _both_inf_equal(a, b)
    gap = abs(sub(a, where(same, constant(0, dtype_of(a)), b)))
    return where(same, a, add(maximum(a, b), mul(log1p(exp2(-gap)), 1 / math.log(2))))


@torch_op("Hypot", saves=(0, 1))
def hypot(input, other) -> Tensor:
    """sqrt(input^2 + other^2) without overflow: big * sqrt(1 + (small/big)^2); an infinite
    operand gives inf even beside a NaN (C's hypot); the gradient at (0, 0) is NaN, as PyTorch's."""
    a, b = _floats(input, other)
    # beside an infinity a finite operand gets gradient 0 (x/inf), not 0 * inf = NaN
    zero = constant(0, dtype_of(a))
    x = abs(where(logical_and(isinf(b), isfinite(a)), zero, a))
    y = abs(where(logical_and(isinf(a), isfinite(b)), zero, b))
    big, small = maximum(x, y), minimum(x, y)
    ratio = div(small, big)
    out = mul(big, sqrt(add(mul(ratio, ratio), 1)))
    out = where(eq(big, 0), small, out)
    return where(logical_or(isinf(a), isinf(b)), constant(math.inf, dtype_of(a)), out)


@torch_op("Lerp", saves=(0, 1, 2))
def lerp(input, end, weight) -> Tensor:
    """input + weight * (end - input), PyTorch's two-sided formula (exact at weight 0 and 1)."""
    a, b = _floats(input, end)
    w = weight if is_scalar(weight) else cast(to_tensor(weight), dtype_of(a))
    diff = sub(b, a)
    if is_scalar(w):
        return add(a, mul(w, diff)) if w < 0.5 else sub(b, mul(diff, sub(1, w)))
    # each branch sees a weight that is safe where it is discarded (diff may be infinite)
    use_low = w < 0.5
    low = add(a, mul(where(use_low, w, constant(0, dtype_of(a))), diff))
    high = sub(b, mul(diff, sub(1, where(use_low, constant(1, dtype_of(a)), w))))
    return where(use_low, low, high)


@torch_op("Heaviside")
def heaviside(input, values) -> Tensor:
    """0 where input < 0 (and NaN, as PyTorch), values where input == 0, 1 where input > 0.
    **differs:** the gradient is zero (PyTorch raises in backward: not implemented)."""
    x, v = to_tensor(input), to_tensor(values)
    if dtype_of(x) != dtype_of(v):
        raise user_error(RuntimeError, "heaviside is not yet implemented for tensors with "
                                       "different dtypes.")
    x, v = operands(stop_gradient(x), stop_gradient(v))
    zero, one = constant(0, dtype_of(x)), constant(1, dtype_of(x))
    return where(eq(x, 0), v, where(x > 0, one, zero))


@torch_op("Sinc", saves=(0,))
def sinc(input) -> Tensor:
    """sin(pi x)/(pi x), 1 at 0 with gradient 0 there (PyTorch's)."""
    t = to_tensor(input)
    x = cast(t, float_dtype(dtype_of(t)))
    at_zero = eq(x, 0)
    safe = mul(where(at_zero, constant(1, dtype_of(x)), x), math.pi)
    return where(at_zero, constant(1, dtype_of(x)), div(sin(safe), safe))


@torch_op("Xlogy", saves=(0, 1))
def xlogy(input, other) -> Tensor:
    """input * log(other), 0 where input == 0 unless other is NaN (torch.xlogy, scipy's)."""
    x, y = _floats(input, other)
    zero_term = logical_and(eq(x, 0), logical_not(isnan(y)))
    safe_y = where(zero_term, constant(1, dtype_of(y)), y)
    return where(zero_term, constant(0, dtype_of(x)), mul(x, log(safe_y)))


@torch_op("Logit", saves=(0,))
def logit(input, eps=None) -> Tensor:
    """log(z/(1-z)) as log(z) - log1p(-z), z = input clamped to [eps, 1-eps] when eps is given
    (gradient 0 outside, as PyTorch); NaN outside [0, 1] without eps."""
    t = to_tensor(input)
    z = cast(t, float_dtype(dtype_of(t)))
    if eps is not None:
        z = clamp(z, eps, 1 - eps)
    return sub(log(z), log1p(-z))


@torch_op("NanToNum", saves=(0,))
def nan_to_num(input, nan=0.0, posinf=None, neginf=None) -> Tensor:
    """NaN, +inf and -inf replaced (by default with 0 and the dtype's largest and lowest
    finite values); the gradient flows only through the finite entries, as PyTorch's."""
    t = to_tensor(input)
    dt = dtype_of(t)
    if not is_float(dt):
        return t
    info = np.finfo(np.float32 if dt == "f32" else np.float64)
    hi = float(info.max) if posinf is None else posinf
    lo = float(info.min) if neginf is None else neginf
    out = where(isnan(t), constant(nan, dt), t)
    out = where(eq(t, math.inf), constant(hi, dt), out)
    return where(eq(t, -math.inf), constant(lo, dt), out)


def isclose(input, other, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """|input - other| <= atol + rtol |other| (finite), or equal (infinities of one sign); NaNs
    are close only with equal_nan. A bool tensor, as torch.isclose / np.isclose."""
    if rtol < 0:
        raise user_error(RuntimeError, "rtol must be greater than or equal to zero, but got "
                                       f"{rtol:g}")
    if atol < 0:
        raise user_error(RuntimeError, "atol must be greater than or equal to zero, but got "
                                       f"{atol:g}")
    a, b = operands(input, other)
    close = eq(a, b)
    if not is_float(dtype_of(a)):
        a, b = cast(a, "f64"), cast(b, "f64")
    if equal_nan:
        close = logical_or(close, logical_and(isnan(a), isnan(b)))
    gap = abs(sub(a, b))
    allowed = add(mul(abs(b), rtol), atol)
    finite_close = logical_and(logical_not(logical_or(isnan(gap), isinf(gap))), le(gap, allowed))
    return logical_or(close, finite_close)


def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """Whether every element is close (isclose): a Python bool, so eager only (under a trace
    the bool is data-dependent, and its conversion raises TracerError)."""
    return bool(all_(isclose(input, other, rtol, atol, equal_nan)))


def clip(a=None, a_min=None, a_max=None, *, min=None, max=None, input=None) -> Tensor:
    """NumPy's clip(a, a_min, a_max) and PyTorch's clip(input, min, max): clamp."""
    if (a is None) == (input is None):
        raise user_error(TypeError, "clip: give the tensor once (a or input)")
    a = a if input is None else input
    lo = a_min if min is None else min
    hi = a_max if max is None else max
    if (a_min is not None and min is not None) or (a_max is not None and max is not None):
        raise user_error(TypeError, "clip: give each bound once (a_min/min, a_max/max)")
    return clamp(a, lo, hi)


clip.torch_name = "Clamp"
