"""NumPy references (the interpreter's rules) of erfc, erfinv, lgamma, digamma, polygamma.

NumPy has none of them: erfc and lgamma are the standard library's (libm, element by element),
erfinv inverts the normal CDF (statistics.NormalDist, Wichura's AS241) and polishes it with
Newton steps on math.erf / math.erfc; digamma and polygamma are series evaluated in float64
with a larger shift than the compiled code uses (z >= 20), so the two are computed
independently. tests/ir/test_special_impl.py checks them against mpmath values recorded there.
"""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

_B2K = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510, 43867 / 798,
        -174611 / 330)                          # B_2 .. B_20
SHIFT = 20


def _per_element(fn):
    def rule(x):
        out = np.vectorize(fn, otypes=[np.float64])(np.asarray(x, np.float64))
        return out.astype(np.asarray(x).dtype)
    return rule


def _lgamma(v: float) -> float:
    try:
        return math.lgamma(v)
    except ValueError:                          # the poles 0, -1, -2, ...
        return math.inf


def _erfinv(y: float) -> float:
    if math.isnan(y) or abs(y) > 1:
        return math.nan
    if abs(y) == 1:
        return math.copysign(math.inf, y)
    if y == 0:
        return y
    a = abs(y)
    if a <= 1e-8:
        x = a * 0.886226925452758
    else:       # the upper tail: 1 - a is exact for a >= 1/2, so p keeps its digits
        x = -NormalDist().inv_cdf((1 - a) / 2) / math.sqrt(2)
    for _ in range(3):
        resid = (1 - a) - math.erfc(x) if a >= 0.5 else math.erf(x) - a
        x -= resid * math.sqrt(math.pi) / 2 * math.exp(x * x)
    return math.copysign(x, y)


def _digamma(x):
    x = np.asarray(x, np.float64)
    with np.errstate(all="ignore"):
        neg = x < 0
        y = np.where(neg, 1 - x, x)
        z = y + SHIFT
        near = sum(1 / (y + k) for k in range(SHIFT))
        r2 = 1 / (z * z)
        tail = sum(-b / (2 * (k + 1)) * r2 ** (k + 1) for k, b in enumerate(_B2K))
        pos = np.log(z) - 0.5 / z + tail - near
        r = x - np.rint(x)
        out = np.where(neg, pos - np.pi / np.tan(np.pi * r), pos)
        out = np.where(neg & (x == np.rint(x)), np.nan, out)
        out = np.where(x == 0, np.copysign(np.inf, -x), out)
    return out


def _polygamma_pos(y, n):
    z = y + SHIFT
    near = math.factorial(n) * sum(1 / (y + k) ** (n + 1) for k in range(SHIFT))
    asym = math.factorial(n - 1) / z ** n + math.factorial(n) / (2 * z ** (n + 1))
    asym = asym + sum(b * math.factorial(2 * j + n + 1) / math.factorial(2 * j + 2)
                      / z ** (2 * j + 2 + n) for j, b in enumerate(_B2K))
    return (near + asym) * (1 if n % 2 else -1)


def _polygamma(x, *, n):
    """psi^(n)(x), n >= 1; x < 0 by reflection for n = 1, 2 (nan for larger n)."""
    x = np.asarray(x, np.float64)
    with np.errstate(all="ignore"):
        neg = x < 0
        pos = _polygamma_pos(np.where(neg, 1 - x, x), n)
        s = np.sin(np.pi * (x - np.rint(x)))
        csc2 = (np.pi / s) ** 2
        if n == 1:
            refl = csc2 - pos
        elif n == 2:
            refl = pos - 2 * np.pi * np.cos(np.pi * (x - np.rint(x))) / s * csc2
        else:
            refl = np.full_like(x, np.nan)
        out = np.where(neg, refl, pos)
        return np.where(x == 0, np.inf if n % 2 else -np.inf, out)


def _keep_dtype(fn):
    def rule(x, **params):
        return np.asarray(fn(x, **params)).astype(np.asarray(x).dtype)
    return rule


IMPL_RULES = {
    "erfc": _per_element(math.erfc), "lgamma": _per_element(_lgamma),
    "erfinv": _per_element(_erfinv), "digamma": _keep_dtype(_digamma),
    "polygamma": _keep_dtype(_polygamma),
}
