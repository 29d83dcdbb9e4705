"""Vectorisable inverse trigonometric, hyperbolic and base-2/base-10 functions.

The same rules as codegen/vmath.py (straight-line code: arithmetic, selects, bit casts and
vectorisable intrinsics, no libm calls), built on its kernels (exp, expm1, log, log1p). Every
function here is evaluated in f64; an f32 operand is widened and the result rounded once, so
f32 results are within ~0.5 ulp (the double rounding adds at most 2^-29 ulp). The f64 bounds,
measured by tests/codegen/test_vmath_special.py, are in docs/numerics.md.

Methods:
- atan: |x| reduced to |t| <= tan(pi/8) by t = (a-1)/(a+1) (+pi/4) or t = -1/a (+pi/2), then
  t + t^3 P(t^2), P the Taylor series of (atan(t) - t)/t^3 economised with Chebyshev
  polynomials (vmath._economize). asin(x) = atan(x / sqrt((1-x)(1+x))) and
  acos(x) = 2 atan(sqrt((1-x)/(1+x))): both accurate up to |x| = 1, where (1-x) is exact.
- atan2(y, x): atan(min/max) of the magnitudes, reflected about pi/2 and pi by the quadrant;
  the IEEE special cases (+-0, +-inf) as C's atan2 / NumPy.
- sinh, cosh: e^|x| / 2 as 2^(n-1) (1 + expm1(r)), which reaches the largest finite results
  (exp itself overflows before cosh does); sinh for |x| < 1 from expm1 (no cancellation).
- asinh, acosh, atanh: log1p of a rearranged argument that keeps small results accurate;
  log(|x|) + ln 2 past 2^28, where the square would lose it or overflow.
- log2, log10: x = 2^k (1 + f) as log does, then k + log(1+f)/ln 2 (so log2 of a power of
  two is exact) and k log10(2) + log(1+f) log10(e), with log10(2) split so k*hi is exact.
- exp2: x = n + r, r = x - rint(x) exact, 2^r = 1 + expm1(r ln2) with r ln2 as an exact pair.
"""
from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

from llvmlite import ir as ll

from codegen import vmath_tables
from codegen.vmath import (LN2, PI, _economize, _Emit, _expm1, _expm1_poly, _log_core,
                           _log_specials, _log_split, _reduce_ln2, _round, _split, log, log1p)

# atan's reduced argument: |t| <= tan(pi/8) = sqrt(2) - 1, so t^2 <= 3 - 2 sqrt(2) < 0.1716
ATAN_Z_MAX = Fraction(1716, 10000)
ATAN_DEGREE = 16           # economised degree in t^2 (the error is measured by the tests)
TAN_PI_8, TAN_3PI_8 = math.sqrt(2) - 1, math.sqrt(2) + 1
LARGE = 2.0 ** 28          # asinh / acosh switch to log(|x|) + ln 2 (the square loses nothing)


def _ln10() -> Fraction:
    with localcontext() as ctx:
        ctx.prec = 70
        return Fraction(Decimal(10).ln())


def _constants() -> dict:
    """The f64 constants, from the table (codegen/vmath_tables.py: the exact arithmetic took
    ~15 ms of a cold compile)."""
    return vmath_tables.SPECIAL


def derive_constants() -> dict:
    """The f64 constants in exact arithmetic (what vmath_tables.SPECIAL holds)."""
    taylor = [Fraction((-1) ** (k + 1), 2 * k + 3) for k in range(30)]   # 0.1716^30: 1e-23
    ln10 = _ln10()
    log10_2 = LN2 / ln10
    hi = _round(log10_2, 40)                      # k * hi is exact for |k| < 2^12
    return dict(
        atan_p=tuple(_round(c, 52) for c in _economize(taylor, ATAN_Z_MAX, ATAN_DEGREE)),
        pio2=tuple(_split(PI / 2, 52, 2)), pio4=tuple(_split(PI / 4, 52, 2)),
        pi=tuple(_split(PI, 52, 2)), ln2=_round(LN2, 52), inv_ln2=_round(1 / LN2, 52),
        ln2_pair=tuple(_split(LN2, 52, 2)), log10_2=(hi, _round(log10_2 - Fraction(hi), 52)),
        log10_e=_round(1 / ln10, 52))


def in_f64(fn64):
    """A vmath rule (bld, *xs) from fn64(e, *xs) written for f64: f32 is widened, rounded once."""
    def rule(bld: ll.IRBuilder, *xs: ll.Value) -> ll.Value:
        if isinstance(xs[0].type, ll.FloatType):
            e = _Emit(bld, ll.DoubleType())
            return bld.fptrunc(fn64(e, *(bld.fpext(x, e.ty) for x in xs)), xs[0].type)
        return fn64(_Emit(bld, xs[0].type), *xs)
    rule.__name__ = rule.__qualname__ = fn64.__name__.lstrip("_").replace("64", "")
    rule.__doc__ = fn64.__doc__
    return rule


# ---- inverse trigonometric -------------------------------------------------------------------

