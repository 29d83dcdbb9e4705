"""The special-function primitives' rules: NumPy references, reverse and forward derivatives.

Declared in ir/primitives.py (SPECIAL_UNARY and atan2); the tables here are merged into
ir/interpret.py's impl_rules and ir/autodiff's vjp_rules / jvp_rules, as ir/linalg's are.
Each derivative is the formula PyTorch's derivatives.yaml uses, so values at the domain ends
match it (asin'(1) = inf, atanh'(1) = inf, atan2's gradient at the origin is 0).
"""
from __future__ import annotations

import math

import numpy as np

from ir.special_impl import IMPL_RULES as GAMMA_IMPL

IMPL_RULES: dict = {
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh, "log2": np.log2,
    "log10": np.log10, "exp2": np.exp2, "atan2": np.arctan2, **GAMMA_IMPL,
}


# ---- derivatives: d/dx as IR, shared by both modes ----------------------------------------

def _one_minus_sq(b, x):
    return b.sub(b.full_like(1, x), b.mul(x, x))


DERIVATIVES = {     # name -> (b, out, x) -> f'(x)
    "asin": lambda b, out, x: b.rsqrt(_one_minus_sq(b, x)),
    "acos": lambda b, out, x: b.neg(b.rsqrt(_one_minus_sq(b, x))),
    "atan": lambda b, out, x: b.div(b.full_like(1, x), b.add(b.mul(x, x), b.full_like(1, x))),
    "sinh": lambda b, out, x: b.cosh(x),
    "cosh": lambda b, out, x: b.sinh(x),
    "asinh": lambda b, out, x: b.rsqrt(b.add(b.mul(x, x), b.full_like(1, x))),
    "acosh": lambda b, out, x: b.rsqrt(b.sub(b.mul(x, x), b.full_like(1, x))),
    "atanh": lambda b, out, x: b.div(b.full_like(1, x), _one_minus_sq(b, x)),
    "log2": lambda b, out, x: b.div(b.full_like(1 / math.log(2), x), x),
    "log10": lambda b, out, x: b.div(b.full_like(1 / math.log(10), x), x),
    "exp2": lambda b, out, x: b.mul(out, b.full_like(math.log(2), x)),
    "erfc": lambda b, out, x: b.mul(b.full_like(-2 / math.sqrt(math.pi), x),
                                    b.exp(b.neg(b.mul(x, x)))),
    "erfinv": lambda b, out, x: b.mul(b.full_like(math.sqrt(math.pi) / 2, x),
                                      b.exp(b.mul(out, out))),
    "lgamma": lambda b, out, x: b.digamma(x),
    "digamma": lambda b, out, x: b.polygamma(x, n=1),
}

VJP_RULES: dict = {n: (lambda b, g, out, x, _d=d: (b.mul(g, _d(b, out, x)),))
                   for n, d in DERIVATIVES.items()}
JVP_RULES: dict = {n: (lambda b, ts, out, x, _d=d: b.mul(ts[0], _d(b, out, x)))
                   for n, d in DERIVATIVES.items()}


def _atan2_partials(b, y, x):
    """(d/dy, d/dx) of atan2(y, x) = (x, -y) / (x^2 + y^2), as PyTorch's atan2_backward;
    0 at the origin, as PyTorch 2.13 gives (not 0 * inf)."""
    r2 = b.add(b.mul(y, y), b.mul(x, x))
    origin = b.eq(r2, b.full_like(0, x))
    recip = b.div(b.full_like(1, x), b.select(origin, b.full_like(1, x), r2))
    recip = b.select(origin, b.full_like(0, x), recip)
    return b.mul(x, recip), b.neg(b.mul(y, recip))


def _atan2_vjp(b, g, out, y, x):
    dy, dx = _atan2_partials(b, y, x)
    return b.mul(g, dy), b.mul(g, dx)


def _atan2_jvp(b, ts, out, y, x):
    dy, dx = _atan2_partials(b, y, x)
    parts = [b.mul(t, d) for t, d in zip(ts, (dy, dx)) if t is not None]
    return parts[0] if len(parts) == 1 else b.add(*parts)


VJP_RULES["atan2"] = _atan2_vjp
JVP_RULES["atan2"] = _atan2_jvp
VJP_RULES["polygamma"] = lambda b, g, out, x, *, n: (b.mul(g, b.polygamma(x, n=n + 1)),)
JVP_RULES["polygamma"] = lambda b, ts, out, x, *, n: b.mul(ts[0], b.polygamma(x, n=n + 1))
