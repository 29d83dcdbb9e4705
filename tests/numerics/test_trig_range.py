"""sin, cos and tan over the whole float range (they were wrong beyond ~1e6 in f32 and ~1e15 in
f64): a Cody-Waite fast path in the vector loop, and beyond it a cold call of an exact integer
Payne-Hanek reduction (codegen/vmath_trig.py, codegen/vmath_trig_huge.py).

Graded in ulps against NumPy (glibc: correctly rounded for all practical purposes) and, for
the hardest arguments (the doubles closest to multiples of pi/2, where the reduced argument
loses ~60 bits), against an exact reference computed here in 420-digit decimal arithmetic.
Through the vmath harness of tests/codegen/test_vmath.py and both gradjit fronts, alone and
fused into chains and reductions, with gradients."""
import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradjit as gj
from codegen import vmath_base, vmath_trig, vmath_trig_huge
from ir.interpret import interpret
from tests.codegen.test_vmath import Kernels

RNG = np.random.default_rng(21)
F32_MAX = float(np.finfo(np.float32).max)
F64_MAX = float(np.finfo(np.float64).max)
DIGITS = 420                      # pi to 1,395 bits: 2/pi's table and x up to 1.8e308


@pytest.fixture(scope="module")
def kernels():
    return Kernels()


def _pi_int() -> int:
    """floor(pi * 10^DIGITS) (to a few units): vmath_base's Machin formula, 10 digits more."""
    return int(vmath_base._pi(DIGITS + 10) * 10 ** DIGITS)


PI = Fraction(_pi_int(), 10 ** DIGITS)


def exact_trig(fname: str, x: float) -> float:
    """sin, cos or tan of the double x, from x mod pi/2 in exact rationals and Taylor series
    at 120 digits: correctly rounded but for ties far below the double's resolution."""
    k = round(Fraction(x) / (PI / 2))
    r = Fraction(x) - k * (PI / 2)                      # |r| <= pi/4, exact to 10^-DIGITS+309
    with localcontext() as ctx:
        ctx.prec = 120
        rd = Decimal(r.numerator) / Decimal(r.denominator)
        s, c, term, n = Decimal(0), Decimal(0), Decimal(1), 0
        while n < 200:                                  # term = r^n / n!
            if n % 2:
                s += term * (1 if n % 4 == 1 else -1)
            else:
                c += term * (1 if n % 4 == 0 else -1)
            n += 1
            term = term * rd / n
        sin_x, cos_x = [(s, c, -s, -c)[(k + j) % 4] for j in (0, 1)]
        return float({"sin": sin_x, "cos": cos_x, "tan": sin_x / cos_x}[fname])


def ulps(got: np.ndarray, ref: np.ndarray, dt=np.float64) -> np.ndarray:
    """|got - ref| in units of the spacing, in precision dt, at ref (ref in f64)."""
    spacing = np.spacing(np.abs(ref.astype(dt))).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref) / spacing


def log_uniform(n: int, lo: float, hi: float, dt) -> np.ndarray:
    x = 10 ** RNG.uniform(np.log10(lo), np.log10(hi) - 1e-9, n)
    return (x * RNG.choice([-1.0, 1.0], n)).astype(dt)


