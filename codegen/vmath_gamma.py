"""Vectorisable erfc, erfinv, lgamma, digamma and polygamma (straight-line code, no libm).

Built on codegen/vmath.py's kernels (exp, log, sin/cos, erf's constants) and, as
codegen/vmath_special.py, evaluated in f64 with f32 rounded once. Bounds (measured by
tests/codegen/test_vmath_gamma.py) are in docs/numerics.md.

- erfc(a), a = |x|: 1 - a - a Q(a^2) below 0.84375 and (1 - erf(1)) - s P(s) up to 1.25
  (erf's series, vmath), then e^-a^2 g(a) with g(a) = e^(a^2) erfc(a): erf's Chebyshev series
  on [1.25, 6] and beyond 6 a Chebyshev series of a g(a) in u = 1/a on [1/28, 1/6], whose
  values come from erfc's continued fraction in 50-digit arithmetic. erfc(-a) = 2 - erfc(a).
- erfinv: Giles' single-precision approximation ("Approximating the erfinv function", GPU
  Computing Gems, 2011), or an asymptotic start past its range, refined by three Newton steps
  on erf(x) = y (erfc(x) = 1 - y for |y| >= 1/2, where 1 - y is exact, so the steps keep
  their accuracy up to |y| -> 1).
- lgamma, digamma, polygamma(n): the recurrences shift y < 8 to y + 8 (a product of 8 terms
  for lgamma, a sum of 8 reciprocals for the others), then Stirling's / the asymptotic series
  with Bernoulli numbers; x < 0 by the reflection formulas with sin(pi r), r = x - rint(x)
  (exact). The shift subtracts nearly equal numbers near the positive roots (lgamma at 1 and
  2, digamma at 1.4616): there the error is absolute (~1e-16), not relative.
"""
from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

from llvmlite import ir as ll

from codegen import vmath_tables
from codegen.vmath import (ERF_MID, ERF_ONE, ERF_SMALL, PI, _erf64, _erf_constants, _Emit,
                           _exp, _round, cos, log, sin)
from codegen.vmath_special import in_f64

SHIFT = 8                   # y < SHIFT is moved to y + SHIFT by the recurrences
ERFC_TAIL = (6.0, 28.0)     # erfc's second Chebyshev segment; erfc(28) = 0 in f64 (< 2^-1074)
ERFC_TAIL_TERMS = 30


def bernoulli(count: int) -> list[Fraction]:
    """B_0 .. B_(count-1), exactly: B_m = -1/(m+1) sum_(j<m) C(m+1, j) B_j."""
    b = [Fraction(1)]
    for m in range(1, count):
        b.append(-sum(math.comb(m + 1, j) * b[j] for j in range(m)) / (m + 1))
    return b


def _dec(v) -> Decimal:
    v = Fraction(v)
    return Decimal(v.numerator) / Decimal(v.denominator)


def _cos_pi(num: int, den: int) -> Decimal:
    """cos(pi num / den) in the current Decimal precision, by its Taylor series."""
    v = _dec(PI) * (num % (2 * den)) / den
    total, term, k = Decimal(0), Decimal(1), 0
    while abs(term) > Decimal(10) ** -(Decimal(0).adjusted() + 60):
        total += term
        k += 2
        term = -term * v * v / (k * (k - 1))
    return total


def chebyshev(fn, lo: Fraction, hi: Fraction, nodes: int) -> list[Fraction]:
    """Chebyshev coefficients of fn (Decimal -> Decimal) on [lo, hi], interpolated at `nodes`
    Chebyshev points in 50-digit arithmetic."""
    with localcontext() as ctx:
        ctx.prec = 50
        mid, half = _dec(lo + hi) / 2, _dec(hi - lo) / 2
        cos = [_cos_pi(m, 2 * nodes) for m in range(4 * nodes)]
        values = [fn(mid + half * cos[2 * k + 1]) for k in range(nodes)]
        coeffs = [2 * sum(v * cos[j * (2 * k + 1) % (4 * nodes)] for k, v in enumerate(values))
                  / nodes for j in range(nodes)]
        coeffs[0] /= 2
        return [Fraction(c) for c in coeffs]


