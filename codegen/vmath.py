"""Vectorisable transcendental functions, emitted as straight-line LLVM IR.

LLVM does not vectorise calls to libm (`expf`, `tanhf`, ...), so a fused loop that calls them
runs one element at a time. Every function here instead emits a branch-free scalar sequence of
arithmetic, selects, bit casts, integer ops and vectorisable intrinsics (`llvm.fma`,
`llvm.fabs`, `llvm.rint`, `llvm.copysign`); the loop vectoriser widens it to AVX2/AVX-512.

Usage, while emitting a loop body: `y = VMATH["exp"](bld, x)` where `bld` is an
`ll.IRBuilder` and `x` a scalar `float` or `double` value. The result has the type of `x`.

Methods (no tables, so no gathers; details in each function's docstring; the constants and
_Emit are in codegen/vmath_base.py, sin/cos/tan in codegen/vmath_trig.py):
- exp, expm1: n = rint(x/ln2), r = x - n*ln2 in two FMA steps (Cody-Waite), a polynomial for
  expm1(r), 2^n applied through the exponent field in two multiplies, so that overflow gives
  inf and underflow rounds once into the denormals.
- log, log1p: x = 2^k * m with m in [sqrt(1/2), sqrt(2)) from the bit pattern (denormals are
  scaled up first), then log(1+f) from the atanh series in s = f/(2+f).
- tanh: x + x q up to |x| = 0.55, q a Pade approximant (Lambert's continued fraction), then
  1 - 2/(e^2|x| + 1); one division for both. logistic: 1/(1+e) or e/(1+e) with e = e^-|x|.
  Neither overflows; both saturate exactly.
- sin, cos, tan: n = rint(x*2/pi), r = x - n*pi/2 with pi/2 in three parts and FMA, sin(r) and
  cos(r) picked and signed by n mod 4, for |x| <= TRIG_ACCURATE_LIMIT (1e6 in f32, 1e15 in
  f64). Beyond it, a cold branch to an exact Payne-Hanek reduction (codegen/vmath_trig.py: the
  only exception to straight-line code; accurate to the largest float); +-inf, nan: nan.

Polynomials are Taylor series with exact rational coefficients (1/k!, 2/(2k+1)), except
exp's (used by exp, tanh, logistic and the special functions: near-minimax with one term fewer
in f32, two in f64, and more accurate; vmath_constants.py), of degrees
chosen so that the truncation error on the reduced interval is far below half an ulp (see the
note above _F32). tanh's, on |x| <= 0.55 where its series converges slowly, is a ratio of two
(Lambert's continued fraction for tanh, cut after 2*depth+1, in exact arithmetic). ln 2 and
pi are computed here (Decimal.ln, Machin's formula) and split into float parts.

Maximum error, f32 over all 2^32 inputs: exp 1.06 ulp, expm1 1.28, log 0.85, log1p 0.86,
tanh 1.34, logistic 1.55 (with exp's Taylor Q; every input of five binades each, both signs:
exp 1.048 -> 1.015, tanh 1.334 -> 1.333, logistic 1.553 -> 1.480 with the fitted one),
sin 1.67 and cos 1.81 (|x| <= 1e6; 1.5 below 1.3e5), tan 0.50.
f64, dense sweeps (tests/codegen/test_vmath.py): 1.5 ulp, tan 2.9 ulp.

Rounding-sensitive steps rely on `llvm.fma` being fused, as it is on every x86-64 CPU with
AVX2. The emitted instructions carry no fast-math flags; callers must not add `reassoc` or
`nnan`/`ninf` to them (the special-value selects compare against inf and nan).
"""

import math
from decimal import Decimal, localcontext
from fractions import Fraction

from llvmlite import ir as ll

from codegen import vmath_tables
# LN2, PI, _economize, _F32, _F64 are re-exported for vmath_special/vmath_gamma and the tests.
from codegen.vmath_base import (_F32, _F64, LN2, PI, TANH_SWITCH, _economize, _Emit,  # noqa: F401
                                _round, _split)
