"""Adam and AdamW (torch/optim/adam.py, adamw.py, single-tensor path)."""
from __future__ import annotations

import math

from tracer.creation import zeros_like
from tracer.optim.base import Optimizer, _same_objects

__all__ = ["Adam", "AdamW"]


def check_adam_args(lr, eps, betas, weight_decay):
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class Adam(Optimizer):
    """Adam (Kingma & Ba) with L2 or decoupled weight decay, AMSGrad and maximize, as
    PyTorch computes it. foreach, fused, capturable and differentiable are accepted and
    change nothing: every parameter's update is already one compiled program."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach=None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused=None,
                 decoupled_weight_decay: bool = False):
        check_adam_args(lr, eps, betas, weight_decay)
        self._last_hypers = None          # (step, the group's objects, _prepare's result)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach,
                                      capturable=capturable, differentiable=differentiable,
                                      fused=fused,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _flags(self, group):
        return (group["weight_decay"] != 0, bool(group["amsgrad"]), bool(group["maximize"]),
                bool(group["decoupled_weight_decay"]))

    def _prepare(self, p, group):
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros_like(p)
        state["step"] += 1
        return self._hypers(group, state["step"])

    def _shared_hypers(self, group, states):
        # every parameter's step count equal (the same int object once the fast path ran)
        step = states[0].get("step")
        if type(step) is not int:
            return None
        for st in states:
            s = st.get("step")
            if s is not step and (type(s) is not int or s != step):
                return None
        step += 1
        for st in states:
            st["step"] = step
        return self._hypers(group, step)

    def _hypers(self, group, step: int) -> dict:
        inputs = (group["lr"], group["betas"], group["eps"], group["weight_decay"])
        # the previous parameter's values when computed from the same objects and step: the
        # same value objects let the step share their arrays (base.Optimizer._step_group)
        last = self._last_hypers
        if last is not None and last[0] == step and _same_objects(inputs, last[1]):
            return last[2]
        beta1, beta2 = group["betas"]
        if last is not None and _same_objects(inputs, last[1]):
            # the values that do not depend on the step: the same float objects, so a
            # repeated step reuses their 0-d arrays (fast_step, step_arrays.renewed_scalars)
            fixed = last[2]
            one_minus_beta1, one_minus_beta2 = fixed["one_minus_beta1"], fixed["one_minus_beta2"]
            decay_factor = fixed["decay_factor"]
        else:
            one_minus_beta1, one_minus_beta2 = 1 - beta1, 1 - beta2
            decay_factor = 1 - group["lr"] * group["weight_decay"]
        hypers = {"one_minus_beta1": one_minus_beta1, "beta2": beta2,
                  "one_minus_beta2": one_minus_beta2, "eps": group["eps"],
                  "weight_decay": group["weight_decay"],
                  "decay_factor": decay_factor,
                  "step_size": group["lr"] / (1 - beta1 ** step),
                  "correction2_sqrt": math.sqrt(1 - beta2 ** step)}
        self._last_hypers = (step, inputs, hypers)
        return hypers

    def _update(self, p, grad, state, h, flags):
        decay, amsgrad, maximize, decoupled = flags
        grad = -grad if maximize else grad
        if decay and decoupled:
            p = p * h["decay_factor"]
        elif decay:
            grad = grad + p * h["weight_decay"]
        exp_avg = state["exp_avg"] + (grad - state["exp_avg"]) * h["one_minus_beta1"]  # lerp_
        exp_avg_sq = state["exp_avg_sq"] * h["beta2"] + grad * grad * h["one_minus_beta2"]
        new = {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
        second = exp_avg_sq
        if amsgrad:
            second = new["max_exp_avg_sq"] = state["max_exp_avg_sq"].maximum(exp_avg_sq)
        denom = second.sqrt() / h["correction2_sqrt"] + h["eps"]
        return p - exp_avg / denom * h["step_size"], new


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as PyTorch's AdamW: the
    parameter shrinks by lr * weight_decay before the Adam step, the gradient is left alone."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach=None, capturable: bool = False, differentiable: bool = False,
                 fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
