"""Structural and cumulative array ops against PyTorch 2.13's recorded values (ties, zeros,
infinities, return types), NumPy on random shapes (hypothesis, 0- and 1-size axes included),
imperative against jit, and vmap against a loop."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj

X = np.arange(12.0).reshape(3, 4)

# (op, PyTorch value, PyTorch gradient of sum(out * arange(out.size))), from
# torch.autograd.grad in float64 on x = arange(12).reshape(3, 4), PyTorch 2.13
RECORDED = {
    "tril": (lambda x: gj.tril(x, -1), [[0, 0, 0, 0], [4, 0, 0, 0], [8, 9, 0, 0]],
             [[0, 0, 0, 0], [4, 0, 0, 0], [8, 9, 0, 0]]),
    "triu": (lambda x: gj.triu(x, 1), [[0, 1, 2, 3], [0, 0, 6, 7], [0, 0, 0, 11]],
             [[0, 1, 2, 3], [0, 0, 6, 7], [0, 0, 0, 11]]),
    "diag": (lambda x: gj.diag(x, 1), [1, 6, 11], [[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 2]]),
    "diagonal": (lambda x: gj.diagonal(x, -1), [4, 9],
                 [[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]]),
    "flip": (lambda x: gj.flip(x, (0, 1)), [[11, 10, 9, 8], [7, 6, 5, 4], [3, 2, 1, 0]],
             [[11, 10, 9, 8], [7, 6, 5, 4], [3, 2, 1, 0]]),
    "roll": (lambda x: gj.roll(x, (1, -1), (0, 1)), [[9, 10, 11, 8], [1, 2, 3, 0], [5, 6, 7, 4]],
             [[7, 4, 5, 6], [11, 8, 9, 10], [3, 0, 1, 2]]),
    "repeat": (lambda x: x.repeat(2, 1), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]] * 2,
               [[12, 14, 16, 18], [20, 22, 24, 26], [28, 30, 32, 34]]),
    "repeat_interleave": (lambda x: gj.repeat_interleave(x, gj.tensor([1, 0, 2]), 0),
                          [[0, 1, 2, 3], [8, 9, 10, 11], [8, 9, 10, 11]],
                          [[0, 1, 2, 3], [0, 0, 0, 0], [12, 14, 16, 18]]),
}


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_values_and_gradients_match_pytorch(name):
    fn, want, want_grad = RECORDED[name]
    x = gj.tensor(X, requires_grad=True)
    out = fn(x)
    np.testing.assert_array_equal(out.detach().numpy(), want)
    weights = np.arange(out.numel(), dtype=np.float64).reshape(tuple(out.shape))
    (out * weights).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), want_grad)


def test_pytorch_edge_values():
    assert float(gj.trace(X)) == 15.0
    assert gj.repeat_interleave(gj.tensor([2, 0, 1])).tolist() == [0, 0, 2]
    a, b = gj.meshgrid(gj.tensor([1, 2, 3]), gj.tensor([4, 5]))      # PyTorch's default "ij"
    assert a.tolist() == [[1, 1], [2, 2], [3, 3]] and b.tolist() == [[4, 5], [4, 5], [4, 5]]
    assert gj.cumsum(gj.tensor([[1, 2], [3, 4]], dtype=gj.int32), 1).dtype == gj.int64
    inf = float("inf")
    assert gj.logcumsumexp(gj.tensor([0.0, inf, 1.0, -inf]), 0).tolist() == [0.0, inf, inf, inf]


def test_cummax_ties_and_nans_as_pytorch():
    x = gj.tensor([1.0, 3.0, 3.0, 2.0, float("nan"), 5.0, 0.0])
    values, indices = gj.cummax(x, 0)
    np.testing.assert_array_equal(values.numpy(), [1, 3, 3, 3, np.nan, np.nan, np.nan])
    assert indices.tolist() == [0, 1, 2, 2, 4, 4, 4]
    result = x.cummin(0)
    np.testing.assert_array_equal(result.values.numpy(), [1, 1, 1, 1, np.nan, np.nan, np.nan])
    assert result.indices.tolist() == [0, 0, 0, 0, 4, 4, 4]
    y = gj.tensor([2.0, 1.0, 1.0, 2.0, 0.0, 1.0])
    assert gj.cummax(y, 0).indices.tolist() == [0, 0, 0, 3, 3, 3]
    assert gj.cummin(y, 0).indices.tolist() == [0, 1, 2, 2, 4, 4]
    ints = gj.cummax(gj.tensor([[1, 5, 5], [7, 2, 9]]), 1)
    assert ints.values.tolist() == [[1, 5, 5], [7, 7, 9]]
    assert ints.indices.tolist() == [[0, 1, 2], [0, 0, 2]]
    assert repr(gj.cummax(gj.tensor(3.0), 0)).startswith("torch.return_types.cummax(")


def test_cummax_gradient_goes_to_the_tied_later_index():
    c = gj.tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    values = gj.cummax(c, 0).values
    assert type(values.grad_fn).__name__ == "CummaxBackward0"
    values.sum().backward()
    assert c.grad.tolist() == [1.0, 1.0, 2.0, 0.0]


@pytest.mark.parametrize("x, want", [([2.0, 0.0, 3.0, 0.0, 4.0], [1.0, 22.0, 0.0, 0.0, 0.0]),
                                     ([2.0, 3.0, 0.0, 4.0, 5.0], [7.0, 4.0, 714.0, 0.0, 0.0])])
def test_cumprod_gradient_with_zeros_as_pytorch(x, want):
    g = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    a = gj.tensor(x, dtype=gj.float64, requires_grad=True)
    gj.cumprod(a, 0).backward(gj.tensor(g))
    np.testing.assert_allclose(a.grad.numpy(), want, rtol=1e-14)
    compiled = gj.grad(lambda v: (gj.cumprod(v, 0) * g).sum())(np.array(x))
    np.testing.assert_allclose(np.asarray(compiled), want, rtol=1e-14)


def test_logcumsumexp_extremes():
    b = gj.tensor([-float("inf"), 0.0, 1000.0, -1000.0], dtype=gj.float64, requires_grad=True)
    out = gj.logcumsumexp(b, 0)
    assert out.tolist() == [-float("inf"), 0.0, 1000.0, 1000.0]      # PyTorch's values
    out.sum().backward()
    # PyTorch: [nan, 1.0, 1.99999999999989, 0.0]; gradjit gives the limit 0 at -inf
    np.testing.assert_allclose(b.grad.numpy(), [0.0, 1.0, 1.99999999999989, 0.0], rtol=1e-12)


def test_cumulative_errors_name_the_line():
    with pytest.raises(IndexError, match="test_arrayops.py"):
        gj.cumsum(gj.ones(2, 3), 2)
    with pytest.raises(RuntimeError, match="can not be smaller"):
        gj.ones(2, 3).repeat(2)
    with pytest.raises(ValueError, match="appears multiple times"):
        gj.flip(gj.ones(2, 3), (0, 0))


# ---- random shapes against NumPy, imperative against jit ----------------------------------

SHAPES = st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple)
MATRICES = st.lists(st.integers(0, 4), min_size=2, max_size=3).map(tuple)


def _both(fn, x):
    """fn's value imperatively and under jit (which must agree)."""
    eager = np.asarray(fn(gj.tensor(x)))
    jitted = np.asarray(gj.jit(fn)(x))
    np.testing.assert_array_equal(eager, jitted)
    return eager


