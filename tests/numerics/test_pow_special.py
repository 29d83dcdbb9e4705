"""IEEE special cases of pow in both fronts: tensor ** tensor is C99 pow (NumPy's np.power
on arrays); tensor ** scalar is PyTorch's (recorded below with torch 2.13.0): integral
exponents multiply, 0.5 and -0.5 are sqrt and rsqrt, so (-inf) ** 0.5 is nan (it was inf)
and (-0.) ** 0.5 is -0."""
import math

import numpy as np
import pytest

import gradjit as gj

NAN, INF = math.nan, math.inf
XS = [-INF, -0.0, 0.0, INF, NAN, -2.0, -1.0, 1.0, 0.5, 3.0]
# x ** y for a Python float y: {y: [float64 results, float32 results]} over XS
TORCH_SCALAR = {-3.0: [[-0.0, -INF, INF, 0.0, NAN, -0.125, -1.0, 1.0, 8.0, 0.037037037037037035],
                       [-0.0, -INF, INF, 0.0, NAN, -0.125, -1.0, 1.0, 8.0, 0.03703703731298447]],
                -2.0: [[0.0, INF, INF, 0.0, NAN, 0.25, 1.0, 1.0, 4.0, 0.1111111111111111],
                       [0.0, INF, INF, 0.0, NAN, 0.25, 1.0, 1.0, 4.0, 0.1111111119389534]],
                -1.5: [[0.0, INF, INF, 0.0, NAN, NAN, NAN, 1.0, 2.8284271247461903, 0.19245008972987526],
                       [0.0, INF, INF, 0.0, NAN, NAN, NAN, 1.0, 2.8284270763397217, 0.19245009124279022]],
                -1.0: [[-0.0, -INF, INF, 0.0, NAN, -0.5, -1.0, 1.0, 2.0, 0.3333333333333333],
                       [-0.0, -INF, INF, 0.0, NAN, -0.5, -1.0, 1.0, 2.0, 0.3333333432674408]],
                -0.5: [[NAN, -INF, INF, 0.0, NAN, NAN, NAN, 1.0, 1.414213562373095, 0.5773502691896258],
                       [NAN, -INF, INF, 0.0, NAN, NAN, NAN, 1.0, 1.4142135381698608, 0.5773502588272095]],
                0.0: [[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
                      [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]],
                0.25: [[INF, 0.0, 0.0, INF, NAN, NAN, NAN, 1.0, 0.8408964152537145, 1.3160740129524924],
                       [INF, 0.0, 0.0, INF, NAN, NAN, NAN, 1.0, 0.8408964276313782, 1.316074013710022]],
                0.5: [[NAN, -0.0, 0.0, INF, NAN, NAN, NAN, 1.0, 0.7071067811865476, 1.7320508075688772],
                      [NAN, -0.0, 0.0, INF, NAN, NAN, NAN, 1.0, 0.7071067690849304, 1.7320507764816284]],
                1.5: [[INF, 0.0, 0.0, INF, NAN, NAN, NAN, 1.0, 0.3535533905932738, 5.196152422706632],
                      [INF, 0.0, 0.0, INF, NAN, NAN, NAN, 1.0, 0.3535533845424652, 5.196152210235596]],
                2.0: [[INF, 0.0, 0.0, INF, NAN, 4.0, 1.0, 1.0, 0.25, 9.0],
                      [INF, 0.0, 0.0, INF, NAN, 4.0, 1.0, 1.0, 0.25, 9.0]],
                3.0: [[-INF, -0.0, 0.0, INF, NAN, -8.0, -1.0, 1.0, 0.125, 27.0],
                      [-INF, -0.0, 0.0, INF, NAN, -8.0, -1.0, 1.0, 0.125, 27.0]]}

# bases and exponents for the array-array grid: signed zeros, infinities, nan, negative
# bases with integer and non-integer exponents, and ordinary values
GRID = [-INF, -3.0, -2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.0, 3.0, INF, NAN]
EXPONENTS = GRID + [-1.5, 0.25, 1.5, -3.0, 1e300, -1e300, 2.0 ** 60, 2.0 ** 60 + 2 ** 8]


def same(got, want) -> bool:
    """Equal values with equal signs of zero; nan equals nan. Within one ulp in float32:
    NumPy's own float32 power is not always correctly rounded (its AVX-512 path gives 3 **
    -3 one ulp low), so it is a reference only to that precision."""
    rtol = 2.4e-7 if np.asarray(got).dtype == np.float32 else 1e-15
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    both_nan = np.isnan(got) & np.isnan(want)
    close = np.isclose(got, want, rtol=rtol, atol=0)
    zeros = (want == 0) & (got == 0)
    sign_ok = ~zeros | (np.signbit(got) == np.signbit(want))
    return bool(np.all(both_nan | (close & sign_ok) | ((got == want) & sign_ok)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_array_pow_special_cases_match_numpy(dtype):
    with np.errstate(over="ignore"):                # 1e300 is inf in f32: one more case
        x, y = np.meshgrid(np.array(GRID, dtype), np.array(EXPONENTS, dtype))
    x, y = x.ravel(), y.ravel()
    with np.errstate(all="ignore"):
        want = np.power(x, y)
    for got in (np.asarray(gj.jit(lambda a, b: a ** b)(x, y)),
                (gj.tensor(x) ** gj.tensor(y)).numpy(), gj.pow(gj.tensor(x), gj.tensor(y)).numpy()):
        assert got.dtype == dtype
        bad = [(a, b, g, w) for a, b, g, w in zip(x, y, got, want) if not same(g, w)]
        assert not bad, bad[:8]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("y", list(TORCH_SCALAR))
def test_scalar_exponent_special_cases_match_torch(dtype, y):
    want = np.array(TORCH_SCALAR[y][0 if dtype == np.float64 else 1])
    x = np.array(XS, dtype)
    for got in ((gj.tensor(x) ** y).numpy(), np.asarray(gj.jit(lambda a: a ** y)(x)),
                gj.pow(gj.tensor(x), y).numpy()):
        assert got.dtype == dtype
        bad = [(a, g, w) for a, g, w in zip(x, got, want) if not same(g, w)]
        assert not bad, (y, bad)


def test_sqrt_exponent_gradient_is_powers():
    g = np.asarray(gj.grad(lambda x: (x ** 0.5 + x ** -0.5).sum())(np.array([4.0, 0.25])))
    x = np.array([4.0, 0.25])
    np.testing.assert_allclose(g, 0.5 * x ** -0.5 - 0.5 * x ** -1.5, rtol=1e-15)