def _a_erfcx(u: Decimal) -> Decimal:
    """a e^(a^2) erfc(a) at a = 1/u, from the continued fraction
    erfc(a) = e^-a^2/sqrt(pi) / (a + (1/2)/(a + 1/(a + (3/2)/(a + ...)))), for a >= 6."""
    a = 1 / u
    t = a
    for k in range(400, 0, -1):
        t = a + Decimal(k) / 2 / t
    return a / t / _dec(PI).sqrt()


def _constants() -> dict:
    """The f64 constants, from the table (codegen/vmath_tables.py: the exact arithmetic took
    ~45 ms of a cold compile)."""
    return vmath_tables.GAMMA


def derive_constants() -> dict:
    """The f64 constants in exact arithmetic (what vmath_tables.GAMMA holds); Bernoulli numbers
    as (numerator, denominator) pairs."""
    lo, hi = ERFC_TAIL
    tail = chebyshev(_a_erfcx, Fraction(1) / Fraction(hi), Fraction(1) / Fraction(lo),
                     ERFC_TAIL_TERMS + 6)[:ERFC_TAIL_TERMS]
    b = bernoulli(40)
    # Stirling: lgamma(z) = (z - 1/2) log z - z + log(2 pi)/2 + sum B_2k / (2k (2k-1) z^(2k-1))
    stirling = [b[2 * k] / (2 * k * (2 * k - 1)) for k in range(1, 16)]
    # digamma(z) = log z - 1/(2z) - sum B_2k / (2k z^2k)
    digamma = [-b[2 * k] / (2 * k) for k in range(1, 16)]
    with localcontext() as ctx:
        ctx.prec = 50
        half_log_2pi = Fraction((2 * _dec(PI)).ln() / 2)
    return dict(
        erfc_tail=tuple(_round(c, 52) for c in tail),
        bernoulli=tuple((v.numerator, v.denominator) for v in b),
        stirling=tuple(_round(c, 52) for c in stirling), half_log_2pi=_round(half_log_2pi, 52),
        digamma=tuple(_round(c, 52) for c in digamma), pi=_round(PI, 52))


def _clenshaw(e: _Emit, t: ll.Value, coeffs: tuple) -> ll.Value:
    """sum c_j T_j(t) for t in [-1, 1]: b_j = c_j + 2t b_(j+1) - b_(j+2), c_0 + t b_1 - b_2."""
    b = e.bld
    t2 = b.fadd(t, t)
    b1, b2 = e.f(coeffs[-1]), e.f(0.0)
    for c in reversed(coeffs[1:-1]):
        b1, b2 = e.fma(t2, b1, b.fsub(e.f(c), b2)), b1
    return e.fma(t, b1, b.fsub(e.f(coeffs[0]), b2))


def _on(e: _Emit, v: ll.Value, lo: float, hi: float) -> ll.Value:
    """v mapped from [lo, hi] to [-1, 1]."""
    return e.bld.fmul(e.bld.fsub(v, e.f((lo + hi) / 2)), e.f(2 / (hi - lo)))


# ---- erfc, erfinv ------------------------------------------------------------------------------

