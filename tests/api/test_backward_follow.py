"""A repeated backward() followed from the last replayed shape (tracer/autograd/follow.py).

Each loop of training steps, changed in the ways users change them, runs three ways:
follow on, follow off (every backward keys its graph, replay.py) and replay off (every
program emitted); losses, parameters and gradients are compared bitwise after every step,
and counters say how many backward calls were followed and how many were refused."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.api.capture_check import run_follow_mode
from tests.api.follow_check import mlp
from tests.gradcheck import numeric_grad
from tracer import bounded
from tracer.autograd import follow, replay
from tracer.tensor import run_function

F = gj.nn.functional


def _run(events: list, mode: str, **kw) -> tuple[list, dict]:
    """mode "follow", "keyed" or "emit" (capture_check.run_follow_mode); returns (per-step
    values, follow.STATS delta)."""
    return run_follow_mode(lambda: _steps(events, **kw), mode)


def _optimizer(name: str, params):
    if name == "sgd":
        return gj.optim.SGD(params, lr=0.05, momentum=0.9)
    if name == "adam":
        return gj.optim.Adam(params, lr=0.01)
    return gj.optim.AdamW(params, lr=0.01, weight_decay=0.1)


def _steps(events: list, opt_name: str = "sgd", sizes=(4, 6, 3), batch=(5, 7),
           dtype: str = "float32", read_grads: bool = True, compiled: bool = False) -> list:
    rng = np.random.default_rng(0)
    model = mlp(rng, sizes, dtype)
    run = gj.compile(model) if compiled else None
    params = list(model.parameters())
    opt = _optimizer(opt_name, params)
    sched = gj.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    xs = {n: rng.standard_normal((n, sizes[0])) for n in batch}
    ys = {n: gj.tensor(rng.integers(0, sizes[2], n)) for n in batch}
    out = []
    for ev in events:
        n = batch[1] if ev == "batch" else batch[0]
        x = gj.tensor(xs[n], dtype=dtype)           # a new leaf each step, as a loader's
        params[1].requires_grad_(ev != "freeze")
        if ev == "zero_keep":
            opt.zero_grad(set_to_none=False)
        elif ev != "accumulate":
            opt.zero_grad()
        if ev in ("grads", "shared_grad"):          # .grads given before backward
            ones = np.ones(params[0].shape)
            g = gj.tensor(ones, dtype=dtype)
            params[0].grad = g
            params[2].grad = g if ev == "shared_grad" else gj.tensor(ones * 2, dtype=dtype)

        def loss_of(x=x, y=ys[n], ev=ev):
            if run is not None:                      # one node: the compiled forward's
                return F.cross_entropy(run(x), y)
            h = model[1](model[0](x))
            if ev == "deep":                         # one node more: another shape
                h = model[1](h * 0.5)
            if ev == "hook":
                h.register_hook(lambda grad: grad * 0.5)
            if ev == "retain_grad":
                h.retain_grad()
            if ev == "read_inner":
                h.sum().item()
            logits = model[2](h)
            if ev == "inplace_out":
                logits.mul_(2.0)
            return F.cross_entropy(logits, y)
        loss = loss_of()
        handle = params[0].register_hook(lambda grad: grad * 2.0) if ev == "leaf_hook" \
            else None
        if ev == "read_loss":
            loss.item()                      # the loss holds data when backward runs
        if ev == "pieces":
            bounded.compute_in_pieces([loss._expr], run_function)
        if ev == "retain":
            loss.backward(retain_graph=True)
            loss.backward()
        elif ev == "accumulate":
            loss.backward()
            loss_of().backward()
        elif ev == "seed":
            loss.backward(gj.tensor(2.0, dtype=dtype))
        else:
            loss.backward()
        if handle is not None:
            handle.remove()
        grads = [None if p.grad is None or not read_grads else p.grad.numpy().copy()
                 for p in params]
        if ev == "grad_edit":
            with gj.no_grad():
                params[0].grad.mul_(0.5)
        opt.step()
        if ev == "lr":
            sched.step()
        out.append((loss.item(), [p.detach().numpy().copy() for p in params], grads))
    return out


def _assert_same(a: list, b: list):
    assert len(a) == len(b)
    for (la, pa, ga), (lb, pb, gb) in zip(a, b):
        assert la == lb
        for x, y in zip(pa + ga, pb + gb):
            assert (x is None) == (y is None)
            if x is not None:
                np.testing.assert_array_equal(x, y)


def _three_ways(events: list, **kw) -> dict:
    followed, stats = _run(events, "follow", **kw)
    _assert_same(followed, _run(events, "keyed", **kw)[0])
    _assert_same(followed, _run(events, "emit", **kw)[0])
    return stats


@pytest.mark.parametrize("opt_name", ["sgd", "adam", "adamw"])
def test_a_plain_loop_is_followed_after_its_first_replay(opt_name):
    """Step 1 emits, step 2 replays by key (zero_grad sets the .grads to None: the same
    structure) and keeps the shape, steps 3.. follow it."""
    stats = _three_ways(["plain"] * 12, opt_name=opt_name)
    assert stats["learnt"] == 1 and stats["refused"] == 0
    assert stats["followed"] == 12 - 2


EVENTS = ["batch", "freeze", "hook", "leaf_hook", "retain_grad", "read_inner", "read_loss",
          "inplace_out", "pieces", "retain", "accumulate", "seed", "zero_keep", "grad_edit",
          "lr"]


@pytest.mark.parametrize("event", EVENTS)
def test_a_changed_step_falls_back_with_the_same_values(event):
    """One changed step among plain ones: the changed step is keyed (or emitted) as before,
    with bitwise the same values, and the plain steps after it follow again."""
    events = ["plain"] * 5 + [event] + ["plain"] * 5
    stats = _three_ways(events)
    assert stats["followed"] >= 3


def test_a_removed_leaf_hook_leaves_the_steps_after_it_followed():
    """The leaf's node outlives the step: removing its only hook empties its table, so the
    plain steps after it follow again (an emptied list had kept every later step keyed)."""
    stats = _three_ways(["plain"] * 5 + ["leaf_hook"] + ["plain"] * 5)
    assert stats["refused"] == 1
    assert stats["followed"] == 3 + 5        # steps 3-5 and 7-11: the kept shape holds


@pytest.mark.parametrize("event", ["hook", "leaf_hook", "retain_grad", "read_loss", "batch",
                                   "inplace_out", "read_inner", "pieces"])
def test_the_graph_changes_that_refuse_the_kept_shape(event):
    """Steps 3-5 follow; the sixth is refused (and keyed: same values)."""
    stats = _three_ways(["plain"] * 5 + [event])
    assert stats["followed"] == 3 and stats["refused"] == 1


def test_a_learning_rate_change_and_a_grad_read_do_not_stop_following():
    """Not backward's business: the optimizer reads the new lr, .grad was read or edited
    after backward; every backward from the fourth follows."""
    stats = _three_ways(["plain"] * 4 + ["lr", "grad_edit", "plain", "lr"])
    assert stats["followed"] == 8 - 2 and stats["refused"] == 0


def test_zero_grad_keeping_read_tensors_follows_its_own_shape():
    """zero_grad(set_to_none=False) every step, the .grads read with numpy() after each
    backward (so their zeroing is computed at once: they hold data): step 1 finds no
    .grad, step 2 zeroed ones (a new structure), step 3 replays by key and steps 4..
    follow, with the old .grads in the kept shape."""
    stats = _three_ways(["zero_keep"] * 8)
    assert stats["followed"] == 5 and stats["refused"] == 0


def test_zero_grad_keeping_pending_zeros_follows_with_pending_slots():
    """Not read, the zeroed .grads are pending (a constant) when backward runs: they are
    pending slots of the kept shape (their one-constant graphs compared), so steps 4..
    follow as with read ones, with the same values."""
    stats = _three_ways(["zero_keep"] * 8, read_grads=False)
    assert stats["followed"] == 5 and stats["pending"] == 5 and stats["refused"] == 0


def test_accumulating_over_two_backward_calls():
    """Every step's second backward finds .grad holding data: its shape alternates with the
    first's, each a shape of its own (learnt again), values the same."""
    stats = _three_ways(["plain", "plain"] + ["accumulate"] * 6)
    assert stats["refused"] >= 1


