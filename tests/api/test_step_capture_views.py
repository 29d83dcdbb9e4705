"""Whole-step capture of pytorch/tutorials' two_layer_net_tensor.py: a step with views
(`t()`), `clone`, a comparison and a mask fill (`grad_h[h < 0] = 0`) follows a tape
(tracer/step_capture.py, step_follow.py). A followed view joins its base's storage as the
views hook does; the read computes along the values a Tensor held when the tape was learnt
(`h = x.mm(w1)`). Every value is bitwise the one of the same loop with capture off (and
with no op memo at all), the counters say which path ran, and each change of the step
(a changed shape, a view of another base, an in-place op on a view, a live view of an
updated tensor, an index whose values are read, a hook, an operand requiring grad) falls
back with the same values."""

import logging

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.api.capture_check import (assert_bitwise, run_off_and_on,  # noqa: F401
                                     verified_capture)
from tracer import op_memo, record, step_capture

CHANGE_AT = 8           # the tape is followed from step 3 or 4 on; changes come later


pytestmark = pytest.mark.usefixtures("verified_capture")


def _data(shape: tuple, dtype, seed: int):
    n, d_in, h, d_out = shape
    rng = np.random.default_rng(seed)
    np_dtype = np.float64 if dtype is gj.float64 else np.float32
    return [rng.standard_normal(s).astype(np_dtype)
            for s in ((n, d_in), (n, d_out), (d_in, h), (h, d_out))]


def tutorial_loop(steps: int, shape=(64, 1000, 100, 10), dtype=gj.float32, seed: int = 0,
                  change=None, lr: float = 1e-6) -> list:
    """two_layer_net_tensor.py's loop as written there (change(t, env) may alter step t):
    the losses read by .item(), then w1 and w2."""
    arrays = _data(shape, dtype, seed)
    x, y, w1, w2 = [gj.tensor(a, dtype=dtype) for a in arrays]
    env = {"x": x, "y": y, "view": lambda t: t.t(), "extra": None}
    losses = []
    for t in range(steps):
        if change is not None:
            change(t, env)
        x, y, view = env["x"], env["y"], env["view"]
        # Forward pass: compute predicted y
        h = x.mm(w1)
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(w2)
        # Compute and print loss
        loss = (y_pred - y).pow(2).sum().item()
        losses.append(loss)
        # Backprop to compute gradients of w1 and w2 with respect to loss
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = view(h_relu).mm(grad_y_pred)
        grad_h_relu = grad_y_pred.mm(w2.t())
        grad_h = grad_h_relu.clone()
        grad_h[h < 0] = 0
        grad_w1 = x.t().mm(grad_h)
        if env["extra"] is not None:
            env["extra"](t, env, w1, w2, grad_h)
        # Update weights using gradient descent
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
    return losses + [w1.detach().numpy().copy(), w2.detach().numpy().copy()]


def numpy_loop(steps: int, shape, seed: int, lr: float = 1e-6) -> list:
    """The same loop in NumPy float64 (the reference semantics)."""
    x, y, w1, w2 = [a.astype(np.float64) for a in _data(shape, gj.float64, seed)]
    losses = []
    for _ in range(steps):
        h = x @ w1
        h_relu = np.maximum(h, 0)
        y_pred = h_relu @ w2
        losses.append(float(((y_pred - y) ** 2).sum()))
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.T @ grad_y_pred
        grad_h = (grad_y_pred @ w2.T).copy()
        grad_h[h < 0] = 0
        grad_w1 = x.T @ grad_h
        w1 = w1 - lr * grad_w1
        w2 = w2 - lr * grad_w2
    return losses + [w1, w2]


def run_both(steps: int, **kw):
    """(values with capture on, the counters' changes, values with capture off)."""
    return run_off_and_on(tutorial_loop, steps, **kw)


SMALL = (8, 12, 6, 3)


def test_the_tutorial_loop_follows_a_tape_bitwise_as_capture_off():
    steps = 300
    on, delta, off = run_both(steps)
    assert_bitwise(on, off)
    # one tape, learnt within the first reads; every later read runs it (the last .numpy()
    # is another read)
    assert delta["tapes"] == 1 and delta["breaks"] == 1
    assert delta["reads"] >= steps - 6
    assert delta["calls"] >= 21 * (steps - 6)


def test_the_tutorial_loop_equals_no_op_memo_at_all():
    """clone, the comparison and the mask fill's where form replayed from templates give
    the values of their bodies run every call."""
    key_of = op_memo.key_of
    op_memo.key_of = lambda fn, a, k: None
    try:
        step_capture.ENABLED = False
        plain = tutorial_loop(30, SMALL, lr=1e-3)
    finally:
        op_memo.key_of = key_of
    step_capture.ENABLED = True
    step_capture.reset()
    assert_bitwise(tutorial_loop(30, SMALL, lr=1e-3), plain)
    memoised = {getattr(k[0], "__name__", "") for k in op_memo._MEMO
                if op_memo.template(k) is not None}
    assert {"clone", "lt", "_index_put", "t"} <= memoised


