"""Activations of nn.functional beyond the op surface's: gelu (exact and tanh), elu, selu,
celu, mish, hardtanh, relu6, hardsigmoid, hardswish, logsigmoid, softsign, glu.
Each is a composition of existing primitives, so its gradient comes from their rules."""
from __future__ import annotations

import math

import tracer.ops as ops
from tracer.ops.operands import cast, dtype_of, float_dtype, to_tensor, user_error

__all__ = ["gelu", "elu", "selu", "celu", "mish", "hardtanh", "relu6", "hardsigmoid",
           "hardswish", "logsigmoid", "softsign", "glu"]


def as_float(x):
    """x as a floating Tensor (integers become the default float dtype)."""
    t = to_tensor(x)
    return cast(t, float_dtype(dtype_of(t)))


def gelu(input, approximate: str = "none"):
    """x * Phi(x): exact with erf, or PyTorch's tanh approximation (approximate='tanh')."""
    x = as_float(input)
    if approximate == "none":
        return x * 0.5 * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))
    if approximate == "tanh":
        inner = (x + 0.044715 * x * x * x) * math.sqrt(2.0 / math.pi)
        return x * 0.5 * (1.0 + ops.tanh(inner))
    raise user_error(RuntimeError, "approximate argument must be either none or tanh.")


def elu(input, alpha: float = 1.0, inplace: bool = False):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    x = as_float(input)
    return ops.where(x > 0, x, ops.expm1(ops.minimum(x, 0.0)) * alpha)


def selu(input, inplace: bool = False):
    scale, alpha = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
    return elu(input, alpha) * scale


def celu(input, alpha: float = 1.0, inplace: bool = False):
    x = as_float(input)
    return ops.where(x > 0, x, ops.expm1(ops.minimum(x, 0.0) / alpha) * alpha)


def mish(input, inplace: bool = False):
    """x * tanh(softplus(x))."""
    x = as_float(input)
    return x * ops.tanh(ops.softplus(x))


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
    """x clamped to [min_val, max_val]; the gradient is 0 outside (and at) the bounds."""
    if min_val > max_val:
        raise user_error(ValueError, "min_val cannot be greater than max_val")
    x = to_tensor(input)
    inside = ops.logical_and(x > min_val, x < max_val)
    return ops.where(inside, x, ops.clamp(ops.stop_gradient(x), min_val, max_val))


def relu6(input, inplace: bool = False):
    return hardtanh(input, 0.0, 6.0)


def hardsigmoid(input, inplace: bool = False):
    x = as_float(input)
    return hardtanh(x / 6.0 + 0.5, 0.0, 1.0)


def hardswish(input, inplace: bool = False):
    x = as_float(input)
    return x * ops.clamp(x + 3.0, 0.0, 6.0) / 6.0


def logsigmoid(input):
    """log(sigmoid(x)) = -softplus(-x), without overflow."""
    return -ops.softplus(-as_float(input))


def softsign(input):
    x = as_float(input)
    return x / (1.0 + ops.abs(x))


def glu(input, dim: int = -1):
    """a * sigmoid(b) for the two halves a, b of input along dim."""
    x = as_float(input)
    if x.shape[dim] % 2:
        raise user_error(RuntimeError, "Halving dimension must be even, but dimension "
                         f"{dim % x.ndim} is size {x.shape[dim]}")
    a, b = ops.chunk(x, 2, dim)
    return a * ops.sigmoid(b)
