"""Integer division by zero: PyTorch's RuntimeError in the imperative front, a defined result
(x // 0 == 0, x % 0 == fmod(x, 0) == x) with no error under a functional trace (JAX's choice:
the divisor is data there). Before, both fronts returned 0 / the dividend silently."""
import numpy as np
import pytest

import gradjit as gj

A = np.array([5, -7, 9, -3], np.int64)
B = np.array([0, 2, 0, -2], np.int64)

OPS = {
    "floor_divide": lambda a, b: a // b,
    "remainder": lambda a, b: a % b,
    "fmod": lambda a, b: gj.fmod(a, b),
    "div_trunc": lambda a, b: gj.div(a, b, rounding_mode="trunc"),
    "div_floor": lambda a, b: gj.div(a, b, rounding_mode="floor"),
}


@pytest.mark.parametrize("dtype", [gj.int32, gj.int64])
@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("how", ["realised", "pending", "scalar"])
def test_imperative_integer_division_by_zero_raises(name, dtype, how):
    a = gj.tensor(A, dtype=dtype)
    b = {"realised": gj.tensor(B, dtype=dtype), "pending": gj.tensor(B, dtype=dtype) * 3,
         "scalar": 0}[how]
    with pytest.raises(RuntimeError, match="^ZeroDivisionError"):
        OPS[name](a, b)


@pytest.mark.parametrize("name", list(OPS))
def test_imperative_nonzero_divisor_matches_python(name):
    b = np.array([3, 2, -4, -2])
    got = OPS[name](gj.tensor(A), gj.tensor(b)).numpy()
    want = {"floor_divide": A // b, "remainder": A % b, "fmod": np.fmod(A, b),
            "div_trunc": np.trunc(A / b).astype(np.int64), "div_floor": A // b}[name]
    np.testing.assert_array_equal(got, want)


def test_float_division_by_zero_is_ieee_in_both_fronts():
    a, b = np.array([1.0, -1.0, 0.0]), np.array([0.0, 0.0, 0.0])
    want = np.array([np.inf, -np.inf, np.nan])
    np.testing.assert_array_equal((gj.tensor(a) / gj.tensor(b)).numpy(), want)
    np.testing.assert_array_equal(np.asarray(gj.jit(lambda a, b: a / b)(a, b)), want)
    np.testing.assert_array_equal((gj.tensor([5, 7]) / gj.tensor([0, 0])).numpy(),
                                  [np.inf, np.inf])


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_traced_integer_division_by_zero_is_defined(dtype):
    a, b = A.astype(dtype), B.astype(dtype)
    got = gj.jit(lambda a, b: tuple(op(a, b) for op in OPS.values()))(a, b)
    zero = b == 0
    safe = np.where(zero, 1, b)
    want = [np.where(zero, 0, a // safe), np.where(zero, a, a % safe),
            np.where(zero, a, np.fmod(a, safe)),
            np.where(zero, 0, np.trunc(a / safe)).astype(dtype), np.where(zero, 0, a // safe)]
    for name, g, w in zip(OPS, got, want):
        assert np.asarray(g).dtype == dtype, name
        np.testing.assert_array_equal(np.asarray(g), w, err_msg=name)
        # x == (x // y) * y + x % y holds at y == 0 too
    np.testing.assert_array_equal(np.asarray(got[0]) * b + np.asarray(got[1]), a)
