"""A followed `w -= ...` (tracer/autograd/inplace.py _followed_method) offers the tensor
itself to the captured step, not a stand-in Tensor made per call: the update's value,
version and pending bookkeeping are the general path's, bit for bit, with the written
checks and the generic one, also when the right side is the tensor itself (`v -= v`) or a
plain number the op may return unchanged (`w -= 0`)."""
import numpy as np

import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.api.capture_check import assert_bitwise, plain_capture, run_off_and_on  # noqa: F401
from tracer import step_capture, step_tape

pytestmark = pytest.mark.usefixtures("plain_capture")


@pytest.fixture(autouse=True)
def written_at_once(monkeypatch):
    monkeypatch.setattr(step_capture, "PIN_AFTER", 0)
    monkeypatch.setattr(step_tape, "WRITE_AFTER", 0)
    monkeypatch.setattr(step_tape, "WRITE", True)        # (tests turn it off)


def _loop(steps: int, n: int, seen: list | None = None) -> list:
    """Plain updates of three tensors each step, one read; seen gets (whether each written
    event's first argument was the tensor updated, the versions) at the last step."""
    rng = np.random.default_rng(n)
    w = gj.tensor(rng.standard_normal(n).astype(np.float32))
    v = gj.tensor(rng.standard_normal(n).astype(np.float32))
    u = gj.tensor(rng.standard_normal(n).astype(np.float32))
    out = []
    for t in range(steps):
        g = (2.0 * w * v).sum() * w          # (no call but the updates has w, v or u
        out.append((g * u).sum().item())     # as its first argument)
        if seen is not None and t == steps - 1:
            _watch(seen, (w, v, u))
        w -= 1e-3 * g
        v -= 0.25 * v
        u -= 0.5 * u
        w -= 0
    out += [a.numpy().copy() for a in (w, v, u)]
    return out + [[a._version for a in (w, v, u)]]


def _watch(seen: list, tensors: tuple):
    """Wraps the tape's written events to note whether a call's first argument is one of
    tensors (the update's own tensor) rather than a stand-in."""
    tape = step_capture.tls.s.tape
    assert tape is not None and tape.fast

    def wrap(f):
        if f is None:
            return None

        def noted(s, fn, args, *rest):
            seen.append(any(args[0] is x for x in tensors))
            return f(s, fn, args, *rest)
        return noted
    tape.fast = tuple([wrap(f) for f in tape.fast])


@settings(max_examples=6, deadline=None)
@given(st.integers(1, 40))
def test_followed_updates_bitwise_written_and_generic(n):
    step_tape.WRITE = False
    generic, _, off = run_off_and_on(_loop, 12, n)
    step_tape.WRITE = True
    on, delta, _ = run_off_and_on(_loop, 12, n)
    assert_bitwise(generic[:-1], off[:-1])
    assert_bitwise(on[:-1], off[:-1])
    assert generic[-1] == off[-1] == on[-1]              # versions: one bump per update
    assert delta["tapes"] == 1 and delta["reads"] >= 8


def test_the_update_offers_the_tensor_itself():
    seen = []
    before = dict(step_capture.STATS)
    _loop(10, 5, seen)
    assert step_capture.STATS["reads"] - before["reads"] >= 6
    # the `-=` with a tensor right side are written events given the tensor itself (a
    # stand-in before); no other call has w, v or u first
    assert sum(seen) >= 3


def _changing(steps: int, at: int) -> list:
    rng = np.random.default_rng(2)
    w = gj.tensor(rng.standard_normal(6).astype(np.float32))
    x = gj.tensor(rng.standard_normal(6).astype(np.float32))
    out = []
    for t in range(steps):
        out.append((w * x).sum().item())
        w -= (0.2 if t == at else 0.1) * x          # another scalar once: the tape drops
    return out + [w.numpy().copy()]


def test_an_update_that_does_not_follow_takes_the_general_path_bitwise():
    on, delta, off = run_off_and_on(_changing, 12, 7)
    assert_bitwise(on, off)
    assert delta["breaks"] >= 1 and delta["reads"] >= 3