from codegen.vmath_trig import cos, sin, tan


# ---- kernels shared by several functions -----------------------------------------------------

def _reduce_ln2(e: _Emit, x: ll.Value) -> tuple[ll.Value, ll.Value]:
    """(n, r) with n = rint(x/ln2) as an integer and r = x - n*ln2, |r| <= ln2/2."""
    n_f, n = e.nearest_int(e.bld.fmul(x, e.f(e.fmt.log2e)))
    minus_n = e.bld.fneg(n_f)
    r = e.fma(minus_n, e.f(e.fmt.ln2[0]), x)           # exact product: no trailing zeros needed
    return n, e.fma(minus_n, e.f(e.fmt.ln2[1]), r)


def _expm1_poly(e: _Emit, r: ll.Value) -> ll.Value:
    """expm1(r) for |r| <= ln2/2: r + r^2 * Q(r), relative error of 1 + that below
    2^-(mant+3): Q is exp_q, near-minimax (one term fewer than the Taylor series in f32, two
    in f64; expm1 itself keeps the Taylor expm1_q, whose rounding suits its sum)."""
    return e.fma(e.bld.fmul(r, r), e.horner(r, e.fmt.exp_q), r)


def _exp(e: _Emit, x: ll.Value) -> ll.Value:
    """e^x = 2^n * (1 + expm1(r)), with x = n*ln2 + r."""
    # Clamping first keeps n in ldexp's range; exp_hi gives exactly inf. Below exp_lo the
    # result is exactly 0: it is selected, and x there is replaced by 0, not clamped to
    # exp_lo. NOTE: the clamp computed exp(exp_lo), whose last multiply underflows to 0; an
    # underflowing multiply is microcoded on Zen 3: exp of -inf (masked attention scores)
    # took 2x the time of finite inputs (65K f32: ~95 against ~45 us).
    x = e.when(">", x, e.fmt.exp_hi, e.f(e.fmt.exp_hi), x)
    below = e.bld.fcmp_ordered("<", x, e.f(e.fmt.exp_lo))
    x = e.bld.select(below, e.f(0.0), x)
    n, r = _reduce_ln2(e, x)
    # ldexp(1 + p, n) with the first of its two scalings folded into an FMA: s (1 + p) is
    # (1 + p) rounded, then scaled exactly (s a power of two, the product normal), so the
    # bits are those of fadd then fmul, for one instruction less
    a = e.bld.ashr(n, e.i(1))
    s = e.pow2(a)
    res = e.bld.fmul(e.fma(_expm1_poly(e, r), s, s), e.pow2(e.bld.sub(n, a)))
    return e.bld.select(below, e.f(0.0), res)


def _expm1(e: _Emit, x: ll.Value) -> ll.Value:
    """e^x - 1 = 2^n * (r + (1 - 2^-n) + r^2 Q(r)), with x = n*ln2 + r.

    1 - 2^-n is exact for |n| <= mant and rounds to 1 (harmlessly) above, where n is capped so
    that 2^-n stays normal. Its sum with r is kept exact (Fast2Sum: it is 0 or >= |r|), so the
    bracket rounds once: about 1 ulp where a plain p + (1 - 2^-n) gave 1.75.
    """
    b = e.bld
    xc = e.when(">", x, e.fmt.exp_hi, e.f(e.fmt.exp_hi), x)
    xc = e.when("<", xc, e.fmt.expm1_lo, e.f(e.fmt.expm1_lo), xc)
    n, r = _reduce_ln2(e, xc)
    cap = e.i(e.fmt.mant + 3)
    n_cap = b.select(b.icmp_signed(">", n, cap), cap, n)
    one_minus = b.fsub(e.f(1.0), e.pow2(b.neg(n_cap)))
    hi = b.fadd(one_minus, r)
    lo = b.fadd(b.fsub(one_minus, hi), r)
    lo = e.fma(b.fmul(r, r), e.horner(r, e.fmt.expm1_q), lo)
    res = e.ldexp(b.fadd(hi, lo), n)
    return e.when("==", x, 0.0, x, res)                   # expm1(-0) = -0


