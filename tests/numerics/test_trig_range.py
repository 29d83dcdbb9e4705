"""f32 sin/cos over the whole float range (they were wrong by up to the whole range beyond
~1e6): a table-free Payne-Hanek reduction in f64 takes over past TRIG_ACCURATE_LIMIT.

Graded in ulps against NumPy's f64 sin/cos of the same f32 inputs (correctly rounded for
all practical purposes), with the vmath harness of tests/codegen/test_vmath.py and through
both gradjit fronts."""
import numpy as np
import pytest

import gradjit as gj
from codegen import vmath_trig
from tests.codegen.test_vmath import Kernels

RNG = np.random.default_rng(21)
F32_MAX = float(np.finfo(np.float32).max)


@pytest.fixture(scope="module")
def kernels():
    return Kernels()


def ulps(got: np.ndarray, ref64: np.ndarray) -> np.ndarray:
    """|got - ref| in units of the f32 spacing at ref."""
    spacing = np.spacing(np.abs(ref64.astype(np.float32))).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref64) / spacing


def log_uniform(n: int, hi: float) -> np.ndarray:
    x = 10 ** RNG.uniform(-3, np.log10(hi), n)
    return (x * RNG.choice([-1.0, 1.0], n)).astype(np.float32)


def dense_above_limit(step: int) -> np.ndarray:
    """Every step-th f32 from TRIG_ACCURATE_LIMIT up to the largest float, both signs."""
    lo = np.float32(vmath_trig.TRIG_ACCURATE_LIMIT["f32"]).view(np.uint32)
    bits = np.arange(lo, np.float32(F32_MAX).view(np.uint32) + 1, step, dtype=np.uint32)
    x = bits.view(np.float32)
    return np.concatenate([x, -x])


@pytest.mark.parametrize("fname", ["sin", "cos"])
def test_f32_log_uniform_up_to_float_max(kernels, fname):
    x = log_uniform(300_000, F32_MAX)
    err = ulps(kernels(fname, "f32", x), getattr(np, fname)(x.astype(np.float64)))
    assert err.max() <= 2.0, x[np.argmax(err)]


@pytest.mark.parametrize("fname", ["sin", "cos"])
def test_f32_dense_sweep_beyond_the_cody_waite_range(kernels, fname):
    x = dense_above_limit(4999)
    err = ulps(kernels(fname, "f32", x), getattr(np, fname)(x.astype(np.float64)))
    assert err.max() <= 1.0, x[np.argmax(err)]


@pytest.mark.parametrize("fname", ["sin", "cos"])
def test_f32_special_and_boundary_values(kernels, fname):
    limit = np.float32(vmath_trig.TRIG_ACCURATE_LIMIT["f32"])
    x = np.array([limit, np.nextafter(limit, np.float32(np.inf)), 2 ** 24, 2 ** 24 + 2,
                  1e7, 2 ** 63, 1e30, F32_MAX, -F32_MAX, 0.0, -0.0], np.float32)
    got = kernels(fname, "f32", x)
    ref = getattr(np, fname)(x.astype(np.float64))
    assert ulps(got, ref).max() <= 1.0
    special = np.array([np.inf, -np.inf, np.nan], np.float32)
    assert np.isnan(kernels(fname, "f32", special)).all()
    if fname == "sin":
        assert np.signbit(kernels("sin", "f32", np.array([-0.0], np.float32))).all()


@pytest.mark.parametrize("fname", ["sin", "cos"])
def test_f64_within_its_accurate_range(kernels, fname):
    """f64 keeps its Cody-Waite reduction, accurate to TRIG_ACCURATE_LIMIT (1e15)."""
    hi = vmath_trig.TRIG_ACCURATE_LIMIT["f64"]
    x = (10 ** RNG.uniform(-3, np.log10(hi), 100_000)) * RNG.choice([-1.0, 1.0], 100_000)
    got = kernels(fname, "f64", x)
    ref = getattr(np, fname)(x)
    assert (np.abs(got - ref) <= 4 * np.spacing(np.abs(ref))).all()


@pytest.mark.parametrize("fname", ["sin", "cos"])
def test_both_fronts_match_numpy_for_huge_f32(fname):
    x = log_uniform(10_000, F32_MAX)
    ref = getattr(np, fname)(x.astype(np.float64))
    f = getattr(gj, fname)
    assert ulps(np.asarray(gj.jit(f)(x)), ref).max() <= 2.0
    assert ulps(f(gj.tensor(x)).numpy(), ref).max() <= 2.0
