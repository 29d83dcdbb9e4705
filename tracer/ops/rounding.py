"""Rounding and integer division: floor ceil trunc round frac, floor_divide (`//`),
remainder (`%`), fmod, and div's rounding_mode; compositions of the IR primitives.

There is no rounding primitive: a float is truncated by converting it to i64 and back, which
is exact while |x| < 2**23 (f32) or 2**52 (f64); from there on every float is already an
integer (and nan / inf stay themselves), so those pass through untouched. A value that is
already integral is returned as is, which keeps -0.0. Rounding has derivative zero (its
result goes through stop_gradient), as in PyTorch and JAX.

Integer `//` and `%` round toward -inf (Python's and PyTorch's rule) on top of the `div`
primitive, which truncates and defines x / 0 as 0. Integer division by zero follows the
front (docs/numerics.md): in imperative code the divisor is concrete, so it is checked and
PyTorch's `RuntimeError: ZeroDivisionError` raised; under a functional trace the divisor is
data and the result is defined instead, with no error (as JAX): x // 0 == 0, x % 0 == x,
fmod(x, 0) == x, div(x, 0, rounding_mode='trunc') == 0.
"""
from __future__ import annotations

import numpy as np

from ir.core import is_float
from tracer.ops.operands import constant, dtype_of, operands, result_type, to_tensor, user_error
from tracer.record import apply, torch_op

__all__ = ["floor", "ceil", "trunc", "round", "frac", "floor_divide", "remainder", "fmod"]

_EXACT = {"f32": 2.0 ** 23, "f64": 2.0 ** 52}      # from here on every float is an integer


def _const(value, t):
    return constant(value, dtype_of(t), t.shape)


def _floor(t):
    """floor of a float Tensor (see the module docstring), with a zero derivative."""
    dt = dtype_of(t)
    small = apply("lt", apply("abs", t), _const(_EXACT[dt], t))     # False for nan and inf
    safe = apply("select", small, t, _const(0, t))
    tr = apply("convert", apply("convert", safe, dtype="i64"), dtype=dt)
    fl = apply("sub", tr, apply("convert", apply("gt", tr, safe), dtype=dt))
    moved = apply("logical_and", small, apply("ne", fl, t))
    return apply("stop_gradient", apply("select", moved, fl, t))


def _neg(t):
    return apply("neg", t)


def _ceil(t):
    return _neg(_floor(_neg(t)))


def _trunc(t):
    return apply("select", apply("lt", t, _const(0, t)), _ceil(t), _floor(t))


def _round_half_even(t):
    a = apply("abs", t)
    fl = _floor(a)
    d = apply("sub", a, fl)
    half = _const(0.5, t)
    odd = apply("ne", apply("sub", fl, apply("mul", _floor(apply("mul", fl, half)),
                                             _const(2, t))), _const(0, t))
    up = apply("logical_or", apply("gt", d, half),
               apply("logical_and", apply("eq", d, half), odd))
    r = apply("add", fl, apply("convert", up, dtype=dtype_of(t)))
    r = apply("select", apply("lt", t, _const(0, t)), _neg(r), r)
    return apply("stop_gradient", apply("select", apply("eq", r, t), t, r))


def _float_or_same(x, fn):
    """fn on a float tensor; integer and bool tensors are already integral."""
    t = to_tensor(x)
    return fn(t) if is_float(dtype_of(t)) else apply("reshape", t, shape=tuple(t.shape))


@torch_op("Floor")
def floor(input):
    """The largest integer <= x, elementwise (same dtype)."""
    return _float_or_same(input, _floor)


@torch_op("Ceil")
def ceil(input):
    """The smallest integer >= x, elementwise."""
    return _float_or_same(input, _ceil)


@torch_op("Trunc")
def trunc(input):
    """x rounded toward zero."""
    return _float_or_same(input, _trunc)


@torch_op("Round")
def round(input, *, decimals: int = 0):
    """x rounded to the nearest integer, ties to even (or to `decimals` decimal places)."""
    if decimals == 0:
        return _float_or_same(input, _round_half_even)
    t = to_tensor(input)
    scale = _const(10.0 ** decimals, t)
    return apply("div", _round_half_even(apply("mul", t, scale)), scale)


@torch_op("Frac")
def frac(input):
    """x - trunc(x) (floating point only)."""
    t = to_tensor(input)
    if not is_float(dtype_of(t)):
        raise user_error(TypeError, f"frac() is only defined for floating point tensors, got "
                                    f"{dtype_of(t)}")
    return apply("sub", t, _trunc(t))


