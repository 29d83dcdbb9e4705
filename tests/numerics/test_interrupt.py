"""Ctrl-C stops an infinite native while_loop: the kernel polls a flag word that a SIGINT
handler sets, leaves the loop, and the runtime raises KeyboardInterrupt. Before, the loop ran
with the GIL released and never looked back: SIGINT was noted and never acted on."""
import gc
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import gradjit as gj
from runtime import engine, interrupt

CHILD = textwrap.dedent("""
    import signal
    import sys
    import numpy as np
    # as in an interactive Python: a suite started in the background by a non-interactive
    # shell has SIGINT ignored, which children inherit (and SIG_IGN is honoured: no Ctrl-C)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import gradjit as gj

    def count(limit, x):
        def cond(c):
            return c[0] < limit
        def body(c):
            return (c[0] + 1.0, gj.sin(c[1]) * 0.5 + c[1])
        return gj.while_loop(cond, body, (gj.zeros((), dtype=gj.float64), x))

    f = gj.jit(count)
    f(np.float64(3.0), np.ones(8))                  # compiled, and finite
    print("ready", flush=True)
    try:
        f(np.float64(np.inf), np.ones(8))           # runs forever
    except KeyboardInterrupt as e:
        print("interrupted:", type(e).__name__, flush=True)
        sys.exit(3)
    print("returned", flush=True)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaction layout: Linux")
@pytest.mark.parametrize("threads", ["1", "2"])
def test_sigint_interrupts_an_infinite_while_loop(tmp_path, threads):
    env = dict(os.environ, GRADJIT_CACHE_DIR=str(tmp_path), GRADJIT_NUM_THREADS=threads,
               PYTHONPATH=os.getcwd())
    env.pop("GRADJIT_BACKEND", None)
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        time.sleep(0.5)                             # well inside the infinite call
        assert child.poll() is None
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 3, (out, err)
    assert "interrupted: KeyboardInterrupt" in out


def test_a_handler_that_does_not_raise_still_stops_the_call():
    """A SIGINT handler of the user's that returns: the loop's results are incomplete, so the
    call raises KeyboardInterrupt anyway; the handler ran once."""
    seen = []
    g = gj.jit(lambda limit, x: gj.while_loop(lambda c: c < limit, lambda c: c + 1.0, x))
    assert float(np.asarray(g(np.float64(5.0), np.float64(0.0)))) == 5.0     # compiled
    old = signal.signal(signal.SIGINT, lambda *_: seen.append(1))
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt, match="interrupted by SIGINT"):
            g(np.float64(np.inf), np.float64(0.0))
        timer.join()
        assert seen == [1]
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, old)


def test_finite_while_loops_are_unaffected_and_flag_is_cleared():
    interrupt.FLAG.value = 1                        # a stale flag from an earlier signal
    out = gj.jit(lambda x: gj.while_loop(lambda c: c < 10.0, lambda c: c + 1.0, x))(
        np.float64(0.0))
    assert float(np.asarray(out)) == 10.0
    assert interrupt.FLAG.value == 0


def test_the_while_loop_polls_the_flag_in_llvm_ir():
    f = gj.jit(lambda x: gj.while_loop(lambda c: c < 10.0, lambda c: c + 1.0, x))
    text = f.lower(np.float64(0.0)).llvm_ir
    assert re.search(r"load atomic i32, \S+ @\"?gradjit_interrupt_flag\"? monotonic", text)


def test_the_handler_survives_a_replaced_engine():
    """fresh_execution_engine drops the process's Engine (and, once garbage, its code): the
    SIGINT handler compiled there must stay callable (it segfaulted the suite)."""
    seen = []
    old = signal.signal(signal.SIGINT, lambda *_: seen.append(1))
    try:
        if not interrupt.arm():
            pytest.skip("no SIGINT handler of ours on this platform")
        engine.fresh_execution_engine()
        gc.collect()
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100):                    # Python runs its handler between bytecodes
            if seen:
                break
            time.sleep(0.01)
        assert seen == [1] and interrupt.FLAG.value == 1
    finally:
        interrupt.FLAG.value = 0
        signal.signal(signal.SIGINT, old)
