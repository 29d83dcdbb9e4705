"""The followed read's own parts (tracer/step_read.py): the kept program called without
Executable's argument checks (its outputs read-only), the in-place roots found from the
tape's codes, and every case they refuse falling back with the same values."""
import math
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
import runtime
from runtime.executable import Executable
from tests.api.capture_check import assert_bitwise, plain_capture, run_off_and_on  # noqa: F401
from tests.prim_samples import T, make_fn
from tracer import run_programs, step_capture, step_read, step_read_code, step_tape
from tracer import tensor as tensor_module
from tracer.step_tape import tls

pytestmark = pytest.mark.usefixtures("plain_capture")    # capture reset around each test


@pytest.fixture(autouse=True)
def pin_soon(monkeypatch):
    monkeypatch.setattr(step_capture, "PIN_AFTER", 20)   # both kept programs in one loop


def poly(steps: int, n: int = 2000, dtype=gj.float32, lr: float = 1e-6, each=None,
         x=None) -> list:
    """benchmarks.imperative_steps' poly_tensor step (polynomial_tensor.py with positional
    matmul); each(t, loss) runs before step t's read."""
    if x is None:
        x = gj.linspace(-math.pi, math.pi, n, dtype=dtype)
    y = gj.sin(x)
    state = [gj.tensor(v, dtype=dtype) for v in np.random.default_rng(1).standard_normal(4)]
    out = []
    for t in range(steps):
        a, b, c, d = state
        y_pred = a + (b * x) + (c * x.pow(2)) + (d * x.pow(3))
        loss = (y_pred - y).pow(2).sum()
        if each is not None:
            each(t, loss)
        out.append(loss.item())
        grad_y_pred = -2.0 * (y - y_pred)
        grads = [grad_y_pred.sum(), gj.matmul(grad_y_pred, x).sum(),
                 gj.matmul(grad_y_pred, x.pow(2)).sum(), gj.matmul(grad_y_pred, x.pow(3)).sum()]
        for p, g in zip(state, grads):
            p -= lr * g
    return out + [p.numpy().copy() for p in state]


def last_tape(kept: list):
    """each() for poly keeping the tape being followed (the read after the loop ends it)."""
    def each(t, loss):
        s = tls.s
        if s is not None and s.tape is not None:
            kept[:] = [s.tape]
    return each


def test_followed_reads_call_the_kept_program_without_its_checks():
    before = step_read.STATS["direct"]
    tapes = []
    on, delta, off = run_off_and_on(poly, 60, each=last_tape(tapes))
    assert_bitwise(on, off)
    assert delta["tapes"] == 1 and delta["breaks"] == 1     # (the read after the loop)
    assert delta["pinned"] > 0 and delta["reads"] > delta["pinned"]
    assert step_read.STATS["direct"] - before == delta["reads"]
    tape = tapes[0]
    assert isinstance(tape.exe, step_read.KeptRead)
    assert tape.exe.exe is run_programs._EXECUTABLES[tape.fn]
    assert tape.pinned[4].exe is run_programs._EXECUTABLES[tape.pinned[0]]


def test_a_wrapped_run_function_sees_every_read(monkeypatch):
    """Tests wrap tensor.run_function to count programs: then no read calls past it."""
    seen = []

    def counting(fn, arrays):
        seen.append(fn)
        return run_programs.run_function(fn, arrays)

    off = poly(40)
    step_capture.reset()
    monkeypatch.setattr(tensor_module, "run_function", counting)
    before = dict(step_capture.STATS)
    direct = step_read.STATS["direct"]
    tapes = []
    on = poly(40, each=last_tape(tapes))
    assert_bitwise(on, off)
    assert step_capture.STATS["reads"] - before["reads"] >= 35
    assert step_read.STATS["direct"] == direct
    assert len(seen) >= 40
    assert tapes[0].exe is None and not tapes[0].pinned[4]


def test_a_profiling_session_sees_every_read(monkeypatch):
    """runtime/profile.py swaps Executable.run: the kept program is then called through it."""
    calls = []
    run = Executable.run

    def profiled(self, arrays):
        calls.append(self)
        return run(self, arrays)

    off = poly(40)
    step_capture.reset()
    monkeypatch.setattr(Executable, "run", profiled)
    direct = step_read.STATS["direct"]
    before = step_capture.STATS["reads"]
    tapes = []
    on = poly(40, each=last_tape(tapes))
    assert_bitwise(on, off)
    assert step_read.STATS["direct"] == direct
    assert step_capture.STATS["reads"] - before >= 35
    assert len(calls) >= 40 and isinstance(tapes[0].exe, step_read.KeptRead)


