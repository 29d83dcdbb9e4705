"""os.fork() while another thread compiles (issue 10: the child deadlocked 5 times of 5).

Everything runs in a subprocess with a timeout, so a deadlock fails the test instead of
hanging the suite; inside it, each child gets a deadline too and is killed past it."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import os, sys, threading, time
import numpy as np
import runtime
from ir.interpret import interpret
from tests.prim_samples import T, make_fn

def program(k):
    return make_fn(f"f{k}", [T("f64", (16 + k,))],
                   lambda b, x: [b.tanh(b.exp(x)), b.reduce_sum(b.log1p(b.exp(x)), axes=(0,))])

stop = threading.Event()
compiled = [0]

def churn():                        # a thread compiling new programs, in a loop
    k = 0
    while not stop.is_set():
        runtime.compile(program(k))
        compiled[0] += 1
        k += 1

threading.Thread(target=churn, daemon=True).start()
codes = []
for i, delay in enumerate(float(d) for d in sys.argv[1:]):
    time.sleep(delay)               # 0 s: forks while the thread's first compile imports codegen
    pid = os.fork()
    if pid == 0:
        fn = program(1000 + i)
        x = np.linspace(-1, 1, fn.params[0].type.shape[0])
        got = runtime.compile(fn)(x)
        ok = all(np.allclose(g, w, rtol=1e-12) for g, w in zip(got, interpret(fn, x)))
        os._exit(0 if ok else 3)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            codes.append(os.waitstatus_to_exitcode(status))
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            codes.append("deadlock")
            break
        time.sleep(0.02)
stop.set()
print(codes, compiled[0])
"""


@pytest.mark.parametrize("disk_cache", ["1", "0"])
def test_a_child_forked_while_another_thread_compiles_can_compile_and_run(tmp_path, disk_cache):
    env = dict(os.environ, GRADJIT_CACHE_DIR=str(tmp_path / "cache"), GRADJIT_DISK_CACHE=disk_cache,
               GRADJIT_SECRET_FILE=str(tmp_path / "secret"), PYTHONPATH=ROOT)
    delays = ["0", "0.05", "0.2", "0.1", "0.3"]
    try:
        out = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", SCRIPT,
                              *delays], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("the forking process itself hung")
    assert out.returncode == 0, out.stderr
    codes, compiled = out.stdout.split("]")
    assert codes + "]" == "[0, 0, 0, 0, 0]", out.stdout + out.stderr
    assert int(compiled) > 0                 # the other thread was compiling meanwhile


SWITCH_SCRIPT = r"""
import os, sys
import runtime  # noqa: F401  (registers the fork hooks)
sys.setswitchinterval(0.004)
pid = os.fork()
if pid == 0:
    os._exit(0 if sys.getswitchinterval() == 0.004 else 5)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), sys.getswitchinterval())
"""


def test_the_fork_hooks_put_the_switch_interval_back_in_parent_and_child():
    """The hooks raise the GIL's switch interval between their last check for imports and
    the fork (runtime.threads._before_fork); both sides must get the user's value back."""
    out = subprocess.run([sys.executable, "-c", SWITCH_SCRIPT], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=False,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "0.004"], out.stdout + out.stderr


def test_a_fork_waits_for_an_import_another_thread_is_about_to_take():
    """_imports_under_way sees a thread waiting for a module lock (`_blocking_on`) and the
    global import lock held, not only module locks already owned."""
    import _imp
    import threading
    from importlib import _bootstrap

    from runtime import threads
    assert not threads._imports_under_way()
    _imp.acquire_lock()
    try:
        assert threads._imports_under_way()
    finally:
        _imp.release_lock()
    other = {}
    ready, done = threading.Event(), threading.Event()

    def waiting():
        other["tid"] = threading.get_ident()
        _bootstrap._blocking_on[other["tid"]] = object()
        ready.set()
        done.wait(30)
        del _bootstrap._blocking_on[other["tid"]]

    t = threading.Thread(target=waiting)
    t.start()
    try:
        ready.wait(30)
        assert threads._imports_under_way()
    finally:
        done.set()
        t.join()
    assert not threads._imports_under_way()
