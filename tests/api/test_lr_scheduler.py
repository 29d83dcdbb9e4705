"""lr_scheduler: learning rates over 50 steps equal PyTorch 2.13's (recorded by
tests/api/recorded/record_optim.py), state_dict, errors, the import forms."""
import json
from pathlib import Path

import numpy as np
import pytest

import gradjit as gj
from gradjit.optim import lr_scheduler as sched_mod

RECORDED = json.loads((Path(__file__).parent / "recorded" / "optim.json").read_text())

SCHEDULERS = {
    "StepLR": lambda o: sched_mod.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda o: sched_mod.MultiStepLR(o, [5, 12, 30], gamma=0.3),
    "ExponentialLR": lambda o: sched_mod.ExponentialLR(o, gamma=0.95),
    "CosineAnnealingLR": lambda o: sched_mod.CosineAnnealingLR(o, T_max=20, eta_min=0.01),
    "LambdaLR": lambda o: sched_mod.LambdaLR(o, lambda e: 1 / (1 + e)),
    "OneCycleLR": lambda o: sched_mod.OneCycleLR(o, max_lr=1.0, total_steps=51),
    "OneCycleLR linear": lambda o: sched_mod.OneCycleLR(
        o, max_lr=0.5, total_steps=60, anneal_strategy="linear", three_phase=True,
        pct_start=0.2),
    "LinearLR": lambda o: sched_mod.LinearLR(o, start_factor=0.25, total_iters=10),
    "SequentialLR": lambda o: sched_mod.SequentialLR(
        o, [sched_mod.LinearLR(o, start_factor=0.1, total_iters=5),
            sched_mod.CosineAnnealingLR(o, T_max=30)], milestones=[5]),
}


def make_optimizer():
    w = gj.zeros(2, requires_grad=True)
    return gj.optim.SGD([{"params": [w]}, {"params": [gj.zeros(1, requires_grad=True)],
                                           "lr": 0.02}], lr=0.1, momentum=0.9)


@pytest.mark.parametrize("name", SCHEDULERS)
def test_fifty_steps_equal_pytorch(name):
    want = RECORDED["schedulers"][name]
    opt = make_optimizer()
    sched = SCHEDULERS[name](opt)
    lrs = [sched.get_last_lr()]
    for _ in range(50):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr())
    np.testing.assert_allclose(lrs, want["lrs"], rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose([g["momentum"] for g in opt.param_groups], want["momentum"],
                               rtol=1e-13)
    state = sched.state_dict()
    for key, value in want["state_dict"].items():
        assert key in state, key
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            np.testing.assert_allclose(state[key], value, rtol=1e-13)
        elif key not in ("_schedulers",):
            assert (list(state[key]) if isinstance(state[key], tuple) else state[key]) == value


@pytest.mark.parametrize("name, kwargs", [("min", dict(patience=2, factor=0.5)),
                                          ("max abs cooldown", dict(mode="max", patience=1,
                                                                    cooldown=2,
                                                                    threshold_mode="abs",
                                                                    min_lr=0.01))])
def test_reduce_lr_on_plateau_equals_pytorch(name, kwargs):
    w = gj.zeros(2, requires_grad=True)
    opt = gj.optim.SGD([w], lr=0.1)
    sched = sched_mod.ReduceLROnPlateau(opt, **kwargs)
    lrs = []
    for metric in RECORDED["plateau_metrics"]:
        opt.step()
        sched.step(metric)
        lrs.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, RECORDED["plateau"][name], rtol=1e-13)
    assert sched.get_last_lr() == [lrs[-1]]


def test_scheduler_state_dict_resumes():
    opt = make_optimizer()
    sched = sched_mod.StepLR(opt, step_size=3, gamma=0.5)
    for _ in range(4):
        sched.step()
    saved = sched.state_dict()
    assert "optimizer" not in saved and saved["last_epoch"] == 4
    opt2 = make_optimizer()
    resumed = sched_mod.StepLR(opt2, step_size=3, gamma=0.5)
    opt2.load_state_dict(opt.state_dict())      # the schedule is chainable: lr lives there
    resumed.load_state_dict(saved)
    for _ in range(3):
        sched.step()
        resumed.step()
    assert resumed.last_epoch == sched.last_epoch == 7
    assert resumed.get_last_lr() == sched.get_last_lr() == [0.025, 0.005]


def test_adam_one_cycle_cycles_beta1():
    w = gj.zeros(2, requires_grad=True)
    opt = gj.optim.Adam([w], lr=0.1)
    sched = sched_mod.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    assert opt.param_groups[0]["betas"] == (0.95, 0.999)
    for _ in range(3):
        opt.step()
        sched.step()
    assert 0.85 <= opt.param_groups[0]["betas"][0] < 0.95


SCHEDULER_ERRORS = [
    (lambda o: sched_mod.StepLR("not an optimizer", 3), TypeError, "str is not an Optimizer"),
    (lambda o: sched_mod.LinearLR(o, start_factor=0), ValueError,
     "Starting multiplicative factor expected to be greater than 0"),
    (lambda o: sched_mod.ReduceLROnPlateau(o, factor=1.0), ValueError, "Factor should be < 1.0."),
    (lambda o: sched_mod.ReduceLROnPlateau(o, mode="up"), ValueError, "mode up is unknown!"),
    (lambda o: sched_mod.OneCycleLR(o, max_lr=1.0), ValueError,
     "You must define either total_steps OR"),
    (lambda o: sched_mod.SequentialLR(o, [sched_mod.StepLR(o, 2)], milestones=[3]), ValueError,
     "Sequential Schedulers expects number of schedulers provided to be one more"),
    (lambda o: sched_mod.LambdaLR(o, [lambda e: 1.0]), ValueError, "Expected 2 lr_lambdas"),
]


@pytest.mark.parametrize("make, error, message", SCHEDULER_ERRORS)
def test_scheduler_errors(make, error, message):
    with pytest.raises(error, match=message):
        make(make_optimizer())


def test_one_cycle_past_its_end_is_an_error():
    opt = make_optimizer()
    sched = sched_mod.OneCycleLR(opt, max_lr=1.0, total_steps=2)
    sched.step()
    sched.step()
    with pytest.raises(ValueError, match="Tried to step 3 times"):
        sched.step()


def test_import_forms_and_missing_names():
    from gradjit.optim.lr_scheduler import CosineAnnealingLR, StepLR  # noqa: F401
    assert gj.optim.lr_scheduler.StepLR is StepLR
    with pytest.raises(AttributeError, match="gradjit does not implement "
                                             "torch.optim.lr_scheduler.CyclicLR"):
        sched_mod.CyclicLR  # noqa: B018