def _int_floor_div(a, b):
    """Integer a // b rounding toward -inf (the div primitive truncates; x / 0 is 0)."""
    q = apply("div", a, b)
    r = apply("sub", a, apply("mul", q, b))
    zero = _const(0, r)
    signs_differ = apply("ne", apply("lt", r, zero), apply("lt", b, zero))
    adjust = apply("logical_and", apply("ne", r, zero), signs_differ)
    adjust = apply("logical_and", adjust, apply("ne", b, zero))       # x // 0 stays 0
    return apply("sub", q, apply("convert", adjust, dtype=dtype_of(q)))


def _division_operands(x, y, kernel: str = "div_floor_cpu"):
    dtype = result_type(x, y)
    if dtype == "bool":            # (PyTorch's class and text: no kernel for bools)
        raise user_error(NotImplementedError, f'"{kernel}" not implemented for \'Bool\'')
    a, b = operands(x, y, dtype=dtype)
    if not is_float(dtype) and not b._expr.symbolic and (np.asarray(b) == 0).any():
        # a concrete (imperative) integer divisor: PyTorch's error; traced: see the docstring
        raise user_error(RuntimeError, "ZeroDivisionError")
    return a, b


@torch_op("FloorDivide")
def floor_divide(input, other):
    """x // y: the quotient rounded toward -inf (Python's rule); derivative zero.
    Integers: y == 0 raises RuntimeError('ZeroDivisionError') in imperative code, as PyTorch;
    under a functional trace x // 0 is 0, no error (docs/numerics.md)."""
    a, b = _division_operands(input, other)
    if not is_float(dtype_of(a)):
        return _int_floor_div(a, b)
    return _float_floor_div(a, b)


def _float_floor_div(a, b):
    """PyTorch's (and Python's) float floor division: (a - fmod(a, b)) / b, one less where
    fmod has the wrong sign; so inf // 2 is nan, and a // 0 is a / 0."""
    m = _fmod(a, b)
    zero = _const(0, m)
    q = apply("div", apply("sub", a, m), b)
    wrong_sign = apply("logical_and", apply("ne", m, zero),
                       apply("ne", apply("lt", m, zero), apply("lt", b, zero)))
    q = apply("sub", q, apply("convert", wrong_sign, dtype=dtype_of(q)))
    q = _round_half_even(q)                       # integral up to the division's rounding
    by_zero = apply("eq", b, _const(0, b))
    return apply("stop_gradient", apply("select", by_zero, apply("div", a, b), q))


def _fmod(a, b):
    if not is_float(dtype_of(a)):
        return apply("sub", a, apply("mul", apply("div", a, b), b))
    # the rem primitive is C's fmod: exact for any quotient, the sign of a (-0. kept)
    return apply("rem", a, b)


@torch_op("Fmod")
def fmod(input, other):
    """C's fmod: the remainder of x / y truncated, with the sign of x. Integers: y == 0 raises
    RuntimeError('ZeroDivisionError') in imperative code; traced, fmod(x, 0) is x."""
    a, b = _division_operands(input, other, "fmod_cpu")
    return _fmod(a, b)


@torch_op("Remainder")
def remainder(input, other):
    """x % y: Python's modulus, with the sign of y (x - y * floor(x / y)). Integers: y == 0
    raises RuntimeError('ZeroDivisionError') in imperative code; traced, x % 0 is x."""
    a, b = _division_operands(input, other, "remainder_cpu")
    m = _fmod(a, b)
    zero = _const(0, m)
    wrong_sign = apply("logical_and", apply("ne", m, zero),
                       apply("ne", apply("lt", m, zero), apply("lt", b, zero)))
    return apply("select", wrong_sign, apply("add", m, b), m)


def div_rounded(x, y, rounding_mode: str):
    """div(x, y, rounding_mode='trunc' | 'floor')."""
    if rounding_mode == "floor":
        return floor_divide(x, y)
    if rounding_mode != "trunc":
        raise user_error(ValueError, "div expected rounding_mode to be one of None, 'trunc', "
                                     f"or 'floor' but found '{rounding_mode}'")
    a, b = _division_operands(x, y, "div_trunc_cpu")
    return apply("div", a, b) if not is_float(dtype_of(a)) else _trunc(apply("div", a, b))
