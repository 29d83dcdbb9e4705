"""Whole-step capture (tracer/step_capture.py): a repeated no-grad step between two reads
follows a tape. Every change to the step falls back to the general path: the counters say
which path ran, and every value is bitwise the one the same loop gives with capture off."""

import logging

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.api.capture_check import (assert_bitwise, run_off_and_on,  # noqa: F401
                                     verified_capture)
from tracer import step_capture

COEFS = np.array([0.3, -0.2, 0.1, 0.05], dtype=np.float32)
CHANGE_AT = 7          # the tape is followed from step 3 on; the change comes later


pytestmark = pytest.mark.usefixtures("verified_capture")


def poly_loop(steps: int, change=None, n: int = 200, lr: float = 1e-3,
              dtype=gj.float32) -> list:
    """pytorch/tutorials' polynomial_tensor.py step; change(i, env) may alter step i."""
    x = gj.linspace(-3.0, 3.0, n, dtype=dtype)
    y = gj.sin(x)                         # pending before the loop (never read)
    state = [gj.tensor(c, dtype=dtype) for c in COEFS]
    out = []
    for i in range(steps):
        env = {"x": x, "y": y, "lr": lr, "state": state, "extra": None, "i": i}
        if change is not None:
            change(i, env)
        xs, lr_i = env["x"], env["lr"]
        a, b, c, d = state
        y_pred = a + (b * xs) + (c * xs.pow(2)) + (d * xs.pow(3))
        if env["extra"] is not None:
            y_pred = env["extra"](y_pred)
        loss = (y_pred - env["y"]).pow(2).sum().item()
        grad = -2.0 * (env["y"] - y_pred)
        grads = [grad.sum(), gj.matmul(grad, xs).sum(), gj.matmul(grad, xs.pow(2)).sum(),
                 gj.matmul(grad, xs.pow(3)).sum()]
        for t, g in zip(state, grads):
            t -= lr_i * g
        out.append(loss)
    return out + [t.numpy().copy() for t in state]


def run_both(steps: int, change=None, **kw):
    """(values with capture on, the counters' changes, values with capture off)."""
    return run_off_and_on(poly_loop, steps, change, **kw)


def test_a_repeated_step_follows_the_tape_and_reads_without_a_walk():
    on, delta, off = run_both(12)
    assert_bitwise(on, off)
    # one break: the final .numpy() of the state is a read of other values
    assert delta["tapes"] == 1 and delta["breaks"] == 1
    # steps 4..11 follow the tape: 30 calls and one read each
    assert delta["reads"] >= 7
    assert delta["calls"] >= 7 * 30


def test_capture_off_follows_nothing():
    step_capture.ENABLED = False
    before = dict(step_capture.STATS)
    poly_loop(8)
    assert step_capture.STATS == before


def _at(step: int, fn):
    def change(i, env):
        if i == step:
            fn(env)
    return change


def _from(step: int, fn):
    def change(i, env):
        if i >= step:
            fn(env)
    return change


