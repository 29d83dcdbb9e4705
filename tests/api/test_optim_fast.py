"""The optimizer's repeated step from a plan (tracer/optim/fast_step.py): every loop below runs
twice from the same start, with plans and without, and parameters and state must be bitwise
equal after every step; counters say when the plan was followed and when it was not."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj
from tests.api.optim_loops import MAKERS, SHAPES, assert_same_steps, run_loop
from tests.api.optim_loops import params as _params  # noqa: F401  (test_optim_plan_code's)
from tracer.optim import fast_step


def _snapshot(params, opt) -> list[bytes]:
    out = [p.detach().numpy().tobytes() for p in params]
    for p in params:
        for k, v in sorted(opt.state[p].items()):
            out.append(k)
            out.append(v.detach().numpy().tobytes() if isinstance(v, gj.Tensor) else repr(v))
    return out


def _run(make, shapes, steps, enabled, event=None, loss=None) -> tuple[list, dict]:
    """The loop's snapshots after each step and the fast path's counters (loss: the step's
    loss of (params, step), optim_loops.loss by default)."""
    return run_loop(fast_step, make, shapes, steps, enabled, _snapshot, event, loss_fn=loss)


def _same_both_ways(make, shapes=SHAPES, steps=8, event=None) -> dict:
    fast, counts = _run(make, shapes, steps, True, event)
    slow, off = _run(make, shapes, steps, False, event)
    assert off["followed"] == 0 and off["learnt"] == 0
    assert_same_steps(fast, slow)
    return counts


@pytest.mark.parametrize("name", MAKERS)
def test_repeated_steps_are_bitwise_the_general_path(name):
    counts = _same_both_ways(MAKERS[name])
    groups = 2 if name == "groups" else 1
    if name.startswith("RMSprop"):
        assert counts["followed"] == 0 and counts["learnt"] == 0
    elif name.startswith("SGD momentum") or name.startswith("SGD nesterov"):
        # the first step makes the momentum buffers (new state): planned from the second
        assert counts["followed"] == 6 * groups
    else:
        assert counts["followed"] == 7 * groups


@pytest.mark.parametrize("name", ["AdamW", "SGD momentum", "groups"])
def test_a_scheduler_changing_lr_every_step_keeps_the_plan(name):
    scheds = {}

    def event(step, params, opt):
        sched = scheds.get(id(opt))
        if sched is None:
            sched = scheds[id(opt)] = gj.optim.lr_scheduler.LambdaLR(
                opt, lambda e: 1.0 / (1 + e))
        if step:
            sched.step()
    counts = _same_both_ways(MAKERS[name], event=event)
    assert counts["followed"] >= 6 and counts["missed"] == 0


def test_hand_set_lr_and_betas_are_read_every_step():
    def event(step, params, opt):
        opt.param_groups[0]["lr"] = 0.01 * (step % 3 + 1)
        if step == 4:
            opt.param_groups[0]["betas"] = (0.8, 0.99)
    counts = _same_both_ways(MAKERS["Adam"], event=event)
    assert counts["followed"] == 7


def test_a_gradient_that_goes_none_takes_the_general_path():
    def event(step, params, opt):
        if step in (3, 4, 6):
            params[1].grad = None          # its step count lags: Adam's values differ
    counts = _same_both_ways(MAKERS["AdamW"], steps=10, event=event)
    # planned at steps 0, 3 and 6 (the three others' step counts are equal), followed at
    # 1, 2 and 4; from step 5 on, the step counts of all four are unequal: no plan
    assert counts["followed"] == 3 and counts["learnt"] == 3
    counts = _same_both_ways(MAKERS["SGD momentum"], steps=10, event=event)
    assert counts["followed"] >= 4


def test_replaced_or_edited_state_is_seen():
    def event(step, params, opt):
        st = opt.state[params[0]]
        if step == 2:
            st["exp_avg"] = st["exp_avg"] * 0.5                  # a new Tensor object
        if step == 4:
            with gj.no_grad():
                opt.state[params[2]]["exp_avg_sq"].mul_(2.0)     # pending in place
        if step == 5:
            opt.load_state_dict(opt.state_dict())                # new state dicts
        if step == 6:
            opt.state[params[1]]["step"] += 1                    # unequal step counts
    counts = _same_both_ways(MAKERS["Adam"], steps=10, event=event)
    assert counts["missed"] >= 3 and counts["followed"] >= 2


def test_a_pending_gradient_or_parameter_value_is_seen():
    def event(step, params, opt):
        if step == 3:
            params[0].grad = params[0].grad * 2.0                # not computed yet
        if step == 5:
            with gj.no_grad():
                params[1].copy_(params[1] * 0.5)                 # pending new value
    counts = _same_both_ways(MAKERS["SGD momentum"], steps=9, event=event)
    assert counts["missed"] >= 1


def test_amsgrad_switched_on_later_takes_the_general_path():
    def event(step, params, opt):
        if step == 4:
            opt.param_groups[0]["weight_decay"] = 0.0            # other flags: general path
    counts = _same_both_ways(MAKERS["AdamW"], steps=7, event=event)
    assert counts["missed"] == 1


@settings(max_examples=12, deadline=None)
@given(shapes=st.lists(st.lists(st.integers(1, 4), max_size=3).map(tuple), min_size=1,
                       max_size=4),
       which=st.sampled_from(["AdamW", "SGD momentum", "groups"]),
       drops=st.sets(st.integers(0, 7), max_size=3),
       lrs=st.lists(st.floats(1e-3, 0.1), min_size=8, max_size=8))
def test_random_loops_are_bitwise_the_general_path(shapes, which, drops, lrs):
    if which == "groups" and len(shapes) < 3:
        shapes = shapes + [(2,)] * (3 - len(shapes))

    def event(step, params, opt):
        opt.param_groups[-1]["lr"] = lrs[step]
        if step in drops:
            params[-1].grad = None
    _same_both_ways(MAKERS[which], shapes=shapes, steps=8, event=event)


class _HalvedAdam(gj.optim.Adam):
    """A user's subclass with its own _prepare: the inherited _shared_hypers does not know
    it, so the group keeps no plan."""

    def _prepare(self, p, group):
        h = dict(super()._prepare(p, group))
        h["step_size"] = h["step_size"] * 0.5
        return h


def test_a_subclass_with_its_own_prepare_keeps_no_plan():
    counts = _same_both_ways(lambda ps: _HalvedAdam(ps, lr=0.02))
    assert counts["followed"] == 0 and counts["learnt"] == 0