def test_a_hook_on_every_step_is_never_followed():
    stats = _three_ways(["hook"] * 6)
    assert stats["followed"] == 0 and stats["learnt"] == 0


def test_a_freed_graph_raises_as_before():
    """A second backward() without retain_graph on a followed graph raises PyTorch's
    error (the saved-tensor checks run before the kept program)."""
    rng = np.random.default_rng(1)
    model = mlp(rng, (4, 6, 3), "float32")
    x, y = gj.tensor(rng.standard_normal((5, 4)), dtype="float32"), gj.tensor([0, 1, 2, 0, 1])
    replay.clear()
    before = follow.STATS["followed"]
    for _ in range(5):
        model.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    # the first step also computes the parameters' pending copy_: steps 3 (keyed), 4-5
    assert follow.STATS["followed"] - before == 2
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_followed_gradients_match_finite_differences_f64():
    rng = np.random.default_rng(2)
    model = mlp(rng, (3, 4, 3), "float64")
    x, y = gj.tensor(rng.standard_normal((5, 3))), gj.tensor([0, 2, 1, 1, 0])
    replay.clear()
    before = follow.STATS["followed"]
    for _ in range(5):
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
    assert follow.STATS["followed"] - before == 2
    w = model[0].weight

    def loss_at(arr):
        with gj.no_grad():
            saved = w.detach().clone()
            w.copy_(gj.tensor(arr))
            value = F.cross_entropy(model(x), y).item()
            w.copy_(saved)
        return value
    expected = numeric_grad(loss_at, w.detach().numpy().copy())
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-6, atol=1e-8)


