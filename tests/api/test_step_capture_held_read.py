"""The written read of a tape that computes held values along (tracer/step_read_code.py:
two_layer_net_tensor.py's `h = x.mm(w1)`, held at the read), and the in-place entries of
tensors that died inside the step (step_read.prune_dead): both used to send every read of
that loop down the generic read, the second also down tensor.updated_pending's list."""
import weakref

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.api.capture_check import assert_bitwise, plain_capture, run_off_and_on  # noqa: F401
from tests.api.test_step_capture_read import written_and_generic
from tests.api.test_step_capture_views import numpy_loop
from tracer import step_capture, step_read, step_read_code, step_tape
from tracer import tensor as tensor_module

pytestmark = pytest.mark.usefixtures("plain_capture")    # capture reset around each test

SMALL = (8, 40, 6, 3)


def _arrays(shape: tuple, dtype, seed: int) -> list:
    n, d_in, h, d_out = shape
    rng = np.random.default_rng(seed)
    np_dtype = np.float64 if dtype is gj.float64 else np.float32
    return [rng.standard_normal(s).astype(np_dtype)
            for s in ((n, d_in), (n, d_out), (d_in, h), (h, d_out))]


def step_loop(steps: int, shape=SMALL, dtype=gj.float32, seed: int = 0, lr: float = 1e-6,
              each=None, held_too: bool = True) -> list:
    """benchmarks.imperative_steps' two_layer_tensor step, a function per step: its locals
    (grad_h, updated in place by the mask fill) die at its end, before the next read.
    each(t) runs before step t's read; held_too=False drops `h` before the read."""
    x, y, w1, w2 = [gj.tensor(a, dtype=dtype) for a in _arrays(shape, dtype, seed)]

    def step(t):
        h = x.mm(w1)
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(w2)
        loss = (y_pred - y).pow(2).sum()
        mask = h < 0                     # (the mask kept: the view below may drop h)
        if not held_too:
            del h
        if each is not None:
            each(t)
        value = loss.item()
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.t().mm(grad_y_pred)
        grad_h = grad_y_pred.mm(w2.t()).clone()
        grad_h[mask] = 0
        grad_w1 = x.t().mm(grad_h)
        w1.sub_(lr * grad_w1)
        w2.sub_(lr * grad_w2)
        return value

    losses = [step(t) for t in range(steps)]
    return losses + [w1.numpy().copy(), w2.numpy().copy()]


def test_a_held_read_is_written_and_gives_the_generic_reads_values():
    (on, taken, delta), (generic, none, generic_delta), off = written_and_generic(
        step_loop, 40, shape=(64, 1000, 100, 10))
    assert_bitwise(on, off)
    assert_bitwise(generic, off)
    assert delta["tapes"] == 1 and delta["reads"] >= 35
    assert none == 0
    assert taken >= delta["reads"] - step_tape.WRITE_AFTER - 1
    assert delta == generic_delta            # the same reads, calls and breaks


def test_the_held_value_is_computed_along_and_marked_as_the_generic_read_marks_it():
    """The tape holds one value computed along (h: a product of 2^22 multiply-adds), which
    each written read settles and marks recorded, as step_capture._held does."""
    seen = []

    def each(t):
        tape = step_capture.tls.s.tape
        if tape is not None and tape.read_code is not None:
            seen.append(tape.held)

    before = step_read_code.STATS["reads"]
    on, _, off = run_off_and_on(step_loop, 30, shape=(64, 1024, 64, 4), each=each)
    assert_bitwise(on, off)
    assert seen and set(seen) == {1}
    assert step_read_code.STATS["reads"] - before >= len(seen) - 1


def test_the_loop_in_float64_matches_numpy():
    shape = (16, 300, 50, 5)
    on, delta, _ = run_off_and_on(step_loop, 24, shape=shape, dtype=gj.float64)
    want = numpy_loop(24, shape, 0)
    for got, ref in zip(on, want):
        np.testing.assert_allclose(got, ref, rtol=1e-10)
    assert delta["reads"] >= 18


def test_a_dead_entry_is_pruned_not_a_reason_for_the_general_list():
    """grad_h dies at each step's end with its mask fill noted: the read drops its entry
    and finds its roots from the tape (no tensor.updated_pending call per read)."""
    calls = []
    real = tensor_module.updated_pending

    def counting(pending):
        calls.append(1)
        return real(pending)

    before = step_read_code.STATS["reads"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tensor_module, "updated_pending", counting)
        on, delta, off = run_off_and_on(step_loop, 30)
    assert_bitwise(on, off)
    taken = step_read_code.STATS["reads"] - before
    assert taken >= delta["reads"] - step_tape.WRITE_AFTER - 1
    # the capture-off run and the reads before the tape list them: none of the written ones
    assert len(calls) <= 2 * 30 - taken


def test_prune_dead_deletes_only_the_dead_entries():
    class Box:
        pass

    alive, dead = Box(), Box()
    table = {1: weakref.ref(alive), 2: weakref.ref(dead), 3: weakref.ref(alive)}
    del dead
    assert step_read.prune_dead(table) == 2
    assert sorted(table) == [1, 3]


def _extra_update(t):
    """Step 12 on: another tensor updated in place (alive at the read): a root the tape
    does not name."""
    if t >= 12:
        _extra_update.keep.add_(1.0)


def test_an_extra_live_update_falls_back_with_the_same_values():
    _extra_update.keep = gj.zeros(3)
    on, delta, off_values = run_off_and_on(step_loop, 20, each=_extra_update)
    _extra_update.keep = gj.zeros(3)
    assert_bitwise(on, off_values)
    assert delta["breaks"] >= 1


def test_a_value_not_held_any_more_falls_back_with_the_same_values():
    """The tape was learnt with h held; from step 14 on h is dropped before the read: the
    reads compute it along anyway (the same numbers), or the tape ends: the same values."""
    def run(steps):
        out = step_loop(14, each=None)
        return out + step_loop(steps, held_too=False)

    on, delta, off = run_off_and_on(run, 20)
    assert_bitwise(on, off)


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 12), d_in=st.integers(1, 50), h=st.integers(1, 12),
       d_out=st.integers(1, 5), f64=st.booleans(), held_too=st.booleans(),
       seed=st.integers(0, 3))
def test_random_shapes_written_generic_and_off_agree(n, d_in, h, d_out, f64, held_too, seed):
    step_capture.reset()
    dtype = gj.float64 if f64 else gj.float32
    (on, _, delta), (generic, _, _), off = written_and_generic(
        step_loop, 16, shape=(n, d_in, h, d_out), dtype=dtype, seed=seed, held_too=held_too)
    assert_bitwise(on, off)
    assert_bitwise(generic, off)
    assert delta["reads"] >= 10
