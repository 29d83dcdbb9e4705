"""sort / topk / kthvalue / median / quantile against PyTorch 2.13's recorded values (NaN
order, ties, return types, gradients, float32 quantiles), NumPy on random shapes
(hypothesis), imperative against jit, vmap against a loop."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj

NAN = float("nan")
X = [3.0, NAN, 1.0, 2.0, 1.0, NAN, 0.0]


def _same(t, want):
    np.testing.assert_array_equal(np.asarray(t), np.asarray(want, dtype=np.asarray(t).dtype))


def test_sort_orders_nan_as_pytorch():
    result = gj.sort(gj.tensor(X))
    assert repr(result).startswith("torch.return_types.sort(")
    _same(result.values, [0, 1, 1, 2, 3, NAN, NAN])
    assert result.indices.tolist() == [6, 2, 4, 3, 0, 1, 5]
    down = gj.tensor(X).sort(descending=True)
    _same(down.values, [NAN, NAN, 3, 2, 1, 1, 0])
    assert down.indices.tolist() == [1, 5, 0, 3, 2, 4, 6]
    assert gj.argsort(gj.tensor(X), stable=True, descending=True).tolist() == [1, 5, 0, 3, 2,
                                                                               4, 6]
    ints = gj.sort(gj.tensor([2, 1, 3], dtype=gj.int32))
    assert ints.values.dtype == gj.int32 and ints.indices.tolist() == [1, 0, 2]


def test_topk_kthvalue_median_as_pytorch():
    top = gj.topk(gj.tensor(X), 3)
    _same(top.values, [NAN, NAN, 3])
    assert top.indices.tolist() == [1, 5, 0] and type(top).__name__ == "TopkResult"
    low = gj.topk(gj.tensor(X), 3, largest=False)
    _same(low.values, [0, 1, 1])
    kth = gj.kthvalue(gj.tensor([3.0, 1.0, 2.0, 1.0]), 2)
    assert float(kth.values) == 1.0 and int(kth.indices) == 3
    assert float(gj.median(gj.tensor([3.0, 1.0, 2.0, 4.0]))) == 2.0
    by_row = gj.median(gj.tensor([[3.0, 1.0, 2.0, 4.0], [1, 1, 5, 5]]), 1)
    assert by_row.values.tolist() == [2.0, 1.0] and by_row.indices.tolist() == [2, 1]
    assert np.isnan(float(gj.median(gj.tensor([3.0, NAN, 2.0, 4.0]))))
    with_nan = gj.median(gj.tensor([[3.0, NAN, 2.0, 4.0]]), 1)
    assert np.isnan(with_nan.values.tolist()[0]) and with_nan.indices.tolist() == [1]
    assert np.isnan(float(gj.median(gj.tensor([], dtype=gj.float32))))
    assert gj.msort(gj.tensor([[3.0, 1.0], [1.0, 2.0]])).tolist() == [[1.0, 1.0], [3.0, 2.0]]


# torch.quantile(tensor([0., 1., 2., 3., 10.]), tensor([0.1, 0.5, 0.625, 0.9]),
# interpolation=m), float32, PyTorch 2.13
QUANTILES = {
    "linear": [0.4000000059604645, 2.0, 2.5, 7.1999993324279785],
    "lower": [0.0, 2.0, 2.0, 3.0],
    "higher": [1.0, 2.0, 3.0, 10.0],
    "nearest": [0.0, 2.0, 2.0, 10.0],
    "midpoint": [0.5, 2.0, 2.5, 6.5],
}


@pytest.mark.parametrize("method", sorted(QUANTILES))
def test_quantile_methods_as_pytorch_in_float32(method):
    q = gj.tensor([0.0, 1.0, 2.0, 3.0, 10.0])
    got = gj.quantile(q, gj.tensor([0.1, 0.5, 0.625, 0.9]), interpolation=method)
    assert got.tolist() == QUANTILES[method]


def test_quantile_nan_rules_and_shapes_as_pytorch():
    assert np.isnan(float(gj.quantile(gj.tensor([1.0, NAN, 2.0]), 0.5)))
    assert float(gj.nanquantile(gj.tensor([1.0, NAN, 2.0]), 0.5)) == 1.5
    assert np.isnan(float(gj.nanquantile(gj.tensor([NAN, NAN]), 0.5)))
    m = gj.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 9.0]])
    assert gj.quantile(m, 0.5, dim=1, keepdim=True).tolist() == [[2.0], [5.0]]
    assert tuple(gj.quantile(m, gj.tensor([0.25, 0.5]), dim=1).shape) == (2, 2)
    with pytest.raises(RuntimeError, match=r"q must be in the range \[0, 1\] but got 1.5"):
        gj.quantile(m, 1.5)
    with pytest.raises(RuntimeError, match="interpolation must be one of linear, lower, higher, "
                                           "midpoint or nearest, but got foo"):
        gj.quantile(m, 0.5, interpolation="foo")
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        gj.topk(gj.tensor(X), 10)
    with pytest.raises(RuntimeError, match="kthvalue\\(\\): selected number k out of range"):
        gj.kthvalue(gj.tensor(X), 0)


def test_gradients_as_pytorch():
    a = gj.tensor([3.0, 1.0, 2.0, 1.0], requires_grad=True)
    values = gj.sort(a).values
    assert type(values.grad_fn).__name__ == "SortBackward0"
    (values * gj.arange(4.0)).sum().backward()
    assert a.grad.tolist() == [3.0, 0.0, 2.0, 1.0]
    b = gj.tensor([3.0, 1.0, 2.0, 1.0, 4.0], requires_grad=True)
    gj.quantile(b, gj.tensor([0.3, 0.5])).sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), [0.0, 0.0, 1.2000000476837158,
                                                0.7999999523162842, 0.0], rtol=1e-6)
    b.grad = None
    gj.median(b).backward()
    assert b.grad.tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    c = gj.tensor([1.0, 2.0, 2.0, 1.0], requires_grad=True)
    gj.median(c).backward()                    # shared by the elements equal to the median
    assert c.grad.tolist() == [0.5, 0.0, 0.0, 0.5]
    assert int(gj.median(c.detach(), 0).indices) == 3


# ---- random shapes against NumPy, imperative against jit ----------------------------------

SHAPES = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)


def _both(fn, x):
    eager = np.asarray(fn(gj.tensor(x)))
    np.testing.assert_array_equal(eager, np.asarray(gj.jit(fn)(x)))
    return eager


@settings(max_examples=30, deadline=None)
@given(shape=SHAPES, axis=st.integers(0, 2), seed=st.integers(0, 999),
       ties=st.booleans(), nans=st.booleans())
def test_sort_matches_numpy(shape, axis, seed, ties, nans):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if ties:
        x = np.round(x)
    if nans:
        x[rng.random(shape) < 0.2] = np.nan
    axis = axis % len(shape)
    _same(_both(lambda v: gj.sort(v, axis).values, x), np.sort(x, axis))
    _same(_both(lambda v: gj.argsort(v, axis), x), np.argsort(x, axis, kind="stable"))
    _same(_both(lambda v: gj.sort(v, axis=None), x), np.sort(x, None))
    if not nans:
        _same(_both(lambda v: gj.median(v, axis=axis), x), np.median(x, axis))
        np.testing.assert_allclose(_both(lambda v: gj.quantile(v, [0.1, 0.75], axis=axis), x),
                                   np.quantile(x, [0.1, 0.75], axis=axis), rtol=1e-12)
    np.testing.assert_allclose(_both(lambda v: gj.nanquantile(v, 0.3, axis=axis), x),
                               np.nanquantile(x, 0.3, axis=axis) if not np.isnan(x).all(
                                   axis=axis).any() else _nanq(x, 0.3, axis), rtol=1e-12)


def _nanq(x, q, axis):
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        return np.nanquantile(x, q, axis=axis)


def test_descending_sort_is_stable_and_large_rows_are_sorted():
    x = np.round(np.random.default_rng(0).standard_normal(5000) * 3)
    down = gj.sort(gj.tensor(x), descending=True)
    order = np.asarray(down.indices)
    assert (np.diff(np.asarray(down.values)) <= 0).all()
    same = np.diff(np.asarray(down.values)) == 0
    assert (np.diff(order)[same] > 0).all()             # ties keep their index order
    _same(gj.jit(lambda v: gj.sort(v).values)(x), np.sort(x))


def test_vmap_and_grad_through_topk():
    xs = np.random.default_rng(1).standard_normal((3, 6))
    batched = np.asarray(gj.vmap(lambda v: gj.topk(v, 2).values)(xs))
    _same(batched, -np.sort(-xs, 1)[:, :2])
    g = np.asarray(gj.grad(lambda v: gj.topk(v, 2).values.sum())(xs[0]))
    want = np.zeros(6)
    want[np.argsort(-xs[0])[:2]] = 1.0
    _same(g, want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int32])
@pytest.mark.parametrize("descending", [False, True])
def test_long_rows_radix_path_matches_a_stable_reference(dtype, descending):
    """Rows of >= 256 take the radix sort: NaN, infinities, signed zeros, integer extremes
    and ties must come out as the stable comparison sort orders them."""
    rng = np.random.default_rng(3)
    x = np.round(rng.standard_normal((2, 700)) * 4).astype(dtype)
    if x.dtype.kind == "f":
        x[0, :6] = [np.nan, -np.inf, np.inf, -0.0, 0.0, np.nan]
    else:
        x[0, :2] = [np.iinfo(dtype).min, np.iinfo(dtype).max]
    got = gj.sort(gj.tensor(x), 1, descending=descending)
    if descending:      # stable from the largest, NaN first: sort the reversed row's order
        keys = np.where(np.isnan(x), np.inf, x) if x.dtype.kind == "f" else x
        order = np.stack([sorted(range(700), key=lambda j: (
            0 if x.dtype.kind == "f" and np.isnan(r[j]) else 1, -float(k[j]), j))
            for r, k in zip(x, keys)])
    else:
        order = np.argsort(x, 1, kind="stable")
    _same(got.indices, order)
    _same(got.values, np.take_along_axis(x, order, 1))
