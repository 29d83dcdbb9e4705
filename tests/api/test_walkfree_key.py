"""The walk-free backward key (tracer/autograd/node_walk.py): a node whose ops were replayed
from an op_memo Template is keyed by that Template at its outputs, not Expr by Expr.

Every step of a loop whose steps change in the ways users change them is run three ways:
walk-free keys on, off (the whole walk, as before), and backward replay off (every program
emitted from scratch); all three are compared bitwise after every step. Counters say which
nodes were keyed by their Template and which were ruled out (an in-place op that rewrote a
node's output, interior values computed by bounded.py's op-by-op tier)."""

import gc

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.gradcheck import numeric_grad
from tracer import bounded, op_memo
from tracer.autograd import follow, node_walk, replay
from tracer.tensor import run_function


@pytest.fixture(autouse=True)
def _keyed_backward(monkeypatch):
    """These tests count the key's walks: every backward keys its graph (follow.py, which
    skips the key for a repeated shape, has tests of its own: test_backward_follow.py)."""
    monkeypatch.setattr(follow, "ENABLED", False)

EVENTS = ("plain", "batch", "freeze", "hook", "retain", "accumulate", "read_inner",
          "inplace_out", "inplace_cast", "zero_keep", "pieces")


def _loop(events: list, mode: str, sizes=(3, 5), hidden: int = 6) -> list:
    """One step per event; mode "walkfree", "walk" (template keys off) or "emit" (no replay).
    Returns the loss, parameters and gradients after each step."""
    replay.clear()
    # an earlier test's dead tensors with a pending in-place update (kept by reference
    # cycles until collected) would be computed along with the first backward: its key
    gc.collect()
    with pytest.MonkeyPatch.context() as patch:
        if mode != "walkfree":
            patch.setattr(node_walk, "add_stops", lambda *args: False)
        if mode == "emit":
            patch.setattr(replay, "lookup", lambda walk: None)
        return _steps(events, sizes, hidden)


def _steps(events: list, sizes, hidden: int) -> list:
    rng = np.random.default_rng(0)
    w1 = gj.tensor((rng.standard_normal((4, hidden)) * 0.5).astype(np.float32),
                   requires_grad=True)
    b1 = gj.tensor(np.zeros(hidden, np.float32), requires_grad=True)
    w2 = gj.tensor((rng.standard_normal((3, hidden)) * 0.5).astype(np.float32),
                   requires_grad=True)
    xs = {n: gj.tensor(rng.standard_normal((n, 4)).astype(np.float32)) for n in sizes}
    ys = {n: gj.tensor(rng.integers(0, 3, n)) for n in sizes}
    opt = gj.optim.SGD([w1, b1, w2], lr=0.05, momentum=0.9)
    out = []
    for ev in events:
        n = sizes[1] if ev == "batch" else sizes[0]
        x, y = xs[n], ys[n]
        b1.requires_grad_(ev != "freeze")
        if ev == "zero_keep":
            opt.zero_grad(set_to_none=False)
        elif ev != "accumulate":
            opt.zero_grad()

        def loss_of(x=x, y=y, ev=ev):
            h = (x @ w1 + b1).relu()
            if ev == "hook":
                h.register_hook(lambda g: g * 0.5)
            if ev == "read_inner":
                h.sum().item()               # realises h: a node output now holds data
            logits = gj.nn.functional.linear(h, w2)
            if ev == "inplace_out":
                logits.mul_(2.0)             # adopts the Mul node; the linear's is intact
            if ev == "inplace_cast":         # f32 * f64 cast back: the Mul node's output
                logits.mul_(gj.tensor(np.full(3, 2.0)))         # is the cast, not its own
            return gj.nn.functional.cross_entropy(logits, y)
        loss = loss_of()
        if ev == "pieces":      # bounded.py's op-by-op tier: interiors hold data, keep ops
            bounded.compute_in_pieces([loss._expr], run_function)
        if ev == "retain":
            loss.backward(retain_graph=True)
            loss.backward()
        elif ev == "accumulate":
            loss.backward()
            loss_of().backward()
        else:
            loss.backward()
        grads = [None if p.grad is None else p.grad.numpy().copy() for p in (w1, b1, w2)]
        opt.step()
        out.append((loss.item(), [p.detach().numpy().copy() for p in (w1, b1, w2)], grads))
    return out