CHANGES = {
    # a Python scalar (the learning rate) changes once: a new tape is learnt after it
    "lr once": _at(CHANGE_AT, lambda env: env.update(lr=2e-3)),
    # ... and then for good
    "lr from then on": _from(CHANGE_AT, lambda env: env.update(lr=5e-4)),
    # another shape, and another dtype, for one step
    "shape": _at(CHANGE_AT, lambda env: env.update(x=gj.linspace(-3.0, 3.0, 150),
                                                   y=gj.sin(gj.linspace(-3.0, 3.0, 150)))),
    "dtype": _at(CHANGE_AT, lambda env: env.update(
        x=gj.linspace(-3.0, 3.0, 200, dtype=gj.float64),
        y=gj.sin(gj.linspace(-3.0, 3.0, 200, dtype=gj.float64)))),
    # an extra op in one step
    "extra op": _at(CHANGE_AT, lambda env: env.update(extra=lambda t: t * 1.0)),
    # an op that is not memoised, once
    "other op": _at(CHANGE_AT, lambda env: env.update(extra=lambda t: gj.tanh(t) + t)),
    # a read of another value in the middle of a step
    "other read": _at(CHANGE_AT, lambda env: env.update(
        extra=lambda t: t + 0.0 * float((t * 2.0).sum().item()))),
    # a tensor made fresh each step (a new leaf every time: captured like the old one)
    "fresh tensor": _from(0, lambda env: env.update(x=gj.linspace(-3.0, 3.0, 200),
                                                    y=env["y"])),
    # ... whose shape, or dtype, changes once
    "fresh tensor shape": _from(0, lambda env: env.update(
        x=gj.linspace(-3.0, 3.0, 150 if env["i"] == CHANGE_AT else 200),
        y=gj.sin(gj.linspace(-3.0, 3.0, 150)) if env["i"] == CHANGE_AT else env["y"])),
    "fresh tensor dtype": _from(0, lambda env: env.update(
        x=gj.linspace(-3.0, 3.0, 200, dtype=gj.float64 if env["i"] == CHANGE_AT else None),
        y=env["y"])),
    # a pending value made in the step from a tensor created outside the ops
    "pending operand": _at(CHANGE_AT, lambda env: env.update(x=gj.linspace(-3.0, 3.0, 200)
                                                              * 1.0)),
}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_any_change_falls_back_with_the_same_values(name):
    on, delta, off = run_both(14, CHANGES[name])
    assert_bitwise(on, off)
    assert delta["reads"] >= 3                          # followed before the change
    if name != "fresh tensor":
        assert delta["breaks"] >= 2, delta         # the change, and the final .numpy()
    else:
        assert delta["breaks"] == 1 and delta["reads"] >= 8


def test_a_missing_op_breaks_the_tape():
    def change(i, env):
        if i == CHANGE_AT:                # the x.pow(3) term computed another way: one
            env["x"] = env["x"]           # call fewer (x * x * x is one op more, pow less)

    def loop(steps):
        x = gj.linspace(-3.0, 3.0, 100)
        w = gj.tensor(0.5)
        out = []
        for i in range(steps):
            h = w * x
            if i != CHANGE_AT:
                h = h + 1.0
            out.append((h * h).sum().item())
            w -= 1e-3 * (h * x).sum()
        return out + [w.numpy().copy()]
    step_capture.ENABLED = False
    off = loop(16)
    step_capture.ENABLED = True
    step_capture.reset()
    before = dict(step_capture.STATS)
    on = loop(16)
    assert_bitwise(on, off)
    assert step_capture.STATS["breaks"] > before["breaks"] + 1
    assert step_capture.STATS["reads"] - before["reads"] >= 4


def test_reading_the_same_value_twice_keeps_the_tape():
    def change(i, env):
        env["extra"] = lambda t: t
    on, delta, off = run_both(10, change)
    assert_bitwise(on, off)

    def loop(steps):
        x = gj.linspace(-3.0, 3.0, 100)
        w = gj.tensor(0.5)
        out = []
        for _ in range(steps):
            loss = ((w * x - x) ** 2).sum()
            out.append(loss.item())
            out.append(loss.item())          # data by now: no read, no break
            print_value = repr(loss)
            assert "tensor(" in print_value
            w -= 1e-3 * ((w * x - x) * x).sum()
        return out + [w.numpy().copy()]
    step_capture.ENABLED = False
    off = loop(10)
    step_capture.ENABLED = True
    step_capture.reset()
    before = dict(step_capture.STATS)
    on = loop(10)
    assert_bitwise(on, off)
    assert step_capture.STATS["breaks"] == before["breaks"] + 1     # the final .numpy()
    assert step_capture.STATS["reads"] - before["reads"] >= 5


def test_an_inplace_op_on_a_view_breaks_the_tape():
    def change(i, env):
        if i == CHANGE_AT:
            x = env["x"] * 1.0
            view = x[0:10]
            view += 1.0                  # x changes through its view
            env["x"] = x
    on, delta, off = run_both(12, change)
    assert_bitwise(on, off)
    assert delta["breaks"] >= 2


def test_requires_grad_flipping_breaks_the_tape():
    def loop(steps):
        x = gj.linspace(-3.0, 3.0, 100)
        w = gj.tensor(0.5)
        out = []
        for i in range(steps):
            if i == 9:                       # (the tape is followed from step 5 on)
                w.requires_grad_(True)
            loss = ((w * x - x) ** 2).sum()
            out.append(loss.item())
            with gj.no_grad():
                w -= 1e-3 * ((w * x - x) * x).sum()
        return out + [w.detach().numpy().copy()]
    step_capture.ENABLED = False
    off = loop(14)
    step_capture.ENABLED = True
    step_capture.reset()
    before = dict(step_capture.STATS)
    on = loop(14)
    assert_bitwise(on, off)
    assert step_capture.STATS["breaks"] == before["breaks"] + 1      # the read of w
    assert step_capture.STATS["reads"] - before["reads"] >= 3


