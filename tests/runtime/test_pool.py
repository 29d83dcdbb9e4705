"""The process's one thread pool and the BLAS's threads: the worst case, without timing.

Oversubscription is what made a busy machine a cliff (issue 13): OpenBLAS's spinning pool
next to gradjit's threads, or more threads than cores. These tests check the conditions that
prevent it: gradjit's BLAS calls run with the BLAS's pool at one thread (asked of the library
itself, in fresh processes whose BLAS starts with 2), the pool never has more workers than
cores - 1 and never more running at once, a one-thread setting never touches the pool, and
the pool survives Python threads, nesting and fork.
"""
import ctypes
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import runtime
from runtime import blas, pool, pool_ir, threads
from tests.prim_samples import T, make_fn
from tests.runtime.test_threads import BIG, chain

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
needs_blas = pytest.mark.skipif(blas.get_num_threads() is None,
                                reason="the BLAS cannot report its thread count")


@pytest.fixture(autouse=True)
def default_threads():
    yield
    threads.set_num_threads(None)


def run_script(script: str, **env) -> str:
    full = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", script], env=full, capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[-1]


# Asks the BLAS its thread count from inside gradjit's gemm calls: the kernel calls a spy
# (declared like gradjit's own gemm, after gradjit's own declaration bound the library) that
# records blas.get_num_threads() and how many calls run at once, then calls the real sgemm.
BLAS_SCRIPT = """
import ctypes, threading, numpy as np, llvmlite.binding as llvm
import runtime
from runtime import blas, threads
from codegen import lower_function
from codegen.dots import Externals
from tests.codegen.test_perf_gemm import dot_fn
before = blas.get_num_threads()
found = blas.binding()
assert found.layout == "cblas" and found.int_bits == 64
real = blas._cfunc(found.addresses["s"], found.layout, found.int_bits, "s")
seen, running, most, lock = [], [0], [0], threading.Lock()
@blas.ctypes.CFUNCTYPE(None, *real.argtypes)
def spy(*args):
    with lock:
        running[0] += 1
        most[0] = max(most[0], running[0])
    seen.append(blas.get_num_threads())
    real(*args)
    with lock:
        running[0] -= 1
llvm.add_symbol("spy_sgemm", ctypes.cast(spy, ctypes.c_void_p).value)
spy_binding = blas.Binding(found.path, "cblas", 64, {}, {}, None)
def gemm(module, dtype):
    runtime.externals().gemm(module, dtype)        # gradjit's own: binds the library
    return blas.declare_gemm(module, "s", spy_binding, "spy_sgemm")
fn = dot_fn((400, 260), (260, 200), ((1,), (0,)), dtype="f32")
exe = runtime.build_executable(fn, lower_function(fn, externals=Externals(gemm=gemm)))
assert ".gemm_task" in exe.llvm_ir
threads.set_num_threads(8)
a, b = np.ones((400, 260), np.float32), np.ones((260, 200), np.float32)
for _ in range(5):
    assert (exe(a, b)[0] == 260).all()
after = blas.get_num_threads()
c = a @ b                                  # NumPy's own matmul shares the library
print(f"{before},{min(seen)},{max(seen)},{after},{blas.get_num_threads()},{most[0]}")
"""


@needs_blas
def test_gradjit_runs_the_blas_single_threaded_and_no_more_calls_than_cores():
    got = run_script(BLAS_SCRIPT, OPENBLAS_NUM_THREADS="2").split(",")
    before, low, high, after, numpy_after, most = map(int, got)
    assert before == 2                     # the library's own setting here
    assert low == high == after == numpy_after == 1
    assert 1 <= most <= pool.cores()       # 8 threads asked, never more calls than cores


@needs_blas
def test_blas_threads_setting_keep_and_a_number():
    assert run_script(BLAS_SCRIPT, OPENBLAS_NUM_THREADS="2",
                      GRADJIT_BLAS_THREADS="keep").split(",")[1:5] == ["2", "2", "2", "2"]
    assert run_script(BLAS_SCRIPT, OPENBLAS_NUM_THREADS="1",
                      GRADJIT_BLAS_THREADS="3").split(",")[1:5] == ["3", "3", "3", "3"]


def test_blas_threads_setting_rejects_nonsense(gradjit_env):
    gradjit_env("GRADJIT_BLAS_THREADS", "lots")
    with pytest.raises(ValueError, match="GRADJIT_BLAS_THREADS"):
        blas.apply_thread_setting()
    gradjit_env("GRADJIT_BLAS_THREADS", "0")
    with pytest.raises(ValueError, match="GRADJIT_BLAS_THREADS"):
        blas.apply_thread_setting()