def _log_split(e: _Emit, x: ll.Value) -> tuple[ll.Value, ll.Value]:
    """(k, f) as floats with x = 2^k * (1 + f), 1 + f in [sqrt(1/2), sqrt(2)), for x > 0."""
    fmt = e.fmt
    tiny = e.bld.fcmp_ordered("<", x, e.f(2.0 ** (1 - fmt.bias)))
    x = e.bld.select(tiny, e.bld.fmul(x, e.f(2.0 ** (fmt.mant + 2))), x)   # denormals: normalise
    k_adjust = e.bld.select(tiny, e.i(-(fmt.mant + 2)), e.i(0))
    # Subtracting the bits of sqrt(1/2) makes the exponent field count from that point, so the
    # mantissa lands in [sqrt(1/2), sqrt(2)) once the bits of sqrt(1/2) are added back.
    ix = e.bld.sub(e.bits(x), e.i(fmt.sqrt_half_bits))
    k = e.bld.add(e.bld.ashr(ix, e.i(fmt.mant)), k_adjust)
    mant_mask = e.i((1 << fmt.mant) - 1)
    m = e.from_bits(e.bld.add(e.bld.and_(ix, mant_mask), e.i(fmt.sqrt_half_bits)))
    return e.bld.sitofp(k, e.ty), e.bld.fsub(m, e.f(1.0))     # m - 1 is exact (Sterbenz)


def _log_core(e: _Emit, k: ll.Value, f: ll.Value, extra: ll.Value) -> ll.Value:
    """k*ln2 + log(1+f) + extra: f - f^2/2 + s*(f^2/2 + R(s^2)), s = f/(2+f), summed small to
    large; `extra`, a small correction, joins the small terms so that it costs no rounding."""
    b = e.bld
    s = b.fdiv(f, b.fadd(f, e.f(2.0)))
    z = b.fmul(s, s)
    big_r = b.fmul(z, e.horner(z, e.fmt.log_r))
    half_f2 = b.fmul(e.f(0.5), b.fmul(f, f))
    tail = e.fma(s, b.fadd(half_f2, big_r), e.fma(k, e.f(e.fmt.ln2[1]), extra))
    return e.fma(k, e.f(e.fmt.ln2[0]), b.fsub(f, b.fsub(half_f2, tail)))


def _log_specials(e: _Emit, x: ll.Value, res: ll.Value) -> ll.Value:
    """log(inf) = inf, log(+-0) = -inf, log(x < 0) = log(nan) = nan."""
    res = e.when("==", x, math.inf, x, res)
    res = e.when("==", x, 0.0, e.f(-math.inf), res)
    negative_or_nan = e.bld.fcmp_unordered("<", x, e.f(0.0))
    return e.bld.select(negative_or_nan, e.f(math.nan), res)


# ---- public functions: (bld, x) -> value of x's type ------------------------------------------

def exp(bld: ll.IRBuilder, x: ll.Value) -> ll.Value:
    """e^x; 0 and inf at the ends, nan for nan."""
    return _exp(_Emit(bld, x.type), x)


def expm1(bld: ll.IRBuilder, x: ll.Value) -> ll.Value:
    """e^x - 1, accurate near 0; -1 and inf at the ends."""
    return _expm1(_Emit(bld, x.type), x)


def log(bld: ll.IRBuilder, x: ll.Value) -> ll.Value:
    """Natural log, correct for denormals; -inf at +-0, nan below 0."""
    e = _Emit(bld, x.type)
    k, f = _log_split(e, x)
    return _log_specials(e, x, _log_core(e, k, f, e.f(0.0)))