def _erfc_abs(e: _Emit, a: ll.Value) -> ll.Value:
    """erfc(a) for a >= 0 (nan for nan); relative accuracy down to the denormals."""
    b, k, c = e.bld, _erf_constants(), _constants()
    z = b.fmul(a, a)
    small = e.fma(b.fneg(a), e.horner(z, k["q"]), b.fsub(e.f(1.0), a))   # 1 - (a + a Q)
    s = b.fsub(a, e.f(1.0))
    mid = b.fsub(e.f(1.0 - k["erf1"][0]), e.fma(s, e.horner(s, k["p"]), e.f(k["erf1"][1])))
    g_near = _clenshaw(e, _on(e, a, ERF_MID, ERF_ONE), k["g"])
    u = b.fdiv(e.f(1.0), a)
    lo_u, hi_u = 1 / ERFC_TAIL[1], 1 / ERFC_TAIL[0]
    g_far = b.fmul(u, _clenshaw(e, _on(e, u, lo_u, hi_u), c["erfc_tail"]))
    g = e.when("<", a, ERF_ONE, g_near, g_far)
    lo = e.fma(a, a, b.fneg(z))                                      # a^2 = z + lo exactly
    eg = b.fmul(_exp(e, b.fneg(z)), g)
    res = e.fma(b.fneg(eg), lo, eg)                                  # e^-(z + lo) g
    res = e.when(">=", a, ERFC_TAIL[1], e.f(0.0), res)
    res = e.when("<", a, ERF_MID, mid, res)
    return e.when("<", a, ERF_SMALL, small, res)


def _erfc64(e: _Emit, x: ll.Value) -> ll.Value:
    """erfc(x) = 1 - erf(x), without the cancellation: 2 at -inf, 0 at inf."""
    c = _erfc_abs(e, e.call("llvm.fabs", x))
    return e.when("<", x, 0.0, e.bld.fsub(e.f(2.0), c), c)


# Giles' erfinv in w = -log((1-y)(1+y)): in w - 2.5 for w < 5, in sqrt(w) - 3 beyond
GILES_CENTRAL = (1.50140941, 0.246640727, -0.00417768164, -0.00125372503, 0.00021858087,
                 -4.39150654e-06, -3.5233877e-06, 3.43273939e-07, 2.81022636e-08)
GILES_TAIL = (2.83297682, 1.00167406, 0.00943887047, -0.0076224613, 0.00573950773,
              -0.00367342844, 0.00134934322, 0.000100950558, -0.000200214257)
NEWTON_STEPS = 3
SQRT_PI_2 = 0.886226925452758                  # sqrt(pi)/2, only in the Newton step


def _erfinv64(e: _Emit, y: ll.Value) -> ll.Value:
    """erfinv(y): +-inf at +-1, nan outside [-1, 1]."""
    b = e.bld
    a = e.call("llvm.fabs", y)
    one_minus = b.fsub(e.f(1.0), a)
    w = b.fneg(log(b, b.fmul(one_minus, b.fadd(e.f(1.0), a))))
    central = e.horner(b.fsub(w, e.f(2.5)), GILES_CENTRAL)
    tail = e.horner(b.fsub(e.call("llvm.sqrt", w), e.f(3.0)), GILES_TAIL)
    # past Giles' range (|y| > 1 - 1e-7, f64 only): erfc(x) ~ e^-x^2/(x sqrt(pi)) solved once,
    # x^2 ~ v - log(sqrt(pi v)) with v = -log(1 - |y|)
    v = b.fneg(log(b, one_minus))
    far = e.call("llvm.sqrt", b.fsub(v, b.fmul(e.f(0.5), log(b, b.fmul(v, e.f(math.pi))))))
    x = b.fmul(e.when("<", w, 5.0, central, tail), a)
    x = e.when(">", w, 16.0, far, x)
    near_one = b.fcmp_ordered(">=", a, e.f(0.5))
    for _ in range(NEWTON_STEPS):
        resid = b.select(near_one, b.fsub(one_minus, _erfc_abs(e, x)),
                         b.fsub(_erf64(e, x), a))
        x = b.fsub(x, b.fmul(b.fmul(resid, e.f(SQRT_PI_2)), _exp(e, b.fmul(x, x))))
    x = e.when("==", a, 1.0, e.f(math.inf), x)
    x = b.select(b.fcmp_unordered(">", a, e.f(1.0)), e.f(math.nan), x)
    return e.call("llvm.copysign", x, y)


# ---- lgamma, digamma, polygamma --------------------------------------------------------------

