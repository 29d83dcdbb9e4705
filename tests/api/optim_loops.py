"""Optimizer loops shared by test_optim_fast.py (fast_step's plans) and test_optim_inplace.py
(state written over its old arrays): the same parameters, loss and optimizers, run with one
module's switch on and off from the same start, snapshots compared step by step."""

import numpy as np

import gradjit as gj

SHAPES = [(3, 4), (4,), (2, 3, 2), ()]

MAKERS = {
    "AdamW": lambda ps: gj.optim.AdamW(ps, lr=0.01, weight_decay=0.05),
    "Adam": lambda ps: gj.optim.Adam(ps, lr=0.02),
    "Adam amsgrad wd": lambda ps: gj.optim.Adam(ps, lr=0.02, amsgrad=True, weight_decay=0.1),
    "SGD": lambda ps: gj.optim.SGD(ps, lr=0.05),
    "SGD momentum": lambda ps: gj.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
    "SGD nesterov": lambda ps: gj.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True),
    "groups": lambda ps: gj.optim.AdamW([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.1}],
                                        lr=0.01),
    "RMSprop (no plan)": lambda ps: gj.optim.RMSprop(ps, lr=0.01),
}


def params(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [gj.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
            for s in shapes]


def loss(params, step):
    total = 0.0
    for i, p in enumerate(params):
        total = total + ((p - 0.1 * (i + step)) ** 4).sum() + (p * float(i + 1)).sum()
    return total


def run_loop(module, make, shapes, steps, enabled, snapshot, event=None, event_first=True,
             loss_fn=None) -> tuple[list, dict]:
    """The loop with module.ENABLED = enabled: snapshot(params, opt) after each step and
    module.STATS's change over the loop. event(step, params, opt) runs between the backward
    and opt.step() (event_first) or after the step; loss_fn(params, step) is loss's stand-in."""
    loss_fn = loss_fn or loss
    module.ENABLED = enabled
    before = dict(module.STATS)
    try:
        ps = params(shapes)
        opt = make(ps)
        snaps = []
        for step in range(steps):
            opt.zero_grad()
            loss_fn(ps, step).backward()
            if event is not None and event_first:
                event(step, ps, opt)
            opt.step()
            if event is not None and not event_first:
                event(step, ps, opt)
            snaps.append(snapshot(ps, opt))
    finally:
        module.ENABLED = True
    return snaps, {k: module.STATS[k] - before[k] for k in before}


def assert_same_steps(on: list, off: list):
    for step, (a, b) in enumerate(zip(on, off)):
        assert a == b, f"step {step} differs"
