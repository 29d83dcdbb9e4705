"""RMSprop (torch/optim/rmsprop.py, single-tensor path): centered, momentum, weight decay."""
from __future__ import annotations

from tracer.creation import zeros_like
from tracer.optim.base import Optimizer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop (Hinton): divides the gradient by a running root mean square of recent
    gradients; centered subtracts the squared running mean. foreach, capturable and
    differentiable are accepted and change nothing."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach=None, maximize: bool = False,
                 differentiable: bool = False):
        for name, value in (("learning rate", lr), ("epsilon value", eps),
                            ("momentum value", momentum), ("weight_decay value", weight_decay),
                            ("alpha value", alpha)):
            if not 0.0 <= value:
                raise ValueError(f"Invalid {name}: {value}")
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps,
                                      centered=centered, weight_decay=weight_decay,
                                      capturable=capturable, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable))

    def _flags(self, group):
        return (group["weight_decay"] != 0, bool(group["centered"]), group["momentum"] > 0,
                bool(group["maximize"]))

    def _prepare(self, p, group):
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["square_avg"] = zeros_like(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = zeros_like(p)
        state["step"] += 1
        alpha = group["alpha"]
        return {"lr": group["lr"], "alpha": alpha, "one_minus_alpha": 1 - alpha,
                "eps": group["eps"], "weight_decay": group["weight_decay"],
                "momentum": group["momentum"]}

    def _update(self, p, grad, state, h, flags):
        decay, centered, use_momentum, maximize = flags
        grad = -grad if maximize else grad
        if decay:
            grad = grad + p * h["weight_decay"]
        square_avg = state["square_avg"] * h["alpha"] + grad * grad * h["one_minus_alpha"]
        new = {"square_avg": square_avg}
        if centered:
            grad_avg = state["grad_avg"] + (grad - state["grad_avg"]) * h["one_minus_alpha"]
            new["grad_avg"] = grad_avg
            avg = (square_avg - grad_avg * grad_avg).sqrt()
        else:
            avg = square_avg.sqrt()
        avg = avg + h["eps"]
        if use_momentum:
            buf = new["momentum_buffer"] = state["momentum_buffer"] * h["momentum"] + grad / avg
            return p - buf * h["lr"], new
        return p - grad / avg * h["lr"], new
