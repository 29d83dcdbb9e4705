"""dtype promotion as PyTorch does it: weak Python scalars, 0-d tensors below dimensioned
ones within a category, f32 with f64 -> f64, ints with floats -> float, bool -> int; bool
comparison results; the dtypes of reductions, casts and integer arithmetic."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import tracer.ops as gj
from tracer.dtypes import float32, float64, int32, int64
from tracer.tensor import tensor_from_array

DTYPES = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64,
          "bool": np.bool_}


def tensor(dtype: str, shape=(2,)):
    return tensor_from_array(np.ones(shape, DTYPES[dtype]))


def ir(t) -> str:
    return t._expr.type.dtype


@pytest.mark.parametrize("a,b,want", [
    ("f32", "f64", "f64"), ("f32", "i64", "f32"), ("i32", "i64", "i64"), ("i32", "f64", "f64"),
    ("bool", "i32", "i32"), ("bool", "f32", "f32"), ("bool", "bool", "bool"),
])
def test_tensor_tensor_promotion(a, b, want):
    assert ir(gj.add(tensor(a), tensor(b))) == want
    assert ir(gj.mul(tensor(b), tensor(a))) == want


@pytest.mark.parametrize("a,scalar,want", [
    ("f32", 2.0, "f32"), ("f64", 2, "f64"), ("i32", 2, "i32"), ("i32", 2.5, "f32"),
    ("i64", 2.5, "f32"), ("bool", 1, "i64"), ("bool", 1.5, "f32"), ("f32", True, "f32"),
])
def test_python_scalars_are_weakly_typed(a, scalar, want):
    assert ir(tensor(a) * scalar) == want
    assert ir(scalar + tensor(a)) == want


def test_zero_dim_tensors_rank_below_dimensioned_ones_in_the_same_category():
    assert ir(tensor("f32") * tensor("f64", ())) == "f32"
    assert ir(tensor("i32") + tensor("i64", ())) == "i32"
    assert ir(tensor("i32") + tensor("f64", ())) == "f64"     # a higher category wins
    assert ir(tensor("f32", ()) + tensor("f64", ())) == "f64"


def test_division_and_float_functions_of_integers_give_the_default_float():
    assert ir(tensor("i64") / 2) == "f32"
    assert ir(gj.exp(tensor("i32"))) == "f32"
    assert ir(gj.sqrt(tensor("f64"))) == "f64"
    np.testing.assert_allclose(np.asarray(tensor_from_array(np.array([1, 2, 3])) / 2),
                               [0.5, 1.0, 1.5])


def test_comparisons_give_bool_and_logical_operators_combine_them():
    x = tensor_from_array(np.array([-1.0, 0.0, 2.0]))
    for r in (x < 0, x <= 0, x > 0, x >= 0, x == 0, x != 0, gj.eq(x, 0), gj.ge(0, x)):
        assert ir(r) == "bool"
    np.testing.assert_array_equal(np.asarray((x < 0) | (x > 1)), [True, False, True])
    np.testing.assert_array_equal(np.asarray((x <= 0) & (x >= 0)), [False, True, False])
    np.testing.assert_array_equal(np.asarray(~(x == 0)), [True, False, True])
    np.testing.assert_array_equal(np.asarray((x < 0) ^ (x < 1)), [False, True, False])
    assert (x == None) is False       # noqa: E711  (PyTorch gives False too)


def test_reduction_dtypes():
    assert ir(tensor("i32").sum()) == "i64"
    assert ir(tensor("bool").sum()) == "i64"
    assert ir(tensor("i32").prod()) == "i64"
    assert ir(tensor("f32").sum(dtype=float64)) == "f64"
    assert ir(gj.argmax(tensor("f32", (2, 3)), 1)) == "i64"
    assert ir(tensor("f32", (2, 3)).max(1).indices) == "i64"
    assert ir(gj.any(tensor("f32"))) == "bool"


def test_integer_arithmetic_stays_integer_and_exact():
    a = tensor_from_array(np.array([3, -7, 2], np.int64))
    np.testing.assert_array_equal(np.asarray(a * 3 - 1), [8, -22, 5])
    np.testing.assert_array_equal(np.asarray(a ** 2), [9, 49, 4])
    np.testing.assert_array_equal(np.asarray(2 ** tensor_from_array(np.array([0, 5, 10]))),
                                  [1, 32, 1024])
    assert ir(a ** 2) == "i64"
    np.testing.assert_array_equal(np.asarray(gj.abs(a)), [3, 7, 2])


def test_casts():
    x = tensor_from_array(np.array([1.7, -2.5, 0.0]))
    assert x.float().dtype == float32 and x.double() is x
    np.testing.assert_array_equal(np.asarray(x.long()), [1, -2, 0])   # toward zero
    assert x.int().dtype == int32 and x.long().dtype == int64
    np.testing.assert_array_equal(np.asarray(x.bool()), [True, True, False])
    assert x.to(float32).dtype == float32 and x.to("cpu") is x
    assert x.type_as(tensor("i32")).dtype == int32
    assert x.type() == "torch.DoubleTensor"


TORCH_CASES = list(itertools.product(
    [("f32", (2,)), ("f64", (2,)), ("i32", (2,)), ("i64", (2,)), ("bool", (2,)),
     ("f64", ()), ("i64", ()), ("bool", ())],
    [("f32", (2,)), ("f64", ()), ("i32", (2,)), ("bool", ()), 2, 2.5, True]))


def test_promotion_agrees_with_torch_result_type():
    torch = pytest.importorskip("torch")
    names = {"f32": torch.float32, "f64": torch.float64, "i32": torch.int32,
             "i64": torch.int64, "bool": torch.bool}
    for (da, sa), other in TORCH_CASES:
        ta = torch.ones(sa, dtype=names[da])
        ga = tensor(da, sa)
        if isinstance(other, tuple):
            tb, gb = torch.ones(other[1], dtype=names[other[0]]), tensor(*other)
        else:
            tb = gb = other
        want = {v: k for k, v in names.items()}[torch.result_type(ta, tb)]
        assert gj.result_type(ga, gb) == want, (da, sa, other)
