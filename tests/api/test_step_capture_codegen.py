"""A captured step's events checked by Python written for each (tracer/step_follow_code.py):
the same bits as the generic check and as capture off, the written code taken for the plain
events (the generic check is entered only for the others), and every call it does not accept
(a changed float or int, 0.0 against -0.0, NaN, an operand from elsewhere, another call
site) left to the generic check, which follows or drops as before."""
import math

import numpy as np

import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from ir.printer import print_function
from tests.api.capture_check import assert_bitwise, plain_capture, run_off_and_on  # noqa: F401
from tests.api.test_step_capture_poly import tutorial as poly_tutorial
from tracer import step_capture, step_follow_code, step_tape
from tracer.expr import build_function


pytestmark = pytest.mark.usefixtures("plain_capture")    # capture reset around each test


@pytest.fixture(autouse=True)
def fresh_capture(monkeypatch):
    monkeypatch.setattr(step_capture, "PIN_AFTER", 0)
    monkeypatch.setattr(step_tape, "WRITE_AFTER", 0)
    monkeypatch.setattr(step_tape, "WRITE", True)        # (tests turn it off)


class _CountingSteps(tuple):
    """A tape's steps, counting the generic check's entries (it reads its event there)."""
    entries = 0

    def __getitem__(self, i):
        _CountingSteps.entries += 1
        return tuple.__getitem__(self, i)


def count_generic(tape) -> None:
    _CountingSteps.entries = 0
    tape.steps = _CountingSteps(tape.steps)


def tutorial(steps: int, change=None) -> list:
    """polynomial_tensor.py's loop (keyword matmul, four `-=`: test_step_capture_poly's),
    200 points; change(t) before step t."""
    return poly_tutorial(steps, n=200, lr=1e-5,
                         change=None if change is None else lambda t, x: change(t))


def three_ways(loop, *args, **kw) -> tuple:
    """(capture on with written checks, its counter changes), after asserting it gives the
    bits of capture on with the generic check alone and of capture off."""
    step_tape.WRITE = False
    generic, _, off = run_off_and_on(loop, *args, **kw)
    step_tape.WRITE = True
    on, delta, off2 = run_off_and_on(loop, *args, **kw)
    assert_bitwise(on, off)
    assert_bitwise(generic, off)
    assert_bitwise(off2, off)
    return on, delta


def test_the_tutorials_plain_events_take_their_written_python():
    seen = {}

    def change(t):
        tape = step_capture.tls.s.tape
        if t == 10 and step_tape.WRITE and tape is not None:   # (capture on: followed)
            seen["tape"] = tape
            count_generic(tape)
    before = step_follow_code.STATS["written"]
    on, delta = three_ways(tutorial, 40, change=change)
    tape = seen["tape"]
    assert delta["breaks"] == 1              # (the final reads of a..d, mid-step)
    written = sum(f is not None for f in tape.fast)
    # every event is written (the first uses of x and of the pinned y too), and in the 30
    # steps from t = 10 none entered the generic check
    assert step_follow_code.STATS["written"] - before >= written == len(tape.fast) == 30
    assert _CountingSteps.entries == 0
    assert delta["pinned"] > 0


def test_written_off_takes_the_generic_check_everywhere():
    tapes = []
    step_tape.WRITE = False
    tutorial(12, change=lambda t: tapes.append(step_capture.tls.s.tape))
    assert tapes[-1] is not None and all(f is None for f in tapes[-1].fast)


@pytest.mark.parametrize("what", ["float", "int for float", "zero sign", "nan", "operand",
                                  "site"])
def test_a_call_the_written_check_refuses_is_the_generic_checks(what):
    """Each change at step 9 is refused by the written check; the generic check then drops
    the tape (or, for another call site of the same event, follows it naming the new line)
    and the values stay those of capture off."""
    def loop(steps):
        x = gj.linspace(-1.0, 1.0, 16)
        other = gj.linspace(-1.0, 1.0, 16)
        w = gj.tensor(0.5)
        out = []
        for t in range(steps):
            late = t >= 9
            s = 0.25
            if late and what == "float":
                s = 0.5
            elif late and what == "int for float":
                s = 1
            elif what == "zero sign":
                s = -0.0 if late else 0.0
            elif what == "nan":
                s = math.nan if late else 0.75
            z = other if late and what == "operand" else x
            h = (w * z + s) if not (late and what == "site") else _elsewhere(w, z, s)
            out.append((h * x).sum().item())
            w -= 0.01 * (h - x).sum()
        return out + [w.numpy().copy()]
    on, delta = three_ways(loop, 14)
    # (one break is the final read of w, a read before the step's end)
    if what == "site":
        assert delta["breaks"] == 1 and delta["reads"] >= 10
    else:
        assert delta["breaks"] >= 2


