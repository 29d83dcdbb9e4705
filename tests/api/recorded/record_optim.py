"""Records tests/api/recorded/optim.json from real PyTorch 2.13 (not run by the suite):
    /tmp/torchvenv/bin/python tests/api/recorded/record_optim.py > tests/api/recorded/optim.json

Trajectories of every optimizer configuration on a fixed non-quadratic loss, the learning
rates of every scheduler over 50 steps, and the layout of optimizer.state_dict().
"""
import json

import torch

START = [1.0, -2.0, 0.5]
TARGET = [0.5, 1.0, -1.0]


def loss_fn(w):
    return ((w - torch.tensor(TARGET)) ** 4).sum() / 4 + (w * w).sum() * 0.1


OPTIMIZERS = {
    "SGD nesterov decay maximize": ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True,
                                                weight_decay=0.1)),
    "SGD dampening": ("SGD", dict(lr=0.02, momentum=0.8, dampening=0.3)),
    "SGD maximize": ("SGD", dict(lr=0.01, maximize=True)),
    "Adam": ("Adam", dict(lr=0.1)),
    "Adam amsgrad maximize": ("Adam", dict(lr=0.05, amsgrad=True, maximize=True)),
    "Adam decay": ("Adam", dict(lr=0.05, weight_decay=0.1, foreach=False)),
    "AdamW amsgrad": ("AdamW", dict(lr=0.05, amsgrad=True, weight_decay=0.05)),
    "RMSprop": ("RMSprop", dict(lr=0.01)),
    "RMSprop centered momentum": ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True,
                                                  momentum=0.5, weight_decay=0.1)),
    "RMSprop maximize": ("RMSprop", dict(lr=0.01, maximize=True, eps=1e-6)),
    "Adagrad": ("Adagrad", dict(lr=0.1)),
    "Adagrad decay": ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1,
                                      initial_accumulator_value=0.2, eps=1e-6)),
    "Adagrad maximize": ("Adagrad", dict(lr=0.1, maximize=True)),
    "Adadelta": ("Adadelta", dict()),
    "Adadelta decay maximize": ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1,
                                                 maximize=True)),
}


def trajectory(name, kwargs, steps=8):
    w = torch.tensor(START, requires_grad=True)
    opt = getattr(torch.optim, name)([w], **kwargs)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(w).backward()
        opt.step()
        out.append(w.tolist())
    return out


def lbfgs(kwargs, steps=4):
    w = torch.tensor(START, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], **kwargs)
    out = []

    def closure():
        opt.zero_grad()
        loss = loss_fn(w.double() if False else w)
        loss.backward()
        return loss
    for _ in range(steps):
        loss = opt.step(closure)
        out.append([float(loss), w.tolist()])
    return out


def layout(name, kwargs):
    a = torch.tensor(START, requires_grad=True)
    b = torch.tensor([[1.0, 2.0]], requires_grad=True)
    opt = getattr(torch.optim, name)([{"params": [a]}, {"params": [b], "lr": 0.5}], **kwargs)
    for _ in range(2):
        opt.zero_grad()
        (loss_fn(a) + (b * b).sum()).backward()
        opt.step()
    sd = opt.state_dict()
    state = {str(k): {n: ([list(v.shape), str(v.dtype), v.tolist()] if torch.is_tensor(v)
                          else v) for n, v in s.items()} for k, s in sd["state"].items()}
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in sd["param_groups"]]
    return {"state": state, "param_groups": groups}


SCHEDULERS = {
    "StepLR": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [5, 12, 30], gamma=0.3),
    "ExponentialLR": lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.95),
    "CosineAnnealingLR": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20,
                                                                             eta_min=0.01),
    "LambdaLR": lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1 / (1 + e)),
    "OneCycleLR": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=51),
    "OneCycleLR linear": lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.5, total_steps=60, anneal_strategy="linear", three_phase=True,
        pct_start=0.2),
    "LinearLR": lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.25,
                                                            total_iters=10),
    "SequentialLR": lambda o: torch.optim.lr_scheduler.SequentialLR(
        o, [torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=5),
            torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=30)], milestones=[5]),
}

PLATEAU_METRICS = [1.0 / (1 + min(i, 10)) + (0.001 * (i % 3)) for i in range(50)]


def schedule(make):
    w = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([{"params": [w]}, {"params": [torch.zeros(1, requires_grad=True)],
                                             "lr": 0.02}], lr=0.1, momentum=0.9)
    sched = make(opt)
    lrs = [sched.get_last_lr()]
    for _ in range(50):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr())
    sd = {k: v for k, v in sched.state_dict().items()
          if isinstance(v, (int, float, list, str, type(None), bool))}
    mom = [g["momentum"] for g in opt.param_groups]
    return {"lrs": lrs, "state_dict": sd, "momentum": mom}


def plateau(kwargs):
    w = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    lrs = []
    for m in PLATEAU_METRICS:
        opt.step()
        sched.step(m)
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


out = {"start": START, "target": TARGET,
       "optimizers": {k: {"name": n, "kwargs": kw, "trajectory": trajectory(n, kw)}
                      for k, (n, kw) in OPTIMIZERS.items()},
       "lbfgs": {"default": lbfgs(dict(lr=1)),
                 "strong_wolfe": lbfgs(dict(lr=1, line_search_fn="strong_wolfe")),
                 "history": lbfgs(dict(lr=0.5, max_iter=5, history_size=3))},
       "layouts": {n: layout(n, kw) for n, kw in [
           ("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.1)),
           ("AdamW", dict(lr=0.1, amsgrad=True)), ("RMSprop", dict(lr=0.1, centered=True)),
           ("Adagrad", dict(lr=0.1)), ("Adadelta", dict(lr=0.1))]},
       "schedulers": {k: schedule(m) for k, m in SCHEDULERS.items()},
       "plateau_metrics": PLATEAU_METRICS,
       "plateau": {"min": plateau(dict(patience=2, factor=0.5)),
                   "max abs cooldown": plateau(dict(mode="max", patience=1, cooldown=2,
                                                    threshold_mode="abs", min_lr=0.01))}}
print(json.dumps(out, indent=1))
