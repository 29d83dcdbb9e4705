"""A followed optimizer plan's generated checks and stores (tracer/optim/plan_code.py): every
loop runs with the generated code, with the plan's loop and with no plan from the same
start, and parameters and state must be bitwise equal after every step; counters show the
generated code ran, and that each refusal took the general path."""

import numpy as np
import pytest

import gradjit as gj
from tests.api.test_optim_fast import MAKERS, _params, _snapshot
from tests.api.test_optim_fast import _run as _run_loop
from tracer.optim import fast_step, plan_code

SHAPES = [(3, 4), (4,), (2, 3, 2), ()]
DEFAULT_AFTER = fast_step.CODE_AFTER


@pytest.fixture(autouse=True)
def _code_early(monkeypatch):
    """Generated code from the third followed step (the default waits longer)."""
    monkeypatch.setattr(fast_step, "CODE_AFTER", 2)


def _loss(params, step):
    total = 0.0
    for i, p in enumerate(params):
        total = total + ((p - 0.1 * (i + step)) ** 4).sum() + (p * float(i + 1)).sum()
    return total


def _run(make, mode: str, steps: int, event=None):
    """Snapshots after each step and the counters; mode: 'code', 'loop' (the plan followed
    without generated code) or 'general' (no plans)."""
    fast_step.CODE_ENABLED = mode == "code"
    try:
        return _run_loop(make, SHAPES, steps, mode != "general", event, loss=_loss)
    finally:
        fast_step.CODE_ENABLED = True


def _all_three(make, steps=9, event=None) -> dict:
    """The three modes bitwise equal at every step; the generated mode's counters."""
    code, counts = _run(make, "code", steps, event)
    loop, loop_counts = _run(make, "loop", steps, event)
    general, general_counts = _run(make, "general", steps, event)
    assert loop_counts["generated"] == 0 and general_counts["generated"] == 0
    assert general_counts["followed"] == 0
    for step, (a, b, c) in enumerate(zip(code, loop, general)):
        assert a == c, f"step {step}: generated code differs from the general path"
        assert b == c, f"step {step}: the plan's loop differs from the general path"
    return counts


@pytest.mark.parametrize("name", ["AdamW", "Adam", "Adam amsgrad wd", "SGD",
                                  "SGD momentum", "SGD nesterov", "groups"])
def test_generated_steps_are_bitwise_the_general_path(name):
    counts = _all_three(MAKERS[name])
    groups = 2 if name == "groups" else 1
    # planned after the first step (SGD with momentum: the second, which makes the buffers);
    # the first CODE_AFTER follows use the loop, every later one the generated code
    first = 2 if name.startswith("SGD m") or name.startswith("SGD n") else 1
    followed = (9 - first) * groups
    assert counts["followed"] == followed
    assert counts["generated"] == followed - fast_step.CODE_AFTER * groups


def test_gather_gives_the_loops_arrays_and_store_the_same_exprs():
    params = _params(SHAPES)
    opt = gj.optim.AdamW(params, lr=0.01)
    for step in range(4):
        opt.zero_grad()
        _loss(params, step).backward()
        if step == 3:
            plan = opt._fast_plans[id(opt.param_groups[0])]
            gather = plan_code.make_gather(plan)
            arrays = gather(opt.state)
            expected = fast_step._input_arrays(opt.state, params, plan)
            assert len(arrays) == len(expected) == 4 * len(params)
            assert all([a is b for a, b in zip(arrays, expected)])
        opt.step()


def _fortran_gradient(step, params, opt):
    if step == 5:                           # same type, data not C-contiguous
        e = params[0].grad._expr
        e.data = np.asfortranarray(e.data)
        assert not e.data.flags.c_contiguous


def _pending_gradient(step, params, opt):
    if step == 5:                           # not computed yet
        params[1].grad = params[1].grad * 2.0


def _replaced_state(step, params, opt):
    if step == 5:
        st = opt.state[params[2]]
        st["exp_avg"] = st["exp_avg"] * 0.5     # a new Tensor object


def _extra_state_entry(step, params, opt):
    if step == 5:
        opt.state[params[3]]["note"] = "user's"  # one entry more: the general path


def _state_dict_replaced(step, params, opt):
    if step == 5:
        opt.state[params[0]] = dict(opt.state[params[0]])