def dense_bits(lo: float, hi: float, n: int, dt) -> np.ndarray:
    """About n floats evenly spaced in bit pattern (so in every binade) from lo to hi, +-."""
    ity = np.uint32 if dt == np.float32 else np.uint64
    a, b = (int(np.array(v, dt).view(ity)) for v in (lo, hi))
    bits = np.arange(a, b + 1, max(1, (b - a) // n), dtype=ity)
    x = bits.view(dt)
    return np.concatenate([x, -x])


def near_multiples_of_half_pi(count: int) -> list[float]:
    """Doubles beyond 1e15 within ~2^-53..2^-62 of a multiple of pi/2 (a relative 2^-60
    reduction), one per binade picked: m * 2^e with m a multiple of the largest continued-
    fraction denominator q < 2^53 of frac(2^e * 2/pi), so ||m 2^e 2/pi|| ~ (m/q)/q_next."""
    out = [6381956970095103 * 2.0 ** 797, 1e22]         # the worst double known (Muller), 1e22
    for e in map(int, np.linspace(0, 970, count)):
        alpha = (Fraction(2 ** e) * 2 / PI) % 1
        p_prev, q_prev, p, q = 0, 1, 1, 0               # convergents of alpha
        a = alpha
        while True:
            digit = math.floor(a)
            p_prev, q_prev, p, q = p, q, digit * p + p_prev, digit * q + q_prev
            if q >= 2 ** 53 or a == digit:
                break
            a = 1 / (a - digit)
        q = q_prev if q >= 2 ** 53 else q
        m = q * -(-(2 ** 52) // q) if q else 2 ** 52   # the first multiple of q in the binade
        if q and m < 2 ** 53:
            out.append(float(m * Fraction(2) ** e))
    return [v for v in out if v > vmath_trig.TRIG_ACCURATE_LIMIT["f64"]]


# ---- the table and the reduction ---------------------------------------------------------

def test_two_over_pi_table_is_the_bits_of_two_over_pi():
    words = vmath_trig_huge.TWO_OVER_PI_WORDS
    n = len(words) - 1
    bits = math.floor(2 / PI * 2 ** (64 * n))
    assert words[0] == 0
    assert list(words[1:]) == [(bits >> (64 * (n - k))) % 2 ** 64 for k in range(1, n + 1)]


def test_exact_reference_agrees_with_numpy():
    xs = [1e22, 1.0, 1e300, -7.5e200, 3.0e15, F64_MAX]
    for fname in ("sin", "cos", "tan"):
        want = getattr(np, fname)(np.array(xs))
        got = np.array([exact_trig(fname, x) for x in xs])
        assert ulps(got, want).max() <= 1.0, fname
    assert exact_trig("sin", 1e22) == -0.8522008497671888       # the classic value


# Hard cases (doubles near multiples of pi/2) with sin, cos, tan from mpmath 1.3.0 at 3,000
# bits (recorded; mpmath is not a dependency). glibc 2.36's sin/cos (so NumPy's, here) are off
# by 5 to ~1e5 ulp on such arguments: 1.0256404647986837e-17 above comes back as ...741e-17.
MPMATH = [
    (5.319372648326541e+255, 1.0, -4.687165924254628e-19, -2.133485385753704e+18),
    (5.0869407893811757e+17, 1.0, -6.35015671441602e-17, -1.5747642853125446e+16),
    (4.336942890218477e+20, 1.0256404647986837e-17, -1.0, -1.0256404647986837e-17),
    (2.4189825415928567e+23, 2.3881763752596957e-17, -1.0, -2.3881763752596957e-17),
    (4.537246163668281e+24, -1.0, -1.216661902647101e-17, 8.219210265598782e+16),
]


def test_exact_reference_and_kernels_agree_with_mpmath(kernels):
    x = np.array([row[0] for row in MPMATH])
    for j, fname in enumerate(("sin", "cos", "tan"), start=1):
        want = np.array([row[j] for row in MPMATH])
        assert ulps(np.array([exact_trig(fname, v) for v in x]), want).max() <= 0.5
        assert ulps(kernels(fname, "f64", x), want).max() <= (0.5 if fname != "tan" else 1.0)


# ---- f64: the fast range, the whole range, the hard cases --------------------------------

@pytest.mark.parametrize("fname", ["sin", "cos", "tan"])
def test_f64_log_uniform_up_to_the_largest_double(kernels, fname):
    x = log_uniform(300_000, 1e-3, F64_MAX, np.float64)
    err = ulps(kernels(fname, "f64", x), getattr(np, fname)(x))
    huge = np.abs(x) > vmath_trig.TRIG_ACCURATE_LIMIT["f64"]
    assert err[huge].max() <= (1.0 if fname != "tan" else 2.0), x[huge][np.argmax(err[huge])]
    assert err[~huge].max() <= (1.5 if fname != "tan" else 3.0), x[~huge][np.argmax(err[~huge])]


@pytest.mark.parametrize("fname", ["sin", "cos", "tan"])
def test_f64_dense_sweep_beyond_the_cody_waite_range(kernels, fname):
    x = dense_bits(vmath_trig.TRIG_ACCURATE_LIMIT["f64"], F64_MAX, 200_000, np.float64)
    err = ulps(kernels(fname, "f64", x), getattr(np, fname)(x))
    assert err.max() <= (1.0 if fname != "tan" else 2.0), x[np.argmax(err)]


@pytest.mark.parametrize("fname", ["sin", "cos", "tan"])
def test_f64_nearest_to_multiples_of_half_pi_against_the_exact_value(kernels, fname):
    x = np.array(near_multiples_of_half_pi(120))
    x = np.concatenate([x, -x])
    want = np.array([exact_trig(fname, v) for v in x])
    got = kernels(fname, "f64", x)
    assert ulps(got, want).max() <= (1.0 if fname != "tan" else 2.0), x[np.argmax(ulps(got, want))]
    # the first one is the hardest: cos(x) = -4.69e-19 (x*2/pi is 2^-60.9 from an odd integer)
    if fname == "cos":
        assert abs(got[0] - -4.687165924254628e-19) <= np.spacing(4.687165924254628e-19)


def test_f64_hard_cases_lose_60_bits_in_the_reduction():
    """The generator's cases really are hard: |x - k pi/2| < 2^-50 |x| * 2^-..., i.e. tiny
    sin or cos where a 106-bit reduction would have given garbage."""
    hard = near_multiples_of_half_pi(120)
    small = [min(abs(exact_trig("sin", v)), abs(exact_trig("cos", v))) for v in hard]
    assert len(hard) > 100 and np.median(small) < 2.0 ** -50


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("fname", ["sin", "cos", "tan"])
def test_special_values(kernels, fname, dt):
    tag = "f32" if dt == np.float32 else "f64"
    assert np.isnan(kernels(fname, tag, np.array([np.inf, -np.inf, np.nan], dt))).all()
    zeros = kernels(fname, tag, np.array([0.0, -0.0], dt))
    if fname == "cos":
        assert (zeros == 1).all()
    else:
        assert (zeros == 0).all() and list(np.signbit(zeros)) == [False, True]


# ---- f32 --------------------------------------------------------------------------------

@pytest.mark.parametrize("fname", ["sin", "cos", "tan"])
def test_f32_log_uniform_up_to_float_max(kernels, fname):
    x = log_uniform(300_000, 1e-3, F32_MAX, np.float32)
    err = ulps(kernels(fname, "f32", x), getattr(np, fname)(x.astype(np.float64)), np.float32)
    assert err.max() <= 2.0, x[np.argmax(err)]


@pytest.mark.parametrize("fname", ["sin", "cos", "tan"])
def test_f32_dense_sweep_beyond_the_cody_waite_range(kernels, fname):
    limit = vmath_trig.TRIG_ACCURATE_LIMIT["f64" if fname == "tan" else "f32"]
    x = dense_bits(limit, F32_MAX, 400_000, np.float32)
    err = ulps(kernels(fname, "f32", x), getattr(np, fname)(x.astype(np.float64)), np.float32)
    assert err.max() <= (1.0 if fname != "tan" else 0.51), x[np.argmax(err)]


# ---- both fronts, fused, gradients ---------------------------------------------------------

def _whole_range(dt) -> np.ndarray:
    hi = F32_MAX if dt == np.float32 else F64_MAX
    x = log_uniform(10_001, 1e-3, hi, dt)
    x[::97] = np.array([np.inf, -np.inf, np.nan, -0.0, 1e22 if dt == np.float64 else 1e20], dt)[
        np.arange(x[::97].size) % 5]
    return x


def _close(got, want, dt, bound):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    nan = np.isnan(want)
    assert (np.isnan(got) == nan).all()
    assert ulps(got[~nan], want[~nan], dt).max() <= bound


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("fname", ["sin", "cos", "tan"])
def test_both_fronts_match_numpy_over_the_whole_range(fname, dt):
    x = _whole_range(dt)
    with np.errstate(invalid="ignore"):
        want = getattr(np, fname)(x.astype(np.float64))
    bound = {"sin": 1.5, "cos": 1.5, "tan": 3.0}[fname] if dt == np.float64 else 2.0
    f = getattr(gj, fname)
    _close(gj.jit(f)(x), want, dt, bound)
    _close(f(gj.tensor(x)).numpy(), want, dt, bound)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_fused_chains_and_reductions_with_huge_elements(dt):
    """sin(x)*2 + 1, cos(x)*sin(y) - tan(x)/8 and sum(sin(x)*cos(x)) in one kernel each: the
    rare path's branch inside fused loops, against the interpreter (NumPy) and NumPy itself."""
    x, y = _whole_range(dt), _whole_range(dt)[::-1].copy()

    def chain(x):
        return gj.sin(x) * 2 + 1

    def mixed(x, y):
        return gj.cos(x) * gj.sin(y) - gj.tan(x) / 8

    def reduced(x):
        return gj.sum(gj.sin(x) * gj.cos(x))

    finite = np.isfinite(x)
    for f, args in ((chain, (x,)), (mixed, (x, y)), (reduced, (x[finite],))):
        got = np.asarray(gj.jit(f)(*args), np.float64)
        ref = np.asarray(interpret(gj.make_ir(f)(*args), *args)[0], np.float64)
        imp = np.asarray(f(*(gj.tensor(a) for a in args)).numpy(), np.float64)
        with np.errstate(invalid="ignore"):
            scale = 1.0 if f is not mixed else np.maximum(1.0, np.abs(np.tan(x.astype(float))) / 8)
        tol = (1e-5 if dt == np.float32 else 1e-13) * (x[finite].size if f is reduced else 1)
        for out in (got, imp):
            assert (np.isnan(out) == np.isnan(ref)).all()
            ok = ~np.isnan(ref)
            assert (np.abs(out - ref)[ok] <= tol * np.broadcast_to(scale, ref.shape)[ok]).all()
    with np.errstate(invalid="ignore"):
        want = np.sin(x.astype(np.float64)) * 2 + 1
    assert np.nanmax(np.abs(np.asarray(gj.jit(chain)(x), np.float64) - want)) <= (
        2e-6 if dt == np.float32 else 1e-15)      # 2 * 1.5 ulp of sin + 2 roundings near 3


def test_gradients_use_the_same_reduction():
    """d sin = cos, d cos = -sin, d tan = 1 + tan^2: at huge x against NumPy's values (finite
    differences cannot resolve a period there), and against finite differences in f64 where
    they can (|x| <= 1e3)."""
    x = log_uniform(2_001, 1e15, F64_MAX, np.float64)
    for f, d in ((gj.sin, np.cos), (gj.cos, lambda v: -np.sin(v)),
                 (gj.tan, lambda v: 1 + np.tan(v) ** 2)):
        g = gj.jit(gj.grad(lambda v, f=f: gj.sum(f(v))))(x)
        assert ulps(np.asarray(g), d(x)).max() <= 4.0
    xs = RNG.uniform(-1e3, 1e3, 200)
    h = 1e-6
    for f, npf in ((gj.sin, np.sin), (gj.cos, np.cos), (gj.tan, np.tan)):
        g = np.asarray(gj.jit(gj.grad(lambda v, f=f: gj.sum(f(v))))(xs))
        fd = (npf(xs + h) - npf(xs - h)) / (2 * h)
        assert np.allclose(g, fd, rtol=1e-6, atol=1e-6 * (1 + np.abs(fd)))


@settings(max_examples=15, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=9),
                    elements=st.floats(allow_nan=True, allow_infinity=True)),
       fname=st.sampled_from(["sin", "cos", "tan"]))
def test_random_shapes_and_floats_fused(x, fname):
    """Any shape (0-d and empty included), any doubles: f(x) * 2 + 1 fused, vs NumPy."""
    f = getattr(gj, fname)
    got = np.asarray(gj.jit(lambda v: f(v) * 2 + 1)(x), np.float64)
    with np.errstate(invalid="ignore"):
        want = getattr(np, fname)(x) * 2 + 1
    assert got.shape == want.shape
    assert (np.isnan(got) == np.isnan(want)).all()
    ok = ~np.isnan(want)
    bound = 3.0 if fname == "tan" else 1.5
    spacing = np.spacing(np.maximum(np.abs(want[ok]), 2.0))      # the + 1 cancels near 0
    assert (np.abs(got[ok] - want[ok]) <= (bound + 1) * spacing).all()


def test_fused_results_do_not_depend_on_an_elements_position():
    """The rare path's branch splits the element's code into blocks, and LLVM contracts a*b + c
    into an FMA only within a block: the caller's code around sin is moved past the branch, so
    the scalar loop (remainders, small arrays) rounds exactly as the vector loop does. Each
    element alone, the array shifted by one, and the whole array: bitwise the same."""
    x = RNG.uniform(-10, 10, 203)
    x[::41] = [1e22, -3e300, 7e15, 2e100, -1e18]
    exprs = [lambda v: v * 1.5 + gj.sin(v) * 3, lambda v: gj.cos(v) * v + v * 2,
             lambda v: v * 0.5 + gj.tan(v * 0.25) * v - gj.sin(v) * gj.cos(v * 3)]
    for f in exprs:
        jf = gj.jit(f)
        full = np.asarray(jf(x))
        single = np.array([float(np.asarray(jf(x[i:i + 1]))[0]) for i in range(0, x.size, 7)])
        np.testing.assert_array_equal(full[::7], single)
        np.testing.assert_array_equal(full[1:], np.asarray(jf(x[1:])))
