"""fmod / remainder / floor division over the whole float range (the `rem` primitive).

`x - trunc(x / y) * y` is wrong once the quotient passes 2^24 (f32) or 2^53 (f64): fmod(1e30,
3) came out as 0 plus rounding garbage instead of NumPy's exact remainder. `rem` is C's fmod
(LLVM frem; np.fmod in the interpreter), exact for every pair of floats. Checked bit for bit
(signed zeros included) against NumPy with hypothesis over every finite, infinite and nan
value, through the compiled code, the imperative front and the interpreter, and against
PyTorch 2.13's values recorded below for remainder's sign rules.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradjit as gj

DTYPES = {"f32": np.float32, "f64": np.float64}


def same_bits(got, want):
    """Equal values, nan where nan, and the same sign of every zero."""
    got, want = np.asarray(got), np.asarray(want)
    np.testing.assert_array_equal(got, want)
    zeros = want == 0
    np.testing.assert_array_equal(np.signbit(got[zeros]), np.signbit(want[zeros]))


def pairs(dtype):
    floats = st.floats(width=32 if dtype is np.float32 else 64, allow_nan=True,
                       allow_infinity=True)
    arr = hnp.arrays(dtype, st.integers(1, 40), elements=floats)
    return arr.flatmap(lambda x: st.tuples(st.just(x), hnp.arrays(dtype, x.shape,
                                                                   elements=floats)))


def run_jit(f, x, y):
    return gj.jit(f)(x, y).numpy()


@pytest.mark.parametrize("dt", ["f32", "f64"])
def test_fmod_equals_numpy_over_the_whole_range(dt):
    @settings(max_examples=60, deadline=None)
    @given(pairs(DTYPES[dt]))
    def check(xy):
        x, y = xy
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            want = np.fmod(x, y)
            same_bits(run_jit(gj.fmod, x, y), want)
            same_bits(gj.fmod(gj.tensor(x), gj.tensor(y)).numpy(), want)
            # remainder: NumPy's value up to the sign of a zero (PyTorch keeps fmod's, below)
            np.testing.assert_array_equal(run_jit(gj.remainder, x, y), np.remainder(x, y))
            np.testing.assert_array_equal(run_jit(gj.floor_divide, x, y),
                                          np.floor_divide(x, y))
    check()


@pytest.mark.parametrize("dt", ["f32", "f64"])
def test_huge_quotients_are_exact(dt):
    x = np.array([1e30, -1e30, 3e38, 2.0 ** 100 + 2.0 ** 48, 1e300 if dt == "f64" else 1e38],
                 DTYPES[dt])
    y = np.array([3.0, 7.0, 1e-30, 3.0, 0.1], DTYPES[dt])
    same_bits(run_jit(gj.fmod, x, y), np.fmod(x, y))
    np.testing.assert_array_equal(run_jit(gj.remainder, x, y), np.remainder(x, y))


def test_interpreter_agrees(gradjit_env):
    gradjit_env("GRADJIT_BACKEND", "interpret")
    x = np.array([1e30, -5.5, np.inf, 3.0, -0.0, 7.0], np.float32)
    y = np.array([3.0, 2.0, 1.0, 0.0, 1.0, -np.inf], np.float32)
    with np.errstate(invalid="ignore"):
        same_bits(run_jit(gj.fmod, x, y), np.fmod(x, y))


# PyTorch 2.13 (torch.remainder / torch.fmod on CPU), recorded: remainder keeps fmod's signed
# zero where no adjustment happens (torch.remainder(-0., 1.) is -0.; NumPy says 0.)
TORCH_X = [1e30, -1e30, 5.5, -5.5, 7.0, -7.0, np.inf, 3.0, 0.0, -0.0, -0.0, -2.0, np.nan, 7.0]
TORCH_Y = [3.0, 3.0, -2.0, 2.0, np.inf, np.inf, 1.0, 0.0, 1.0, -1.0, 1.0, -1.0, 1.0, -np.inf]
TORCH_REMAINDER = {
    "f32": [0.0, -0.0, -0.5, 0.5, 7.0, np.inf, np.nan, np.nan, 0.0, -0.0, -0.0, -0.0, np.nan,
            -np.inf],
    "f64": [1.0, 2.0, -0.5, 0.5, 7.0, np.inf, np.nan, np.nan, 0.0, -0.0, -0.0, -0.0, np.nan,
            -np.inf],
}
TORCH_FMOD = {
    "f32": [0.0, -0.0, 1.5, -1.5, 7.0, -7.0, np.nan, np.nan, 0.0, -0.0, -0.0, -0.0, np.nan, 7.0],
    "f64": [1.0, -1.0, 1.5, -1.5, 7.0, -7.0, np.nan, np.nan, 0.0, -0.0, -0.0, -0.0, np.nan, 7.0],
}


@pytest.mark.parametrize("dt", ["f32", "f64"])
def test_remainder_and_fmod_equal_recorded_pytorch_values(dt):
    x, y = gj.tensor(np.array(TORCH_X, DTYPES[dt])), gj.tensor(np.array(TORCH_Y, DTYPES[dt]))
    same_bits(gj.remainder(x, y).numpy(), np.array(TORCH_REMAINDER[dt], DTYPES[dt]))
    same_bits((x % y).numpy(), np.array(TORCH_REMAINDER[dt], DTYPES[dt]))
    same_bits(gj.fmod(x, y).numpy(), np.array(TORCH_FMOD[dt], DTYPES[dt]))


def test_gradient_of_fmod_matches_finite_differences():
    x0, y0 = np.array([5.3, -7.9, 1e3 + 0.25]), np.array([2.1, 3.3, -7.0])
    w = np.array([1.0, 2.0, 3.0])
    x, y = (gj.tensor(a, requires_grad=True) for a in (x0, y0))
    (gj.fmod(x, y) * gj.tensor(w)).sum().backward()

    def loss(a, b):
        return (np.fmod(a, b) * w).sum()
    eps, steps = 1e-6, np.eye(3) * 1e-6
    dx = [(loss(x0 + s, y0) - loss(x0 - s, y0)) / (2 * eps) for s in steps]
    dy = [(loss(x0, y0 + s) - loss(x0, y0 - s)) / (2 * eps) for s in steps]
    np.testing.assert_allclose(x.grad.numpy(), dx, rtol=1e-6)
    np.testing.assert_allclose(y.grad.numpy(), dy, rtol=1e-6)
