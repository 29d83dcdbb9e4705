"""A kept backward shape checked by generated code (tracer/autograd/follow_code.py) and the
followed program run by its kept Executable (engine._run_kept).

Every generated check made in these tests is wrapped so that each call also runs the loop
it replaces (follow._check) on the same root and the two answers must be the same: the
same plan, the same Exprs at the same walk positions, the same targets and nodes, or the
same reason. Loops of training steps changed in the ways users change them run with the
generated code on and off, the follow off and the replay off; losses, parameters and
gradients are bitwise equal after every step, and counters show the code ran."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.api.capture_check import run_follow_mode
from tests.api.follow_check import compare_checks, mlp
from tests.api.test_backward_follow import _assert_same, _steps
from tests.api.test_follow_pending import _same, _steps as _pending_steps
from tests.gradcheck import numeric_grad
from tracer.autograd import engine, follow, follow_code, replay

F = gj.nn.functional


@pytest.fixture(autouse=True)
def compared(monkeypatch):
    """Each generated check runs beside follow._check; counts the calls compared."""
    return compare_checks(monkeypatch)


def _run(loop, mode: str) -> tuple:
    """mode "code" (generated checks), "loop" (follow._check only), "keyed", "emit"."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(follow, "CODE_ENABLED", mode == "code")
        return run_follow_mode(loop, "follow" if mode in ("code", "loop") else mode)


def _four_ways(loop, same=_assert_same) -> dict:
    out, stats = _run(loop, "code")
    for mode in ("loop", "keyed", "emit"):
        other, other_stats = _run(loop, mode)
        same(out, other)
        assert other_stats["generated"] == 0
    return stats


def test_a_plain_loop_checks_by_generated_code(compared):
    """Step 2 keys and keeps the shape, steps 3-5 follow by the loop, steps 6.. by the
    generated check; every followed program runs by its kept Executable."""
    stats = _four_ways(lambda: _steps(["plain"] * 12))
    assert stats["followed"] == 10
    assert stats["generated"] == 10 - follow_code.CODE_AFTER
    assert stats["kept_exe"] == 10
    assert compared["same"] == stats["generated"]


EVENTS = ["batch", "freeze", "hook", "leaf_hook", "retain_grad", "read_inner", "read_loss",
          "inplace_out", "pieces", "retain", "accumulate", "seed", "zero_keep", "grad_edit",
          "lr", "deep"]


@pytest.mark.parametrize("event", EVENTS)
def test_a_changed_step_after_the_code_falls_back_bitwise(event, compared):
    """One changed step once the shape has its generated check: the same answer as the
    loop (a refusal keys the step as before), the same values four ways. (NOTE: after
    leaf_hook's removed hook the leaf's AccumulateGrad keeps an empty hook list, which
    refuses the follow and the replay key from then on, the loop's answer too.)"""
    stats = _four_ways(lambda: _steps(["plain"] * 7 + [event] + ["plain"] * 4))
    assert stats["generated"] >= 2
    assert compared["same"] + compared["refused"] >= stats["generated"]


@pytest.mark.parametrize("event", ["hook", "leaf_hook", "retain_grad", "read_loss", "batch",
                                   "inplace_out", "read_inner", "pieces", "deep", "freeze"])
def test_the_refusals_of_the_loop_are_the_codes(event, compared):
    """The changed step is refused by the generated check with the loop's reason."""
    stats = _four_ways(lambda: _steps(["plain"] * 7 + [event]))
    assert stats["refused"] == 1 and compared["refused"] >= 1


