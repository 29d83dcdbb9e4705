"""Creation functions: dtype inference, errors, seeding, and PyTorch's creation semantics."""

import warnings

import numpy as np
import pytest

import gradjit as gj


def values(t) -> np.ndarray:
    return np.array(t.tolist(), dtype=np.float64)


def leaf(data, dtype=None):
    return gj.tensor(data, dtype=dtype, requires_grad=True)


DTYPE_CASES = [
    ("nested ints", lambda: gj.tensor([[1, 2], [3, 4]]), gj.int64),
    ("bools", lambda: gj.tensor([True, False]), gj.bool),
    ("bool and int", lambda: gj.tensor([True, 2]), gj.int64),
    ("empty list", lambda: gj.tensor([]), gj.float32),
    ("numpy f64 keeps f64", lambda: gj.tensor(np.array([1.0])), gj.float64),
    ("numpy i32 keeps i32", lambda: gj.tensor(np.array([1], np.int32)), gj.int32),
    ("numpy scalar", lambda: gj.tensor(np.float32(2.0)), gj.float32),
    ("from_numpy", lambda: gj.from_numpy(np.zeros(2, np.float64)), gj.float64),
    ("list of 0-d tensors", lambda: gj.tensor([gj.tensor(1.0), gj.tensor(2.0)]), gj.float32),
    ("dtype given", lambda: gj.tensor([1, 2], dtype=gj.float64), gj.float64),
    ("python type as dtype", lambda: gj.zeros(2, dtype=float), gj.float32),
    ("full bool", lambda: gj.full((2,), True), gj.bool),
    ("arange float step", lambda: gj.arange(0, 1, 0.5), gj.float32),
    ("randint", lambda: gj.randint(0, 5, (3,)), gj.int64),
    ("eye int", lambda: gj.eye(2, dtype=gj.int32), gj.int32),
]


@pytest.mark.parametrize("make, dtype", [c[1:] for c in DTYPE_CASES],
                         ids=[c[0] for c in DTYPE_CASES])
def test_inferred_dtype(make, dtype):
    t = make()
    assert t.dtype == dtype and t.is_leaf and not t.requires_grad


@pytest.mark.parametrize("np_dtype,want", [(np.uint8, gj.int64), (np.uint16, gj.int64),
                                            (np.uint32, gj.int64), (np.int16, gj.int64),
                                            (np.float16, gj.float32)])
def test_numpy_dtypes_widen_alike_in_creation_and_in_ops(np_dtype, want):
    arr = np.array([1, 2, 250], np_dtype)
    assert gj.tensor(arr).dtype == gj.from_numpy(arr).dtype == want
    summed = gj.tensor(np.zeros(3, np.int64 if want == gj.int64 else np.float32)) + arr
    assert summed.dtype == want
    np.testing.assert_array_equal(summed.numpy(), arr.astype(summed.numpy().dtype))


def test_uint64_arrays_are_refused_everywhere():
    """Values up to 2**64 do not fit int64: an error, never a silent wrap-around."""
    big = np.array([2 ** 63 + 5], np.uint64)
    for make in (gj.tensor, gj.from_numpy, lambda a: gj.tensor([1]) + a):
        with pytest.raises(TypeError, match="uint64"):
            make(big)


def test_tensor_copies_its_data():
    a = np.array([1.0, 2.0], np.float32)
    t = gj.tensor(a)
    a[0] = 100.0
    assert t.tolist() == [1.0, 2.0]


def test_tensor_of_a_tensor_warns_and_copies():
    src = gj.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(UserWarning, match="detach\\(\\).clone\\(\\)"):
        t = gj.tensor(src)
    assert t.is_leaf and not t.requires_grad and t.tolist() == [1.0, 2.0]


def test_as_tensor_returns_the_same_tensor_when_nothing_changes():
    t = gj.tensor([1.0])
    assert gj.as_tensor(t) is t
    assert gj.as_tensor(t, dtype=gj.float64).dtype == gj.float64
    assert gj.as_tensor([1, 2]).dtype == gj.int64


