"""`w -= lr * g` on a tensor whose views all died (two_layer_net_tensor.py's `w2 -= ...` after
the step's `w2.t()`): the followed update is taken straight from the method
(inplace._followed_method) and then runs views.propagate, inplace()'s last step for a
shared storage (which for a root alone only moves the root value). Bitwise capture off
(VERIFY on), the counter shows the path; a live view, a view written through, or the update
of a view (not a root) go through inplace() with the same values and versions."""
import numpy as np
import pytest

import gradjit as gj
from tests.api.capture_check import assert_bitwise, run_off_and_on, verified_capture  # noqa: F401
from tests.api.test_step_capture_views import tutorial_loop
from tracer.autograd import inplace

pytestmark = pytest.mark.usefixtures("verified_capture")
SHAPE = (16, 40, 12, 3)


def _roots(loop, *args, **kw):
    before = inplace.STATS["followed_roots"]
    on, delta, off = run_off_and_on(loop, *args, **kw)
    assert_bitwise(on, off)
    return inplace.STATS["followed_roots"] - before, delta


def test_the_tutorials_updates_after_dead_views_are_followed():
    roots, delta = _roots(tutorial_loop, 20, SHAPE)
    assert roots >= 15 and delta["reads"] >= 15


def _loop(steps: int, how: str):
    """w updated each step after views of it died; from step 8, `how` keeps a view alive
    over the update, writes through a view, or updates a view instead of the root."""
    rng = np.random.default_rng(0)
    x = gj.tensor(rng.standard_normal((3, 4)).astype(np.float32))
    w = gj.tensor(rng.standard_normal((4, 3)).astype(np.float32))
    out = []
    kept = None
    for t in range(steps):
        late = t >= 8
        g = x.mm(w) + w.t().sum()
        if late and how == "live":
            kept = w.t()
        elif late and how == "through":
            v = w.t()
            v[0] = v[0] * 1.0
            del v
        out.append(g.sum().item())
        if late and how == "view":
            v = w.view(12)
            v -= 0.01 * g.sum()
            del v
        else:
            w -= 0.01 * g.sum()
        out.append(w._version)
        if kept is not None:
            out.append(kept.numpy().copy())
    return out + [w.numpy().copy()]


@pytest.mark.parametrize("how", ["plain", "live", "through", "view"])
def test_other_updates_take_inplace_with_the_same_values(how):
    roots, _ = _roots(_loop, 14, how)
    if how == "plain":
        assert roots >= 8
    else:
        assert roots <= 6                    # (only before step 8)


def test_a_followed_root_update_keeps_later_views_right():
    """After a followed root update, a new view shares the new version and value."""
    def loop(steps):
        w = gj.tensor(np.linspace(0.0, 1.0, 6, dtype=np.float32).reshape(2, 3))
        out = []
        for _ in range(steps):
            g = (w.t() * 2.0).sum()
            out.append(g.item())
            w -= 0.1 * g
            v = w.t()
            out += [v._version, w._version]
            del v
        v = w.t()
        return out + [v.numpy().copy(), w.numpy().copy()]
    roots, _ = _roots(loop, 12)
    assert roots >= 5
    on = loop(12)
    np.testing.assert_array_equal(on[-2], on[-1].T)
    assert on[-3] == on[-4] == 12
