"""Splitting and reducing without Ray: shard bounds and the fixed-order reductions."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.distributed.data_parallel import shard_bounds
from tracer.distributed.reduce import combine, combine_one


@given(st.integers(1, 500), st.integers(1, 16))
def test_bounds_cover_the_batch_contiguously(n, parts):
    if n < parts:
        return
    bounds = shard_bounds(n, parts)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


@settings(max_examples=50)
@given(st.integers(2, 40), st.integers(1, 6), st.sampled_from([np.float32, np.float64]))
def test_weighted_mean_of_shard_means_is_the_batch_mean(n, parts, dtype):
    if n < parts:
        return
    rng = np.random.default_rng(n * 7 + parts)
    data = rng.standard_normal((n, 3)).astype(dtype)
    bounds = shard_bounds(n, parts)
    means = [[data[lo:hi].mean(axis=0)] for lo, hi in bounds]
    sizes = [hi - lo for lo, hi in bounds]
    got = combine(means, sizes, "mean")[0]
    assert got.dtype == dtype
    np.testing.assert_allclose(got, data.astype(np.float64).mean(axis=0),
                               rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)


def test_sum_and_concat():
    parts = [np.array([1.0, 2.0], np.float32), np.array([3.0, 5.0], np.float32)]
    np.testing.assert_array_equal(combine_one(parts, [1, 1], "sum", 0), [4.0, 7.0])
    np.testing.assert_array_equal(combine_one(parts, [1, 1], "concat", 0), [1, 2, 3, 5])
    ints = [np.array(2, np.int64), np.array(3, np.int64)]
    assert combine_one(ints, [1, 1], "sum", 0) == 5
    with pytest.raises(TypeError, match="integer outputs"):
        combine_one(ints, [1, 1], "mean", 0)
    with pytest.raises(ValueError, match="concat joins per-example"):
        combine_one([np.float32(1), np.float32(2)], [1, 1], "concat", 0)