@pytest.mark.parametrize("make", [
    lambda: gj.zeros(2, dtype=gj.int64, requires_grad=True),
    lambda: gj.arange(3, requires_grad=True),
    lambda: gj.tensor([True], requires_grad=True),
    lambda: gj.ones_like(gj.tensor([1, 2]), requires_grad=True),
], ids=["zeros int64", "arange int", "bool data", "ones_like int"])
def test_requires_grad_needs_a_floating_dtype(make):
    with pytest.raises(RuntimeError, match="Only Tensors of floating point and complex dtype "
                                           "can require gradients"):
        make()


def test_requires_grad_factories_make_leaves():
    for t in (gj.zeros(2, requires_grad=True), gj.randn(2, requires_grad=True),
              gj.linspace(0, 1, 3, requires_grad=True), gj.full((1,), 2.0, requires_grad=True)):
        assert t.requires_grad and t.is_leaf and t.grad is None


def test_ragged_data_is_an_error():
    with pytest.raises(ValueError):
        gj.tensor([[1.0], [2.0, 3.0]])


def test_negative_size_is_an_error():
    with pytest.raises(RuntimeError, match="negative dimension"):
        gj.zeros(2, -1)


def test_manual_seed_reproduces_every_sampler():
    def draw():
        return (gj.randn(3).tolist(), gj.rand(2, 2).tolist(), gj.randint(10, (4,)).tolist(),
                gj.randperm(5).tolist(), gj.nn.Linear(2, 2).weight.tolist())
    gj.manual_seed(42)
    first = draw()
    gj.manual_seed(42)
    assert draw() == first
    gj.manual_seed(43)
    assert draw() != first


def test_randint_range_and_randperm():
    gj.manual_seed(0)
    r = np.array(gj.randint(3, 7, (500,)).tolist())
    assert r.min() == 3 and r.max() == 6
    assert sorted(gj.randperm(6).tolist()) == list(range(6))


def test_randn_statistics():
    gj.manual_seed(1)
    v = np.array(gj.randn(20000).tolist())
    assert abs(v.mean()) < 0.03 and abs(v.std() - 1) < 0.03


def test_like_functions_follow_the_source():
    src = gj.zeros(2, 3, dtype=gj.float64)
    for t in (gj.ones_like(src), gj.full_like(src, 2), gj.randn_like(src), gj.rand_like(src),
              gj.empty_like(src), gj.zeros_like(src)):
        assert t.shape == (2, 3) and t.dtype == gj.float64
    assert gj.zeros_like(src, dtype=gj.int32).dtype == gj.int32


def test_is_tensor_and_helpers():
    assert gj.is_tensor(gj.zeros(1)) and not gj.is_tensor(np.zeros(1))
    assert gj.is_floating_point(gj.zeros(1)) and not gj.is_floating_point(gj.zeros(1).long())
    assert gj.numel(gj.zeros(2, 3)) == 6 and gj.get_default_dtype() == gj.float32