def test_the_tutorial_loop_in_float64_matches_numpy():
    shape = (16, 40, 20, 5)
    got = tutorial_loop(200, shape, gj.float64, seed=3, lr=1e-4)
    want = numpy_loop(200, shape, seed=3, lr=1e-4)
    assert want[-3] < want[0] / 2 and np.isfinite(want[-3])
    assert step_capture.STATS["reads"] > 0
    np.testing.assert_allclose(got[:200], want[:200], rtol=1e-10)
    for a, b in zip(got[200:], want[200:]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 9), d_in=st.integers(1, 12), h=st.integers(1, 9),
       d_out=st.integers(1, 5), f64=st.booleans(), seed=st.integers(0, 3))
def test_random_shapes_follow_bitwise(n, d_in, h, d_out, f64, seed):
    step_capture.reset()
    dtype = gj.float64 if f64 else gj.float32
    on, delta, off = run_both(10, shape=(n, d_in, h, d_out), dtype=dtype, seed=seed,
                              lr=1e-3)
    assert_bitwise(on, off)
    assert delta["tapes"] == 1 and delta["reads"] >= 5


def test_a_followed_view_shares_its_base_storage():
    seen = {}

    def extra(t, env, w1, w2, grad_h):
        v = w2.t()                       # followed from the tape on (the step's w2.t())
        if t == CHANGE_AT:
            seen["version"] = (w2._version, v._version)
            seen["same_storage"] = v._storage is w2._storage

    def change(t, env):
        env["extra"] = extra
    on, delta, off = run_both(CHANGE_AT + 3, shape=SMALL, change=change, lr=1e-3)
    assert_bitwise(on, off)
    assert delta["reads"] >= CHANGE_AT - 3
    assert seen["same_storage"] and seen["version"][0] == seen["version"][1]


def _break_at(make):
    """A change from step CHANGE_AT on, made by make(env) (env: the loop's)."""
    def change(t, env):
        if t == CHANGE_AT:
            make(env)
    return change


def _shape_change(env):
    env["x"] = gj.cat([env["x"], env["x"]])          # another batch size
    env["y"] = gj.cat([env["y"], env["y"]])


def _view_of_another_base(env):
    env["view"] = lambda t: (t * 1.0).t()            # a view of a value made elsewhere


def _inplace_on_a_view(env):
    def extra(t, env, w1, w2, grad_h):
        grad_h.t().mul_(1.5)                         # written through a view (CopySlices)
    env["extra"] = extra


def _live_view_of_an_updated_tensor(env):
    def extra(t, env, w1, w2, grad_h):
        env["kept"] = w2.t()                         # alive while w2 is updated: refreshed
    env["extra"] = extra


def _index_read(env):
    def extra(t, env, w1, w2, grad_h):
        grad_h[gj.tensor([0])] = 0.5                 # its positions are read: no template
    env["extra"] = extra


def _operand_requires_grad(env):
    env["x"] = env["x"].detach().requires_grad_()


@pytest.mark.parametrize("make", [_shape_change, _view_of_another_base, _inplace_on_a_view,
                                  _live_view_of_an_updated_tensor, _index_read,
                                  _operand_requires_grad])
def test_each_change_of_the_step_falls_back_with_the_same_values(make):
    steps = CHANGE_AT + 6
    on, delta, off = run_both(steps, shape=SMALL, change=_break_at(make), lr=1e-3)
    assert_bitwise(on, off)
    assert delta["reads"] >= CHANGE_AT - 5 and delta["breaks"] >= 1
    # nothing after the change runs from the first tape unless a new one was learnt
    assert delta["reads"] <= steps - 3


def test_a_live_view_sees_the_update_of_its_base():
    kept = {}

    def make(env):
        def extra(t, env, w1, w2, grad_h):
            kept["w2"], kept["view"] = w2, w2.t()
        env["extra"] = extra
    tutorial_loop(CHANGE_AT + 2, SMALL, change=_break_at(make), lr=1e-3)
    np.testing.assert_array_equal(kept["view"].numpy(), kept["w2"].numpy().T)


def test_an_index_whose_values_are_read_stays_refused():
    x = gj.ones(4, 3)
    for _ in range(3):
        x[gj.tensor([1, 2])] = 2.0
    refused = [k for k in op_memo._MEMO if getattr(k[0], "__name__", "") == "_index_put"
               and op_memo.template(k) is None]
    assert refused
    want = np.ones((4, 3), dtype=np.float32)
    want[[1, 2]] = 2.0
    np.testing.assert_array_equal(x.numpy(), want)