def test_pool_never_has_more_workers_than_cores():
    exe = runtime.compile(chain(BIG))
    x = np.ones(BIG, np.float32)
    for n in (2, 8, threads.MAX_THREADS):
        threads.set_num_threads(n)
        exe(x, x)
    stats = pool.stats()
    cores = pool.cores()
    if cores == 1:
        assert stats["workers"] == 0
        return
    assert stats["workers"] == cores - 1        # started, and no more
    # (0 when the pool backed off on a busy machine and ran every job inline)
    assert 0 <= stats["peak_running"] <= stats["workers"]
    assert stats["jobs"] + stats["inline_jobs"] >= 3


def test_one_thread_never_uses_the_pool():
    exe = runtime.compile(chain(BIG))
    x = np.ones(BIG, np.float32)
    threads.set_num_threads(1)
    before = pool.stats()
    exe(x, x)
    ws = exe._shared_ws if exe._shared_ws is not None else exe._pool[-1]
    assert ws[threads.POOL_OFFSET:threads.POOL_OFFSET + 8].view(np.uint64)[0] == 0
    after = pool.stats()
    assert (after["jobs"], after["inline_jobs"]) == (before["jobs"], before["inline_jobs"])
    threads.set_num_threads(2)
    exe(x, x)
    ws = exe._shared_ws if exe._shared_ws is not None else exe._pool[-1]
    address = int(ws[threads.POOL_OFFSET:threads.POOL_OFFSET + 8].view(np.uint64)[0])
    assert address == (pool.run_address(2) if pool.cores() > 1 else 0)


def test_many_python_threads_and_nested_submitters_get_every_task_run():
    """Four Python threads submit at once: one gets the pool, the others run inline; every
    result is still exact (a lost or doubled task would change it)."""
    fn = make_fn("counts", [T("i64", (1 << 21,))],
                 lambda b, k: [b.reduce_sum(b.mul(k, k), axes=(0,)), b.add(k, k)])
    exe = runtime.compile(fn)
    assert 'call void @"gj.parallel_for"' in exe.llvm_ir
    threads.set_num_threads(2)
    rng = np.random.default_rng(0)
    inputs = [rng.integers(-1000, 1000, 1 << 21) for _ in range(4)]
    want = [(int((k * k).sum()), 2 * k) for k in inputs]
    bad = []

    def work(j):
        for _ in range(20):
            total, double = exe(inputs[j])
            if int(total) != want[j][0] or not np.array_equal(double, want[j][1]):
                bad.append(j)
    workers = [threading.Thread(target=work, args=(j,)) for j in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not bad


TASK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64)


def slow_worker_job():
    """Runs a 2-task job whose task on the worker sleeps 0.2 s while the submitter's waits for
    it to start; returns (tasks run, whether the worker never came)."""
    caller, started, ran, missed = threading.get_native_id(), threading.Event(), [], []

    def task(ctx, t):
        ran.append(t)
        if threading.get_native_id() != caller:
            started.set()
            time.sleep(0.2)
        elif not started.wait(10):
            missed.append(t)       # (an exception would not leave a ctypes callback)
    jobs = pool.stats()["jobs"]
    pool.run(TASK(task), 0, 2, 2)
    assert pool.stats()["jobs"] == jobs + 1
    return ran, bool(missed)


@pytest.mark.skipif(pool.cores() < 2, reason="one core: no workers")
def test_a_job_whose_worker_was_late_twice_sends_the_next_jobs_inline():
    """The worker's task sleeps 0.2 s (as if another process had its core): the submitter,
    done with its own task, waits far longer than that took; twice in a row is a retreat."""
    pool.run_address(2)
    noop = TASK(lambda ctx, t: None)
    while pool.stats()["backoff_left"] > 0:          # an earlier back-off: let it run out
        pool.run(noop, 0, 2, 2)
    for _ in range(2):
        ran, missed = slow_worker_job()
        if missed:
            pytest.skip("the worker never woke up within 10 s")
        assert sorted(ran) == [0, 1]
    stats = pool.stats()
    assert stats["backoff_left"] >= pool_ir.BACKOFF_MIN
    ran = []
    pool.run(TASK(lambda ctx, t: ran.append(t)), 0, 3, 2)
    after = pool.stats()
    assert sorted(ran) == [0, 1, 2]
    assert after["jobs"] == stats["jobs"] and after["inline_jobs"] == stats["inline_jobs"] + 1
    assert after["backoff_left"] == stats["backoff_left"] - 1


FORK_SCRIPT = """
import os, numpy as np, runtime
from runtime import threads, pool
from tests.runtime.test_threads import chain, BIG
threads.set_num_threads(2)
exe = runtime.compile(chain(BIG))
x = np.random.default_rng(0).standard_normal(BIG).astype(np.float32)
want = [o.tobytes() for o in exe(x, x)]
pid = os.fork()
if pid == 0:
    ok = [o.tobytes() for o in exe(x, x)] == want and pool.stats()["workers"] <= 1
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), [o.tobytes() for o in exe(x, x)] == want)
"""