def _elsewhere(w, z, s):
    return w * z + s                         # the same events from another line


def test_ir_of_a_function_over_followed_results_is_as_with_capture_off():
    def loop(steps):
        kept = []
        x = gj.linspace(-1.0, 1.0, 8)
        b = gj.tensor(0.25)
        for _ in range(steps):
            h = b * x + 1.5
            kept.append(h)
            (h * x).sum().item()
            b -= 0.01 * (h - x).sum()
        return kept

    def texts(kept):
        return [print_function(build_function("f", [], [h._expr])[0], locs=True)
                for h in kept]
    step_capture.ENABLED = False
    off = texts(loop(10))
    step_capture.ENABLED = True
    step_capture.reset()
    before = dict(step_capture.STATS)
    on = texts(loop(10))
    assert step_capture.STATS["calls"] - before["calls"] >= 3 * 5
    assert on == off


_SCALARS = [0.5, 2.0, -1.25, 0.0, -0.0, math.nan, 3, 1, True]


@settings(max_examples=25, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["add", "mul", "sub", "rsub", "pow"]),
                              st.integers(0, len(_SCALARS) - 1)), min_size=1, max_size=6),
       change_at=st.integers(3, 12), changed=st.integers(0, len(_SCALARS) - 1),
       which=st.integers(0, 5), n=st.integers(1, 40))
def test_random_steps_give_the_generic_and_off_bits(ops, change_at, changed, which, n):
    def loop(steps):
        x = gj.linspace(-1.0, 1.0, n)
        w = gj.tensor(0.5)
        out = []
        for t in range(steps):
            h = w * x
            for k, (op, i) in enumerate(ops):
                s = _SCALARS[changed if t >= change_at and k == which % len(ops) else i]
                if op == "add":
                    h = h + s
                elif op == "mul":
                    h = h * s
                elif op == "sub":      # (PyTorch refuses a bool in a subtraction)
                    h = h - (int(s) if type(s) is bool else s)
                elif op == "rsub":
                    h = (int(s) if type(s) is bool else s) - h
                else:
                    h = h.pow(2 if type(s) is float else s)
            out.append(h.sum().item())
            w -= 1e-3 * (h * x).sum()
        return out + [w.numpy().copy()]
    three_ways(loop, 14)


def test_keyword_matmul_follows_without_its_dispatch(monkeypatch):
    """torch.matmul(input=g, other=x) on a followed step is offered to the tape first
    (tracer/ops/linalg.matmul): its dispatch (to_tensor, the variant by rank) runs only for
    calls the tape does not take; the values are those of capture off."""
    from tracer.ops import linalg
    calls = []
    real = linalg.to_tensor
    monkeypatch.setattr(linalg, "to_tensor", lambda v: calls.append(1) or real(v))
    marks = []
    on, delta = three_ways(tutorial, 30, change=lambda t: marks.append(len(calls)))
    # the last run is capture on with written checks: its 30 steps' marks are the last 30
    steps = marks[-30:]
    followed = [steps[t + 1] - steps[t] for t in range(12, 29)]
    assert followed == [0] * len(followed)
    assert steps[1] - steps[0] == 6          # (learning: 3 matmuls, 2 operands each)
    assert delta["breaks"] == 1


def test_matmul_of_other_ranks_in_a_followed_step_drops_to_the_general_path():
    """A step whose matmul changes from vectors (Dot) to a matrix-vector product (Mv) with
    the same body: the key differs, the tape is dropped, the values are capture off's."""
    def loop(steps):
        x = gj.linspace(-1.0, 1.0, 6)
        m = gj.linspace(0.0, 1.0, 36).reshape(6, 6)
        w = gj.tensor(0.5)
        out = []
        for t in range(steps):
            g = w * x
            p = gj.matmul(input=m if t == 9 else g, other=x)
            out.append(p.sum().item())
            w -= 0.01 * p.sum()
        return out + [w.numpy().copy()]
    on, delta = three_ways(loop, 14)
    assert delta["breaks"] >= 2 and delta["reads"] > 0