def log1p(bld: ll.IRBuilder, x: ll.Value) -> ll.Value:
    """log(1 + x), accurate near 0; -inf at -1, nan below."""
    e = _Emit(bld, x.type)
    u = bld.fadd(x, e.f(1.0))
    # u - 1 is exact, so x - (u - 1) is the rounding error of u, and log(u + c) ~ log(u) + c/u.
    correction = bld.fdiv(bld.fsub(x, bld.fsub(u, e.f(1.0))), u)
    k, f = _log_split(e, u)
    res = _log_specials(e, u, _log_core(e, k, f, correction))
    res = e.when("==", x, math.inf, x, res)              # the correction is inf - inf there
    return e.when("==", x, 0.0, x, res)                  # log1p(-0) = -0


def tanh(bld: ll.IRBuilder, x: ll.Value) -> ll.Value:
    """x + x q for |x| <= TANH_SWITCH, q = z C(z)/D(z) (z = x^2, a Pade approximant), else
    +-(1 - 2/(e^2|x| + 1)); one division serves both: (z C, D) or (2, e^2|x| + 1) is chosen.

    The small form keeps full relative accuracy near 0, where any formula dividing by an
    exponential loses ~1 ulp; its correction q is at most 0.1 of x, so q's own rounding
    errors shrink tenfold. Past the switch, tanh >= 1/2 and 2/(d+1) <= 1/2, so its error is
    halved; clamping 2|x| where 2/(d+1) < 2^-(mant+2) gives exactly +-1, never inf/inf.
    NOTE: on AVX2 the old odd polynomial (6 or 12 coefficients) beside its own division
    spilled registers in fused loops: the shared division and 4 (8) coefficients made the
    `chain` benchmark's kernel 5-9% faster on Zen 3 (CPU time, interleaved A/B), and f32
    more accurate (all 2^32 inputs: 1.46 -> 1.34 ulp).
    """
    e = _Emit(bld, x.type)
    a = e.call("llvm.fabs", x)
    y = bld.fadd(a, a)
    y = e.when(">", y, -e.fmt.expm1_lo, e.f(-e.fmt.expm1_lo), y)
    n, r = _reduce_ln2(e, y)
    scale = e.pow2(n)                                   # n <= mant + 5: one step
    d_plus_1 = e.fma(scale, _expm1_poly(e, r), bld.fadd(scale, e.f(1.0)))
    z = bld.fmul(a, a)
    is_large = bld.fcmp_ordered(">", a, e.f(float(TANH_SWITCH)))
    num = bld.select(is_large, e.f(2.0), bld.fmul(z, e.horner(z, e.fmt.tanh_num)))
    q = bld.fdiv(num, bld.select(is_large, d_plus_1, e.horner(z, e.fmt.tanh_den)))
    res = bld.select(is_large, bld.fsub(e.f(1.0), q), e.fma(a, q, a))
    return e.call("llvm.copysign", res, x)                                    # keeps -0


def logistic(bld: ll.IRBuilder, x: ll.Value) -> ll.Value:
    """1/(1 + e^-x) as 1/(1+e) for x >= 0 and e/(1+e) below, e = e^-|x| <= 1: no overflow.

    1 + e is kept as an exact pair hi + lo and the quotient refined by one residual step, so
    only e's own error and one rounding remain (1.5 ulp, where the plain quotient gave 2.1).
    """
    e = _Emit(bld, x.type)
    ex = _exp(e, bld.fneg(e.call("llvm.fabs", x)))
    num = e.when(">=", x, 0.0, e.f(1.0), ex)
    hi = bld.fadd(ex, e.f(1.0))
    lo = bld.fadd(bld.fsub(e.f(1.0), hi), ex)                   # Fast2Sum: 1 >= e
    rcp = bld.fdiv(e.f(1.0), hi)
    q = bld.fmul(num, rcp)
    residual = e.fma(bld.fneg(q), lo, e.fma(bld.fneg(q), hi, num))   # num - q*(hi + lo)
    return e.fma(residual, rcp, q)