def _array(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


@settings(max_examples=25, deadline=None)
@given(shape=MATRICES, k=st.integers(-4, 4), seed=st.integers(0, 99))
def test_triangles_and_diagonals(shape, k, seed):
    x = _array(shape, seed)
    np.testing.assert_array_equal(_both(lambda v: gj.tril(v, k), x),
                                  x * np.tri(*shape[-2:], k))
    np.testing.assert_array_equal(_both(lambda v: gj.diagonal(v, k, -2, -1), x),
                                  np.diagonal(x, k, -2, -1))
    np.testing.assert_allclose(_both(lambda v: gj.trace(v, k, axis1=0, axis2=1), x),
                               np.trace(x, k, 0, 1))


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, shift=st.integers(-9, 9), axis=st.integers(0, 2), seed=st.integers(0, 99))
def test_flip_roll_tile_repeat_pad(shape, shift, axis, seed):
    x = _array(shape, seed)
    axis = axis % len(shape)
    np.testing.assert_array_equal(_both(lambda v: gj.flip(v, axis), x), np.flip(x, axis))
    np.testing.assert_array_equal(_both(lambda v: gj.roll(v, shift, axis), x),
                                  np.roll(x, shift, axis))
    np.testing.assert_array_equal(_both(lambda v: gj.roll(v, shift), x), np.roll(x, shift))
    np.testing.assert_array_equal(_both(lambda v: gj.tile(v, (2, 1)), x), np.tile(x, (2, 1)))
    np.testing.assert_array_equal(_both(lambda v: gj.repeat(v, 2, axis), x),
                                  np.repeat(x, 2, axis))
    np.testing.assert_array_equal(_both(lambda v: gj.pad(v, 1, constant_values=3), x),
                                  np.pad(x, 1, constant_values=3))
    if 0 not in shape:
        np.testing.assert_array_equal(_both(lambda v: gj.pad(v, 2, mode="symmetric"), x),
                                      np.pad(x, 2, mode="symmetric"))


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, axis=st.integers(0, 2), seed=st.integers(0, 99))
def test_cumulative_ops(shape, axis, seed):
    x = _array(shape, seed)
    axis = axis % len(shape)
    np.testing.assert_allclose(_both(lambda v: gj.cumsum(v, axis), x), np.cumsum(x, axis),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_both(lambda v: gj.cumprod(v, axis), x), np.cumprod(x, axis),
                               rtol=1e-12)
    np.testing.assert_allclose(_both(lambda v: gj.logcumsumexp(v, axis), x),
                               np.logaddexp.accumulate(x, axis), rtol=1e-12)
    np.testing.assert_array_equal(_both(lambda v: gj.cummax(v, axis).values, x),
                                  np.maximum.accumulate(x, axis))