@pytest.mark.parametrize("what", ["fresh leaf", "other shape", "other pending"])
def test_first_uses_from_outside_the_step_in_written_checks(what):
    """An operand first used from outside the cycle: a fresh leaf of the type seen each step
    follows (its array is the read's input: the values change with it); a leaf of another
    shape, or another pending value where the pinned one was, ends the tape there; the
    values are capture off's."""
    tapes = {}

    def loop(steps):
        rng = np.random.default_rng(1)
        y = gj.sin(gj.linspace(-1.0, 1.0, 16))           # pending before the loop: pinned
        y2 = gj.sin(gj.linspace(-2.0, 2.0, 16))
        w = gj.tensor(0.5)
        out = []
        for t in range(steps):
            late = t >= 9
            n = 17 if late and what == "other shape" else 16
            leaf = gj.tensor(rng.standard_normal(n).astype(np.float32))
            target = y2 if late and what == "other pending" else y
            h = w * leaf
            out.append((h.sum() - target.sum()).item())
            tapes[t] = step_capture.tls.s.tape
            w -= 0.01 * h.sum()
        return out + [w.numpy().copy()]
    on, delta = three_ways(loop, 14)
    assert tapes[8] is not None
    if what == "fresh leaf":
        assert tapes[13] is tapes[8] and delta["breaks"] == 1
    else:
        assert tapes[9] is None and delta["breaks"] >= 2


def test_events_are_written_after_their_reads_and_compiled_once():
    """WRITE_AFTER reads from a tape take the generic check; then its events are written.
    The same loop run again forms an equal tape: its events' sources are compiled already
    (one exec each, no compile)."""
    step_tape.WRITE_AFTER = 5
    written = []

    def change(t):
        tape = step_capture.tls.s.tape
        written.append(None if tape is None else sum(f is not None for f in tape.fast))
    before = dict(step_follow_code.STATS)
    on, delta = three_ways(tutorial, 20, change=change)
    steps = written[-20:]                    # (the run with written checks)
    first = steps.index(0)                   # the tape's first followed step
    assert steps[first:first + 5] == [0] * 5 and steps[first + 5:] == [30] * (15 - first)
    assert step_follow_code.STATS["written"] - before["written"] == 30
    compiled = step_follow_code.STATS["compiled"]
    again = tutorial(20)
    assert step_follow_code.STATS["compiled"] == compiled
    assert step_follow_code.STATS["written"] - before["written"] == 60
    assert_bitwise(again, on)


def _views_step(steps: int, keep_view_at: int = -1, seen=None) -> list:
    """two_layer_net_tensor.py's views (`h.t()`, `w.t()`, `x.t()`) in a no-grad step; from
    step keep_view_at on a view of w is kept alive across w's update (it must see it).
    seen: gets per event of the tape followed at the last step (written or not, name)."""
    rng = np.random.default_rng(4)
    x = gj.tensor(rng.standard_normal((6, 9)).astype(np.float32))
    w = gj.tensor(rng.standard_normal((9, 4)).astype(np.float32))
    out, kept = [], None
    for t in range(steps):
        h = x.mm(w)
        loss = h.clamp(min=0).sum()
        out.append(loss.item())
        g = x.t().mm(h.t().t()) + w.t().t()
        tape = step_capture.tls.s.tape
        if seen is not None and t == steps - 1 and tape is not None:
            seen[:] = [(f is not None, s[9]) for f, s in zip(tape.fast, tape.steps)]
        if keep_view_at >= 0 and t >= keep_view_at:
            kept = w.t()
        w -= 1e-3 * g
        if kept is not None:
            out.append(kept.sum().item())
    return out + [w.numpy().copy()]


def test_view_events_take_their_written_python_and_join_their_base():
    """A followed view op's written code joins its result to the base's storage (the
    version counter shared, views.mark_views), as the generic check does."""
    seen = []
    on, delta = three_ways(_views_step, 30, seen=seen)
    assert delta["reads"] >= 24
    views = [written for written, name in seen if name == "T"]
    assert views == [True] * 5


def test_a_written_view_kept_across_its_bases_update_sees_it():
    on, delta = three_ways(_views_step, 30, keep_view_at=15)
    assert delta["breaks"] >= 1              # (a live view refreshed: not a step event)


def test_a_written_view_shares_the_version_counter():
    rng = np.random.default_rng(2)
    w = gj.tensor(rng.standard_normal((5, 3)).astype(np.float32))
    x = gj.tensor(rng.standard_normal((4, 5)).astype(np.float32))
    shared, written = [], []
    for _ in range(16):
        tape = step_capture.tls.s.tape
        written.append(tape is not None and tape.fast[5] is not None
                       and tape.steps[5][9] == "T")
        v = w.t()                            # (the step's sixth event: after the update's 5)
        shared.append(v._storage is w._storage and v._version == w._version)
        loss = x.mm(v.t()).sum()
        loss.item()
        del v                                # (dead before w's update: a step event)
        w -= 1e-3 * x.t().mm(x.mm(w))
    assert written[-1] and all(shared)
    v = w.t()
    before = v._version
    w.add_(1.0)
    assert v._version == w._version == before + 1
    np.testing.assert_array_equal(v.numpy(), w.numpy().T)