def _user_steps(change: str, n: int = 10) -> list:
    """An MLP loop with what users do between the calls at step 7: clip the gradients,
    scale .grad.data in place, replace a parameter, run part of the forward under no_grad,
    take a create_graph backward, or call a custom autograd.Function."""
    rng = np.random.default_rng(3)
    model = mlp(rng, (5, 7, 3), "float32")
    opt = gj.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = gj.tensor(rng.standard_normal((6, 5)), dtype="float32")
    y = gj.tensor(rng.integers(0, 3, 6))

    class Twice(gj.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2.0

        @staticmethod
        def backward(ctx, g):
            return g * 2.0
    out = []
    for i in range(n):
        now = i == 7
        opt.zero_grad()
        if now and change == "replace":
            with gj.no_grad():
                model[2].weight = gj.nn.Parameter(model[2].weight * 0.5)
        h = model[1](model[0](x))
        if now and change == "no_grad":
            with gj.no_grad():
                h = h * 1.0
        if now and change == "custom":
            h = Twice.apply(h)
        loss = F.cross_entropy(model[2](h), y)
        loss.backward(create_graph=now and change == "create_graph")
        if now and change == "clip":
            gj.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        if now and change == "grad_data":
            model[0].weight.grad.data.mul_(0.5)
        opt.step()
        out.append((loss.item(), [p.detach().numpy().copy() for p in model.parameters()],
                    [None if p.grad is None else p.grad.detach().numpy().copy()
                     for p in model.parameters()]))
    return out


@pytest.mark.parametrize("change", ["clip", "grad_data", "replace", "no_grad", "custom",
                                    "create_graph"])
def test_what_users_do_between_the_calls(change, compared):
    stats = _four_ways(lambda: _user_steps(change))
    assert stats["generated"] >= 1
    if change in ("no_grad", "custom", "create_graph"):
        assert stats["followed"] < 10 - 2       # that step is not followed


def test_pending_slots_are_checked_by_code_and_walked_as_before(compared):
    """two_layer_net_autograd.py's loop (tests/api/test_follow_pending.py): the pending
    updates and zeroed .grads are pending slots, which the generated check hands to
    follow._finish's walk; the values are read at the end (a read would compute them)."""
    stats = _four_ways(lambda: [[t.numpy().copy() for t in step]
                                for step in _pending_steps(["plain"] * 12)], _same)
    assert stats["pending"] >= 1 and stats["generated"] >= 1
    assert compared["same"] >= 1


@pytest.mark.parametrize("events", [["grads", "shared_grad"], ["shared_grad", "grads"]])
def test_old_grads_given_and_shared_after_the_code(events, compared):
    """Old .grads set before backward, then one tensor shared by two: the code numbers the
    leaf slots as the loop does (a shared one is another sharing)."""
    stats = _four_ways(lambda: _steps(["plain"] + [events[0]] * 7 + [events[1]] +
                                      [events[0]] * 2, sizes=(3, 3, 3)))
    assert stats["generated"] >= 2 and stats["refused"] >= 1


def _tied_steps(n: int = 13) -> list:
    """The input read by two nodes and a middle layer applied twice (dynamic_net.py's
    reuse); at step 8 the second read of the input is another tensor of the same type
    (another sharing of the leaf slots: refused) and step 10 applies another layer."""
    rng = np.random.default_rng(6)
    first, mid, other, last = (gj.nn.Linear(4, 5), gj.nn.Linear(5, 5), gj.nn.Linear(5, 5),
                               gj.nn.Linear(5, 3))
    params = [p for m in (first, mid, other, last) for p in m.parameters()]
    with gj.no_grad():
        for p in params:
            p.copy_(gj.tensor(rng.standard_normal(p.shape) * 0.4, dtype=p.dtype))
    opt = gj.optim.SGD(params, lr=0.05, momentum=0.9)
    x = gj.tensor(rng.standard_normal((6, 4)), dtype="float32")
    x_other = gj.tensor(rng.standard_normal((6, 4)), dtype="float32")
    y = gj.tensor(rng.integers(0, 3, 6))
    out = []
    for i in range(n):
        opt.zero_grad()
        h = mid((first(x) + first(x_other if i == 8 else x)).relu()).relu()
        h = (other if i == 10 else mid)(h).relu()
        loss = F.cross_entropy(last(h), y)
        loss.backward()
        opt.step()
        out.append((loss.item(), [p.detach().numpy().copy() for p in params],
                    [None if p.grad is None else p.grad.numpy().copy() for p in params]))
    return out


def test_an_input_read_twice_then_another_and_a_layer_used_twice(compared):
    stats = _four_ways(_tied_steps)
    assert stats["generated"] >= 3 and stats["refused"] >= 1 and compared["refused"] >= 1


def test_more_shapes_than_kept_with_code(compared):
    events = ["plain", "deep", "batch", "read_loss", "zero_keep", "freeze"] * 4 + \
        ["plain", "deep"] * 6
    stats = _four_ways(lambda: _steps(events))
    assert stats["generated"] >= 1


def test_a_large_graph_keeps_the_loop(monkeypatch, compared):
    """Past MAX_NODES no code is made; the loop follows as before."""
    monkeypatch.setattr(follow_code, "MAX_NODES", 2)
    stats = _four_ways(lambda: _steps(["plain"] * 8))
    assert stats["generated"] == 0 and stats["followed"] == 6


def test_other_settings_run_the_program_through_run_function(monkeypatch):
    """Not plain native code (logging, another backend): the kept Executable is not
    used; the values are the same."""
    monkeypatch.setattr(engine, "plain_native", lambda: False)
    off, stats = _run(lambda: _steps(["plain"] * 8), "code")
    assert stats["kept_exe"] == 0 and stats["followed"] == 6
    monkeypatch.undo()
    on, stats = _run(lambda: _steps(["plain"] * 8), "code")
    assert stats["kept_exe"] == 6
    _assert_same(on, off)


@settings(max_examples=8, deadline=None)
@given(d=st.integers(1, 6), h=st.integers(1, 8), o=st.integers(2, 5), n=st.integers(1, 7),
       opt_name=st.sampled_from(["sgd", "adam", "adamw"]),
       dtype=st.sampled_from(["float32", "float64"]))
def test_random_sizes_bitwise_with_code(d, h, o, n, opt_name, dtype):
    events = ["plain"] * 7 + ["batch", "plain", "read_loss", "plain", "plain"]
    stats = _four_ways(lambda: _steps(events, opt_name=opt_name, sizes=(d, h, o),
                                      batch=(n, n + 1), dtype=dtype))
    assert stats["generated"] >= 2


def test_gradients_of_a_step_checked_by_code_match_finite_differences_f64():
    rng = np.random.default_rng(5)
    model = mlp(rng, (3, 4, 3), "float64")
    x, y = gj.tensor(rng.standard_normal((5, 3))), gj.tensor([0, 2, 1, 1, 0])
    replay.clear()
    before = dict(follow.STATS)
    for _ in range(8):
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
    assert follow.STATS["generated"] - before["generated"] >= 1
    assert follow.STATS["kept_exe"] - before["kept_exe"] >= 1
    for p in model.parameters():
        def loss_at(arr, p=p):
            with gj.no_grad():
                saved = p.detach().clone()
                p.copy_(gj.tensor(arr))
                value = F.cross_entropy(model(x), y).item()
                p.copy_(saved)
            return value
        expected = numeric_grad(loss_at, p.detach().numpy().copy())
        np.testing.assert_allclose(p.grad.numpy(), expected, rtol=1e-6, atol=1e-8)
