"""Adadelta (torch/optim/adadelta.py, single-tensor path)."""
from __future__ import annotations

from tracer.creation import zeros_like
from tracer.optim.base import Optimizer

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta (Zeiler): steps by sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g, both running
    averages with rate rho, times lr. foreach, capturable and differentiable are accepted and
    change nothing."""

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach=None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False):
        for name, value, ok in (("learning rate", lr, 0.0 <= lr), ("rho value", rho,
                                                                   0.0 <= rho <= 1.0),
                                ("epsilon value", eps, 0.0 <= eps),
                                ("weight_decay value", weight_decay, 0.0 <= weight_decay)):
            if not ok:
                raise ValueError(f"Invalid {name}: {value}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize, capturable=capturable,
                                      foreach=foreach, differentiable=differentiable))

    def _flags(self, group):
        return (group["weight_decay"] != 0, bool(group["maximize"]))

    def _prepare(self, p, group):
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["square_avg"] = zeros_like(p)
            state["acc_delta"] = zeros_like(p)
        state["step"] += 1
        return {"lr": group["lr"], "rho": group["rho"], "eps": group["eps"],
                "weight_decay": group["weight_decay"]}

    def _update(self, p, grad, state, h, flags):
        decay, maximize = flags
        grad = -grad if maximize else grad
        if decay:
            grad = grad + p * h["weight_decay"]
        rho = h["rho"]
        square_avg = state["square_avg"] * rho + grad * grad * (1 - rho)
        delta = (state["acc_delta"] + h["eps"]).sqrt() / (square_avg + h["eps"]).sqrt() * grad
        acc_delta = state["acc_delta"] * rho + delta * delta * (1 - rho)
        return p - delta * h["lr"], {"square_avg": square_avg, "acc_delta": acc_delta}
