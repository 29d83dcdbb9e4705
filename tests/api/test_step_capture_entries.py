"""A cycle's results as step capture keeps them (tracer/step_tape.py State.outs): an event's
one result bare, several in a tuple (step_tape.entry / result_at), read the same way by the
learning read, the generic check, the written checks and reads, and realize_plans' count
of capture's references. Loops mixing one-result ops with `split` into one or several
pieces (a 1-tuple result is kept bare too) give the bits of capture off, written or not."""
import numpy as np

import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.api.capture_check import assert_bitwise, plain_capture, run_off_and_on  # noqa: F401
from tracer import step_capture, step_follow_code, step_read_code, step_tape
from tracer.pending_expr import PendingExpr

pytestmark = pytest.mark.usefixtures("plain_capture")


@pytest.fixture(autouse=True)
def written_at_once(monkeypatch):
    monkeypatch.setattr(step_capture, "PIN_AFTER", 0)
    monkeypatch.setattr(step_tape, "WRITE_AFTER", 0)
    monkeypatch.setattr(step_tape, "WRITE", True)        # (tests turn it off)


def _split_loop(steps: int, pieces: int, seen: list | None = None) -> list:
    """A no-grad loop whose step splits a fresh product into `pieces` parts (one: split
    returns a 1-tuple) and uses each; seen gets the cycle's outs entries and the tape before
    each read."""
    rng = np.random.default_rng(11)
    w = gj.tensor(rng.standard_normal((4, 6)).astype(np.float32))
    x = gj.tensor(rng.standard_normal((6, 4)).astype(np.float32))
    out = []
    for _ in range(steps):
        parts = x.mm(w).sum(1).split(6 // pieces)
        total = parts[0].sum() * 0.5
        for k in range(1, pieces):
            total = total + parts[k].sum()
        if seen is not None:
            seen.append((list(step_capture.tls.s.outs), step_capture.tls.s.tape))
        out.append(total.item())
        del parts
        w -= 0.01 * x.t().mm(x.mm(w))
    return out + [w.numpy().copy()]


def _run_three_ways(loop, *args):
    """Written code off with each read checked against the general path (VERIFY), then
    on: both the bits of capture off."""
    step_tape.WRITE = False
    step_capture.VERIFY = True
    generic, _, off = run_off_and_on(loop, *args)
    step_capture.VERIFY = False
    step_tape.WRITE = True
    before = dict(step_read_code.STATS)
    on, delta, off2 = run_off_and_on(loop, *args)
    assert_bitwise(generic, off)
    assert_bitwise(on, off)
    assert_bitwise(off2, off)
    return delta, {k: step_read_code.STATS[k] - before[k] for k in before}


@settings(max_examples=8, deadline=None)
@given(st.sampled_from([1, 2, 3]))
def test_split_into_one_or_more_pieces_is_followed_bitwise(pieces):
    delta, reads = _run_three_ways(_split_loop, 14, pieces)
    # (the one break: the final `w.numpy()`, a read before the step's end)
    assert delta["tapes"] == 1 and delta["breaks"] == 1 and delta["reads"] >= 10
    assert reads["reads"] >= 8                           # the written read took them


def test_one_result_is_kept_bare_and_several_in_a_tuple():
    for pieces, width in ((1, None), (3, 3)):
        step_capture.reset()
        seen = []
        _split_loop(8, pieces, seen)
        followed = seen[-1][0]                           # a cycle that followed the tape
        tuples = [x for x in followed if type(x) is tuple]
        if width is None:
            assert tuples == []                          # split's 1-tuple: bare as well
        else:
            assert [len(x) for x in tuples] == [width]
        bare = [x for x in followed if type(x) is not tuple]
        assert bare and all(isinstance(x, PendingExpr) or hasattr(x, "value") for x in bare)


def test_result_at_reads_both_kinds_and_refuses_what_is_not_there():
    a, b, c = object(), object(), object()
    outs = [step_tape.entry((a,)), step_tape.entry((b, c))]
    assert outs[0] is a and outs[1] == (b, c)
    assert step_tape.result_at(outs, 0, 0) is a
    assert step_tape.result_at(outs, 1, 1) is c
    for j, r in ((0, 1), (1, 2), (2, 0)):
        with pytest.raises(IndexError):
            step_tape.result_at(outs, j, r)
    assert step_tape.entry_exprs(outs[0]) == (a,) and step_tape.entry_exprs(outs[1]) == (b, c)


def test_written_code_indexes_one_result_without_a_tuple():
    seen = []
    _split_loop(6, 3, seen)
    tape = seen[-1][1]
    assert tape is not None and any(f is not None for f in tape.fast)
    counts = tape.counts()
    assert 3 in counts and counts.count(1) == len(counts) - 1
    j = counts.index(3)
    assert step_follow_code.where("s.outs", j, 2, counts) == f"s.outs[{j}][2]"
    assert step_follow_code.where("s.outs", 0, 0, counts) == "s.outs[0]"