@pytest.mark.parametrize("event", [_fortran_gradient, _pending_gradient, _replaced_state,
                                   _extra_state_entry, _state_dict_replaced])
def test_a_refused_check_takes_the_general_path(event):
    counts = _all_three(MAKERS["AdamW"], steps=10, event=event)
    assert counts["missed"] >= 1 or counts["learnt"] >= 2
    assert counts["generated"] >= 1


def test_the_loop_followed_a_fortran_gradient_that_the_code_refuses():
    # the plan's loop checks the Expr's type only (the call converts the layout); the
    # generated code runs the program unchecked, so it must refuse that array
    _, code = _run(MAKERS["AdamW"], "code", 8, _fortran_gradient)
    _, loop = _run(MAKERS["AdamW"], "loop", 8, _fortran_gradient)
    assert code["missed"] == 1 and loop["missed"] == 0


def test_with_the_default_threshold_code_comes_after_that_many_follows(monkeypatch):
    monkeypatch.setattr(fast_step, "CODE_AFTER", DEFAULT_AFTER)
    steps = DEFAULT_AFTER + 4
    short = _all_three(MAKERS["AdamW"], steps=DEFAULT_AFTER + 1)
    assert short["followed"] == DEFAULT_AFTER and short["generated"] == 0
    counts = _all_three(MAKERS["AdamW"], steps=steps)
    assert counts["followed"] == steps - 1
    assert counts["generated"] == steps - 1 - DEFAULT_AFTER


def test_the_interpreter_backend_takes_the_checked_call(gradjit_env):
    """run_checked serves the native program only: under GRADJIT_BACKEND=interpret from
    step 5 the generated checks still run, the program goes through its checked call on
    the interpreter, and the results stay close to the native run's (float32 rounding of
    the interpreter's own order)."""
    native, _ = _run(MAKERS["AdamW"], "code", 8)

    def switch(step, params, opt):
        if step == 5:
            gradjit_env("GRADJIT_BACKEND", "interpret")
    mixed, counts = _run(MAKERS["AdamW"], "code", 8, switch)
    gradjit_env("GRADJIT_BACKEND", "native")
    assert counts["followed"] == 7
    assert counts["generated"] == 7 - fast_step.CODE_AFTER - 3   # steps 5, 6, 7 interpret
    assert mixed[:5] == native[:5]
    for a, b in zip(mixed[5:], native[5:]):
        for x, y in zip(a, b):
            if isinstance(x, bytes) and len(x) % 4 == 0 and x != y:
                np.testing.assert_allclose(np.frombuffer(x, np.float32),
                                           np.frombuffer(y, np.float32), rtol=1e-5, atol=1e-6)


def _model_steps(mode: str, steps: int, compiled: bool) -> tuple[list, dict]:
    """A Linear-ReLU-Linear model (its weights viewed by F.linear's .t() every step) trained
    with AdamW, eagerly or through compile(model); snapshots of the parameters and state."""
    fast_step.ENABLED = mode != "general"
    fast_step.CODE_ENABLED = mode == "code"
    before = dict(fast_step.STATS)
    try:
        rng = np.random.default_rng(3)
        model = gj.nn.Sequential(gj.nn.Linear(6, 8), gj.nn.ReLU(), gj.nn.Linear(8, 3))
        with gj.no_grad():
            for p in model.parameters():
                p.copy_(gj.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
        forward = gj.compile(model) if compiled else model
        params = list(model.parameters())
        opt = gj.optim.AdamW(params, lr=0.01)
        x = gj.tensor(rng.standard_normal((5, 6)).astype(np.float32))
        y = gj.tensor(rng.integers(0, 3, 5))
        snaps = []
        for _ in range(steps):
            opt.zero_grad()
            gj.nn.functional.cross_entropy(forward(x), y).backward()
            opt.step()
            snaps.append(_snapshot(params, opt))
    finally:
        fast_step.ENABLED = fast_step.CODE_ENABLED = True
    return snaps, {k: fast_step.STATS[k] - before[k] for k in before}


@pytest.mark.parametrize("compiled", [False, True])
def test_a_models_training_loop_is_bitwise_the_general_path(compiled):
    code, counts = _model_steps("code", 8, compiled)
    loop, _ = _model_steps("loop", 8, compiled)
    general, _ = _model_steps("general", 8, compiled)
    assert counts["generated"] == 7 - fast_step.CODE_AFTER
    assert code == loop == general
