"""The call trampolines and the thread pool built as one module (runtime/trampoline.py) when
the first kernel that needs the trampolines has tasks and the pool is wanted: one MCJIT,
one disk entry (gj_call_pool), one build. Checked in fresh processes (both are built once
per process), with no helper thread (its path is tests/runtime/test_parallel_compile.py):
which entries are written and read, that the pool runs from the shared MCJIT with results
bitwise those of one thread, and every fallback to the two separate builds."""
import json
import os
import subprocess
import sys

import pytest

from runtime import pool
from tests.runtime.fresh import ROOT

SCRIPT = r"""
import json, sys
import numpy as np
import runtime
from runtime import llvm_split, pool, threads, trampoline
from tests.runtime.test_threads import BIG, chain
llvm_split.ENABLED = False                 # no helper thread: the call's own path
mode = sys.argv[1]
if mode == "combined_fails":
    real_link = trampoline._link
    def link(text, name):
        if name == trampoline.WITH_POOL:
            raise RuntimeError("injected")
        return real_link(text, name)
    trampoline._link = link
elif mode == "adopt_fails":
    real_bind, calls = pool._bind, []
    def bind(jit):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("injected")
        return real_bind(jit)
    pool._bind = bind
threads.set_num_threads(1 if mode == "one_thread" else 2)
x = np.linspace(-1, 1, BIG).astype(np.float32)
exe = runtime.compile(chain(BIG))
out = {"trampoline": exe.has_trampoline, "pool_after_compile": pool.ready(),
       "shared_jit": pool._engine is not None and pool._engine is trampoline._state["jit"]}
got = exe(x, x)
out["pool_after_call"] = pool.ready()
out["builds"] = trampoline.builds
threads.set_num_threads(1)
out["same"] = all(a.tobytes() == b.tobytes() for a, b in zip(got, exe(x, x)))
print(json.dumps(out))
"""


def _run(mode: str, tmp_path) -> tuple[dict, str]:
    """(the script's JSON, its log lines about runtime objects) in a new process whose disk
    cache lives under tmp_path (shared by the runs of one test)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GRADJIT_") and not k.endswith("_NUM_THREADS")}
    env.update(GRADJIT_CACHE_DIR=str(tmp_path / "cache"), GRADJIT_LOG="1",
               GRADJIT_SECRET_FILE=str(tmp_path / "secret" / "key"))
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    log = " | ".join(line.removeprefix("gradjit: ") for line in out.stderr.splitlines()
                     if "for gj_" in line or "(gj_call_pool: " in line)
    return json.loads(out.stdout.strip().splitlines()[-1]), log


needs_two_cores = pytest.mark.skipif(pool.cores() < 2, reason="one core: the pool is never built")


@needs_two_cores
def test_first_kernel_with_tasks_builds_both_as_one_entry_and_the_next_process_loads_it(
        tmp_path):
    first, log1 = _run("both", tmp_path)
    assert first == {"trampoline": True, "pool_after_compile": True, "shared_jit": True,
                     "pool_after_call": True, "builds": 1, "same": True}
    assert log1 == "disk cache miss for gj_call_pool: no entry"
    second, log2 = _run("both", tmp_path)
    assert second == {**first, "builds": 0}
    assert log2 == "disk cache hit for gj_call_pool"


@needs_two_cores
def test_one_thread_builds_the_trampolines_alone(tmp_path):
    got, log = _run("one_thread", tmp_path)
    assert got == {"trampoline": True, "pool_after_compile": False, "shared_jit": False,
                   "pool_after_call": False, "builds": 1, "same": True}
    assert log == "disk cache miss for gj_call: no entry"


@needs_two_cores
def test_a_failed_combined_build_falls_back_to_two_builds(tmp_path):
    got, log = _run("combined_fails", tmp_path)
    assert got == {"trampoline": True, "pool_after_compile": False, "shared_jit": False,
                   "pool_after_call": True, "builds": 1, "same": True}
    assert log == ("trampolines and pool built apart (gj_call_pool: injected) | "
                   "disk cache miss for gj_call: no entry | "
                   "disk cache miss for gj_pool: no entry")


@needs_two_cores
def test_pool_code_that_cannot_be_bound_is_built_by_the_pool_itself(tmp_path):
    got, log = _run("adopt_fails", tmp_path)
    assert got == {"trampoline": True, "pool_after_compile": False, "shared_jit": False,
                   "pool_after_call": True, "builds": 1, "same": True}
    assert log == ("disk cache miss for gj_call_pool: no entry | "
                   "the pool's code is built on its own at its first use "
                   "(gj_call_pool: injected) | disk cache miss for gj_pool: no entry")

