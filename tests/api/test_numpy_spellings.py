"""NumPy / jax.numpy spellings: dot, transpose, split(axis=), take_along_axis, tensordot(axes=),
astype, x.at[idx].set/add/multiply/min/max/get, *_like of NumPy arrays.

Values against NumPy; gradients against central differences in float64; .at under jit, grad
and vmap, and over hypothesis-drawn shapes and index arrays.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj
from tests.gradcheck import numeric_grad

RNG = np.random.default_rng(0)
A, B = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 4))
C, D = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((5, 4, 2))


def check_grad(f, *args):
    """gj.grad of f in every argument against central differences (float64)."""
    grads = gj.grad(f, argnums=tuple(range(len(args))))(*args)
    for k, (g, a) in enumerate(zip(grads, args)):
        def partial(v, k=k):
            return f(*args[:k], v, *args[k + 1:])
        np.testing.assert_allclose(np.asarray(g), numeric_grad(partial, a), rtol=1e-6,
                                   atol=1e-7)


@pytest.mark.parametrize("x,y", [(A, B), (C, D), (2.5, A), (A, 3.0), (A[0], A[1]),
                                 (C, RNG.standard_normal(4)),
                                 (A[0], B)])
def test_dot_is_numpy_dot(x, y):
    np.testing.assert_allclose(gj.dot(x, y).numpy(), np.dot(x, y), rtol=1e-12)


def test_dot_gradients():
    check_grad(lambda x, y: (gj.dot(x, y) ** 2).sum(), C, D)
    check_grad(lambda x, y: (gj.dot(x, y) ** 2).sum(), A, B)


@pytest.mark.parametrize("call,ref", [
    (lambda x: gj.transpose(x), lambda x: np.transpose(x)),
    (lambda x: gj.transpose(x, axes=(1, 0, 2)), lambda x: np.transpose(x, (1, 0, 2))),
    (lambda x: gj.transpose(x, (2, 0, 1)), lambda x: np.transpose(x, (2, 0, 1))),
    (lambda x: gj.transpose(x, (-1, 0, 1)), lambda x: np.transpose(x, (-1, 0, 1))),
    (lambda x: gj.transpose(x, 0, 2), lambda x: np.swapaxes(x, 0, 2)),         # PyTorch's
    (lambda x: gj.tensor(x).transpose(), lambda x: x.transpose()),
    (lambda x: gj.tensor(x).transpose(2, 0, 1), lambda x: x.transpose(2, 0, 1)),
])
def test_transpose_spellings(call, ref):
    np.testing.assert_array_equal(call(C).numpy(), ref(C))


def test_transpose_gradient_and_bad_axes():
    check_grad(lambda x: (gj.transpose(x, (2, 0, 1)) * np.arange(24.0).reshape(4, 2, 3)).sum(), C)
    with pytest.raises(ValueError, match="axes don't match array"):
        gj.transpose(C, (0, 1))


@pytest.mark.parametrize("spec", [3, [1, 3], [1, 10], [-2], [2, 1], []])
def test_split_with_axis_is_numpy_split(spec):
    x = np.arange(24.0).reshape(6, 4)
    for axis in (0, 1) if spec != 3 else (0,):
        got = gj.split(x, spec, axis=axis)
        want = np.split(x, spec, axis=axis)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w)


def test_split_spellings_keep_pytorch_meaning_and_refuse_bad_sections():
    x = np.arange(10.0)
    assert [len(p) for p in gj.split(x, 4)] == [4, 4, 2]            # PyTorch: piece size
    assert [len(p) for p in gj.split(x, 5, axis=0)] == [2] * 5      # NumPy: sections
    with pytest.raises(ValueError, match="array split does not result in an equal division"):
        gj.split(x, 3, axis=0)
    check_grad(lambda v: sum((p * (i + 1)).sum() ** 2 for i, p in
                             enumerate(gj.split(v, [2, 7], axis=0))), x)


def test_take_along_axis_and_tensordot_axes():
    idx = np.argsort(C, axis=1)
    np.testing.assert_array_equal(gj.take_along_axis(C, idx, axis=1).numpy(),
                                  np.take_along_axis(C, idx, axis=1))
    np.testing.assert_array_equal(gj.take_along_axis(C, idx.reshape(-1)[:5], None).numpy(),
                                  np.take_along_axis(C, idx.reshape(-1)[:5], None))
    check_grad(lambda x: (gj.take_along_axis(x, idx[:, :2], axis=1) ** 2).sum(), C)
    for y, axes in ((RNG.standard_normal((4, 5)), 1), (RNG.standard_normal(7), 0),
                    (D, ([2], [1])), (RNG.standard_normal((3, 4, 2)), ([1, 2], [0, 1])),
                    (RNG.standard_normal((3, 4)), 2)):
        np.testing.assert_allclose(gj.tensordot(C, y, axes=axes).numpy(),
                                   np.tensordot(C, y, axes=axes), rtol=1e-12)
    check_grad(lambda x, y: (gj.tensordot(x, y, axes=([2], [1])) ** 2).sum(), C, D)


def test_astype():
    t = gj.tensor(np.array([1.7, -2.5, 3.0]))
    assert t.astype(np.int32).tolist() == [1, -2, 3] and t.astype(gj.float32).dtype == gj.float32
    assert gj.astype(np.arange(3), "float32").dtype == gj.float32
    check_grad(lambda x: (x.astype(np.float64) ** 2).sum(), A)


@pytest.mark.parametrize("like", [gj.zeros_like, gj.ones_like, gj.empty_like,
                                  lambda a: gj.full_like(a, 7)])
@pytest.mark.parametrize("arr", [A, np.arange(4, dtype=np.int32), np.array(True)])
def test_like_of_numpy_arrays(like, arr):
    out = like(arr)
    assert tuple(out.shape) == arr.shape and np.asarray(out).dtype == arr.dtype


# ---- x.at[idx] ------------------------------------------------------------------------------

def numpy_at(x, idx, method, v):
    out = x.copy()
    if method == "set":
        out[idx] = v
    elif method == "get":
        return x[idx]
    else:
        {"add": np.add, "multiply": np.multiply, "min": np.minimum,
         "max": np.maximum}[method].at(out, idx, v)
    return out


METHODS = ["set", "add", "multiply", "min", "max"]
ROWS = np.array([2, 0, 2, 1])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("idx", [1, (slice(None), 2), (1, slice(0, 3)), (ROWS,),
                                 (ROWS, np.array([0, 1, 0, 3])), (Ellipsis, -1)],
                         ids=["int", "column", "row-slice", "rows", "points", "ellipsis"])
def test_at_updates_equal_numpy(method, idx):
    x = RNG.standard_normal((3, 4))
    shape = np.empty((3, 4))[idx].shape
    v = RNG.standard_normal(shape)
    got = getattr(gj.tensor(x).at[idx], method)(v).numpy()
    np.testing.assert_allclose(got, numpy_at(x, idx, method, v), rtol=1e-13)
    np.testing.assert_array_equal(gj.tensor(x).at[idx].get().numpy(), x[idx])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("idx", [(1, slice(0, 3)), (ROWS, np.array([0, 1, 0, 3]))],
                         ids=["basic", "repeated"])
def test_at_gradients_match_finite_differences(method, idx):
    x = RNG.standard_normal((3, 4))
    v = RNG.standard_normal(np.empty((3, 4))[idx].shape) + 0.1
    weights = np.arange(1.0, 13.0).reshape(3, 4)

    def f(x, v):
        x = x if isinstance(x, gj.Tensor) else gj.tensor(x)
        return (getattr(x.at[idx], method)(v) ** 2 * weights).sum()
    check_grad(f, x, v)


def test_at_under_jit_and_vmap_with_traced_indices():
    f = gj.jit(lambda x, i, v: x.at[i].add(v))
    x = np.zeros((4, 3))
    got = f(x, np.array([1, 1, 3]), np.ones((3, 3))).numpy()
    np.testing.assert_array_equal(got, numpy_at(x, np.array([1, 1, 3]), "add", np.ones((3, 3))))
    batched = gj.vmap(lambda row, k: row.at[k].set(-1.0))(np.arange(12.0).reshape(4, 3),
                                                           np.array([0, 2, 1, 0]))
    want = np.arange(12.0).reshape(4, 3)
    want[np.arange(4), [0, 2, 1, 0]] = -1.0
    np.testing.assert_array_equal(batched.numpy(), want)
    g = gj.grad(lambda v: (gj.zeros(5, dtype=gj.float64).at[np.array([0, 0, 4])].set(v) ** 2)
                .sum())(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(g.numpy(), [0.0, 4.0, 6.0])   # the first write is lost


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.lists(st.integers(-5, 4), min_size=1,
                                                     max_size=6),
       st.sampled_from(METHODS), st.integers(0, 2**31))
def test_at_with_drawn_shapes_and_index_arrays(rows, cols, raw, method, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols))
    idx = np.array([r % rows for r in raw])
    v = rng.standard_normal((len(idx), cols))
    got = getattr(gj.tensor(x).at[idx], method)(v).numpy()
    np.testing.assert_allclose(got, numpy_at(x, idx, method, v), rtol=1e-13)


def test_at_refuses_unknown_modes():
    with pytest.raises(NotImplementedError, match="mode='drop'"):
        gj.zeros(3).at[1].set(1.0, mode="drop")