def test_requires_grad_set_on_a_read_result_breaks_the_tape():
    """w holds data after each read (a root): setting requires_grad needs no read, but the
    next op on it, the tape's next call, must record its autograd node."""
    x = gj.linspace(-3.0, 3.0, 50)
    w = gj.tensor(0.5)
    for _ in range(8):
        w -= 1e-3 * ((w * x - x) * x).sum()
        ((w * x - x) ** 2).sum().item()
    assert step_capture.STATS["reads"] > 0 and w._expr.data is not None
    breaks = step_capture.STATS["breaks"]
    w.requires_grad_(True)
    h = w * x                             # the tape's next call, on the same Expr
    assert h.grad_fn is not None and step_capture.STATS["breaks"] == breaks + 1
    ((h - x) ** 2).sum().backward()
    xs, w0 = x.numpy(), float(w.detach().numpy())
    np.testing.assert_allclose(w.grad.item(), float((2 * (w0 * xs - xs) * xs).sum()),
                               rtol=1e-5)


def test_a_loop_without_reads_keeps_a_bounded_record(monkeypatch):
    monkeypatch.setattr(step_capture, "_MAX_EVENTS", 50)
    w = gj.zeros(10)
    for _ in range(200):
        w += 1.0
    assert len(step_capture._state().outs) <= 50
    np.testing.assert_array_equal(w.numpy(), np.full(10, 200.0, np.float32))


def test_a_training_loop_without_reads_keeps_nothing_alive():
    """A step with a backward is no tape's: nothing of it is kept (its update results may
    hold data, a parameter's worth each)."""
    x = gj.linspace(-1.0, 1.0, 30)
    w = gj.tensor(np.ones(30, np.float32), requires_grad=True)
    for _ in range(20):
        (w * x).pow(2).sum().backward()
        with gj.no_grad():
            w -= 1e-2 * w.grad
            w.grad.zero_()
    assert step_capture._state().outs == [] and step_capture._state().ext == []
    np.testing.assert_allclose(w.detach().numpy(), (1 - 2e-2 * x.numpy() ** 2) ** 20,
                               rtol=1e-5)


def test_an_exception_in_a_step_breaks_the_tape():
    def change(i, env):
        if i == CHANGE_AT:
            with pytest.raises(RuntimeError):
                env["x"] + gj.ones(3)     # shapes do not broadcast: raised by the op
    on, delta, off = run_both(12, change)
    assert_bitwise(on, off)
    assert delta["breaks"] >= 2


def test_gradjit_log_says_why_the_tape_broke(gradjit_env, caplog):
    gradjit_env("GRADJIT_LOG", "1")
    caplog.set_level(logging.INFO, logger="gradjit")
    poly_loop(10, CHANGES["lr once"])
    assert "step capture: a step of 30 calls repeats" in caplog.text
    assert "step capture off (back to per-op recording and a keyed read): call " in \
        caplog.text
    assert "a Python float changed" in caplog.text


def test_the_tape_still_names_the_users_line_in_errors():
    x = gj.linspace(-3.0, 3.0, 100)
    w = gj.tensor(0.5)
    before = step_capture.STATS["calls"]
    for _ in range(6):
        ((w * x - x) ** 2).sum().item()
        w -= 1e-3 * w                 # (a Python float that changes each step never follows)
    assert step_capture.STATS["calls"] > before
    with pytest.raises(Exception) as info:
        w * gj.ones(3) + x           # the error names this file
    assert "test_step_capture.py" in str(info.value) or info.traceback


@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 64), lr=st.floats(1e-5, 1e-2), steps=st.integers(2, 9),
       change_at=st.integers(0, 8), f64=st.booleans())
def test_random_loops_equal_capture_off(n, lr, steps, change_at, f64):
    dtype = gj.float64 if f64 else gj.float32

    def change(i, env):
        if i == change_at:
            env["lr"] = lr * 2.0
    on, _, off = run_both(steps, change, n=n, lr=lr, dtype=dtype)
    assert_bitwise(on, off)