def _assert_same(a: list, b: list):
    assert len(a) == len(b)
    for (la, pa, ga), (lb, pb, gb) in zip(a, b):
        assert la == lb
        for x, y in zip(pa + ga, pb + gb):
            assert (x is None) == (y is None)
            if x is not None:
                np.testing.assert_array_equal(x, y)


def _stats() -> dict:
    return dict(node_walk.STATS) | {"hits": replay.STATS["hits"]}


def _delta(before: dict) -> dict:
    now = _stats()
    return {k: now[k] - before[k] for k in now}


def test_plain_steps_are_keyed_by_their_templates_and_replay():
    """linear/relu/matmul/cross_entropy nodes all come from templates: every step's key
    stops at the node outputs, and steps 2.. replay the program of step 1."""
    op_memo.clear()              # the first step runs the op bodies: keyed the same way
    before = _stats()
    walkfree = _loop(["plain"] * 4, "walkfree")
    d = _delta(before)
    assert d["keys"] == 4 and d["ruled_out"] == 0 and d["hits"] == 3
    assert d["nodes"] == 4 * 6       # per step: mm, add, relu, t and mm (linear without a
    #                                  bias), cross_entropy (NllLossBackward0)
    _assert_same(walkfree, _loop(["plain"] * 4, "walk"))
    _assert_same(walkfree, _loop(["plain"] * 4, "emit"))


# (template nodes ruled out, replays) of the steps plain, plain, <event>, plain
EXPECTED = {
    "batch": (0, 2),         # a new shape: new templates, a new structure; step 4 replays
    "freeze": (0, 2),        # b1 without grad: the add has another edge; unfrozen: replays
    "hook": (0, 2),          # a tensor hook: that step does not replay
    "retain": (0, 3),        # the first call replays, the second folds the old .grad in
    "accumulate": (0, 3),    # the second backward folds the old .grads in: a new key
    "read_inner": (0, 2),    # h holds data: another structure (the relu's output)
    "inplace_out": (0, 2),   # mul_ adopts its own node, whose output is the template's
    "inplace_cast": (1, 2),  # the adopted Mul node's output is the cast: walked as before
    "zero_keep": (0, 2),     # zeroed .grads are folded in: a new key
    "pieces": (6, 2),        # interiors computed op by op: every node walked as before
}


@pytest.mark.parametrize("ev", sorted(EXPECTED))
def test_each_change_is_bitwise_the_slow_paths_result(ev):
    events = ["plain", "plain", ev, "plain"]
    before = _stats()
    walkfree = _loop(events, "walkfree")
    d = _delta(before)
    assert (d["ruled_out"], d["hits"]) == EXPECTED[ev]
    _assert_same(walkfree, _loop(events, "walk"))
    _assert_same(walkfree, _loop(events, "emit"))


@settings(max_examples=10, deadline=None)
@given(st.lists(st.sampled_from(EVENTS), min_size=2, max_size=6),
       st.tuples(st.integers(1, 7), st.integers(1, 7)), st.integers(1, 9))
def test_steps_with_random_changes_and_shapes_equal_the_slow_paths(events, sizes, hidden):
    events = ["plain"] + events
    walkfree = _loop(events, "walkfree", sizes, hidden)
    _assert_same(walkfree, _loop(events, "walk", sizes, hidden))
    _assert_same(walkfree, _loop(events, "emit", sizes, hidden))


