"""Shapes past 2^31 / 2^32 elements index exactly (codegen's indices and offsets are i64);
shapes whose bytes overflow i64 are refused before compiling, naming the shape and line.

Nothing here allocates more than a few bytes: the big tensors are iotas and broadcast views
that the elemental emitter never materialises, read through a gather at a few indices."""
import numpy as np
import pytest

import gradjit as gj
import runtime
from codegen import lower_function
from codegen.limits import IndexRangeError
from tests.prim_samples.cases import T, make_fn


def iota_gather(shape, dim):
    """out[k] = iota(shape, dim) flattened, at idx[k]: one element computed per index."""
    n = int(np.prod(shape, dtype=object))

    def body(b, idx):
        y = b.iota(dtype="i64", shape=shape, dim=dim)
        flat = b.reshape(y, shape=(n,)) if len(shape) > 1 else y
        return [b.gather(flat, idx, axis=0)]
    return make_fn("big", [T("i64", (3,))], body)


@pytest.mark.parametrize("bounds_check", [False, True])
def test_indices_past_2_to_the_31_and_32_are_exact(bounds_check):
    n = 2 ** 32 + 5
    exe = runtime.compile(iota_gather((n,), 0), bounds_check=bounds_check)
    idx = np.array([n - 1, 2 ** 31, 2 ** 32 + 1], np.int64)
    np.testing.assert_array_equal(exe(idx)[0], idx)


def test_two_dim_linear_index_past_2_to_the_32_is_exact():
    shape = (2 ** 16, 2 ** 16 + 3)
    exe = runtime.compile(iota_gather(shape, 1))
    idx = np.array([shape[0] * shape[1] - 1, 2 ** 32 + 5, 2 ** 31 + 7], np.int64)
    np.testing.assert_array_equal(exe(idx)[0], idx % shape[1])


def test_broadcast_view_with_2_to_the_60_elements_reads_the_right_row():
    x = np.arange(4.0, dtype=np.float32)
    f = gj.jit(lambda x: gj.broadcast_to(x, (2 ** 29, 2 ** 29, 4)).reshape(-1)[2 ** 59 + 6])
    assert float(np.asarray(f(x))) == 2.0


def test_shape_whose_bytes_overflow_i64_is_refused_before_compiling():
    def f(x):
        return gj.broadcast_to(x, (2 ** 32, 2 ** 32, 4)).reshape(-1)[2 ** 62 + 1]
    with pytest.raises(IndexRangeError, match=r"f64\[4294967296,4294967296,4\].*"
                                              r"test_index_range.py:\d+.*64-bit"):
        gj.jit(f)(np.arange(4.0))


def test_refusal_names_a_region_value_too():
    big = (2 ** 61,)                        # 2^61 f32 elements: 2^63 bytes exactly

    def body(b, x):
        return [b.reduce_sum(b.broadcast_in_dim(x, shape=big, dims=()), axes=(0,))]
    fn = make_fn("edge", [T("f32", ())], body)
    with pytest.raises(IndexRangeError, match=r"f32\[2305843009213693952\]"):
        lower_function(fn)
    ok = make_fn("edge", [T("f32", ())], lambda b, x: [b.broadcast_in_dim(x, shape=(3,), dims=())])
    lower_function(ok)