def _sin_pi_frac(e: _Emit, x: ll.Value) -> tuple[ll.Value, ll.Value]:
    """(sin(pi r), cos(pi r)) with r = x - rint(x) in [-1/2, 1/2], exact: sin(pi x) up to sign."""
    r = e.bld.fsub(x, e.call("llvm.rint", x))
    pr = e.bld.fmul(r, e.f(_constants()["pi"]))
    return sin(e.bld, pr, in_range=True), cos(e.bld, pr, in_range=True)   # no rare path


def _lgamma_pos(e: _Emit, y: ll.Value) -> ll.Value:
    """lgamma(y) for y > 0: Stirling at z = y (+ SHIFT when y < SHIFT) minus log of the product."""
    b, c = e.bld, _constants()
    shifted = b.fcmp_ordered("<", y, e.f(float(SHIFT)))
    z = b.select(shifted, b.fadd(y, e.f(float(SHIFT))), y)
    prod = y
    for k in range(1, SHIFT):
        prod = b.fmul(prod, b.fadd(y, e.f(float(k))))
    r = b.fdiv(e.f(1.0), z)
    series = b.fmul(r, e.horner(b.fmul(r, r), c["stirling"][:10]))
    log_z = log(b, z)
    main = e.fma(b.fsub(z, e.f(0.5)), log_z, b.fsub(e.f(c["half_log_2pi"]), z))
    res = b.fadd(main, series)
    return b.select(shifted, b.fsub(res, log(b, prod)), res)


def _lgamma64(e: _Emit, x: ll.Value) -> ll.Value:
    """log|Gamma(x)|; +inf at 0, the negative integers and +-inf."""
    b, c = e.bld, _constants()
    negative = b.fcmp_ordered("<", x, e.f(0.0))
    y = b.select(negative, b.fsub(e.f(1.0), x), x)
    pos = _lgamma_pos(e, y)
    s, _ = _sin_pi_frac(e, x)
    reflected = b.fsub(log(b, b.fdiv(e.f(c["pi"]), e.call("llvm.fabs", s))), pos)
    res = b.select(negative, reflected, pos)
    res = e.when("==", e.call("llvm.fabs", x), math.inf, e.f(math.inf), res)
    res = e.when("==", x, 1.0, e.f(0.0), e.when("==", x, 2.0, e.f(0.0), res))   # the roots
    return e.when("==", x, 0.0, e.f(math.inf), res)


def _recip_powers(e: _Emit, y: ll.Value, power: int) -> ll.Value:
    """sum_(k < SHIFT) 1/(y + k)^power."""
    b = e.bld
    total = e.f(0.0)
    for k in range(SHIFT):
        r = b.fdiv(e.f(1.0), b.fadd(y, e.f(float(k))))
        p = r
        for _ in range(power - 1):
            p = b.fmul(p, r)
        total = b.fadd(total, p)
    return total


def _digamma_pos(e: _Emit, y: ll.Value) -> ll.Value:
    b, c = e.bld, _constants()
    shifted = b.fcmp_ordered("<", y, e.f(float(SHIFT)))
    z = b.select(shifted, b.fadd(y, e.f(float(SHIFT))), y)
    r = b.fdiv(e.f(1.0), z)
    r2 = b.fmul(r, r)
    tail = e.fma(r2, e.horner(r2, c["digamma"][:10]), b.fmul(e.f(-0.5), r))
    res = b.fadd(log(b, z), tail)
    return b.select(shifted, b.fsub(res, _recip_powers(e, y, 1)), res)


