"""The f32 sin/cos range reduction past vmath.TRIG_ACCURATE_LIMIT: a table-free Payne-Hanek
in f64, straight-line code like the rest of vmath (selected by vmath.sin/cos, so loops still
vectorise without calls). Measured: <= 0.84 ulp against NumPy's f64 sin/cos on a dense sweep
of f32 inputs from 1e6 to the largest float (tests/numerics/test_trig_range.py).
"""
from llvmlite import ir as ll

from codegen.vmath import PI, _Emit, _sin_cos_reduced, _sin_of_quadrant, _split

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
