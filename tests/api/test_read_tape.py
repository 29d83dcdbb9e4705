"""Reads keyed by the sequence of op calls since the last read (tracer/read_tape.py):
counted, and every value equal to the same loop read by walking the graph (tape off)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tracer import read_tape, realize_plans


@pytest.fixture(autouse=True)
def fresh_states():
    """No kept program of an earlier test (the same ops make the same states) counts."""
    read_tape.clear()


@pytest.fixture
def tape_off(monkeypatch):
    """Turns the tape off for the rest of the test: reads walk the graph, as before."""
    return lambda: monkeypatch.setattr(read_tape, "read", realize_plans.read)


def _counts():
    return dict(read_tape.STATS)


def _delta(before):
    return {k: read_tape.STATS[k] - before[k] for k in before}


def poly_loop(steps: int, change=None, n: int = 200):
    """pytorch/tutorials' polynomial_tensor.py step; change(step, env) may alter a step.
    Returns the losses read, the final coefficients and the tape counts per step."""
    env = {"lr": 1e-5, "n": n, "extra": False, "read": "loss", "fresh": False}
    x = gj.linspace(-math.pi, math.pi, n)
    y = gj.sin(x)
    state = [gj.tensor(c) for c in (0.1, -0.2, 0.3, -0.05)]
    losses, counts = [], []
    for step in range(steps):
        if change is not None:
            change(step, env)
        if env["n"] != x.shape[0]:
            x = gj.linspace(-math.pi, math.pi, env["n"])
            y = gj.sin(x)
        before = _counts()
        a, b, c, d = state
        y_pred = a + (b * x) + (c * x.pow(2)) + (d * x.pow(3))
        loss = (y_pred - y).pow(2).sum()
        if env["extra"]:
            loss = loss + (x * 0.0).sum()
        losses.append((y_pred.sum() if env["read"] == "y_pred" else loss).item())
        if env["read"] == "twice":
            losses.append(loss.item())
        grad_y_pred = -2.0 * (y - y_pred)
        grads = [grad_y_pred.sum(), gj.matmul(grad_y_pred, x).sum(),
                 gj.matmul(grad_y_pred, x.pow(2)).sum(), gj.matmul(grad_y_pred, x.pow(3)).sum()]
        lr = gj.tensor(env["lr"]) if env["fresh"] else env["lr"]
        for t, g in zip(state, grads):
            t -= lr * g
        counts.append(_delta(before))
        env["reason"] = read_tape.LAST["reason"]
    return losses, [t.item() for t in state], counts


def _same(on, off):
    assert np.all(np.isfinite(on[0])) and on[0][-1] < on[0][0]      # it learns
    np.testing.assert_allclose(on[0], off[0], rtol=1e-6)
    np.testing.assert_allclose(on[1], off[1], rtol=1e-6)


def _run_both(tape_off, steps, change=None):
    on = poly_loop(steps, change)
    tape_off()
    off = poly_loop(steps, change)
    _same(on, off)
    return on[2]


def test_a_repeated_step_reads_from_the_tape(tape_off):
    counts = _run_both(tape_off, 8)
    # the first reads fall back (sin is no template; y_pred is learnt as wanted), then
    # one new sequence, then every read replays
    assert [c["hits"] for c in counts[4:]] == [1] * 4
    assert sum(c["misses"] for c in counts) == 1
    assert all(c["fallbacks"] == 0 for c in counts[4:])


def test_a_changed_learning_rate_is_a_new_sequence(tape_off):
    def change(step, env):
        if step == 5:
            env["lr"] = 5e-6
    counts = _run_both(tape_off, 11, change)
    # the lr enters at the update after step 5's read: step 6's read is a new key; the
    # next falls back (learning to compute y_pred along for the new key), the next is a
    # new key again (that one more output), then they replay
    assert counts[6]["misses"] == 1 and counts[6]["hits"] == 0
    assert counts[7]["fallbacks"] == 1 and counts[8]["misses"] == 1
    assert [c["hits"] for c in counts[9:]] == [1, 1]


def test_a_changed_shape_falls_back_then_replays(tape_off):
    def change(step, env):
        if step == 5:
            env["n"] = 120
    counts = _run_both(tape_off, 11, change)
    assert counts[5]["hits"] == 0
    assert [c["hits"] for c in counts[9:]] == [1, 1]


def test_an_extra_op_is_another_sequence(tape_off):
    def change(step, env):
        env["extra"] = step == 6
    counts = _run_both(tape_off, 10, change)
    assert counts[6]["hits"] == 0
    assert counts[5]["hits"] == 1 and counts[9]["hits"] == 1


def test_a_read_of_another_value_is_another_key(tape_off):
    def change(step, env):
        env["read"] = "y_pred" if step == 6 else "loss"
    counts = _run_both(tape_off, 10, change)
    assert counts[6]["hits"] == 0 and counts[6]["misses"] + counts[6]["fallbacks"] >= 1
    assert counts[9]["hits"] == 1


def test_a_tensor_created_fresh_each_step_is_read_as_outside_data(tape_off):
    def change(step, env):
        env["fresh"] = True
    counts = _run_both(tape_off, 8, change)
    assert [c["hits"] for c in counts[4:]] == [1] * 4


def test_reading_the_same_value_twice_reads_once(tape_off):
    def change(step, env):
        env["read"] = "twice"
    counts = _run_both(tape_off, 8, change)
    assert [c["hits"] for c in counts[4:]] == [1] * 4
    assert all(c["fallbacks"] == 0 for c in counts[4:])


def test_an_inplace_op_on_a_view_falls_back_with_its_reason(tape_off, gradjit_env, caplog):
    def loop():
        w = gj.tensor([1.0, 2.0, 3.0])
        x = gj.tensor([0.5, -1.0, 2.0])
        out, counts = [], []
        for _ in range(6):
            before = _counts()
            out.append((w * x).sum().item())
            v = w[1:]
            v -= 0.1 * x[1:]
            counts.append(_delta(before))
        return out, w.numpy().copy(), counts
    gradjit_env("GRADJIT_LOG", "1")
    with caplog.at_level("INFO", logger="gradjit"):
        on = loop()
    assert "read tape off for this read: " in caplog.text
    assert all(c["hits"] == 0 and c["fallbacks"] == 1 for c in on[2][1:])
    assert "outside an op template" in read_tape.LAST["reason"]
    tape_off()
    off = loop()
    np.testing.assert_array_equal(on[0], off[0])
    np.testing.assert_array_equal(on[1], off[1])


def test_a_value_the_tape_did_not_make_falls_back():
    w = gj.tensor([1.0, 2.0])
    for _ in range(4):
        z = gj.exp(w)                    # exp is not memoised: recorded outside a template
        assert (z * w).sum().item() == pytest.approx(float(np.sum(np.exp([1.0, 2.0]) *
                                                                  [1.0, 2.0])), rel=1e-6)
        assert "outside an op template" in read_tape.LAST["reason"]


_STEPS = ["mul", "add", "square", "sub_const"]


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_STEPS), st.integers(1, 3), st.booleans()),
                min_size=3, max_size=10))
def test_any_sequence_of_steps_reads_what_the_walk_reads(steps):
    """Steps of varying ops and shapes, each updating w in place and reading (or not):
    the tape on and off give the same numbers."""
    results = []
    for use in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            if not use:
                mp.setattr(read_tape, "read", realize_plans.read)
            rng = np.random.default_rng(1)
            w = {n: gj.tensor(rng.standard_normal(n).astype(np.float32)) for n in (1, 2, 3)}
            out = []
            for kind, n, read in steps:
                v = w[n]
                h = {"mul": v * 1.5, "add": v + v, "square": v * v,
                     "sub_const": 2.0 - v}[kind]
                g = (h * v).sum()
                if read:
                    out.append(g.item())
                v -= 0.01 * g
            out += [w[n].numpy().tolist() for n in (1, 2, 3)]
            results.append(out)
    np.testing.assert_allclose(np.concatenate([np.ravel(r) for r in results[0]]),
                               np.concatenate([np.ravel(r) for r in results[1]]), rtol=1e-6)


def test_cleared_states_and_long_tapes_fall_back(tape_off, monkeypatch):
    def change(step, env):
        if step == 5:
            read_tape.clear()            # mid-tape: this tape's states mean nothing now
        if step == 10:
            monkeypatch.setattr(read_tape, "MAX_CALLS", 8)
        env["reason"] = read_tape.LAST["reason"]
    reasons = []

    def spy(step, env):
        change(step, env)
        reasons.append(read_tape.LAST["reason"])
    counts = _run_both(tape_off, 11, spy)
    assert counts[4]["hits"] == 1 and counts[5]["hits"] == 0
    assert counts[5]["fallbacks"] == 1 and reasons[6] == "the tape's states were cleared"
    # relearnt as at the start (y_pred computed along, wanted, a new key), then replayed
    assert counts[9]["hits"] == 1
    assert counts[10]["hits"] == 0 and "over 8 values" in read_tape.LAST["reason"]
