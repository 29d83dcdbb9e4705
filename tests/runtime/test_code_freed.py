"""Native code is freed with the last Executable that uses it (runtime/engine.py's _Jit).

MCJIT never frees what it was given, so a process whose programs change shape every step
grew without bound even with a bounded compile cache. Each compile now has an MCJIT of its
own, closed when no Executable (in the compile cache, a jitted function's signature cache, a
call plan, the user's hands) uses it any more. The main assertion is the deterministic count
of live MCJITs; the RSS bound is generous (the pass pipeline of llvmlite 0.50 itself keeps
~90 KB per optimised module, which no caller can release).
"""
import gc

import numpy as np
import pytest

import gradjit as gj
import runtime
from tests.prim_samples import T, make_fn
from tests.runtime.test_disk_cache import cache_dir  # noqa: F401  (a fixture)


def program(n: int):
    """A distinct structure per n."""
    return make_fn(f"p{n}", [T("f32", (n,))],
                   lambda b, x: [b.reduce_sum(b.tanh(b.add(x, x)), axes=(0,))])


def expected(n: int) -> float:
    return float(np.tanh(np.full(n, 2.0, np.float32)).sum())


def live() -> int:
    gc.collect()
    return runtime.create_execution_engine().live_jits()


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2 ** 20


@pytest.fixture
def small_cache(gradjit_env):
    gradjit_env("GRADJIT_MEMORY_CACHE_SIZE", "3")
    gradjit_env("GRADJIT_DISK_CACHE", "0")
    runtime.clear_cache()
    yield
    runtime.clear_cache()


def test_evicted_programs_free_their_code(small_cache):
    for n in range(50, 55):                         # warm up: imports, LLVM's start-up
        runtime.compile(program(n))
    base = live()
    rss0 = rss_mb()
    for n in range(2, 42):
        (out,) = runtime.compile(program(n))(np.ones(n, np.float32))
        assert float(out) == pytest.approx(expected(n), rel=1e-6)
    assert live() - base <= 3                       # what the compile cache still holds
    assert rss_mb() - rss0 < 40                     # 40 programs; ~5 MB measured
    runtime.clear_cache()
    assert live() <= base


def test_an_executable_held_past_eviction_keeps_its_code(small_cache):
    kept = runtime.compile(program(5))
    for n in range(6, 12):
        runtime.compile(program(n))               # evicts program(5) from the cache
    runtime.clear_cache()
    before = live()
    assert before >= 1
    np.testing.assert_allclose(kept(np.ones(5, np.float32))[0], expected(5), rtol=1e-6)
    del kept
    assert live() == before - 1


def test_the_same_structure_shares_code_while_alive(small_cache):
    a = runtime.compile(program(7))
    runtime.clear_cache()
    b = runtime.compile(program(7))                 # compiled again: the live code is reused
    assert b is not a and live() >= 1
    count = live()
    del a
    assert live() == count                          # b still uses it
    np.testing.assert_allclose(b(np.ones(7, np.float32))[0], expected(7), rtol=1e-6)


def test_code_loaded_from_the_disk_cache_is_freed_too(cache_dir, gradjit_env):  # noqa: F811
    gradjit_env("GRADJIT_MEMORY_CACHE_SIZE", "2")
    for n in range(3, 6):
        runtime.compile(program(n))                 # stored
    runtime.clear_cache()
    base = live()
    exes = [runtime.compile(program(n)) for n in range(3, 6)]
    assert all("disk cache hit" in e.origin or "disk" in e.origin for e in exes)
    for e, n in zip(exes, range(3, 6)):
        np.testing.assert_allclose(e(np.ones(n, np.float32))[0], expected(n), rtol=1e-6)
    assert live() - base == 3
    del exes, e
    runtime.clear_cache()
    assert live() <= base


def test_a_jitted_function_keeps_at_most_the_cache_size_of_signatures(small_cache):
    f = gj.jit(lambda x: (x * 2.0).tanh().sum())
    for n in range(1, 11):
        assert f(np.ones(n, np.float32)).item() == pytest.approx(expected(n), rel=1e-6)
    assert len(f.cache) == 3 and f.trace_count == 10
    assert f(np.ones(10, np.float32)).item() == pytest.approx(expected(10), rel=1e-6)
    assert f.trace_count == 10                      # still cached: the most recent
    f(np.ones(1, np.float32))                      # dropped long ago: traced again
    assert f.trace_count == 11 and len(f.cache) == 3
