"""SGD: momentum, dampening, Nesterov, weight decay, maximize (torch/optim/sgd.py)."""
from __future__ import annotations

from tracer.optim.base import Optimizer, _same_objects, required

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov, decay."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach=None, differentiable: bool = False, fused=None):
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self._last_hypers = None          # (the group's objects, _prepare's result)
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize, foreach=foreach,
                                      differentiable=differentiable, fused=fused))

    def _flags(self, group):
        return (group["momentum"] != 0, group["weight_decay"] != 0, bool(group["nesterov"]),
                bool(group["maximize"]))

    def _prepare(self, p, group):
        # NOTE: complements are taken in double precision, as PyTorch's Python code does
        return {"lr": group["lr"], "momentum": group["momentum"],
                "one_minus_dampening": 1 - group["dampening"],
                "weight_decay": group["weight_decay"]}

    def _shared_hypers(self, group, states):
        # the same dict while the group's values are the same objects: the step then reuses
        # its 0-d arrays without keying the values again
        inputs = (group["lr"], group["momentum"], group["dampening"], group["weight_decay"])
        last = self._last_hypers
        if last is not None and _same_objects(inputs, last[0]):
            return last[1]
        hypers = self._prepare(None, group)
        self._last_hypers = (inputs, hypers)
        return hypers

    def _update(self, p, grad, state, h, flags):
        use_momentum, decay, nesterov, maximize = flags
        grad = -grad if maximize else grad
        if decay:
            grad = grad + p * h["weight_decay"]
        if use_momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = grad                      # torch.clone(grad).detach()
            else:
                buf = buf * h["momentum"] + grad * h["one_minus_dampening"]
            state = {"momentum_buffer": buf}
            grad = grad + buf * h["momentum"] if nesterov else buf
        return p - grad * h["lr"], state