VMATH = {
    "exp": exp, "expm1": expm1, "log": log, "log1p": log1p, "tanh": tanh,
    "logistic": logistic, "sin": sin, "cos": cos, "tan": tan,
}


# ---- erf --------------------------------------------------------------------------------
# Evaluated in f64 (f32 rounds the f64 result once, as tan does), in three regions of a = |x|:
#   a < ERF_SMALL:  a + a Q(a^2), Q the Taylor series of erf(a)/a - 1 (exact coefficients
#                   2/sqrt(pi) (-1)^n / (n! (2n+1)));
#   a < ERF_MID:    erf(1) + s P(s), s = a - 1 (exact), the Taylor series at 1, whose
#                   coefficients are 2/sqrt(pi) e^-1 (-1)^(n-1) H_(n-1)(1) / n! (Hermite H);
#   a < ERF_ONE:    1 - e^-a^2 g(a), g(a) = e^(a^2) erfc(a) smooth (~1/(a sqrt(pi))), as a
#                   Chebyshev series on [ERF_MID, ERF_ONE] summed by Clenshaw's recurrence;
#                   a^2 is split exactly (hi + lo by FMA) so e^-a^2 loses nothing to it;
#   beyond:         1 (erf rounds to 1 in f64 from 5.93 on).
# All three are computed and one is selected: no branches. The constants are exact rationals
# rounded once (the Chebyshev coefficients from 70-digit values of g at the Chebyshev points):
# derive_erf_constants, kept as a table in codegen/vmath_tables.py (the derivation took ~35 ms
# of a cold compile; tests/codegen/test_vmath_tables.py derives it again and compares).

ERF_SMALL, ERF_MID, ERF_ONE = 0.84375, 1.25, 6.0
ERF_TERMS = (17, 18, 28)      # Q's and P's terms, g's Chebyshev terms: each truncation < 2^-58


