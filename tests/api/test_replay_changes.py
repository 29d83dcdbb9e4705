"""What breaks a backward replay, and that every step stays exactly what a step built from
scratch computes: a training loop whose steps change structure in the ways users change it
(batch size, requires_grad flips, hooks, retain_graph, gradient accumulation, reading .grad,
zero_grad(set_to_none=False), scheduler and param-group changes), run with replay and with
replay turned off, compared bitwise after every step; replays counted."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tracer.autograd import replay

EVENTS = ("plain", "batch", "freeze", "hook", "retain", "accumulate", "read_grad",
          "zero_keep", "scheduler", "group")


def _loop(events: list, use_replay: bool) -> list:
    """Runs one step per event; returns the parameters and gradients after each step."""
    replay.clear()
    with pytest.MonkeyPatch.context() as patch:
        if not use_replay:
            patch.setattr(replay, "lookup", lambda walk: None)
        return _steps(events)


def _steps(events: list) -> list:
    rng = np.random.default_rng(0)
    w1 = gj.tensor((rng.standard_normal((4, 6)) * 0.5).astype(np.float32), requires_grad=True)
    b1 = gj.tensor(np.zeros(6, np.float32), requires_grad=True)
    w2 = gj.tensor((rng.standard_normal((6, 2)) * 0.5).astype(np.float32), requires_grad=True)
    extra = gj.tensor(np.ones(2, np.float32), requires_grad=True)
    xs = {n: gj.tensor(rng.standard_normal((n, 4)).astype(np.float32)) for n in (3, 5)}
    opt = gj.optim.SGD([w1, b1, w2], lr=0.05, momentum=0.9)
    sched = gj.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    grouped = False
    out = []
    for ev in events:
        x = xs[5 if ev == "batch" else 3]
        b1.requires_grad_(ev != "freeze")
        if ev == "group" and not grouped:
            opt.add_param_group({"params": [extra], "lr": 0.1})
            grouped = True
        if ev == "zero_keep":
            opt.zero_grad(set_to_none=False)
        elif ev != "accumulate":
            opt.zero_grad()

        def loss_of(x=x, ev=ev, grouped=grouped):
            h = (x @ w1 + b1).relu()
            if ev == "hook":
                h.register_hook(lambda g: g * 0.5)
            y = h @ w2
            if grouped:
                y = y * extra
            return (y * y).sum()
        loss = loss_of()
        if ev == "retain":
            loss.backward(retain_graph=True)
            loss.backward()
        elif ev == "accumulate":
            loss.backward()
            loss_of().backward()
        else:
            loss.backward()
        grads = [None if p.grad is None else p.grad.numpy().copy()
                 for p in (w1, b1, w2, extra)]
        if ev == "read_grad":       # read through an op; compared across the two loops
            grads.append(np.asarray((w1.grad * 2.0).sum().item()))
            np.testing.assert_allclose(grads[-1], 2 * grads[0].sum(dtype=np.float64),
                                       rtol=1e-5)
        opt.step()
        if ev == "scheduler":
            sched.step()
        out.append(([p.detach().numpy().copy() for p in (w1, b1, w2, extra)], grads))
    return out


def _assert_same(a: list, b: list):
    for (pa, ga), (pb, gb) in zip(a, b):
        for x, y in zip(pa + ga, pb + gb):
            assert (x is None) == (y is None)
            if x is not None:
                np.testing.assert_array_equal(x, y)


@settings(max_examples=12, deadline=None)
@given(st.lists(st.sampled_from(EVENTS), min_size=2, max_size=6))
def test_steps_with_changes_equal_steps_built_from_scratch(events):
    _assert_same(_loop(["plain"] + events, True),
                 _loop(["plain"] + events, False))


# (hits, misses) of backward replay over the steps plain, plain, <change>, plain. Step 1
# emits, step 2 replays it; then per change:
EXPECTED = {
    "batch": (2, 2),        # a new shape: emitted; the last step replays step 1's program
    "freeze": (2, 2),       # b1 not requiring grad: another graph; unfrozen again: replays
    "hook": (2, 1),         # a tensor hook: not replayed, not stored
    "retain": (3, 2),       # 1st call replays; the 2nd folds the old .grad in: a new key
    "accumulate": (3, 2),   # old .grads folded in: new key, then replayed by the 2nd call
    "read_grad": (3, 1),    # reading .grad changes nothing of backward's
    "zero_keep": (2, 2),    # zeroed (not None) .grads are folded in: a new key
    "scheduler": (3, 1),    # the learning rate is the optimizer's input, not backward's
    "group": (2, 2),        # a new parameter in the graph: emitted, then replayed
}


@pytest.mark.parametrize("ev", sorted(EXPECTED))
def test_each_change_is_a_new_structure_or_no_replay_and_plain_steps_replay(ev):
    events = ["plain", "plain", ev, "plain"]
    before = dict(replay.STATS)
    replayed = _loop(events, True)
    hits = replay.STATS["hits"] - before["hits"]
    misses = replay.STATS["misses"] - before["misses"]
    assert (hits, misses) == EXPECTED[ev]
    _assert_same(replayed, _loop(events, False))



def _batchnorm_steps(steps: int) -> tuple[list, list]:
    """Steps of a model with BatchNorm: (parameters, buffers and grads) after each step, and
    the running mean after each step."""
    gj.manual_seed(0)
    model = gj.nn.Sequential(gj.nn.Linear(4, 8), gj.nn.BatchNorm1d(8), gj.nn.ReLU(),
                             gj.nn.Linear(8, 2))
    opt = gj.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    x = gj.tensor(rng.standard_normal((16, 4)).astype(np.float32))
    y = gj.tensor(rng.integers(0, 2, 16))
    out, means = [], []
    for _ in range(steps):
        opt.zero_grad()
        gj.nn.functional.cross_entropy(model(x), y).backward()
        grads = [p.grad.numpy().copy() for p in model.parameters()]
        opt.step()
        out.append(([v.detach().numpy().copy() for v in model.state_dict().values()], grads))
        means.append(model[1].running_mean.numpy().copy())
    return out, means


def test_a_batchnorm_step_replays_with_its_running_statistics():
    """BatchNorm updates running_mean/var in place during the forward: the backward program
    computes those updates along, so they are part of the replayed structure (before, any
    such update kept the step from replaying at all)."""
    replay.clear()
    before = dict(replay.STATS)
    with_replay, means = _batchnorm_steps(5)
    assert replay.STATS["misses"] - before["misses"] == 1
    assert replay.STATS["hits"] - before["hits"] == 4
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(replay, "lookup", lambda walk: None)
        without, _ = _batchnorm_steps(5)
    _assert_same(with_replay, without)
    # the running statistics moved every step (the comparison is not of constants)
    assert all(not np.array_equal(a, b) for a, b in zip(means, means[1:]))


def test_a_hand_written_update_of_a_viewed_weight_does_not_grow_the_graph():
    """`F.linear(h, w)` views w (`w.t()`); with `w -= lr * w.grad` under no_grad each step,
    w's storage root used to keep the op of every pending update once realised, so each
    step's backward walked one update more: a new structure every step, never replayed,
    and the whole history kept alive. Now steps 3.. replay step 2's program."""
    replay.clear()
    rng = np.random.default_rng(3)
    w = gj.tensor(rng.standard_normal((4, 4)), requires_grad=True)
    x = gj.tensor(rng.standard_normal((4, 4)))
    before = dict(replay.STATS)
    for _ in range(6):
        w.grad = None
        gj.nn.functional.mse_loss(gj.nn.functional.linear(x * w, w), x).backward()
        with gj.no_grad():
            w -= 0.01 * w.grad
    assert (replay.STATS["hits"] - before["hits"], replay.STATS["misses"] - before["misses"]) \
        == (4, 2)
    previous = w._expr.args[0]          # w's pending update reads the realised w: a leaf
    assert previous.data is not None and previous.op is None