def test_the_tapes_roots_are_updated_pendings_list():
    """Before each read from the tape: step_read.tape_roots gives what pending +
    tensor.updated_pending gives (the general path's list)."""
    got = []

    def compare(t, loss):
        s = tls.s
        tape = s.tape if s is not None else None
        if tape is None or s.events is not None:
            return
        pending = [loss._expr]
        checks = tape.root_checks
        roots = step_read.tape_roots(pending, checks, len(checks) - tape.held, s.outs,
                                     s.prev_outs)
        listed = pending + tensor_module.updated_pending(pending)
        assert roots is not None and len(roots) == len(listed) == 5
        assert all(a is b for a, b in zip(roots, listed))
        got.append(t)

    on, _, off = run_off_and_on(poly, 30, each=compare)
    assert_bitwise(on, off)
    assert len(got) >= 20


@pytest.mark.parametrize("extra", ["dead", "settled", "other"])
def test_other_in_place_entries_take_the_general_list(extra):
    """An entry of tensor.updated_tensors() that is not the tape's (a dead tensor, one computed
    since, another pending tensor updated in place outside the step's events: the last
    spoils the cycle) is listed (and pruned) by updated_pending: values as capture off."""
    keep = []
    before = dict(tensor_module.updated_tensors())        # (an earlier test's bare `zero_()`s stay)

    def inject(t, loss):
        if t != 25:
            return
        z = gj.ones(3)
        z -= 1.0                                 # (an in-place update: noted)
        if extra == "dead":
            del z
        elif extra == "settled":
            z.numpy()
            keep.append(z)
        else:
            keep.append(z)

    on, delta, off = run_off_and_on(poly, 40, each=inject)
    assert_bitwise(on, off)
    assert delta["reads"] >= 30
    assert not any(ref() is not None and ref()._expr.data is None
                   for key, ref in tensor_module.updated_tensors().items()
                   if before.get(key) is not ref)


def test_run_read_only_equals_the_checked_call():
    small = runtime.compile(make_fn("scaled", [T("f32", (2, 3)), T("f32", ())],
                                    lambda b, x, k: [b.mul(x, b.broadcast_in_dim(
                                        k, shape=(2, 3), dims=()))]))
    big = runtime.compile(make_fn("big", [T("f32", (512, 1024))],
                                  lambda b, x: [b.add(x, x)]))
    rng = np.random.default_rng(0)
    for exe, args in ((small, [rng.standard_normal((2, 3)).astype(np.float32),
                               np.array(1.5, np.float32)]),
                      (big, [rng.standard_normal((512, 1024)).astype(np.float32)])):
        for _ in range(3):                       # (the builtin made once, then reused)
            got = exe.run_read_only(exe.check_args(args))
            want = exe(*args)
            assert_bitwise(got, want)
            assert all(not a.flags.writeable and a.flags.c_contiguous for a in got)
            assert all(a.flags.writeable for a in want)


def test_a_kept_read_converts_arguments_it_cannot_take_as_they_are():
    exe = runtime.compile(make_fn("twice", [T("f32", (4, 3))], lambda b, x: [b.add(x, x)]))
    kept = step_read.KeptRead(exe, tensor_module.run_function)
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    direct = step_read.STATS["direct"]
    for a in (np.asfortranarray(x), x.astype(np.float64), x.T.copy().T):
        (out,) = kept([a])
        np.testing.assert_array_equal(out, x + x)
        assert out.dtype == np.float32 and not out.flags.writeable
    assert step_read.STATS["direct"] == direct
    (out,) = kept([x])
    assert step_read.STATS["direct"] == direct + 1
    np.testing.assert_array_equal(out, x + x)
    with pytest.raises(ValueError, match="shape"):
        kept([np.zeros((3, 4), np.float32)])


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 3000), f64=st.booleans(), steps=st.integers(25, 45))
def test_random_sizes_follow_bitwise(n, f64, steps):
    step_capture.reset()
    on, delta, off = run_off_and_on(poly, steps, n=n, dtype=gj.float64 if f64 else gj.float32)
    assert_bitwise(on, off)
    assert delta["reads"] >= steps - 5