def _two_over_sqrt_pi() -> Fraction:
    scale = 2 ** 200
    return Fraction(math.isqrt(4 * scale * scale * PI.denominator // PI.numerator), scale)


def erfc_scaled_chebyshev(lo: Fraction, hi: Fraction, nodes: int) -> list[Fraction]:
    """Chebyshev coefficients of g(x) = e^(x^2) erfc(x) on [lo, hi], from its values at
    `nodes` Chebyshev points computed to 70 digits: g = e^(x^2) - 2/sqrt(pi) S(x) with erf's
    series of positive terms S = sum 2^n x^(2n+1) / (2n+1)!!, so no term cancels another."""
    with localcontext() as ctx:
        ctx.prec = 70

        def dec(v: Fraction) -> Decimal:
            return Decimal(v.numerator) / Decimal(v.denominator)

        def g(x: Decimal) -> Decimal:
            x2, term, total, n = x * x, x, Decimal(0), 0
            while n < 2 or term > total * Decimal(10) ** -68:
                total += term
                n += 1
                term = term * 2 * x2 / (2 * n + 1)
            return x2.exp() - dec(_two_over_sqrt_pi()) * total

        def cos_of(m: int) -> Decimal:            # cos(pi m / (2 nodes)), Taylor on [0, 2 pi)
            v = dec(PI) * (m % (4 * nodes)) / (2 * nodes)
            total, term, k = Decimal(0), Decimal(1), 0
            while abs(term) > Decimal(10) ** -69:
                total += term
                k += 2
                term = -term * v * v / (k * (k - 1))
            return total

        cos = [cos_of(m) for m in range(4 * nodes)]
        mid, half = dec(lo + hi) / 2, dec(hi - lo) / 2
        values = [g(mid + half * cos[2 * k + 1]) for k in range(nodes)]
        coeffs = [2 * sum(v * cos[j * (2 * k + 1) % (4 * nodes)] for k, v in enumerate(values))
                  / nodes for j in range(nodes)]
        coeffs[0] /= 2
        return [Fraction(c) for c in coeffs]


def _erf_constants() -> dict:
    """erf's f64 constants, from the table."""
    return vmath_tables.ERF


def derive_erf_constants() -> dict:
    """erf's f64 constants in exact arithmetic (what vmath_tables.ERF holds)."""
    two_sqrtpi = _two_over_sqrt_pi()
    inv_e = sum(Fraction((-1) ** k, math.factorial(k)) for k in range(60))
    double_factorial = [1]                              # (2n+1)!!
    for n in range(1, 60):
        double_factorial.append(double_factorial[-1] * (2 * n + 1))
    erf1 = two_sqrtpi * inv_e * sum(Fraction(2 ** n, double_factorial[n]) for n in range(60))
    n_q, n_p, n_g = ERF_TERMS
    q = [two_sqrtpi - 1] + [two_sqrtpi * Fraction((-1) ** n, math.factorial(n) * (2 * n + 1))
                            for n in range(1, n_q)]
    hermite = [Fraction(1), Fraction(2)]                # H_n(1): H_(n+1) = 2 H_n - 2n H_(n-1)
    while len(hermite) < n_p:
        n = len(hermite) - 1
        hermite.append(2 * hermite[n] - 2 * n * hermite[n - 1])
    p = [two_sqrtpi * inv_e * (-1) ** n * hermite[n] / math.factorial(n + 1) for n in range(n_p)]
    g = erfc_scaled_chebyshev(Fraction(ERF_MID), Fraction(ERF_ONE), 40)[:n_g]
    return dict(q=tuple(_round(c, 52) for c in q), p=tuple(_round(c, 52) for c in p),
                erf1=tuple(_split(erf1, 52, 2)), g=tuple(_round(c, 52) for c in g))


def _erf64(e: _Emit, x: ll.Value) -> ll.Value:
    b, k = e.bld, _erf_constants()
    a = e.call("llvm.fabs", x)
    z = b.fmul(a, a)
    small = e.fma(a, e.horner(z, k["q"]), a)
    s = b.fsub(a, e.f(1.0))                             # exact for a in [0.5, 2]
    mid = b.fadd(e.f(k["erf1"][0]), e.fma(s, e.horner(s, k["p"]), e.f(k["erf1"][1])))
    # Clenshaw: b_j = c_j + 2t b_(j+1) - b_(j+2); g = c_0 + t b_1 - b_2
    centre, half = (ERF_MID + ERF_ONE) / 2, (ERF_ONE - ERF_MID) / 2
    t2 = b.fmul(b.fsub(a, e.f(centre)), e.f(2 / half))
    b1, b2 = e.f(k["g"][-1]), e.f(0.0)
    for c in reversed(k["g"][1:-1]):
        b1, b2 = e.fma(t2, b1, b.fsub(e.f(c), b2)), b1
    g = e.fma(b.fmul(t2, e.f(0.5)), b1, b.fsub(e.f(k["g"][0]), b2))
    lo = e.fma(a, a, b.fneg(z))                         # a^2 = z + lo exactly
    eg = b.fmul(_exp(e, b.fneg(z)), g)
    large = b.fsub(e.f(1.0), e.fma(b.fneg(eg), lo, eg))  # erfc = e^-z (1 - lo) g
    res = e.when(">=", a, ERF_ONE, e.f(1.0), large)      # nan (unordered) stays `large`: nan
    res = e.when("<", a, ERF_MID, mid, res)
    res = e.when("<", a, ERF_SMALL, small, res)
    return e.call("llvm.copysign", res, x)              # odd; erf(-0) = -0


def erf(bld: ll.IRBuilder, x: ll.Value) -> ll.Value:
    """The error function 2/sqrt(pi) int_0^x e^-t^2 dt; +-1 at +-inf, nan for nan."""
    if isinstance(x.type, ll.FloatType):
        wide = _Emit(bld, ll.DoubleType())
        return bld.fptrunc(_erf64(wide, bld.fpext(x, wide.ty)), x.type)
    return _erf64(_Emit(bld, x.type), x)


VMATH["erf"] = erf
