"""Every optimizer configuration against trajectories recorded from PyTorch 2.13
(tests/api/recorded/record_optim.py), the state_dict layout, LBFGS, and the compile count."""
import json
from pathlib import Path

import numpy as np
import pytest

import gradjit as gj
import runtime

RECORDED = json.loads((Path(__file__).parent / "recorded" / "optim.json").read_text())
START, TARGET = RECORDED["start"], RECORDED["target"]


def loss_fn(w):
    return ((w - gj.tensor(TARGET, dtype=w.dtype)) ** 4).sum() / 4 + (w * w).sum() * 0.1


@pytest.mark.parametrize("case", RECORDED["optimizers"].values(),
                         ids=RECORDED["optimizers"].keys())
def test_trajectory_equals_pytorch(case):
    w = gj.tensor(START, requires_grad=True)
    opt = getattr(gj.optim, case["name"])([w], **case["kwargs"])
    for expected in case["trajectory"]:
        opt.zero_grad()
        loss_fn(w).backward()
        opt.step()
        np.testing.assert_allclose(w.detach().numpy(), expected, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name, kwargs", [
    ("default", dict(lr=1)), ("strong_wolfe", dict(lr=1, line_search_fn="strong_wolfe")),
    ("history", dict(lr=0.5, max_iter=5, history_size=3))])
def test_lbfgs_equals_pytorch(name, kwargs):
    w = gj.tensor(START, dtype=gj.float64, requires_grad=True)
    opt = gj.optim.LBFGS([w], **kwargs)

    def closure():
        opt.zero_grad()
        loss = loss_fn(w)
        loss.backward()
        return loss
    for loss_value, expected in RECORDED["lbfgs"][name]:
        loss = opt.step(closure)
        np.testing.assert_allclose(float(loss), loss_value, rtol=1e-9)
        np.testing.assert_allclose(w.detach().numpy(), expected, rtol=1e-9, atol=1e-12)


def test_lbfgs_rejects_other_line_searches_and_groups():
    w = gj.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        gj.optim.LBFGS([w], line_search_fn="backtracking")
    with pytest.raises(ValueError, match="per-parameter options"):
        gj.optim.LBFGS([{"params": [w]}, {"params": [gj.zeros(1, requires_grad=True)]}])


def two_groups(name, **kwargs):
    a = gj.tensor(START, requires_grad=True)
    b = gj.tensor([[1.0, 2.0]], requires_grad=True)
    opt = getattr(gj.optim, name)([{"params": [a]}, {"params": [b], "lr": 0.5}], **kwargs)
    return a, b, opt


def layout_of(sd):
    state = {str(k): {n: ([list(v.shape), "torch." + str(v.dtype).split(".")[-1], v.tolist()]
                          if isinstance(v, gj.Tensor) else v) for n, v in s.items()}
             for k, s in sd["state"].items()}
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in sd["param_groups"]]
    return state, groups


LAYOUT_ARGS = {"SGD": dict(lr=0.1, momentum=0.9), "Adam": dict(lr=0.1),
               "AdamW": dict(lr=0.1, amsgrad=True), "RMSprop": dict(lr=0.1, centered=True),
               "Adagrad": dict(lr=0.1), "Adadelta": dict(lr=0.1)}


@pytest.mark.parametrize("name", LAYOUT_ARGS)
def test_state_dict_layout_equals_pytorch(name):
    a, b, opt = two_groups(name, **LAYOUT_ARGS[name])
    for _ in range(2):
        opt.zero_grad()
        (loss_fn(a) + (b * b).sum()).backward()
        opt.step()
    state, groups = layout_of(opt.state_dict())
    want = RECORDED["layouts"][name]
    assert groups == want["param_groups"]
    assert state.keys() == want["state"].keys()
    for index, entries in want["state"].items():
        assert state[index].keys() == entries.keys()
        for key, (shape, dtype, value) in entries.items():
            assert state[index][key][:2] == [shape, dtype], key
            np.testing.assert_allclose(state[index][key][2], value, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", LAYOUT_ARGS)
def test_load_state_dict_resumes_exactly(name):
    """Two steps, save, then one more: a fresh optimizer loaded from the save takes the
    same third step."""
    a, b, opt = two_groups(name, **LAYOUT_ARGS[name])

    def step(optimizer):
        optimizer.zero_grad()
        (loss_fn(a) + (b * b).sum()).backward()
        optimizer.step()
    step(opt)
    step(opt)
    saved = opt.state_dict()        # references, as in PyTorch: copy before stepping on
    saved["state"] = {i: {k: v.clone() if isinstance(v, gj.Tensor) else v
                          for k, v in st.items()} for i, st in saved["state"].items()}
    snapshot = [a.detach().numpy().copy(), b.detach().numpy().copy()]
    step(opt)
    after = [a.detach().numpy().copy(), b.detach().numpy().copy()]
    with gj.no_grad():
        a.copy_(gj.tensor(snapshot[0]))
        b.copy_(gj.tensor(snapshot[1]))
    fresh = getattr(gj.optim, name)([{"params": [a]}, {"params": [b]}], lr=1.0)
    fresh.load_state_dict(saved)
    assert [g["lr"] for g in fresh.param_groups] == [0.1, 0.5]
    step(fresh)
    np.testing.assert_allclose(a.detach().numpy(), after[0], rtol=1e-6)
    np.testing.assert_allclose(b.detach().numpy(), after[1], rtol=1e-6)


def test_load_state_dict_checks_the_groups():
    a, b, opt = two_groups("SGD", lr=0.1)
    single = gj.optim.SGD([a], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        single.load_state_dict(opt.state_dict())
    other = gj.optim.SGD([{"params": [a, b]}, {"params": [gj.zeros(1, requires_grad=True)]}])
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        other.load_state_dict(opt.state_dict())


def test_add_param_group_and_duplicates():
    a, b = gj.zeros(2, requires_grad=True), gj.zeros(1, requires_grad=True)
    opt = gj.optim.Adam([a], lr=0.1)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_a_schedule_changes_lr_without_recompiling_the_step():
    """The step is compiled once; 20 scheduled learning rates reuse it (compile counters)."""
    w = gj.tensor(START, requires_grad=True)
    opt = gj.optim.AdamW([w], lr=0.1, weight_decay=0.01)
    sched = gj.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.3, total_steps=30)
    opt.zero_grad()
    loss_fn(w).backward()
    opt.step()                                  # the first step compiles
    sched.step()
    before = runtime.cache_info()
    lrs = set()
    for _ in range(20):
        opt.zero_grad()
        loss_fn(w).backward()
        opt.step()
        sched.step()
        lrs.add(opt.param_groups[0]["lr"])
    after = runtime.cache_info()
    assert len(lrs) == 20 and len(opt._programs) == 1
    assert after["compiles"] == before["compiles"]