def _digamma64(e: _Emit, x: ll.Value) -> ll.Value:
    """psi(x) = Gamma'(x)/Gamma(x); -inf at +0 (+inf at -0), nan at the negative integers and
    -inf, as PyTorch."""
    b, c = e.bld, _constants()
    negative = b.fcmp_ordered("<", x, e.f(0.0))
    y = b.select(negative, b.fsub(e.f(1.0), x), x)
    pos = _digamma_pos(e, y)
    s, co = _sin_pi_frac(e, x)
    reflected = b.fsub(pos, b.fdiv(b.fmul(e.f(c["pi"]), co), s))     # - pi cot(pi x)
    res = b.select(negative, reflected, pos)
    integer = b.fcmp_ordered("==", x, e.call("llvm.rint", x))
    res = b.select(b.and_(negative, integer), e.f(math.nan), res)
    zero = e.call("llvm.copysign", e.f(math.inf), b.fneg(x))
    return e.when("==", x, 0.0, zero, res)


def _polygamma_pos(e: _Emit, y: ll.Value, n: int) -> ll.Value:
    """psi^(n)(y), y > 0, n >= 1: (-1)^(n+1) [ n! sum_k 1/(y+k)^(n+1) + (n-1)!/z^n
    + n!/(2 z^(n+1)) + sum_j B_2j (2j+n-1)!/(2j)! / z^(2j+n) ], z = y + SHIFT."""
    b, c = e.bld, _constants()
    z = b.fadd(y, e.f(float(SHIFT)))
    r = b.fdiv(e.f(1.0), z)
    r2 = b.fmul(r, r)
    bern = c["bernoulli"]
    coeffs = [float(math.factorial(n - 1)), math.factorial(n) / 2]
    series = [_round(Fraction(*bern[2 * j]) * math.factorial(2 * j + n - 1)
                     / math.factorial(2 * j), 52) for j in range(1, 13)]
    rn = e.f(1.0)
    for _ in range(n):
        rn = b.fmul(rn, r)
    asym = b.fmul(rn, e.fma(r, e.fma(r, e.horner(r2, tuple(series)), e.f(coeffs[1])),
                            e.f(coeffs[0])))
    near = b.fmul(e.f(float(math.factorial(n))), _recip_powers(e, y, n + 1))
    res = b.fadd(near, asym)
    return res if n % 2 == 1 else b.fneg(res)


def polygamma(n: int):
    """The vmath rule of polygamma(n, x) for n >= 1 (x < 0: reflection for n == 1 only)."""
    def fn64(e: _Emit, x: ll.Value) -> ll.Value:
        b, c = e.bld, _constants()
        negative = b.fcmp_ordered("<", x, e.f(0.0))
        y = b.select(negative, b.fsub(e.f(1.0), x), x)
        pos = _polygamma_pos(e, y, n)
        res = pos
        # x < 0: psi^(n)(x) = (-1)^n psi^(n)(1-x) - pi d^n/dx^n cot(pi x), written out for
        # n = 1 (pi^2 csc^2) and n = 2 (-2 pi^3 cot csc^2); nan for n > 2 (not derived)
        s, co = _sin_pi_frac(e, x)
        csc = b.fdiv(e.f(c["pi"]), s)
        csc2 = b.fmul(csc, csc)
        if n == 1:
            reflected = b.fsub(csc2, pos)
        elif n == 2:
            cot = b.fdiv(b.fmul(e.f(c["pi"]), co), s)
            reflected = b.fsub(pos, b.fmul(e.f(2.0), b.fmul(cot, csc2)))
        else:
            reflected = e.f(math.nan)
        res = b.select(negative, reflected, pos)
        return e.when("==", x, 0.0, e.f(math.inf if n % 2 else -math.inf), res)
    fn64.__name__ = f"_polygamma{n}64"
    return in_f64(fn64)


def _polygamma_rule(bld: ll.IRBuilder, x: ll.Value, *, n: int) -> ll.Value:
    return polygamma(n)(bld, x)


GAMMA = {"erfc": in_f64(_erfc64), "erfinv": in_f64(_erfinv64), "lgamma": in_f64(_lgamma64),
         "digamma": in_f64(_digamma64), "polygamma": _polygamma_rule}
NO_LIBM = ("erfinv", "digamma", "polygamma")     # C's libm lacks them: no fallback either
