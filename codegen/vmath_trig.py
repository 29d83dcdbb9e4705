"""sin, cos and tan as straight-line vectorisable LLVM IR (see codegen/vmath.py's docstring
for the method), and the f32 sin/cos large-argument reduction: a table-free Payne-Hanek in
f64, selected past TRIG_ACCURATE_LIMIT, so loops still vectorise without calls. Measured:
<= 0.84 ulp against NumPy's f64 sin/cos on a dense sweep of f32 inputs from 1e6 to the
largest float (tests/numerics/test_trig_range.py).
"""
from llvmlite import ir as ll

from codegen.vmath_base import _F32, PI, _Emit, _split

# |x| up to which sin, cos and tan keep their ulp bounds (measured, including the floats nearest
# to multiples of pi/2). f32 sin/cos lose the quadrant past ~2e6, where x*2/pi has ulp 1/8;
# f32 tan is evaluated in f64 and has the f64 limit.
TRIG_ACCURATE_LIMIT = {"f32": 1e6, "f64": 1e15}


# 2/pi in f64 parts for the f32 large-argument reduction (_reduce_f32_large): four parts reach
# 2^-212, so x * 2/pi mod 4 is exact to ~2^-84 for every f32 x (x < 2^128); PI has ~230 bits.
TWO_OVER_PI_F64_PARTS = tuple(_split(2 / PI, 52, 4))
PIO2_F64 = tuple(_split(PI / 2, 52, 2))


def _mod4(e: _Emit, t: ll.Value) -> ll.Value:
    """t - 4*rint(t/4), exact (in [-2, 2]); 0 once t's ulp is 4 or more."""
    quarter = e.call("llvm.rint", e.bld.fmul(t, e.f(0.25)))
    return e.fma(quarter, e.f(-4.0), t)


def _reduce_f32_large(w: _Emit, x: ll.Value) -> tuple[ll.Value, ll.Value, ll.Value]:
    """(sin r, cos r, q) in f64 for an f32 x widened to f64 (w), any magnitude: a table-free
    Payne-Hanek. x * 2/pi = sum_k x * c_k over the f64 parts c_k of 2/pi; each product is an
    exact pair (p, fma(x, c_k, -p)) since x has 24 bits, each member reduced mod 4 exactly, and
    the pieces (in [-2, 2]) summed as a double-double: so t = x*2/pi mod 4 is known to ~2^-100,
    far below what the closest f32 to a multiple of pi/2 needs. q = rint(t), r = (t-q)*pi/2."""
    bld = w.bld
    hi, lo = w.f(0.0), w.f(0.0)
    for c in TWO_OVER_PI_F64_PARTS:
        p = bld.fmul(x, w.f(c))
        for piece in (p, w.fma(x, w.f(c), bld.fneg(p))):
            t = _mod4(w, piece)
            s = bld.fadd(hi, t)                         # TwoSum: hi + t = s + err exactly
            b = bld.fsub(s, hi)
            err = bld.fadd(bld.fsub(hi, bld.fsub(s, b)), bld.fsub(t, b))
            hi, lo = s, bld.fadd(lo, err)
    n_f, n = w.nearest_int(hi)                           # |hi| <= 16: exact, no overflow
    f = bld.fadd(bld.fsub(hi, n_f), lo)                  # hi - n is exact
    r = w.fma(f, w.f(PIO2_F64[0]), bld.fmul(f, w.f(PIO2_F64[1])))
    sin_r, cos_r, q = _sin_cos_reduced(w, r)             # |r| <= ~pi/4: q is 0 or +-1
    return sin_r, cos_r, bld.add(q, n)


def f32_trig(bld: ll.IRBuilder, x: ll.Value, shift: int) -> ll.Value:
    """sin (shift 0) or cos (shift 1) of an f32 x beyond TRIG_ACCURATE_LIMIT, in f64."""
    w = _Emit(bld, ll.DoubleType())
    sin_r, cos_r, q = _reduce_f32_large(w, bld.fpext(x, w.ty))
    return bld.fptrunc(_sin_of_quadrant(w, sin_r, cos_r, bld.add(q, w.i(shift))), x.type)