def _atan_abs(e: _Emit, a: ll.Value) -> ll.Value:
    """atan(a) for a >= 0 (or nan, giving nan); a = inf gives pi/2."""
    b, k = e.bld, _constants()
    big = b.fcmp_ordered(">", a, e.f(TAN_3PI_8))
    mid = b.fcmp_ordered(">", a, e.f(TAN_PI_8))
    t_mid = b.fdiv(b.fsub(a, e.f(1.0)), b.fadd(a, e.f(1.0)))
    t = b.select(big, b.fdiv(e.f(-1.0), a), b.select(mid, t_mid, a))
    hi = b.select(big, e.f(k["pio2"][0]), b.select(mid, e.f(k["pio4"][0]), e.f(0.0)))
    lo = b.select(big, e.f(k["pio2"][1]), b.select(mid, e.f(k["pio4"][1]), e.f(0.0)))
    z = b.fmul(t, t)
    tail = e.fma(b.fmul(t, z), e.horner(z, k["atan_p"]), lo)
    return b.fadd(hi, b.fadd(t, tail))


def _atan64(e: _Emit, x: ll.Value) -> ll.Value:
    """atan(x) in (-pi/2, pi/2); +-pi/2 at +-inf, -0 for -0."""
    return e.call("llvm.copysign", _atan_abs(e, e.call("llvm.fabs", x)), x)


def _asin64(e: _Emit, x: ll.Value) -> ll.Value:
    """asin(x) = atan(x / sqrt((1-x)(1+x))); +-pi/2 at +-1, nan outside [-1, 1]."""
    b = e.bld
    a = e.call("llvm.fabs", x)
    s = e.call("llvm.sqrt", b.fmul(b.fsub(e.f(1.0), a), b.fadd(e.f(1.0), a)))
    return e.call("llvm.copysign", _atan_abs(e, b.fdiv(a, s)), x)


def _acos64(e: _Emit, x: ll.Value) -> ll.Value:
    """acos(x) = 2 atan(sqrt((1-x)/(1+x))); 0 at 1, pi at -1, nan outside [-1, 1]."""
    b = e.bld
    r = b.fdiv(b.fsub(e.f(1.0), x), b.fadd(e.f(1.0), x))
    return b.fmul(e.f(2.0), _atan_abs(e, e.call("llvm.sqrt", r)))


def _atan264(e: _Emit, y: ll.Value, x: ll.Value) -> ll.Value:
    """atan2(y, x), the angle of (x, y) in [-pi, pi], with C's special values."""
    b, k = e.bld, _constants()
    ay, ax = e.call("llvm.fabs", y), e.call("llvm.fabs", x)
    steep = b.fcmp_ordered(">", ay, ax)
    num, den = b.select(steep, ax, ay), b.select(steep, ay, ax)
    t = b.fdiv(num, den)
    origin = b.and_(b.fcmp_ordered("==", ax, e.f(0.0)), b.fcmp_ordered("==", ay, e.f(0.0)))
    t = b.select(origin, e.f(0.0), t)                          # (0, 0): angle 0 or pi
    both_inf = b.and_(b.fcmp_ordered("==", ax, e.f(math.inf)),
                      b.fcmp_ordered("==", ay, e.f(math.inf)))
    t = b.select(both_inf, e.f(1.0), t)                        # (inf, inf): pi/4 multiples
    r = _atan_abs(e, t)
    r = b.select(steep, b.fadd(b.fsub(e.f(k["pio2"][0]), r), e.f(k["pio2"][1])), r)
    x_negative = b.icmp_signed("<", e.bits(x), e.i(0))         # the sign bit: -0 counts
    r = b.select(x_negative, b.fadd(b.fsub(e.f(k["pi"][0]), r), e.f(k["pi"][1])), r)
    on_y_axis = b.and_(b.fcmp_ordered("==", ax, e.f(0.0)), b.fcmp_ordered("!=", ay, e.f(0.0)))
    r = b.select(on_y_axis, e.f(k["pio2"][0]), r)             # pi - pi/2 would round up
    return e.call("llvm.copysign", r, y)


# ---- hyperbolic ------------------------------------------------------------------------------

def _half_exp(e: _Emit, a: ll.Value) -> ll.Value:
    """e^a / 2 for a >= 0 as 2^(n-1) (1 + expm1(r)): finite up to cosh's own overflow."""
    a = e.when(">", a, 711.0, e.f(711.0), a)                 # 2^1025: still inf after scaling
    n, r = _reduce_ln2(e, a)
    return e.ldexp(e.bld.fadd(_expm1_poly(e, r), e.f(1.0)), e.bld.sub(n, e.i(1)))


def _sinh64(e: _Emit, x: ll.Value) -> ll.Value:
    """sinh(x): (m + m/(m+1))/2 with m = expm1(|x|) below 1, e^|x|/2 - e^-|x|/2 above."""
    b = e.bld
    a = e.call("llvm.fabs", x)
    m = _expm1(e, a)
    small = b.fmul(e.f(0.5), b.fadd(m, b.fdiv(m, b.fadd(m, e.f(1.0)))))
    h = _half_exp(e, a)
    large = b.fsub(h, b.fdiv(e.f(0.25), h))
    return e.call("llvm.copysign", e.when("<", a, 1.0, small, large), x)


