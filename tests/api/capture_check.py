"""A loop run with whole-step capture off, then on (tracer/step_capture.py), or with the
backward follow on or off (tracer/autograd/follow.py), for the tests that compare the runs
bit for bit."""
import numpy as np
import pytest

from tracer import step_capture
from tracer import tensor as tensor_module
from tracer.autograd import follow, replay


def _capture_reset(verify: bool):
    # in-place updates an earlier test left noted are computed and pruned (a program's
    # first read prunes the settled and dead ones; a pending `zero_()` result would stay):
    # tests that count a tape's own roots start clean
    left = [ref() for ref in tensor_module.updated_tensors().values()]
    tensor_module.realize([t._expr for t in left if t is not None and t._expr.data is None
                           and not t._expr.symbolic])
    tensor_module.updated_pending([])
    step_capture.reset()
    step_capture.VERIFY = verify
    yield
    step_capture.VERIFY = False
    step_capture.ENABLED = True
    step_capture.reset()


@pytest.fixture
def verified_capture():
    """Capture reset before and after, each read from a tape checked against the general
    path (step_capture.VERIFY). A test module uses it with
    `pytestmark = pytest.mark.usefixtures("verified_capture")`."""
    yield from _capture_reset(True)


@pytest.fixture
def plain_capture():
    """Capture reset before and after, VERIFY off (its check walks each followed read's
    graph, which materialises it: tests of what stays pending use this one)."""
    yield from _capture_reset(False)


def run_off_and_on(loop, *args, stats=(step_capture.STATS,), **kw) -> tuple:
    """(loop's values with capture on, the change of every counter in stats over that run,
    its values with capture off)."""
    step_capture.ENABLED = False
    step_capture.reset()
    off = loop(*args, **kw)
    step_capture.ENABLED = True
    step_capture.reset()
    before = [dict(s) for s in stats]
    on = loop(*args, **kw)
    delta = {}
    for s, b in zip(stats, before):
        delta.update({k: s[k] - b[k] for k in b})
    return on, delta, off


def run_follow_mode(loop, mode: str) -> tuple:
    """(loop()'s values, the change of follow.STATS over the run) with the backward follow
    in `mode`: "follow", "keyed" (follow off: every backward keys its graph) or "emit"
    (replay off: every program emitted). loop reads its values itself, inside the mode."""
    replay.clear()
    before = dict(follow.STATS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(follow, "ENABLED", mode == "follow")
        if mode == "emit":
            patch.setattr(replay, "lookup", lambda walk: None)
        out = loop()
    return out, {k: follow.STATS[k] - before[k] for k in before}


def assert_bitwise(on: list, off: list):
    """The same arrays, element for element and dtype for dtype."""
    assert len(on) == len(off)
    for a, b in zip(on, off):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert np.asarray(a).dtype == np.asarray(b).dtype