def test_replayed_gradients_match_finite_differences_f64():
    """A replayed walk-free step's gradients against float64 central differences."""
    rng = np.random.default_rng(1)
    w = gj.tensor(rng.standard_normal((5, 3)), dtype=gj.float64, requires_grad=True)
    b = gj.tensor(rng.standard_normal(3), dtype=gj.float64, requires_grad=True)
    x = gj.tensor(rng.standard_normal((4, 5)), dtype=gj.float64)
    y = gj.tensor(np.array([0, 2, 1, 2]))

    def loss_np(wv, bv):
        z = np.maximum(x.numpy() @ wv + bv, 0) * 1.5
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -logp[np.arange(4), y.numpy()].mean()

    before = _stats()
    for _ in range(3):
        w.grad = b.grad = None
        loss = gj.nn.functional.cross_entropy((x @ w + b).relu() * 1.5, y)
        loss.backward()
    d = _delta(before)
    assert d["hits"] == 2 and d["keys"] == 3
    wv, bv = w.detach().numpy().copy(), b.detach().numpy().copy()
    np.testing.assert_allclose(w.grad.numpy(), numeric_grad(lambda a: loss_np(a, bv), wv),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(b.grad.numpy(), numeric_grad(lambda a: loss_np(wv, a), bv),
                               rtol=1e-6, atol=1e-8)


def test_a_node_whose_body_ran_is_keyed_as_its_replays():
    """The first call of an op key runs the body and records the Template: its node gets
    the Template too, so the first and the second step have one structure."""
    op_memo.clear()
    before = _stats()
    _loop(["plain", "plain"], "walkfree")
    d = _delta(before)
    assert d["keys"] == 2 and d["hits"] == 1


def test_gradjit_log_says_why_a_node_is_walked_value_by_value(gradjit_env, caplog):
    gradjit_env("GRADJIT_LOG", "1")
    with caplog.at_level("INFO"):
        _loop(["plain", "inplace_cast", "pieces"], "walkfree")
    text = caplog.text
    assert "MulBackward0 walked value by value: an in-place op rewrote its output" in text
    assert "walked value by value: values inside it were computed op by op" in text


# memoised ops (op_memo.OPS) and others (views, softmax, tanh), chained on a (4, 4) value
CHAIN_OPS = {
    "relu": lambda h, w: h.relu(),
    "scale": lambda h, w: h * 2.0,
    "rsub": lambda h, w: 1.0 - h,
    "addw": lambda h, w: h + w,
    "mulw": lambda h, w: h * w,
    "divw": lambda h, w: h / (w * w + 1.0),
    "pow": lambda h, w: h.pow(2),
    "clamp": lambda h, w: h.clamp(min=-0.5, max=0.7),
    "mm": lambda h, w: h @ w,
    "t": lambda h, w: h.t(),
    "linear": lambda h, w: gj.nn.functional.linear(h, w),
    "squeeze": lambda h, w: h.unsqueeze(0).squeeze(0),
    "view": lambda h, w: h.reshape(2, 8).reshape(4, 4),
    "softmax": lambda h, w: h.softmax(dim=1),
    "tanh": lambda h, w: h.tanh(),
    "same_twice": lambda h, w: h * h,
    "inplace": lambda h, w: (h * 1.0).mul_(1.5),     # (h's op may have saved h)
}


def _chain_steps(names: list, steps: int) -> list:
    rng = np.random.default_rng(3)
    w = gj.tensor(rng.standard_normal((4, 4)), dtype=gj.float64, requires_grad=True)
    x = gj.tensor(rng.standard_normal((4, 4)), dtype=gj.float64)
    out = []
    for _ in range(steps):
        w.grad = None
        h = x * w
        for n in names:
            h = CHAIN_OPS[n](h, w)
        loss = gj.nn.functional.mse_loss(h, x) + h.sum(dim=0).mean()
        loss.backward()
        out.append((loss.item(), [w.detach().numpy().copy()], [w.grad.numpy().copy()]))
        with gj.no_grad():
            w -= 0.01 * w.grad
    return out


def _chain(names: list, mode: str, steps: int = 4) -> list:
    replay.clear()
    with pytest.MonkeyPatch.context() as patch:
        if mode != "walkfree":
            patch.setattr(node_walk, "add_stops", lambda *args: False)
        if mode == "emit":
            patch.setattr(replay, "lookup", lambda walk: None)
        return _chain_steps(names, steps)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from(sorted(CHAIN_OPS)), min_size=1, max_size=6))
def test_chains_of_memoised_and_other_ops_equal_the_slow_paths(names):
    """Template nodes between views, non-memoised ops and in-place ops: every step bitwise
    the whole walk's and the emitted program's. Step 2 is a new structure (w's update is
    pending in it), steps 3 and 4 replay it."""
    before = _stats()
    walkfree = _chain(names, "walkfree")
    assert _delta(before)["hits"] == 2
    for other in (_chain(names, "walk"), _chain(names, "emit")):
        for (la, pa, ga), (lb, pb, gb) in zip(walkfree, other, strict=True):
            # (bitwise, NaN included: a chain of pow and products may overflow)
            for a, b in zip([la] + pa + ga, [lb] + pb + gb):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
