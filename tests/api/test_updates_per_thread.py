"""The pending in-place updates (tensor.updated_tensors(): `w -= lr * g` whose new value is
computed with the next read) are per thread. One dict shared by all threads listed each
thread's updates in the other's reads: the values stayed right, but no read matched its
captured tape, so neither thread followed one (every step recorded and compiled its read
again), and a thread could compute the other's updates."""
import threading

import numpy as np
import pytest

from tests.api.capture_check import assert_bitwise, plain_capture  # noqa: F401
from tests.api.test_step_capture_read import poly
from tracer import tensor as tensor_module
from tracer.step_tape import tls

pytestmark = pytest.mark.usefixtures("plain_capture")    # capture reset around each test

STEPS = 60


def _run_in_thread(results: dict, name: str, start: threading.Barrier):
    followed = []

    def each(t, loss):
        s = tls.s                                   # (this thread's step capture)
        followed.append(s is not None and s.tape is not None)
    start.wait()
    out = poly(STEPS, each=each)
    results[name] = (out, followed)


def test_two_threads_running_update_loops_each_follow_their_tape_bitwise():
    alone = poly(STEPS)
    results, start = {}, threading.Barrier(2)
    threads = [threading.Thread(target=_run_in_thread, args=(results, n, start))
               for n in ("a", "b")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=600)
    assert sorted(results) == ["a", "b"]
    for name in "ab":
        out, followed = results[name]
        assert_bitwise(out, alone)
        # the tape is followed in the loop's second half, in both threads at once
        assert all(followed[STEPS // 2:]), (name, followed)


def test_a_threads_updates_are_not_listed_in_another_threads_read():
    w = tensor_module.tensor_from_array(np.ones(3, np.float32))
    w.mul_(2.0)                                       # pending, noted in this thread
    seen = {}

    def other():
        seen["updated"] = dict(tensor_module.updated_tensors())
        seen["listed"] = tensor_module.updated_pending([])
    th = threading.Thread(target=other)
    th.start()
    th.join()
    assert seen == {"updated": {}, "listed": []}
    assert [ref() for ref in tensor_module.updated_tensors().values()] == [w]
    assert w.tolist() == [2.0, 2.0, 2.0]