def test_a_mask_fill_with_a_tensor_value_is_memoised_and_exact():
    rng = np.random.default_rng(1)
    a, v = rng.standard_normal((5, 4)), rng.standard_normal(4)
    for _ in range(3):
        x = gj.tensor(a)
        x[x[:, 0] < 0] = gj.tensor(v)
    want = a.copy()
    want[want[:, 0] < 0] = v
    np.testing.assert_array_equal(x.numpy(), want)
    keys = [k for k in op_memo._MEMO if getattr(k[0], "__name__", "") == "_index_put"
            and op_memo.template(k) is not None]
    assert keys


def test_a_view_op_with_another_hook_is_not_followed():
    """A second hook that wants only ops with grad (record.GRAD_HOOKS) would still be called
    for view ops on the general path, and a followed call skips the hooks: not followed."""
    seen = []

    def hook(name, saves, args, kwargs, result):
        seen.append(name)
        return result
    record.op_hooks.append(hook)
    record.GRAD_HOOKS[hook] = frozenset()
    try:
        on, delta, off = run_both(CHANGE_AT, shape=SMALL, lr=1e-3)
    finally:
        record.op_hooks.remove(hook)
        del record.GRAD_HOOKS[hook]
    assert_bitwise(on, off)
    assert delta["tapes"] == 0 and delta["reads"] == 0
    assert seen.count("T") == 2 * 3 * CHANGE_AT         # every t() of both runs


def _views_loop(steps: int) -> list:
    """A no-grad loop through each memoised view op (view, permute, split, transpose,
    squeeze, t), its views of w dropped before w is updated (a live one is refreshed: not a
    step event)."""
    rng = np.random.default_rng(5)
    w = gj.tensor(rng.standard_normal((4, 6)).astype(np.float32))
    x = gj.tensor(rng.standard_normal((3, 4)).astype(np.float32))
    out = []
    for _ in range(steps):
        a, b = w.view(2, 12).permute(1, 0).split(6)
        g = x.mm(w).transpose(0, 1).unsqueeze(0).squeeze(0).t()
        out.append((a.sum() + b.sum() + g.sum()).item())
        del a, b
        w -= 0.01 * x.t().mm(g)
    return out + [w.numpy().copy()]


def test_each_view_op_is_followed_bitwise():
    step_capture.ENABLED = False
    off = _views_loop(12)
    step_capture.ENABLED = True
    step_capture.reset()
    before = dict(step_capture.STATS)
    on = _views_loop(12)
    assert_bitwise(on, off)
    assert step_capture.STATS["reads"] - before["reads"] >= 6


def _held_loop(steps: int, drop_from: int, held: list) -> list:
    """A product large enough to be computed along while a Tensor holds it at the read
    (realize_plans.held); from step drop_from on nothing holds it at the read. held gets
    how many held values the tape followed before then computes along."""
    rng = np.random.default_rng(7)
    a = gj.tensor(rng.standard_normal((128, 128)).astype(np.float32))
    w = gj.tensor(rng.standard_normal((128, 128)).astype(np.float32) / 64)
    out = []
    for t in range(steps):
        p = a.mm(w)
        loss = p.clamp(min=0).sum()
        if t >= drop_from:
            del p
        if t == drop_from - 1 and step_capture.tls.s.tape is not None:
            held.append(step_capture.tls.s.tape.held)
        out.append(loss.item())
        w -= 1e-4 * w.clamp(min=0)
    return out + [w.numpy().copy()]


def test_a_held_product_no_longer_held_gives_the_same_values():
    step_capture.ENABLED = False
    off = _held_loop(CHANGE_AT + 4, CHANGE_AT, [])
    step_capture.ENABLED = True
    step_capture.reset()
    before = dict(step_capture.STATS)
    held = []
    on = _held_loop(CHANGE_AT + 4, CHANGE_AT, held)
    assert_bitwise(on, off)
    assert held == [1]
    assert step_capture.STATS["reads"] - before["reads"] >= CHANGE_AT - 4


def test_gradjit_log_says_once_why_a_step_is_not_captured(gradjit_env, caplog):
    gradjit_env("GRADJIT_LOG", "1")
    caplog.set_level(logging.INFO, logger="gradjit")

    def make(env):
        def extra(t, env, w1, w2, grad_h):
            env["kept"] = w2.t()                     # refreshed by w2's update: AsStrided
        env["extra"] = extra
    tutorial_loop(CHANGE_AT + 4, SMALL, change=_break_at(make), lr=1e-3)
    assert caplog.text.count("step capture: this step is not captured: AsStrided") == 1
    assert "step capture: a step of 21 calls repeats" in caplog.text