def _cosh64(e: _Emit, x: ll.Value) -> ll.Value:
    """cosh(x) = e^|x|/2 + e^-|x|/2 (no cancellation)."""
    h = _half_exp(e, e.call("llvm.fabs", x))
    return e.bld.fadd(h, e.bld.fdiv(e.f(0.25), h))


def _ln_large(e: _Emit, a: ll.Value) -> ll.Value:
    """log(a) + ln 2, the asymptote of asinh and acosh."""
    return e.bld.fadd(log(e.bld, a), e.f(_constants()["ln2"]))


def _asinh64(e: _Emit, x: ll.Value) -> ll.Value:
    """asinh(x) = log1p(a + a^2/(1 + sqrt(1 + a^2))), a = |x|, signed as x."""
    b = e.bld
    a = e.call("llvm.fabs", x)
    a2 = b.fmul(a, a)
    u = b.fadd(a, b.fdiv(a2, b.fadd(e.f(1.0), e.call("llvm.sqrt", b.fadd(e.f(1.0), a2)))))
    res = e.when("<", a, LARGE, log1p(b, u), _ln_large(e, a))
    return e.call("llvm.copysign", res, x)


def _acosh64(e: _Emit, x: ll.Value) -> ll.Value:
    """acosh(x) = log1p(t + sqrt(2t + t^2)), t = x - 1 (exact near 1); nan below 1."""
    b = e.bld
    t = b.fsub(x, e.f(1.0))
    u = b.fadd(t, e.call("llvm.sqrt", e.fma(t, t, b.fadd(t, t))))
    res = e.when("<", x, LARGE, log1p(b, u), _ln_large(e, x))
    return e.when("<", x, 1.0, e.f(math.nan), res)


def _atanh64(e: _Emit, x: ll.Value) -> ll.Value:
    """atanh(x) = log1p(2a/(1-a))/2, with 2a + 2a^2/(1-a) below 1/2; +-inf at +-1."""
    b = e.bld
    a = e.call("llvm.fabs", x)
    two_a, one_minus = b.fadd(a, a), b.fsub(e.f(1.0), a)
    small = b.fadd(two_a, b.fdiv(b.fmul(two_a, a), one_minus))
    u = e.when("<", a, 0.5, small, b.fdiv(two_a, one_minus))
    return e.call("llvm.copysign", b.fmul(e.f(0.5), log1p(b, u)), x)


# ---- base 2 and 10 ---------------------------------------------------------------------------

def _log_parts(e: _Emit, x: ll.Value) -> tuple[ll.Value, ll.Value]:
    """(k, log(1+f)) with x = 2^k (1+f), 1+f in [sqrt(1/2), sqrt(2))."""
    k, f = _log_split(e, x)
    return k, _log_core(e, e.f(0.0), f, e.f(0.0))


def _log264(e: _Emit, x: ll.Value) -> ll.Value:
    """log2(x) = k + log(1+f)/ln 2: exact at powers of two."""
    k, lf = _log_parts(e, x)
    return _log_specials(e, x, e.fma(lf, e.f(_constants()["inv_ln2"]), k))


def _log1064(e: _Emit, x: ll.Value) -> ll.Value:
    """log10(x) = k log10(2) + log(1+f) log10(e), k*hi exact and the small terms added first."""
    c = _constants()
    k, lf = _log_parts(e, x)
    small = e.fma(lf, e.f(c["log10_e"]), e.bld.fmul(k, e.f(c["log10_2"][1])))
    return _log_specials(e, x, e.fma(k, e.f(c["log10_2"][0]), small))


def _exp264(e: _Emit, x: ll.Value) -> ll.Value:
    """2^x = 2^n (1 + expm1(r ln 2)), n = rint(x), with r ln 2 = hi + lo exactly."""
    b, c = e.bld, _constants()
    x = e.when(">", x, 1030.0, e.f(1030.0), x)              # inf after scaling
    x = e.when("<", x, -1080.0, e.f(-1080.0), x)            # 0 after scaling
    n_f, n = e.nearest_int(x)
    r = b.fsub(x, n_f)
    hi = b.fmul(r, e.f(c["ln2_pair"][0]))
    lo = e.fma(r, e.f(c["ln2_pair"][1]), e.fma(r, e.f(c["ln2_pair"][0]), b.fneg(hi)))
    p = _expm1_poly(e, hi)
    y = b.fadd(e.f(1.0), e.fma(lo, p, b.fadd(p, lo)))         # (1 + p)(1 + lo) - 1 to first order
    return e.ldexp(y, n)


SPECIAL = {
    "atan": in_f64(_atan64), "asin": in_f64(_asin64), "acos": in_f64(_acos64),
    "atan2": in_f64(_atan264), "sinh": in_f64(_sinh64), "cosh": in_f64(_cosh64),
    "asinh": in_f64(_asinh64), "acosh": in_f64(_acosh64), "atanh": in_f64(_atanh64),
    "log2": in_f64(_log264), "log10": in_f64(_log1064), "exp2": in_f64(_exp264),
}