# ---- vmap and jit gradients ------------------------------------------------------------------

@pytest.mark.parametrize("fn", [
    lambda v: gj.cumsum(v, 0), lambda v: gj.cumprod(v, 1), lambda v: gj.logcumsumexp(v, 1),
    lambda v: gj.cummin(v, 0).values, lambda v: gj.tril(v, 1), lambda v: gj.diagonal(v),
    lambda v: gj.roll(v, 1, 1), lambda v: gj.pad(v, 1, mode="reflect"),
])
def test_vmap_matches_a_loop(fn):
    xs = _array((3, 4, 5), 0)
    batched = np.asarray(gj.vmap(fn)(xs))
    np.testing.assert_allclose(batched, np.stack([np.asarray(fn(gj.tensor(x))) for x in xs]),
                               rtol=1e-12)


def test_jit_gradient_matches_finite_differences():
    def loss(v):
        return (gj.cumprod(gj.flip(v, 0), 1) * gj.logcumsumexp(gj.tril(v), 0)).sum() \
            + gj.cummax(gj.roll(v, 2, 1), 1).values.sum()
    x = _array((3, 4), 1)
    g = np.asarray(gj.grad(loss)(x))
    eps, numeric = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        numeric[i] = (float(loss(gj.tensor(x + d))) - float(loss(gj.tensor(x - d)))) / (2 * eps)
    np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)
