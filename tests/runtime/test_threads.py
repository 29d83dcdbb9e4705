"""Multi-threaded loop nests: bitwise the same results for every thread count, equal to the
interpreter, only for large nests, and the thread-count setting itself."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import runtime
from codegen import loops, nest_plan
from codegen.fusion import Root
from ir.interpret import interpret
from runtime import threads
from tests.prim_samples import T, make_fn
from tests.filecheck import filecheck

BIG = (1 << 17) + 4099       # chain's body costs ~30: enough work for several tasks, and not a
                             # multiple of the task size


@pytest.fixture(autouse=True)
def default_threads():
    yield
    threads.set_num_threads(None)


def chain(n: int, dt: str = "f32"):
    """sum(tanh(x*w)^2 + exp(-x*x)) and two elementwise gradients: one fused nest."""
    def body(b, x, w):
        t = b.tanh(b.mul(x, w))
        e = b.exp(b.neg(b.mul(x, x)))
        total = b.reduce_sum(b.add(b.mul(t, t), e), axes=(0,))
        return [total, b.mul(t, w), b.mul(e, x)]
    return make_fn("chain", [T(dt, (n,))] * 2, body)


def reductions_2d(rows: int, cols: int, dt: str = "f64"):
    """Reductions over the split axis (partials), over the other axis, over both; a store."""
    def body(b, x):
        y = b.sin(x)
        return [b.reduce_sum(y, axes=(0,)), b.reduce_sum(y, axes=(1,)),
                b.reduce_max(y, axes=(0, 1)), b.reduce_min(y, axes=(0,)), b.mul(y, y)]
    return make_fn("reductions_2d", [T(dt, (rows, cols))], body)


def run_with(exe, args, n_threads: int) -> list:
    threads.set_num_threads(n_threads)
    return exe(*args)


def assert_thread_count_invariant(fn, args, counts=(1, 2, 3)):
    exe = runtime.compile(fn)
    assert 'call void @"gj.parallel_for"' in exe.llvm_ir        # the test means something
    runs = [run_with(exe, args, n) for n in counts]
    for other in runs[1:]:
        for got, want in zip(other, runs[0]):
            assert got.tobytes() == want.tobytes()
    for got, want in zip(runs[0], interpret(fn, *args)):
        np.testing.assert_allclose(got, want, rtol=2e-5 if got.dtype == np.float32 else 1e-12,
                                   atol=1e-4 if got.dtype == np.float32 else 1e-9)
    return exe


def test_constants_shared_by_codegen_and_runtime_agree():
    assert threads.THREADS_OFFSET == loops.THREADS_OFFSET
    assert threads.POOL_OFFSET == loops.POOL_OFFSET
    assert 0 < threads.POOL_OFFSET < runtime.executable.HEADER_BYTES
    assert threads.MAX_THREADS == loops.MAX_THREADS
    assert 0 < threads.THREADS_OFFSET < runtime.executable.HEADER_BYTES


@pytest.mark.parametrize("dt", ["f32", "f64"])
def test_chain_is_bitwise_the_same_for_any_thread_count(dt):
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(BIG).astype(dt.replace("f", "float")) for _ in range(2)]
    exe = assert_thread_count_invariant(chain(BIG, dt), args)
    filecheck(exe.llvm_ir, """
        CHECK:      call void @"gj.parallel_for"(
        CHECK:      .task"(ptr
        CHECK:      define internal void @"gj.parallel_for"(
        CHECK:      getelementptr i8, ptr %".4", i64 16
        CHECK:      call void %
    """)
    assert "pthread_create" not in exe.llvm_ir      # the process's pool runs the tasks


def test_2d_reductions_over_and_across_the_split_axis():
    x = np.random.default_rng(1).uniform(-3, 3, (517, 300))
    assert_thread_count_invariant(reductions_2d(517, 300), [x])


def test_wide_reduction_over_the_split_axis_limits_its_tasks():
    fn = make_fn("wide", [T("f64", (70, 2500))],
                 lambda b, x: [b.reduce_sum(b.cos(x), axes=(0,)), b.reduce_max(x, axes=(1,))])
    plans = [nest_plan.ReductionPlan(Root(r), op, (70, 2500)) for op, r in _reduce_roots(fn)]
    split = nest_plan.plan_split((70, 2500), plans, cost=11)
    assert split is not None and 2 <= split.tasks < 70 // 2
    assert split.tasks * split.slot_bytes <= nest_plan.PARTIAL_BYTES
    x = np.random.default_rng(2).uniform(-3, 3, (70, 2500))
    assert_thread_count_invariant(fn, [x])


def _reduce_roots(fn):
    return [(op, op.results[0]) for op in fn.body if op.prim.name.startswith("reduce_")]


def test_leading_unit_axis_splits_the_next_axis():
    fn = make_fn("unit", [T("f32", (1, BIG))],
                 lambda b, x: [b.reduce_sum(b.exp(x), axes=(0, 1)), b.tanh(x)])
    x = np.random.default_rng(3).uniform(-2, 2, (1, BIG)).astype(np.float32)
    assert_thread_count_invariant(fn, [x])


def test_integer_reductions_split_exactly():
    n = nest_plan.PARALLEL_MIN_WORK + 4099                 # a cheap body needs more elements
    fn = make_fn("ints", [T("i64", (n,)), T("i32", (1024, 1024))],
                 lambda b, k, m: [b.reduce_sum(b.mul(k, k), axes=(0,)),
                                  b.reduce_max(m, axes=(0,)), b.reduce_sum(m, axes=(0, 1))])
    rng = np.random.default_rng(4)
    args = [rng.integers(-1000, 1000, n), rng.integers(-10**6, 10**6, (1024, 1024), dtype=np.int32)]
    exe = runtime.compile(fn)
    assert exe.llvm_ir.count('call void @"gj.parallel_for"') == 2
    want = interpret(fn, *args)
    for n in (1, 2, 4):
        for got, w in zip(run_with(exe, args, n), want):
            np.testing.assert_array_equal(got, w)


def test_small_nests_and_bounds_check_mode_stay_on_one_thread():
    small = runtime.lower(chain(nest_plan.PARALLEL_MIN_WORK // 64)).llvm_ir
    assert "pthread_create" not in small and "parallel_for" not in small
    cheap = make_fn("cheap", [T("f32", (BIG,))] * 2, lambda b, x, y: [b.add(x, y)])
    assert "parallel_for" not in runtime.lower(cheap).llvm_ir     # same size, too little work
    checked = runtime.lower(chain(BIG), bounds_check=True).llvm_ir
    assert "pthread_create" not in checked


def test_concurrent_python_threads_each_running_a_parallel_kernel():
    fn = chain(BIG)
    exe = runtime.compile(fn)
    threads.set_num_threads(2)
    rng = np.random.default_rng(5)
    inputs = [[rng.standard_normal(BIG).astype(np.float32) for _ in range(2)] for _ in range(4)]
    want = [exe(*a) for a in inputs]
    got = [None] * len(inputs)

    def work(k):
        for _ in range(3):
            got[k] = exe(*inputs[k])
    workers = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    for g, w in zip(got, want):
        for a, b in zip(g, w):
            assert a.tobytes() == b.tobytes()


def test_set_num_threads_validates_and_resets():
    threads.set_num_threads(3)
    assert threads.num_threads() == 3
    threads.set_num_threads(1000)
    assert threads.num_threads() == threads.MAX_THREADS
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="positive integer"):
            threads.set_num_threads(bad)
    threads.set_num_threads(None)
    assert threads.num_threads() == threads.default_num_threads()


def test_environment_variable_sets_the_default(gradjit_env):
    gradjit_env("GRADJIT_NUM_THREADS", "3")
    assert threads.default_num_threads() == 3
    gradjit_env("GRADJIT_NUM_THREADS", "")
    assert threads.default_num_threads() >= 1
    for bad in ("0", "two", "-4"):
        gradjit_env("GRADJIT_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="GRADJIT_NUM_THREADS"):
            threads.default_num_threads()


def test_a_new_thread_count_reaches_existing_executables():
    exe = runtime.compile(chain(BIG))
    x = np.ones(BIG, np.float32)
    for n in (1, 2, 1):
        threads.set_num_threads(n)
        exe(x, x)
        header = exe._shared_ws if exe._shared_ws is not None else exe._pool[-1]
        offset = threads.THREADS_OFFSET
        assert header[offset:offset + 8].view(np.int64)[0] == n


SCRIPT = """
import numpy as np, runtime
from tests.runtime.test_threads import chain, BIG
from runtime import threads
x = np.random.default_rng(0).standard_normal(BIG).astype(np.float32)
outs = runtime.compile(chain(BIG))(x, x)
print(threads.num_threads(), sum(hash(o.tobytes()) for o in outs))
"""


def test_gradjit_num_threads_in_a_fresh_process():
    results = []
    for n in ("1", "2"):
        env = dict(os.environ, GRADJIT_NUM_THREADS=n, PYTHONHASHSEED="0")
        out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                             text=True, check=True, cwd=os.path.dirname(os.path.dirname(
                                 os.path.dirname(os.path.abspath(__file__)))))
        count, digest = out.stdout.split()
        assert count == n
        results.append(digest)
    assert results[0] == results[1]


def test_a_new_thread_count_reaches_profiled_copies():
    """gj.profile's instrumented copy keeps workspaces of its own: after set_num_threads they
    were kept with the old header, so a profile measured the old thread count."""
    from runtime import pool, profile
    exe = runtime.compile(chain(BIG))
    x = np.linspace(-2, 2, BIG, dtype=np.float32)
    want = exe(x, x)
    for n in (1, 2, 1):
        threads.set_num_threads(n)
        before = pool.stats()
        with profile.profile():
            got = exe(x, x)
        after = pool.stats()
        ws = profile._instrumented[exe].workspaces[threading.get_ident()]
        offset = threads.THREADS_OFFSET
        assert ws[offset:offset + 8].view(np.int64)[0] == n
        entered = (after["jobs"] + after["inline_jobs"]) - (before["jobs"] + before["inline_jobs"])
        assert entered == (1 if n > 1 and pool.cores() > 1 else 0)   # the pool was asked or not
        for g, w in zip(got, want):
            assert g.tobytes() == w.tobytes()
