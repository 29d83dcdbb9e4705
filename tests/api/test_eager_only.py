"""Data-dependent shapes: nonzero, argwhere, where(cond), unique, masked_select, bincount
against PyTorch 2.13's recorded values; the error naming the op and the user's line under a
trace; JAX's static-size arguments (nonzero size=, bincount length=) under jit."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj

X = [[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]]


def test_nonzero_where_argwhere_as_pytorch():
    x = gj.tensor(X)
    assert gj.nonzero(x).tolist() == [[0, 1], [1, 0], [1, 2]]
    assert [t.tolist() for t in gj.nonzero(x, as_tuple=True)] == [[0, 1, 1], [1, 0, 2]]
    assert [t.tolist() for t in gj.where(x > 0)] == [[0, 1], [1, 0]]
    assert x.argwhere().tolist() == [[0, 1], [1, 0], [1, 2]]
    scalar = gj.nonzero(gj.tensor(5.0))
    assert tuple(scalar.shape) == (1, 0) and scalar.dtype == gj.int64
    assert int(gj.count_nonzero(x)) == 3 and gj.count_nonzero(x, dim=0).tolist() == [1, 1, 1]


def test_unique_as_pytorch():
    v = gj.tensor([3, 1, 3, 2, 1])
    assert gj.unique(v).tolist() == [1, 2, 3]
    values, inverse, counts = v.unique(return_inverse=True, return_counts=True)
    assert (values.tolist(), inverse.tolist(), counts.tolist()) == (
        [1, 2, 3], [2, 0, 2, 1, 0], [2, 1, 2])
    rows, counts = gj.unique(gj.tensor([[1, 2], [1, 2], [0, 5]]), dim=0, return_counts=True)
    assert rows.tolist() == [[0, 5], [1, 2]] and counts.tolist() == [1, 2]
    with_nan = gj.unique(gj.tensor([3.0, float("nan"), 1.0, float("nan")])).numpy()
    np.testing.assert_array_equal(with_nan, [1.0, 3.0, np.nan, np.nan])   # NaNs stay distinct


def test_masked_select_and_bincount_as_pytorch():
    a = gj.tensor([1.0, 2.0, 3.0], requires_grad=True)
    picked = gj.masked_select(a, gj.tensor([True, False, True]))
    assert picked.tolist() == [1.0, 3.0]
    assert type(picked.grad_fn).__name__ == "MaskedSelectBackward0"
    picked.sum().backward()
    assert a.grad.tolist() == [1.0, 0.0, 1.0]
    broadcast = gj.masked_select(gj.tensor([[1.0, 2.0], [3.0, 4.0]]), gj.tensor([True, False]))
    assert broadcast.tolist() == [1.0, 3.0]
    assert gj.bincount(gj.tensor([0, 1, 1, 4])).tolist() == [1, 2, 0, 0, 1]
    weighted = gj.bincount(gj.tensor([0, 1, 1]), weights=gj.tensor([0.5, 1.0, 2.0]))
    assert weighted.tolist() == [0.5, 3.0] and weighted.dtype == gj.float32
    assert gj.bincount(gj.tensor([0, 1, 1]), minlength=5).tolist() == [1, 2, 0, 0, 0]
    with pytest.raises(RuntimeError, match="bincount only supports 1-d non-negative integral"):
        gj.bincount(gj.tensor([-1, 1]))


@pytest.mark.parametrize("name, fn", [
    ("nonzero", lambda v: gj.nonzero(v)), ("unique", lambda v: gj.unique(v)),
    ("nonzero", lambda v: gj.where(v > 0)), ("masked_select", lambda v: gj.masked_select(
        v, v > 0)), ("bincount", lambda v: gj.bincount(gj.tensor([1, 2]) * 0 + v.long())),
    ("nonzero", lambda v: gj.argwhere(v)),
])
def test_traced_data_dependent_shapes_raise_naming_op_and_line(name, fn):
    with pytest.raises(gj.TracerError, match=rf"{name}\(\) has a data-dependent output shape"
                                             r".*test_eager_only.py:\d+"):
        gj.jit(fn)(np.array([1.0, 0.0]))


def test_static_sizes_work_under_jit():
    x = np.array(X)
    rows, cols = gj.jit(lambda v: gj.nonzero(v, size=4, fill_value=-1))(x)
    assert rows.tolist() == [0, 1, 1, -1] and cols.tolist() == [1, 0, 2, -1]
    rows, cols = gj.jit(lambda v: gj.nonzero(v, size=2))(x)         # truncated to size
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    assert gj.jit(lambda v: gj.argwhere(v, size=2))(np.array([0, 3, 0, 5, 6])).tolist() == [
        [1], [3]]
    assert gj.jit(lambda v: gj.bincount(v, length=3))(np.array([0, 1, 1, 7])).tolist() == [
        1, 2, 0]
    assert int(gj.jit(gj.count_nonzero)(x)) == 3


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple),
       seed=st.integers(0, 999))
def test_nonzero_matches_numpy_eager_and_with_size(shape, seed):
    x = np.random.default_rng(seed).integers(-1, 2, shape).astype(np.float64)
    want = np.nonzero(x)
    got = gj.nonzero(gj.tensor(x), as_tuple=True)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w)
    size = x.size + 1
    padded = gj.jit(lambda v: gj.nonzero(v, size=size, fill_value=-1))(x)
    for g, w in zip(padded, want):
        np.testing.assert_array_equal(g.numpy(), np.concatenate([w, -np.ones(size - len(w))]))
    np.testing.assert_array_equal(gj.unique(gj.tensor(x)).numpy(), np.unique(x))


# ---- JAX spellings: values from JAX's documented semantics -----------------------------------

def test_segment_sum_one_hot_and_weighted_logsumexp_as_jax_documents():
    data = np.arange(10.0).reshape(5, 2)
    got = gj.segment_sum(data, np.array([0, 0, 2, 1, 5]), num_segments=3)
    assert got.tolist() == [[2.0, 4.0], [6.0, 7.0], [4.0, 5.0]]       # id 5 dropped
    assert gj.segment_sum(data[:, 0], np.array([1, 1, 0, 0, 0])).tolist() == [18.0, 2.0]
    with pytest.raises(gj.TracerError, match="segment_sum"):
        gj.jit(lambda d, i: gj.segment_sum(d, i))(data, np.array([0, 1, 1, 0, 0]))
    hot = gj.one_hot(np.array([0, 2, 5, -1]), 3)
    assert hot.dtype == gj.float32 and hot.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0],
                                                        [0, 0, 0]]
    a = np.array([[1.0, 2.0, 3.0], [0.0, -1000.0, 1000.0]])
    b = np.array([[1.0, -1.0, 2.0], [0.5, 0.0, -1.0]])
    value, sign = gj.logsumexp(a, axis=1, b=b, return_sign=True)
    want0 = np.log(np.exp(1.0) - np.exp(2.0) + 2 * np.exp(3.0))
    np.testing.assert_allclose(value.numpy(), [want0, 1000.0], rtol=1e-12)
    assert sign.tolist() == [1.0, -1.0]
    assert np.isnan(gj.logsumexp(a, axis=1, b=b).numpy()[1])        # negative sum: NaN
    g = np.asarray(gj.grad(lambda v: gj.logsumexp(v, b=np.array([1.0, 2.0, 0.5])))(
        np.array([0.1, 0.2, 0.3])))
    w = np.array([1.0, 2.0, 0.5]) * np.exp([0.1, 0.2, 0.3])
    np.testing.assert_allclose(g, w / w.sum(), rtol=1e-12)