@settings(max_examples=8, deadline=None)
@given(d=st.integers(1, 5), h=st.integers(1, 6), o=st.integers(2, 4), n=st.integers(1, 6),
       opt_name=st.sampled_from(["sgd", "adam", "adamw"]),
       dtype=st.sampled_from(["float32", "float64"]))
def test_random_sizes_follow_bitwise(d, h, o, n, opt_name, dtype):
    events = ["plain"] * 5 + ["batch", "plain", "plain"]
    stats = _three_ways(events, opt_name=opt_name, sizes=(d, h, o), batch=(n, n + 1),
                        dtype=dtype)
    assert stats["followed"] >= 2


def test_old_grads_shared_between_parameters_are_not_the_kept_shape():
    """Two parameters whose old .grad is one tensor: the key numbers it once, so the kept
    shape (two distinct .grads) must not be followed for it (same values three ways)."""
    events = ["plain", "grads", "grads", "grads", "shared_grad", "grads", "shared_grad"]
    stats = _three_ways(events, sizes=(3, 3, 3))
    assert stats["followed"] == 2 and stats["refused"] == 2     # steps 4, 6; 5, 7


def test_a_kept_shape_with_one_shared_grad_is_not_followed_by_two():
    """The other way round: the kept program reads the shared .grad once; a step whose two
    .grads differ must not be fed the first one twice."""
    events = ["plain", "shared_grad", "shared_grad", "shared_grad", "grads", "shared_grad"]
    stats = _three_ways(events, sizes=(3, 3, 3))
    assert stats["followed"] == 2 and stats["refused"] == 1     # steps 4, 6; step 5


def test_steps_alternating_between_shapes_follow_each():
    """dynamic_net.py's case: the kept shapes of the last structures are all tried; after
    each shape has replayed once by key, every step follows."""
    stats = _three_ways(["plain", "deep"] * 6)
    assert stats["learnt"] == 2 and stats["followed"] == 8 and stats["refused"] == 1


def test_more_shapes_than_kept_stay_correct():
    """Six structures in turn (more than the four kept): the values are the same three
    ways whatever is followed."""
    events = ["plain", "deep", "batch", "read_loss", "zero_keep", "freeze"] * 3
    stats = _three_ways(events)
    assert stats["learnt"] >= 4


def test_compiled_forward_steps_follow():
    """compile(model): the forward is one node keyed by its Function (section 5b of
    docs/imperative.md), followed as a template node; a new batch size is a new shape."""
    events = ["plain"] * 6 + ["batch"] * 4 + ["plain"] * 2
    stats = _three_ways(events, compiled=True)
    # steps 3-6, 9-10 (after the batch's own keyed replay), 11-12 (the first shape again)
    assert stats["followed"] == 8 and stats["learnt"] == 2
