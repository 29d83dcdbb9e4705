"""pytorch/tutorials' two_layer_net_autograd.py step: after `loss.backward()`, the hand-written
update under no_grad (`w -= lr * w.grad; w.grad.zero_()`) replays each in-place op's
template directly (tracer/autograd/inplace.py `_direct`) instead of going through the op's
wrapper. Each loop runs with that path on and off (inplace.DIRECT), and with the backward's
follow and replay off; every step's loss, weights and gradients must be bitwise equal, and
inplace.STATS["direct"] says how many updates took the path. Refusals (grad mode on, a
view of the weight, NumPy memory, an operand that requires grad, positional alpha, a new
learning rate's first call) take the general path with the same results."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.api.capture_check import assert_bitwise, plain_capture  # noqa: F401
from tests.gradcheck import numeric_grad
from tracer import op_memo, step_capture
from tracer.autograd import follow, inplace, replay

pytestmark = pytest.mark.usefixtures("plain_capture")


def _loop(steps: int, sizes=(7, 5, 3), n: int = 4, dtype: str = "float32", read_every=10,
          lr=1e-3, event=None, grad_op: str = "zero") -> list:
    """The tutorial's loop; per step the loss, both gradients (before zeroing) and both
    weights, as NumPy arrays read at the end (a read inside the loop would change what is
    pending). event(t, w1, w2) runs at the start of step t."""
    d, h, o = sizes
    rng = np.random.default_rng(3)
    x = gj.tensor(rng.standard_normal((n, d)), dtype=dtype)
    y = gj.tensor(rng.standard_normal((n, o)), dtype=dtype)
    w1 = gj.tensor(rng.standard_normal((d, h)), dtype=dtype, requires_grad=True)
    w2 = gj.tensor(rng.standard_normal((h, o)), dtype=dtype, requires_grad=True)
    held = []
    for t in range(steps):
        rate = lr(t) if callable(lr) else lr
        if event is not None:
            event(t, w1, w2)
        loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
        if read_every and t % read_every == read_every - 1:
            loss.item()
        loss.backward()
        step = [loss.detach(), w1.grad.clone(), w2.grad.clone()]
        with gj.no_grad():
            w1 -= rate * w1.grad
            w2 -= rate * w2.grad
            if grad_op == "zero":
                w1.grad.zero_()
                w2.grad.zero_()
            else:
                w1.grad.mul_(0.5)
                w2.grad.mul_(0.5)
            # copies, not `w.detach()`: an alias shares w's storage (the update then takes
            # the general path, which refreshes the alias)
            held.append(step + [w1.clone(), w2.clone()])
    return [[a.numpy().copy() for a in step] for step in held]


def _run(mode: str, *args, **kw) -> tuple[list, int]:
    """mode "direct" (the default), "general" (inplace.DIRECT off), "keyed" (also the
    backward's follow off) or "emit" (no backward replay either); (values, updates that
    took _direct)."""
    replay.clear()
    before = inplace.STATS["direct"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inplace, "DIRECT", mode == "direct")
        patch.setattr(follow, "ENABLED", mode in ("direct", "general"))
        if mode == "emit":
            patch.setattr(replay, "lookup", lambda walk: None)
        out = _loop(*args, **kw)
    return out, inplace.STATS["direct"] - before


def _assert_steps_equal(a: list, b: list):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert_bitwise(x, y)


def test_tutorial_loop_bitwise_all_ways():
    """300 steps, the loss read every 10th: the direct updates give the general path's bits,
    and so do the keyed and emitted backwards."""
    direct, taken = _run("direct", 300)
    general, none = _run("general", 300)
    assert none == 0
    _assert_steps_equal(direct, general)
    for mode in ("keyed", "emit"):
        _assert_steps_equal(direct, _run(mode, 300)[0])
    # four updates a step take the path once learnt, except after a read (its cycle is
    # clean, so step capture notes the update: the general path)
    assert 4 * 300 * 0.8 <= taken <= 4 * 300


def test_update_matches_numpy():
    """A step's new weights are w - lr * grad computed in float32 by NumPy."""
    out, _ = _run("direct", 40, read_every=0)
    rng = np.random.default_rng(3)
    rng.standard_normal((4, 7)), rng.standard_normal((4, 3))
    w1 = rng.standard_normal((7, 5)).astype(np.float32)
    w2 = rng.standard_normal((5, 3)).astype(np.float32)
    for step in out:
        w1 = w1 - np.float32(1e-3) * step[1]
        w2 = w2 - np.float32(1e-3) * step[2]
        np.testing.assert_allclose(step[3], w1, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(step[4], w2, rtol=1e-6, atol=1e-6)


def test_mul_grad_and_no_reads():
    """`w.grad.mul_(0.5)` (gradient accumulation with decay) and a loop never read."""
    for kw in ({"grad_op": "mul"}, {"read_every": 0}, {"read_every": 3, "grad_op": "mul"}):
        direct, taken = _run("direct", 60, **kw)
        assert taken > 0
        _assert_steps_equal(direct, _run("general", 60, **kw)[0])
        _assert_steps_equal(direct, _run("keyed", 60, **kw)[0])


def test_changing_learning_rate():
    """A new learning rate each step: a new op-memo key, whose first call learns its
    template on the general path; a repeated one takes _direct again."""
    def schedule(t):
        return 1e-3 / (1 + t // 5)
    direct, taken = _run("direct", 40, lr=schedule)
    assert taken > 0
    _assert_steps_equal(direct, _run("general", 40, lr=schedule)[0])


def test_float64_and_shapes():
    for kw in ({"dtype": "float64"}, {"sizes": (3, 2, 1), "n": 1}, {"sizes": (9, 6, 4)}):
        direct, taken = _run("direct", 30, **kw)
        assert taken > 0
        _assert_steps_equal(direct, _run("general", 30, **kw)[0])


def test_capture_off():
    """Step capture off: no cycle to keep, the updates take _direct on every step."""
    step_capture.ENABLED = False
    step_capture.reset()
    op_memo.clear()
    direct, taken = _run("direct", 30)
    assert taken == 4 * 30 - 4          # (the first step learns each template)
    _assert_steps_equal(direct, _run("general", 30)[0])


def _count_direct(fn) -> int:
    before = inplace.STATS["direct"]
    fn()
    return inplace.STATS["direct"] - before


def _warm_params():
    """A weight that requires grad and a plain gradient-like tensor, the update's templates
    learnt, and the step capture cycle spoiled by a recorded op (as after a forward)."""
    w = gj.tensor(np.arange(6.0).reshape(2, 3), dtype="float32", requires_grad=True)
    g = gj.tensor(np.ones((2, 3)), dtype="float32")
    (w * 2.0).sum()                      # records a node: the cycle is spoiled
    with gj.no_grad():
        w -= 0.5 * g
        g.zero_()
        g += 1.5
        g.mul_(3.0)
        g.div_(2.0)
    (w * 2.0).sum()
    return w, g


def test_refusals_fall_back():
    """Calls _direct leaves to inplace(): the same values and errors."""
    w, g = _warm_params()
    with gj.no_grad():
        assert _count_direct(lambda: w.sub_(0.5 * g)) == 1
        # positional alpha: inplace() (the general path passes it on)
        assert _count_direct(lambda: w.sub_(g, 2.0)) == 0
        assert _count_direct(lambda: w.sub_(g, alpha=2.0)) == 0
        # an operand that requires grad is recorded by the hook (none under no_grad, but
        # the general path decides)
        other = gj.tensor(np.ones((2, 3)), dtype="float32", requires_grad=True)
        assert _count_direct(lambda: w.sub_(other)) == 0
    # grad mode on: PyTorch's leaf error, from the general path
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.sub_(g)
    # a view of w: its storage has members; the general path propagates to the view
    v = w.detach()[0]
    with gj.no_grad():
        assert _count_direct(lambda: w.sub_(g)) == 0
    np.testing.assert_array_equal(v.numpy(), w.detach().numpy()[0])
    # NumPy memory shared with a plain tensor
    p = gj.tensor(np.ones((2, 3)), dtype="float32")
    arr = p.numpy()
    (w * 2.0).sum()
    assert _count_direct(lambda: p.mul_(3.0)) == 0
    np.testing.assert_array_equal(arr, np.full((2, 3), 3.0, np.float32))


def test_value_and_version_as_general_path():
    """One update each way on equal tensors: the same value, version and pending bookkeeping
    (the next read computes the update)."""
    def updated(direct: bool) -> list:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(inplace, "DIRECT", direct)
            w, g = _warm_params()
            version = w._version
            with gj.no_grad():
                taken = _count_direct(lambda: w.sub_(0.25 * g))
                taken += _count_direct(lambda: g.mul_(3.0))
                taken += _count_direct(lambda: g.div_(2.0))
            assert taken == (3 if direct else 0)
            assert w._version == version + 1
            assert w.is_leaf and w.requires_grad and w.grad_fn is None
            return [w.detach().numpy().copy(), g.numpy().copy()]
    assert_bitwise(updated(True), updated(False))


def test_same_ir_text_as_general_path():
    """A Function built over a directly updated value holds the same ops at the same user
    lines as one built over the general path's."""
    def text(direct: bool) -> str:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(inplace, "DIRECT", direct)
            w, g = _warm_params()
            with gj.no_grad():
                w -= 0.125 * g
            return str(gj.make_ir(lambda a: a * w.detach())(np.ones((2, 3), np.float32)))
    assert text(True) == text(False)


def test_memo_cleared_between_steps():
    """op_memo forgets its templates: the next update learns again on the general path."""
    w, g = _warm_params()
    op_memo.clear()
    with gj.no_grad():
        assert _count_direct(lambda: w.sub_(g)) == 0
        assert _count_direct(lambda: w.sub_(g)) == 1


def test_gradients_finite_differences_float64():
    """After 20 directly updated steps, backward's gradients at the current weights match
    float64 central differences of the loss."""
    rng = np.random.default_rng(7)
    xv, yv = rng.standard_normal((4, 5)), rng.standard_normal((4, 2))
    x, y = gj.tensor(xv), gj.tensor(yv)
    w1 = gj.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    w2 = gj.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    before = inplace.STATS["direct"]
    for _ in range(20):
        loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
        loss.backward()
        with gj.no_grad():
            w1 -= 1e-3 * w1.grad
            w2 -= 1e-3 * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
    assert inplace.STATS["direct"] - before > 0
    loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
    loss.backward()
    a, b = w1.detach().numpy().copy(), w2.detach().numpy().copy()

    def f1(v):
        return (np.maximum(xv @ v, 0) @ b - yv).__pow__(2).sum()

    def f2(v):
        return (np.maximum(xv @ a, 0) @ v - yv).__pow__(2).sum()
    np.testing.assert_allclose(w1.grad.numpy(), numeric_grad(f1, a), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(w2.grad.numpy(), numeric_grad(f2, b), rtol=1e-6, atol=1e-6)


@settings(max_examples=12, deadline=None)
@given(d=st.integers(1, 6), h=st.integers(1, 6), o=st.integers(1, 4), n=st.integers(1, 5),
       read_every=st.sampled_from([0, 1, 2, 5]), grad_op=st.sampled_from(["zero", "mul"]),
       dtype=st.sampled_from(["float32", "float64"]))
def test_hypothesis_sizes_and_events(d, h, o, n, read_every, grad_op, dtype):
    kw = dict(sizes=(d, h, o), n=n, read_every=read_every, grad_op=grad_op, dtype=dtype)
    direct, _ = _run("direct", 12, **kw)
    _assert_steps_equal(direct, _run("general", 12, **kw)[0])
    _assert_steps_equal(direct, _run("emit", 12, **kw)[0])


def test_overloaded_node_names_from_template():
    """The node class of an overloaded op (Sub, Pow, Clamp, Sum) is kept per op-memo
    Template (recording._TEMPLATE_CLASSES): a replayed call gets the class node_name gives
    for its own arguments, as its first (learning) call did."""
    from tracer.autograd import recording
    x = gj.tensor(np.linspace(-1.0, 1.0, 6).reshape(2, 3), requires_grad=True)
    lo = gj.tensor(np.zeros((2, 3)))
    calls = [
        ("Sub", lambda: x - 1.0, (x, 1.0), {}), ("Sub", lambda: 1.0 - x, (1.0, x), {}),
        ("Sub", lambda: x - x, (x, x), {}),
        ("Pow", lambda: x.pow(2), (x, 2), {}), ("Pow", lambda: x.pow(x), (x, x), {}),
        ("Pow", lambda: 2.0 ** x, (2.0, x), {}),
        ("Clamp", lambda: x.clamp(min=0), (x,), {"min": 0}),
        ("Clamp", lambda: x.clamp(min=lo), (x,), {"min": lo}),
        ("Sum", lambda: x.sum(), (x,), {}), ("Sum", lambda: x.sum(1), (x, 1), {}),
        ("Sum", lambda: x.sum(dim=(0, 1)), (x,), {"dim": (0, 1)}),
    ]
    recording._TEMPLATE_CLASSES.clear()
    cached = [[type(call().grad_fn).__name__ for _ in range(3)] for _, call, _, _ in calls]
    assert len(recording._TEMPLATE_CLASSES) >= 8      # the replayed calls took the table
    original = recording._overload_class
    with pytest.MonkeyPatch.context() as patch:      # each call's class from its arguments
        patch.setattr(recording, "_overload_class",
                      lambda name, a, k, replayed, result: original(name, a, k, None, result))
        general = [type(call().grad_fn).__name__ for _, call, _, _ in calls]
    for (name, _, args, kwargs), names, want in zip(calls, cached, general):
        assert want == recording.node_name(name, args, kwargs)
        assert names == [want] * 3, (name, names, want)
    assert len(set(general)) == 9                    # (the overloads told apart)


def _grad_reads_hidden_loop(steps: int, bad_steps: set) -> list:
    """The tutorial's loop where, on bad_steps, w1's old .grad gets a no_grad term computed
    from this step's hidden activation (a node output) before backward: the next backward's
    pending old .grad reads an output of its own graph."""
    rng = np.random.default_rng(5)
    x = gj.tensor(rng.standard_normal((4, 6)), dtype="float32")
    y = gj.tensor(rng.standard_normal((4, 2)), dtype="float32")
    w1 = gj.tensor(rng.standard_normal((6, 3)), dtype="float32", requires_grad=True)
    w2 = gj.tensor(rng.standard_normal((3, 2)), dtype="float32", requires_grad=True)
    out = []
    for t in range(steps):
        hidden = x.mm(w1).clamp(min=0)
        loss = (hidden.mm(w2) - y).pow(2).sum()
        if t in bad_steps and w1.grad is not None:
            with gj.no_grad():
                w1.grad.add_(hidden.detach().sum() * 1e-3)
        loss.backward()
        out.append([loss.detach(), w1.grad.clone(), w2.grad.clone()])
        with gj.no_grad():
            for w in (w1, w2):
                w -= 1e-3 * w.grad
                w.grad.zero_()
            out[-1] += [w1.clone(), w2.clone()]
    return [[a.numpy().copy() for a in step] for step in out]


def test_pending_grad_reading_a_node_output_is_refused(monkeypatch):
    """follow._pending_walk looks for node outputs only among recorded Exprs (every node
    output is one): a pending old .grad that reads the graph's own hidden activation is
    still refused (and keyed, with the same values as follow off)."""
    reasons = []
    monkeypatch.setattr(follow.log, "info", reasons.append)
    monkeypatch.setattr(follow, "logging_enabled", lambda: True)
    replay.clear()
    before = dict(follow.STATS)
    on = _grad_reads_hidden_loop(12, {6, 9})
    delta = {k: follow.STATS[k] - before[k] for k in before}
    assert delta["refused"] >= 2 and delta["followed"] >= 5
    assert "a pending input is or reads a node's output" in "\n".join(reasons)
    replay.clear()
    monkeypatch.setattr(follow, "ENABLED", False)
    _assert_steps_equal(on, _grad_reads_hidden_loop(12, {6, 9}))
