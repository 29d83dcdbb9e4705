"""Large gemms split into output blocks across gradjit's threads (codegen.gemm_split).

Every layout the gemm kernel handles (transposed operands, batch axes, a transposed result)
at sizes that are split: the same as the interpreter, bitwise the same for any thread count
(the split depends on the shapes alone), and never split below the measured threshold.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import runtime
from codegen import gemm_split
from codegen.gemm_split import GEMM_ROW_ALIGN, GEMM_SPLIT_MIN_MACS, gemm_split as plan
from ir.autodiff import grad
from ir.interpret import interpret
from ir.passes import optimize
from runtime import threads
from tests.codegen.test_perf_gemm import dot_fn, mlp
from tests.prim_samples import T, make_fn

pytestmark = pytest.mark.skipif(not runtime.externals().gemm, reason="no BLAS found in NumPy")

# (x shape, y shape, contract, batch, output perm): all above GEMM_SPLIT_MIN_MACS
BIG = {
    "nn_rows": ((600, 260), (260, 120), ((1,), (0,)), ((), ()), None),
    "tn_columns": ((150, 90), (150, 1300), ((0,), (0,)), ((), ()), None),
    "nt": ((400, 200), (250, 200), ((1,), (1,)), ((), ()), None),
    "tt": ((200, 400), (250, 200), ((0,), (1,)), ((), ()), None),
    "batched": ((3, 200, 180), (3, 180, 160), ((2,), (1,)), ((0,), (0,)), None),
    "batch_inside": ((200, 3, 180), (180, 3, 160), ((2,), (0,)), ((1,), (1,)), None),
    "out_transposed": ((500, 200), (200, 180), ((1,), (0,)), ((), ()), (1, 0)),
    "out_batch_inside": ((3, 200, 180), (3, 180, 160), ((2,), (1,)), ((0,), (0,)), (1, 0, 2)),
}


@pytest.fixture(autouse=True)
def default_threads():
    yield
    threads.set_num_threads(None)


def run_counts(exe, args, counts=(1, 2, 3)):
    runs = []
    for n in counts:
        threads.set_num_threads(n)
        runs.append(exe(*args))
    return runs


def assert_split_and_invariant(fn, args, rtol):
    exe = runtime.compile(fn)
    assert ".gemm_task" in exe.llvm_ir and 'call void @"gj.parallel_for"' in exe.llvm_ir
    runs = run_counts(exe, args)
    for other in runs[1:]:
        for got, want in zip(other, runs[0]):
            assert got.tobytes() == want.tobytes()
    for got, want in zip(runs[0], interpret(fn, *args)):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("name", sorted(BIG))
def test_split_layouts_match_the_interpreter_for_any_thread_count(name, dtype):
    xs, ys, contract, batch, perm = BIG[name]
    fn = dot_fn(xs, ys, contract, batch, dtype, perm)
    rng = np.random.default_rng(len(name))
    np_dt = np.float32 if dtype == "f32" else np.float64
    args = [rng.standard_normal(xs).astype(np_dt), rng.standard_normal(ys).astype(np_dt)]
    assert_split_and_invariant(fn, args, 2e-4 if dtype == "f32" else 1e-11)


def test_mlp_gradient_with_split_products_matches_finite_differences():
    fn = optimize(grad(mlp(batch=256, inp=784, hidden=128, out=10), wrt=(0,)))
    rng = np.random.default_rng(3)
    args = [rng.standard_normal((784, 128)).astype(np.float32) * 0.05,
            np.zeros(128, np.float32), rng.standard_normal((128, 10)).astype(np.float32) * 0.1,
            rng.standard_normal((256, 784)).astype(np.float32)]
    assert_split_and_invariant(fn, args, 1e-3)
    # float64 finite differences of the same function, through the compiled kernel
    f64 = optimize(grad(_mlp64(), wrt=(0,)))
    args64 = [a.astype(np.float64) for a in args]
    exe = runtime.compile(f64)
    assert ".gemm_task" in exe.llvm_ir
    g = next(o for o in exe(*args64) if o.shape == (784, 128))    # d/dw1
    value = runtime.compile(_mlp64())
    eps = 1e-6
    for i, j in [(0, 0), (17, 5), (783, 127), (150, 64)]:
        up, down = [a.copy() for a in args64], [a.copy() for a in args64]
        up[0][i, j] += eps
        down[0][i, j] -= eps
        fd = (value(*up)[0] - value(*down)[0]) / (2 * eps)
        np.testing.assert_allclose(g[i, j], fd, rtol=1e-5, atol=1e-7)


def _mlp64():
    fn32 = mlp(batch=256, inp=784, hidden=128, out=10)
    types = [T("f64", p.shape) for p in fn32.params]

    def body(b, w1, b1, w2, x):
        pre = b.add(b.dot_general(x, w1, contract=((1,), (0,)), batch=((), ())),
                    b.broadcast_in_dim(b1, shape=(256, 128), dims=(1,)))
        h = b.max(pre, b.const(0.0, "f64", (256, 128)))
        y = b.tanh(b.dot_general(h, w2, contract=((1,), (0,)), batch=((), ())))
        return [b.reduce_sum(b.mul(y, y), axes=(0, 1))]
    return make_fn("mlp64", types, body)


def test_big_gemm_inside_a_scan_body_is_split():
    m = T("f64", (280, 280))
    step = make_fn("step", [m, m], lambda b, c, x: [
        b.tanh(b.dot_general(c, x, contract=((1,), (0,)), batch=((), ()))), c])
    fn = make_fn("f", [m, T("f64", (2, 280, 280))], lambda b, c, xs: list(
        b.emit("scan", c, xs, num_carry=1, length=2, reverse=False, regions=(step,))))
    rng = np.random.default_rng(0)
    args = [rng.standard_normal((280, 280)) * 0.06, rng.standard_normal((2, 280, 280)) * 0.06]
    assert_split_and_invariant(fn, args, 1e-11)


def test_no_split_below_the_threshold_nor_in_bounds_check_mode():
    side = int(round(GEMM_SPLIT_MIN_MACS ** (1 / 3))) - 2          # just below
    small = dot_fn((side, side), (side, side), ((1,), (0,)))
    assert side ** 3 < GEMM_SPLIT_MIN_MACS
    text = runtime.lower(small).llvm_ir
    assert "gradjit_dgemm" in text and "gemm_task" not in text and "parallel_for" not in text
    big = dot_fn((400, 260), (260, 200), ((1,), (0,)))
    assert ".gemm_task" in runtime.lower(big).llvm_ir
    assert "gemm_task" not in runtime.lower(big, bounds_check=True).llvm_ir
    assert plan(1, side, side, side) is None and plan(1, 1, 1, GEMM_SPLIT_MIN_MACS - 1) is None


@settings(max_examples=200, deadline=None)
@given(batch=st.integers(1, 50), m=st.integers(1, 3000), n=st.integers(1, 3000),
       k=st.integers(1, 3000))
def test_split_plan_covers_the_output_exactly(batch, m, n, k):
    s = plan(batch, m, n, k)
    if batch * m * n * k < GEMM_SPLIT_MIN_MACS:
        assert s is None
    if s is None:
        return
    extent = m if s.axis == "m" else n
    assert s.rows % GEMM_ROW_ALIGN == 0 and (s.blocks - 1) * s.rows < extent <= s.blocks * s.rows
    assert s.units == batch * s.blocks
    assert 2 <= s.tasks <= gemm_split.GEMM_MAX_TASKS
    assert (s.tasks - 1) * s.per_task < s.units <= s.tasks * s.per_task
    # each task has at least about GEMM_TASK_MACS of work (never a split too small to pay)
    assert s.tasks <= max(2, batch * m * n * k // gemm_split.GEMM_TASK_MACS)
    assert math.prod((batch, m, n, k)) >= GEMM_SPLIT_MIN_MACS


@settings(max_examples=12, deadline=None)
@given(m=st.integers(40, 400), n=st.integers(40, 400), k=st.integers(60, 300),
       ta=st.booleans(), batch=st.integers(1, 2))
def test_random_split_shapes_match_numpy(m, n, k, ta, batch):
    if batch * m * n * k < GEMM_SPLIT_MIN_MACS:
        k = -(-GEMM_SPLIT_MIN_MACS // (batch * m * n))
    xs = (batch, k, m) if ta else (batch, m, k)
    fn = dot_fn(xs, (batch, k, n), ((1 if ta else 2,), (1,)), ((0,), (0,)))
    rng = np.random.default_rng(m * 7 + n)
    x, y = rng.standard_normal(xs), rng.standard_normal((batch, k, n))
    exe = runtime.compile(fn)
    assert ".gemm_task" in exe.llvm_ir
    threads.set_num_threads(2)
    got = exe(x, y)[0]
    want = np.einsum("bkm,bkn->bmn" if ta else "bmk,bkn->bmn", x, y)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11 * k)
