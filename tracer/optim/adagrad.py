"""Adagrad (torch/optim/adagrad.py, single-tensor path)."""
from __future__ import annotations

from tracer.creation import full_like
from tracer.optim.base import Optimizer

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.): divides by the root of the summed squared gradients, with an
    optional learning-rate decay per step. foreach, fused and differentiable are accepted and
    change nothing."""

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach=None, *,
                 maximize: bool = False, differentiable: bool = False, fused=None):
        for name, value in (("learning rate", lr), ("lr_decay value", lr_decay),
                            ("weight_decay value", weight_decay),
                            ("initial_accumulator_value value", initial_accumulator_value),
                            ("epsilon value", eps)):
            if not 0.0 <= value:
                raise ValueError(f"Invalid {name}: {value}")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps,
                                      weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      foreach=foreach, maximize=maximize,
                                      differentiable=differentiable, fused=fused))

    def _init_state(self, p, group):
        if not self.state[p]:
            self.state[p]["step"] = 0
            self.state[p]["sum"] = full_like(p, group["initial_accumulator_value"])

    def add_param_group(self, param_group: dict):
        super().add_param_group(param_group)
        group = self.param_groups[-1]         # PyTorch fills the state here, not at step 1
        for p in group["params"]:
            self._init_state(p, group)

    def _flags(self, group):
        return (group["weight_decay"] != 0, bool(group["maximize"]))

    def _prepare(self, p, group):
        self._init_state(p, group)
        state = self.state[p]
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        return {"clr": clr, "eps": group["eps"], "weight_decay": group["weight_decay"]}

    def _update(self, p, grad, state, h, flags):
        decay, maximize = flags
        grad = -grad if maximize else grad
        if decay:
            grad = grad + p * h["weight_decay"]
        total = state["sum"] + grad * grad
        return p - grad / (total.sqrt() + h["eps"]) * h["clr"], {"sum": total}