def _sin_cos_reduced(e: _Emit, x: ll.Value) -> tuple[ll.Value, ll.Value, ll.Value]:
    """(sin r, cos r, q) with x = q*pi/2 + r, |r| <= pi/4, q an integer (only q mod 4 used)."""
    n_f, q = e.nearest_int(e.bld.fmul(x, e.f(e.fmt.two_over_pi)))
    minus_n = e.bld.fneg(n_f)
    r = x
    for part in e.fmt.pio2:                   # Cody-Waite in three FMA steps
        r = e.fma(minus_n, e.f(part), r)
    # |r| can pass pi/4 a little when x*2/pi rounds across a half-integer (f32: up to 0.87 at
    # 1e6); the polynomials hold to 1. Past the accurate range r can be large garbage: clamping
    # keeps the results finite. The ordered compares leave nan (from +-inf) alone.
    r = e.when(">", r, 1.0, e.f(1.0), r)
    r = e.when("<", r, -1.0, e.f(-1.0), r)
    r2 = e.bld.fmul(r, r)
    sin_r = e.fma(e.bld.fmul(r, r2), e.horner(r2, e.fmt.sin_s), r)
    cos_r = e.fma(r2, e.horner(r2, e.fmt.cos_c), e.f(1.0))
    return sin_r, cos_r, q


def _sin_of_quadrant(e: _Emit, sin_r: ll.Value, cos_r: ll.Value, q: ll.Value) -> ll.Value:
    """sin(q*pi/2 + r): quadrant 0: sin r, 1: cos r, 2: -sin r, 3: -cos r."""
    odd = e.bld.trunc(q, ll.IntType(1))
    val = e.bld.select(odd, cos_r, sin_r)
    sign = e.bld.shl(e.bld.and_(q, e.i(2)), e.i(e.fmt.width - 2))
    return e.flip_sign(val, sign)


def _beyond_limit(e: _Emit, x: ll.Value, large: ll.Value, res: ll.Value) -> ll.Value:
    """large where |x| > TRIG_ACCURATE_LIMIT (or inf), else res (nan keeps res: also nan)."""
    limit = TRIG_ACCURATE_LIMIT["f32" if e.fmt is _F32 else "f64"]
    return e.when(">", e.call("llvm.fabs", x), limit, large, res)


def sin(bld: ll.IRBuilder, x: ll.Value) -> ll.Value:
    """sin(x), accurate for |x| <= TRIG_ACCURATE_LIMIT, in [-1, 1] beyond, nan for +-inf."""
    e = _Emit(bld, x.type)
    res = _sin_of_quadrant(e, *_sin_cos_reduced(e, x))
    if e.fmt is _F32:
        res = _beyond_limit(e, x, f32_trig(bld, x, 0), res)
    return e.when("==", x, 0.0, x, res)                  # sin(-0) = -0: r - 0*r^3/6 is +0


def cos(bld: ll.IRBuilder, x: ll.Value) -> ll.Value:
    """cos(x) = sin(x + pi/2): the quadrant advanced by one."""
    e = _Emit(bld, x.type)
    sin_r, cos_r, q = _sin_cos_reduced(e, x)
    res = _sin_of_quadrant(e, sin_r, cos_r, bld.add(q, e.i(1)))
    if e.fmt is _F32:
        res = _beyond_limit(e, x, f32_trig(bld, x, 1), res)
    return res


def _tan(e: _Emit, x: ll.Value, tiny: float) -> ll.Value:
    """sin r / cos r in even quadrants, -cos r / sin r in odd ones; |denominator| >= tiny."""
    bld = e.bld
    sin_r, cos_r, q = _sin_cos_reduced(e, x)
    odd = bld.trunc(q, ll.IntType(1))
    den = bld.select(odd, sin_r, cos_r)
    # |sin r| is tiny only when the reduction has given up (beyond the accurate range).
    den = e.when("<", e.call("llvm.fabs", den), tiny, e.f(tiny), den)
    ratio = bld.fdiv(bld.select(odd, cos_r, sin_r), den)
    res = e.flip_sign(ratio, bld.shl(bld.zext(odd, e.ity), e.i(e.fmt.width - 1)))
    return e.when("==", x, 0.0, x, res)                  # tan(-0) = -0, as for sin


def tan(bld: ll.IRBuilder, x: ll.Value) -> ll.Value:
    """tan(x); f32 is evaluated in f64 and rounded once, since the quotient of two f32
    polynomials would be ~3 ulp off. Finite for finite x (bounded by 1/min_normal)."""
    tiny = 2.0 ** (1 - _Emit(bld, x.type).fmt.bias)
    if isinstance(x.type, ll.FloatType):
        wide = _Emit(bld, ll.DoubleType())
        return bld.fptrunc(_tan(wide, bld.fpext(x, wide.ty), tiny), x.type)
    return _tan(_Emit(bld, x.type), x, tiny)