def test_a_forked_child_starts_its_own_workers():
    out = subprocess.run([sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "True"]


def test_pool_ir_only_for_architectures_with_a_known_futex_number():
    assert pool_ir.pool_ir("x86_64") is not None and "@gj_pool_run" in pool_ir.pool_ir("x86_64")
    assert "pause" not in pool_ir.pool_ir("aarch64")
    assert pool_ir.pool_ir("riscv64") is None


POOL_CACHE_SCRIPT = """
import numpy as np
import runtime
from runtime import pool, threads
from tests.runtime.test_threads import BIG, chain
threads.set_num_threads(2)
x = np.linspace(-1, 1, BIG).astype(np.float32)
got = runtime.compile(chain(BIG))(x, x)
assert pool.stats()["workers"] == 1
print(float(np.asarray(got[0]).astype(np.float64).sum()))
"""


@pytest.mark.skipif(pool.cores() < 2, reason="one core: the pool is never compiled")
def test_pool_object_code_comes_from_the_disk_cache_and_a_bad_entry_is_rebuilt(tmp_path):
    # the script's first kernel has tasks at two threads: the pool's code is built with the
    # call trampolines, in one module (runtime/trampoline.py), stored as one entry
    name = "gj_call_pool"
    env = dict(GRADJIT_CACHE_DIR=str(tmp_path / "cache"), GRADJIT_LOG="1",
               GRADJIT_SECRET_FILE=str(tmp_path / "secret" / "key"))

    def run() -> tuple[str, str]:
        full = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
        out = subprocess.run([sys.executable, "-c", POOL_CACHE_SCRIPT], env={**full, **env},
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()[-1], " ".join(
            line for line in out.stderr.splitlines() if name in line)

    first, log1 = run()
    assert f"disk cache miss for {name}: no entry" in log1
    second, log2 = run()
    assert f"disk cache hit for {name}" in log2 and second == first
    [entry] = [p for p in (tmp_path / "cache").iterdir()
               if f'"object": "{name}"'.encode() in p.read_bytes()]
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF                    # damaged: the MAC no longer checks out
    entry.write_bytes(bytes(data))
    third, log3 = run()
    assert "unusable entry (MAC mismatch" in log3 and third == first
    fourth, log4 = run()
    assert f"disk cache hit for {name}" in log4 and fourth == first


# A kernel without tasks (no gj.parallel_for) at two threads: the pool is neither linked nor
# started, built or loaded from the disk cache; then a kernel with tasks gets it. Prints
# the state after each step, and whether the three results equal one-thread results bitwise.
NO_TASKS_SCRIPT = """
import numpy as np
import runtime
from runtime import pool, threads
from tests.prim_samples import T, make_fn
from tests.runtime.test_threads import BIG, chain
small = make_fn("small", [T("f64", (7,))], lambda b, x: [b.exp(b.mul(x, x))])
exe = runtime.compile(small)
assert runtime.uses_pool(exe.llvm_ir) == exe.uses_pool
x = np.linspace(-1, 1, 7)
got = exe(x)[0]
ws = exe._shared_ws if exe._shared_ws is not None else exe._pool[-1]
header = (int(ws[threads.THREADS_OFFSET:threads.THREADS_OFFSET + 8].view(np.int64)[0]),
          int(ws[threads.POOL_OFFSET:threads.POOL_OFFSET + 8].view(np.uint64)[0]))
state = [exe.uses_pool, header, pool._functions is None, exe.origin.split(":")[0]]
big = runtime.compile(chain(BIG))
y = np.linspace(-1, 1, BIG).astype(np.float32)
out = big(y, y)
state += [big.uses_pool, pool._functions is not None]
threads.set_num_threads(1)
same = got.tobytes() == exe(x)[0].tobytes() and all(
    a.tobytes() == b.tobytes() for a, b in zip(out, big(y, y)))
print(repr(state + [same]).replace(" ", ""))
"""


@pytest.mark.skipif(pool.cores() < 2, reason="one core: no pool at any setting")
def test_a_kernel_without_tasks_links_no_pool(tmp_path):
    env = dict(GRADJIT_NUM_THREADS="2", GRADJIT_CACHE_DIR=str(tmp_path / "cache"),
               GRADJIT_SECRET_FILE=str(tmp_path / "secret"))
    built = run_script(NO_TASKS_SCRIPT, **env)
    loaded = run_script(NO_TASKS_SCRIPT, **env)            # both kernels from the disk cache
    assert built == "[False,(2,0),True,'diskcachemiss',True,True,True]"
    assert loaded == "[False,(2,0),True,'objectcodefromthediskcache',True,True,True]"
