"""A followed backward() whose inputs or old .grads are still pending (follow.py's pending
slots): pytorch/tutorials' two_layer_net_autograd.py updates its weights by hand under
no_grad (`w -= lr * w.grad; w.grad.zero_()`), so the next backward finds each weight and
each .grad pending. Each loop runs three ways (follow on, follow off: every backward keyed,
replay off: every program emitted); every step's loss, weights and gradients are compared
bitwise, and follow.STATS says how many backward calls were followed with pending slots and
how many were refused. float64 finite differences check a followed step's gradients."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.api.capture_check import run_follow_mode
from tests.gradcheck import numeric_grad
from tracer.autograd import follow


def _run(events: list, mode: str, **kw) -> tuple[list, dict]:
    """mode "follow", "keyed" or "emit" (capture_check.run_follow_mode); (per-step values
    as arrays, follow.STATS delta)."""
    # read inside the mode: a read during the loop would compute the pending updates
    return run_follow_mode(
        lambda: [[t.numpy().copy() for t in step] for step in _steps(events, **kw)], mode)


def _steps(events: list, sizes=(5, 4, 3), n: int = 6, dtype: str = "float32",
           grad_op: str = "zero") -> list:
    """The tutorial's loop; events change one step each. Returns per step the Tensors
    (the loss, the gradients, the weights after the update) to read at the end."""
    d, h, o = sizes
    rng = np.random.default_rng(1)
    x = gj.tensor(rng.standard_normal((n, d)), dtype=dtype)
    y = gj.tensor(rng.standard_normal((n, o)), dtype=dtype)
    base = gj.tensor(rng.standard_normal((n, d)), dtype=dtype)
    w1 = gj.tensor(rng.standard_normal((d, h)) * 0.5, dtype=dtype, requires_grad=True)
    w2 = gj.tensor(rng.standard_normal((h, o)) * 0.5, dtype=dtype, requires_grad=True)
    shared = gj.tensor(rng.standard_normal((d, h)), dtype=dtype)
    other = gj.tensor(np.zeros(3), dtype=dtype)
    held = []
    for ev in events:
        inp = x
        if ev in ("no_grad_input", "no_grad_input_always"):
            with gj.no_grad():
                inp = base * 1.5                   # pending, computed by the backward
        hidden = inp.mm(w1).clamp(min=0)
        if ev == "detached":
            hidden = hidden + hidden.detach() * 0.0
        if ev == "hook":
            hidden.register_hook(lambda g: g * 0.5)
        loss = (hidden.mm(w2) - y).pow(2).sum()
        if ev == "read":
            loss.item()
        if ev == "read_weight":
            w1.detach().numpy()                    # computes w1's pending update
        loss.backward()
        step = [loss.detach(), w1.grad.clone(), w2.grad.clone()]
        with gj.no_grad():
            lr = 2e-3 if ev == "lr" else 1e-3
            for w in ([w2, w1] if ev == "swap" else [w1, w2]):
                if (ev == "shared" and w is w1) or ev == "shared_both":
                    w -= lr * shared               # read by one update, or by both
                if ev == "reads_input" and w is w1:
                    w -= lr * x                    # the forward's input
                w -= lr * w.grad
                if grad_op == "zero":
                    w.grad.zero_()
                else:
                    w.grad.mul_(0.5)               # a pending .grad that reads data
            if ev == "outside":
                other += 1.0                       # updated in place, not in the graph
            # copies: a detached weight shares its storage, so it would show the last value
            held.append(step + [w1.detach().clone(), w2.detach().clone()])
    return held


def _same(a: list, b: list):
    assert len(a) == len(b)
    for sa, sb in zip(a, b):
        for x, y in zip(sa, sb):
            np.testing.assert_array_equal(x, y)


def _three_ways(events: list, **kw) -> dict:
    followed, stats = _run(events, "follow", **kw)
    _same(followed, _run(events, "keyed", **kw)[0])
    _same(followed, _run(events, "emit", **kw)[0])
    return stats


def test_the_tutorial_loop_is_followed_with_pending_weights_and_grads():
    """Step 1 finds no .grad, step 2 pending weights and zeroed .grads (a new structure),
    step 3 replays by key and keeps the shape, steps 4.. follow it with 4 pending slots."""
    stats = _three_ways(["plain"] * 10)
    assert stats["learnt"] == 1 and stats["refused"] == 0
    assert stats["followed"] == 10 - 3 and stats["pending"] == 10 - 3


def test_a_scaled_grad_is_a_pending_slot_whose_array_the_program_reads():
    """`w.grad.mul_(0.5)` leaves the old gradient's array inside the pending .grad: the
    plan's captures are found inside the pending slots' graphs."""
    stats = _three_ways(["plain"] * 8, grad_op="mul")
    assert stats["followed"] == 8 - 3 and stats["pending"] == 8 - 3


def test_reading_the_loss_every_third_step_keeps_two_shapes():
    """A read computes the pending updates (data leaves then): its steps have a shape of
    their own, and both shapes are followed."""
    stats = _three_ways(["plain", "plain", "read"] * 5)
    assert stats["followed"] >= 8 and stats["pending"] >= 4


def test_updates_in_another_order_still_follow():
    """The pending updates are listed in the order the tensors were first updated in place
    (tensor.note_inplace), for the key as for the follow: updating w2 before w1 on one
    step changes neither."""
    stats = _three_ways(["plain"] * 5 + ["swap"] + ["plain"] * 5)
    assert stats["followed"] == 11 - 3 and stats["refused"] == 0


@pytest.mark.parametrize("event", ["lr", "outside", "read_weight", "hook"])
def test_a_changed_update_is_refused_then_followed_again(event):
    """Another learning rate (another constant in the pending graph), another tensor updated
    in place, a weight read before backward, a hook: that step is refused and keyed, with
    the same values, and the plain steps after it follow again."""
    stats = _three_ways(["plain"] * 5 + [event] + ["plain"] * 5)
    assert stats["refused"] >= 1
    assert stats["followed"] >= 2 + 3


def test_refusal_reasons_are_logged(monkeypatch):
    """GRADJIT_LOG=1 names why a pending step was not followed."""
    reasons = []
    monkeypatch.setattr(follow.log, "info", reasons.append)
    monkeypatch.setattr(follow, "logging_enabled", lambda: True)
    _run(["plain"] * 5 + ["outside", "plain", "lr", "plain"], "follow")
    joined = "\n".join(reasons)
    assert "a tensor updated in place is pending outside the graph's inputs" in joined
    assert "a pending input's graph is another" in joined


def test_values_shared_between_pending_graphs_are_keyed_with_them():
    """`w -= lr * shared` in one update or in both (sizes equal, so both can): the pending
    slots' graphs are walked together, so what they share is part of their key; each way
    is followed, and alternating the two ways refuses the step that changes (same values
    all along)."""
    one = _three_ways(["shared"] * 8)
    assert one["followed"] == 8 - 3 and one["pending"] == 8 - 3
    both = _three_ways(["shared_both"] * 8, sizes=(4, 4, 4), n=4)
    assert both["followed"] == 8 - 3 and both["pending"] == 8 - 3
    mixed = _three_ways(["shared_both", "shared"] * 6, sizes=(4, 4, 4), n=4)
    assert mixed["followed"] >= 4 and mixed["refused"] >= 1


def test_a_pending_graph_reading_a_leaf_of_the_graph_is_never_followed():
    """`w1 -= lr * x` with x the forward's input (sizes equal): the pending graph shares a
    data leaf with the rest of the graph: never kept, every step keyed, same values."""
    stats = _three_ways(["reads_input"] * 8, sizes=(4, 4, 4), n=4)
    assert stats["followed"] == 0 and stats["learnt"] == 0


def test_a_pending_input_that_is_no_update_is_followed():
    """An input computed under no_grad each step (never updated in place) is a pending
    slot too."""
    stats = _three_ways(["no_grad_input_always"] * 8)
    assert stats["followed"] == 8 - 3 and stats["pending"] == 8 - 3


@settings(max_examples=12, deadline=None)
@given(d=st.integers(1, 6), h=st.integers(1, 5), o=st.integers(1, 4), n=st.integers(1, 5),
       dtype=st.sampled_from(["float32", "float64"]), grad_op=st.sampled_from(["zero", "mul"]),
       events=st.lists(st.sampled_from(["plain", "plain", "plain", "read", "lr", "swap",
                                        "read_weight", "no_grad_input", "shared",
                                        "outside", "hook"]),
                       min_size=4, max_size=10))
def test_random_loops_are_bitwise_the_keyed_and_emitted_ones(d, h, o, n, dtype, grad_op,
                                                               events):
    _three_ways(events, sizes=(d, h, o), n=n, dtype=dtype, grad_op=grad_op)


def test_a_followed_steps_gradients_against_float64_finite_differences():
    """The gradients of step 6 (followed, with pending weights) against central
    differences of the loss at that step's weights (read from step 5's results)."""
    out, stats = _run(["plain"] * 6, "follow", dtype="float64")
    assert stats["pending"] == 3
    rng = np.random.default_rng(1)
    d, o, n = 5, 3, 6
    x, y = rng.standard_normal((n, d)), rng.standard_normal((n, o))
    w1, w2 = out[4][3], out[4][4]            # the weights step 6 starts from

    def loss(a, b):
        return float((((np.maximum(x @ a, 0) @ b) - y) ** 2).sum())
    g1 = numeric_grad(lambda a: loss(a, w2), w1)
    g2 = numeric_grad(lambda b: loss(w1, b), w2)
    np.testing.assert_allclose(out[5][1], g1, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(out[5][2], g2, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(out[5][0], loss(w1, w2), rtol=1e-12)


def test_a_plan_whose_shape_cannot_be_kept_is_not_tried_again(monkeypatch):
    """What refuses a shape is fixed by the plan's key (here a pending graph reading the
    forward's input), so learning is tried once per plan, not on every keyed step (the
    transformer block's learn walked most of its 72 nodes each step before); the same
    values three ways."""
    tried = []
    learn_nodes = follow._learn_nodes
    monkeypatch.setattr(follow, "_learn_nodes", lambda *a: tried.append(1) or learn_nodes(*a))
    stats = _three_ways(["reads_input"] * 8, sizes=(4, 4, 4), n=4)
    assert stats["unfollowable"] == 1 and stats["learnt"] == 0 and stats["followed"] == 0
    assert len(tried) == 1          # (follow off and replay off never learn)


def _embedding_steps(events: list, vocab: int = 7, d: int = 4, batch: int = 3,
                     seq: int = 5) -> list:
    """A small language-model step as the transformer benchmark's: nn.Embedding (its
    index `idx.reshape(-1)` holds data, realised by the bounds check, and keeps its op),
    logits and targets reshaped for cross_entropy, AdamW; "long" uses longer sequences."""
    rng = np.random.default_rng(2)
    embed, head = gj.nn.Embedding(vocab, d), gj.nn.Linear(d, vocab)
    params = list(embed.parameters()) + list(head.parameters())
    with gj.no_grad():
        for p in params:
            p.copy_(gj.tensor(rng.standard_normal(p.shape) * 0.3, dtype=p.dtype))
    opt = gj.optim.AdamW(params, lr=0.01)
    held = []
    for ev in events:
        n = seq + 2 if ev == "long" else seq
        idx = gj.tensor(rng.integers(0, vocab, (batch, n)))
        target = gj.tensor(rng.integers(0, vocab, (batch, n)))
        opt.zero_grad()
        logits = head(embed(idx).relu())
        loss = gj.nn.functional.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1))
        loss.backward()
        held.append([loss.detach()] + [p.grad.clone() for p in params])
        opt.step()
        held[-1] += [p.detach().clone() for p in params]
    return held


def test_an_embedding_index_that_holds_data_and_keeps_its_op_is_a_slot():
    """The embedding's reshaped index and the reshaped targets are slots whose graphs are
    keyed (a reshape of a data leaf): the step is followed; another sequence length is
    refused and keyed; the same values three ways."""
    stats = _three_ways_of(_embedding_steps, ["plain"] * 6 + ["long"] + ["plain"] * 3)
    assert stats["followed"] >= 6 and stats["pending"] >= 6 and stats["refused"] >= 1


def _three_ways_of(steps, events: list) -> dict:
    runs = {}
    for mode in ("follow", "keyed", "emit"):
        runs[mode], delta = run_follow_mode(
            lambda: [[t.numpy().copy() for t in step] for step in steps(events)], mode)
        if mode == "follow":
            stats = delta
    _same(runs["follow"], runs["keyed"])
    _same(runs["follow"], runs["emit"])
    return stats