def test_numpy_of_a_detached_tensor_and_force():
    x = gj.tensor([1.0, 2.0], requires_grad=True)
    assert x.numpy(force=True).tolist() == [1.0, 2.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (x * 2).detach().numpy().tolist() == [2.0, 4.0]


# ---- creation and dtypes (torch 2.13.0) ------------------------------------------------------

CREATION_CASES = [
    ("zeros(2, 3)", lambda: gj.zeros(2, 3), gj.float32, [[0.0] * 3] * 2),
    ("zeros((2, 3))", lambda: gj.zeros((2, 3)), gj.float32, [[0.0] * 3] * 2),
    ("zeros int32", lambda: gj.zeros(2, dtype=gj.int32), gj.int32, [0, 0]),
    ("ones(3)", lambda: gj.ones(3), gj.float32, [1.0, 1.0, 1.0]),
    ("full float", lambda: gj.full((2,), 7.0), gj.float32, [7.0, 7.0]),
    ("full int", lambda: gj.full((2,), 7), gj.int64, [7, 7]),
    ("arange(5)", lambda: gj.arange(5), gj.int64, [0, 1, 2, 3, 4]),
    ("arange(3.0)", lambda: gj.arange(3.0), gj.float32, [0.0, 1.0, 2.0]),
    ("arange step", lambda: gj.arange(0.0, 1.0, 0.25), gj.float32, [0.0, 0.25, 0.5, 0.75]),
    ("arange dtype", lambda: gj.arange(1, 4, dtype=gj.float32), gj.float32, [1.0, 2.0, 3.0]),
    ("linspace", lambda: gj.linspace(0, 1, 5), gj.float32, [0.0, 0.25, 0.5, 0.75, 1.0]),
    ("linspace neg", lambda: gj.linspace(-1, 1, 3), gj.float32, [-1.0, 0.0, 1.0]),
    ("eye(3)", lambda: gj.eye(3), gj.float32, np.eye(3).tolist()),
    ("eye(2, 3)", lambda: gj.eye(2, 3), gj.float32, np.eye(2, 3).tolist()),
    ("zeros_like int", lambda: gj.zeros_like(gj.tensor([1, 2])), gj.int64, [0, 0]),
    ("ones_like", lambda: gj.ones_like(gj.tensor([1.0, 2.0])), gj.float32, [1.0, 1.0]),
    ("full_like", lambda: gj.full_like(gj.tensor([1.0, 2.0]), 3.5), gj.float32, [3.5, 3.5]),
    ("int data", lambda: gj.tensor([1, 2, 3]), gj.int64, [1, 2, 3]),
    ("float data", lambda: gj.tensor([1.0, 2.0]), gj.float32, [1.0, 2.0]),
    ("mixed data", lambda: gj.tensor([1, 2.5]), gj.float32, [1.0, 2.5]),
    ("scalar", lambda: gj.tensor(1.5), gj.float32, 1.5),
    ("bool data", lambda: gj.tensor([True]), gj.bool, [True]),
    ("explicit f64", lambda: gj.tensor([[1, 2], [3, 4]], dtype=gj.float64), gj.float64,
     [[1.0, 2.0], [3.0, 4.0]]),
]


@pytest.mark.parametrize("make, dtype, data", [c[1:] for c in CREATION_CASES],
                         ids=[c[0] for c in CREATION_CASES])
def test_creation(make, dtype, data):
    t = make()
    assert t.dtype == dtype
    assert t.tolist() == data
    assert tuple(t.shape) == np.shape(data)
    assert t.is_leaf and not t.requires_grad


RANDOM_CASES = {
    "randn": (lambda: gj.randn(2, 3), (2, 3)),
    "rand": (lambda: gj.rand(4), (4,)),
    "randn_like": (lambda: gj.randn_like(gj.zeros(2, 2)), (2, 2)),
}


@pytest.mark.parametrize("case", RANDOM_CASES.values(), ids=RANDOM_CASES.keys())
def test_random_creation_shape_dtype_and_seed(case):
    make, shape = case
    gj.manual_seed(7)
    first = make()
    gj.manual_seed(7)
    again = make()
    assert tuple(first.shape) == shape and first.dtype == gj.float32
    assert first.tolist() == again.tolist()


def test_rand_lies_in_unit_interval():
    u = values(gj.rand(1000))
    assert u.min() >= 0.0 and u.max() < 1.0


def test_default_float_dtype_and_promotion():
    assert gj.tensor([1.0]).dtype == gj.float32 and gj.tensor(0.5).dtype == gj.float32
    assert (gj.tensor([1.0, 2.0]) * gj.tensor([1.0, 2.0], dtype=gj.float64)).dtype == gj.float64
    assert (gj.tensor([1, 2]) * 1.5).dtype == gj.float32
    assert (gj.tensor([1, 2]) + gj.tensor([1.0, 2.0])).dtype == gj.float32


def test_tensor_accessors():
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.ndim == 2 and tuple(x.size()) == (2, 3) and x.size(0) == 2
    assert tuple(x.T.shape) == (3, 2)
    assert gj.tensor(2.5).item() == 2.5 and isinstance(gj.tensor(3).item(), int)
    assert x.detach().numpy().dtype == np.float32
    np.testing.assert_array_equal(np.asarray(x.detach()), [[1, 2, 3], [4, 5, 6]])
