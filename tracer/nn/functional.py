"""nn.functional: the neural-network functions (the op surface's, plus linear and dropout)."""
from __future__ import annotations

import tracer.ops as ops
from tracer.creation import rand
from tracer.ops.nn_functional import (cross_entropy, leaky_relu, log_softmax, logsumexp,  # noqa
                                      l1_loss, mse_loss, nll_loss, relu, sigmoid, silu,
                                      softmax, softplus, tanh)
from tracer.record import torch_op
from tracer.tensor import Tensor

__all__ = ["linear", "dropout", "relu", "sigmoid", "tanh", "softmax", "log_softmax",
           "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "silu", "softplus",
           "leaky_relu", "logsumexp"]


@torch_op("Addmm", saves=(1, 2))
def _addmm(bias: Tensor, x: Tensor, weight: Tensor) -> Tensor:
    return ops.add(ops.matmul(x, ops.t(weight)), bias)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias; one AddmmBackward0 node for 2-D input, as in PyTorch."""
    if bias is not None and input.ndim == 2:
        return _addmm(bias, input, weight)
    out = ops.matmul(input, ops.t(weight))
    return out if bias is None else ops.add(out, bias)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zeroes elements with probability p and scales the rest by 1/(1-p) when training."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    keep = ops.gt(rand(*input.shape), p).to(input.dtype)
    return ops.mul(input, ops.mul(keep, 1.0 / (1.0 - p))) if p < 1.0 else ops.mul(input, 0.0)
