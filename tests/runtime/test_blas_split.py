"""Exact gemm splits (runtime.blas_split): on one thread a split product is one BLAS call,
with the same bits as its blocks on several threads, and as NumPy's own matmul."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import runtime
import codegen.gemm_split as gemm_split_module
from codegen import gemm_tiles
from codegen.gemm_split import GEMM_SPLIT_MIN_MACS, gemm_split
from runtime import blas, blas_split, disk_cache, threads
from tests.codegen.test_perf_gemm import dot_fn

pytestmark = pytest.mark.skipif(not runtime.externals().gemm, reason="no BLAS found in NumPy")


@pytest.fixture(autouse=True)
def default_threads():
    yield
    threads.set_num_threads(None)


def exact_or_skip(dtype):
    threads.set_num_threads(1)        # (probed only for kernels on one thread)
    step = blas_split.exact_rows(dtype)
    if step is None:
        pytest.skip("this BLAS has no exact row step")
    return step


def test_threshold_is_codegens():
    assert blas_split.SPLIT_MIN_MACS == GEMM_SPLIT_MIN_MACS


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_probed_step_is_the_smallest_that_passes_every_check(dtype):
    step = exact_or_skip(dtype)
    found = blas.binding()
    assert all(blas_split._exact(found, dtype, step, *c) for c in blas_split.checks(step))
    for smaller in blas_split.CANDIDATES[:blas_split.CANDIDATES.index(step)]:
        assert not all(blas_split._exact(found, dtype, smaller, *c)
                       for c in blas_split.checks(smaller))


def test_probe_blocks_are_the_size_exact_splits_use():
    assert blas_split.EXACT_BLOCK_MIN_MACS == gemm_split_module.EXACT_BLOCK_MIN_MACS
    for step in blas_split.CANDIDATES:
        for (_, extra, n, k), _, _ in blas_split.checks(step):
            assert 0 < extra < step and extra * n * k >= blas_split.EXACT_BLOCK_MIN_MACS


@pytest.mark.parametrize("ta,tb", list(itertools.product((0, 1), (0, 1))))
def test_probed_step_holds_at_the_mlp_size(ta, tb):
    """Blocks of a (256 x 256 x 784) product on multiples of the step, every one (the last
    too) as large as an exact split's (codegen.gemm_split), are the whole product's bits
    (the probe uses other shapes). Smaller blocks are not: OpenBLAS's SkylakeX build gives
    a last block of 4 rows (0.8M multiply-adds) to its small-matrix kernels."""
    step = exact_or_skip("f32")
    m, n, k = 256, 256, 784
    big = [rows for rows in range(step, m, step)
           if (m - (m - 1) // rows * rows) * n * k >= blas_split.EXACT_BLOCK_MIN_MACS]
    assert big
    rng = np.random.default_rng(ta * 2 + tb)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    flags = [blas.TRANS if ta else blas.NO_TRANS, blas.TRANS if tb else blas.NO_TRANS]
    found = blas.binding()
    whole = np.zeros((m, n), np.float32)
    blas._call(found, "s", *flags, m, n, k, a, a.shape[1], b, b.shape[1], whole, n)
    for rows in big[:6]:
        parts = np.zeros((m, n), np.float32)
        for start in range(0, m, rows):
            a_rows = a[:, start:] if ta else a[start:]
            blas._call(found, "s", *flags, min(rows, m - start), n, k, a_rows, a.shape[1],
                       b, b.shape[1], parts[start:], n)
        assert parts.tobytes() == whole.tobytes(), rows


# the MLP 784-256-10 step's two big products: x @ w1.T, and g.T @ x for w1's gradient
MLP_PRODUCTS = {"x_w1t": ((256, 784), (256, 784), ((1,), (1,))),
                "gt_x": ((256, 256), (256, 784), ((0,), (0,)))}


@pytest.mark.parametrize("name", sorted(MLP_PRODUCTS))
def test_split_product_is_numpys_bits_on_one_and_two_threads(name, monkeypatch):
    """(On the BLAS: the MLP's products call codegen.gemm_pack's function otherwise,
    tests/codegen/test_gemm_packed.py.)"""
    monkeypatch.setattr(gemm_tiles, "fits", lambda *a: False)
    exact_or_skip("f32")
    xs, ys, contract = MLP_PRODUCTS[name]
    fn = dot_fn(xs, ys, contract, dtype="f32")
    exe = runtime.compile(fn)
    text = exe.llvm_ir
    assert ".gemm_task" in text and 'call void @"gj.parallel_for"' in text
    rng = np.random.default_rng(1)
    x, y = (rng.standard_normal(s).astype(np.float32) for s in (xs, ys))
    want = x @ y.T if contract == ((1,), (1,)) else x.T @ y    # one sgemm call in NumPy
    for n in (1, 2):
        threads.set_num_threads(n)
        assert exe(x, y)[0].tobytes() == want.tobytes(), n


@settings(max_examples=150, deadline=None)
@given(batch=st.integers(1, 8), m=st.integers(1, 3000), n=st.integers(1, 3000),
       k=st.integers(1, 3000), step=st.sampled_from(blas_split.CANDIDATES))
def test_exact_plan_blocks_rows_on_the_step(batch, m, n, k, step):
    s = gemm_split(batch, m, n, k, step)
    assert (s is None) == (gemm_split(batch, m, n, k) is None)
    if s is None or not s.exact:
        return
    if s.blocks == 1:                  # whole batch elements: exact whatever the BLAS
        return
    assert s.axis == "m" and s.rows % step == 0 and (s.blocks - 1) * s.rows < m <= \
        s.blocks * s.rows
    assert (m - (s.blocks - 1) * s.rows) * n * k >= gemm_split_module.EXACT_BLOCK_MIN_MACS


def test_cache_key_names_the_step_only_for_split_products():
    small = dot_fn((40, 30), (30, 20), ((1,), (0,)))
    big = dot_fn((256, 784), (256, 784), ((1,), (1,)), dtype="f32")
    assert "rows=" not in disk_cache.lowering_options(False, True, small)
    tag = disk_cache.lowering_options(False, True, big)
    assert tag.endswith(f" rows=f32:{blas_split.exact_rows('f32')}")


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_probe_operands_round_when_summed_in_another_order(dtype):
    # 24-bit operands made f64 products exact and their sums nearly so: a dgemm that sums
    # row blocks in another order passed the probe (SkylakeX, OpenBLAS 0.3.31) and then
    # differed on real data. The operands must use the whole significand.
    np_dtype = blas_split._DTYPES[dtype][1]
    data = blas_split._data(dtype, 4096)
    assert data.dtype == np_dtype and np.all(np.abs(data) <= 0.5)
    products = data[:2048] * data[2048:]
    forward, backward = np_dtype(0), np_dtype(0)
    for p in products:
        forward += p
    for p in products[::-1]:
        backward += p
    assert forward != backward
    exact = products.astype(np.longdouble) == (data[:2048].astype(np.longdouble)
                                               * data[2048:].astype(np.longdouble))
    assert not exact.all()