def test_results_of_old_steps_and_read_twice_stay_right():
    """Results handed out by earlier reads are never written again (fresh outputs each read)."""
    held = []

    def keep(t, loss):
        held.append(loss)

    on, _, off = run_off_and_on(poly, 40, each=keep)
    assert_bitwise(on, off)
    arrays = [h._expr.data for h in held[40:]]           # (capture on's)
    assert all(a is not None and not a.flags.writeable for a in arrays)
    assert len({id(a) for a in arrays}) == len(arrays)
    assert [float(a) for a in arrays] == on[:40]


def written_and_generic(loop, *args, **kw) -> tuple:
    """(loop's values with the read's Python written, the written reads taken, the capture
    counters' change; the same with step_tape.WRITE off; capture off's values)."""
    runs = []
    for write in (True, False):
        step_tape.WRITE = write
        try:
            written = step_read_code.STATS["reads"]
            on, delta, off = run_off_and_on(loop, *args, **kw)
        finally:
            step_tape.WRITE = True
        runs.append((on, step_read_code.STATS["reads"] - written, delta))
    return runs[0], runs[1], off


def test_the_written_read_takes_the_reads_with_the_generic_ones_values_and_counts():
    (on, taken, delta), (generic, none, generic_delta), off = written_and_generic(poly, 80)
    assert_bitwise(on, off)
    assert_bitwise(generic, off)
    assert none == 0
    # all but the reads before the events are written (WRITE_AFTER) and one per state
    # change (learnt while the pinned values wait, then pinned)
    assert taken >= delta["reads"] - step_tape.WRITE_AFTER - 4
    assert delta == generic_delta            # the same reads, pinned ones, calls, breaks


@pytest.mark.parametrize("pin_once", [True, False])
def test_the_written_read_counts_the_pins_wait_down(monkeypatch, pin_once):
    monkeypatch.setattr(step_capture, "PIN_ONCE", pin_once)
    tapes = []
    (on, taken, delta), (_, _, generic_delta), off = written_and_generic(
        poly, 70, each=last_tape(tapes))
    assert_bitwise(on, off)
    assert taken > 30
    assert delta == generic_delta
    assert (delta["pinned"] == delta["reads"] - step_capture.PIN_AFTER) is pin_once
    assert (delta["pinned"] == 0) is not pin_once


@pytest.mark.parametrize("at", [12, 30])
def test_a_write_behind_the_pin_is_seen_by_the_written_read(at):
    """x over NumPy memory made writable, written and made read-only again between two
    reads, while the pinned values wait (at 12) or once they are computed (at 30)."""
    def loop(steps):
        arr = np.linspace(-1.0, 1.0, 64).astype(np.float32)
        arr.flags.writeable = False
        x = gj.from_numpy(arr)

        def change(t, loss):
            if t == at:
                arr.flags.writeable = True
                arr[3] = 0.75
                arr.flags.writeable = False
        return poly(steps, x=x, lr=1e-3, each=change)
    (on, taken, delta), (generic, _, generic_delta), off = written_and_generic(loop, 45)
    assert_bitwise(on, off)
    assert_bitwise(generic, off)
    assert taken > 10 and delta == generic_delta
    if at < step_capture.PIN_AFTER:          # (computed from the bytes written)
        assert delta["pinned"] == delta["reads"] - step_capture.PIN_AFTER
    else:                                    # (stale from then on: the learnt program)
        assert 0 < delta["pinned"] < delta["reads"] - step_capture.PIN_AFTER


def test_threads_each_running_a_loop_get_its_values():
    """Two threads, each its own loop and capture state, reading one at a time under
    pending_expr.LOCK: each thread's values are those of the loop run alone. (A read
    computes every thread's pending in-place updates, tensor.updated_pending, so their
    reads are of other roots than their tapes' and fall back, written read or not.)"""
    alone = poly(50)
    step_capture.reset()
    got = [None, None]

    def run(i):
        got[i] = poly(50)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert_bitwise(got[0], alone)
    assert_bitwise(got[1], alone)


def test_verify_reads_take_the_generic_path_with_the_same_values():
    step_capture.VERIFY = True               # (each read also walks: never the written one)
    taken = step_read_code.STATS["reads"]
    on, delta, off = run_off_and_on(poly, 40)
    assert_bitwise(on, off)
    assert delta["reads"] > 30 and step_read_code.STATS["reads"] == taken
