"""nn.functional: the neural-network functions (the op surface's, plus linear, dropout and
the subject files functional_act/_norm/_misc/_conv/_loss/_attn)."""
from __future__ import annotations

import tracer.ops as ops
from tracer.creation import rand
from tracer.nn import (functional_act, functional_attn, functional_conv, functional_convt,
                       functional_loss,
                       functional_misc, functional_norm, functional_unpool)
from tracer.nn.functional_act import *  # noqa: F401,F403
from tracer.nn.functional_attn import *  # noqa: F401,F403
from tracer.nn.functional_conv import *  # noqa: F401,F403
from tracer.nn.functional_convt import *  # noqa: F401,F403
from tracer.nn.functional_loss import *  # noqa: F401,F403
from tracer.nn.functional_misc import *  # noqa: F401,F403
from tracer.nn.functional_norm import *  # noqa: F401,F403
from tracer.nn.functional_unpool import *  # noqa: F401,F403
from tracer.nn.checks import refuse_linear
from tracer.ops.nn_functional import (cross_entropy, leaky_relu, log_softmax, logsumexp,  # noqa
                                      l1_loss, mse_loss, nll_loss, sigmoid, silu,
                                      softmax, softplus, tanh)
from tracer.record import torch_op
from tracer.tensor import Tensor

__all__ = ["linear", "bilinear", "dropout", "relu", "sigmoid", "tanh", "softmax",
           "log_softmax", "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "silu",
           "softplus", "leaky_relu", "logsumexp", "softmin"]
for _m in (functional_act, functional_attn, functional_conv, functional_convt, functional_loss,
           functional_misc,
           functional_norm, functional_unpool):
    __all__ += _m.__all__


@torch_op("Addmm", saves=(1, 2))
def _addmm(bias: Tensor, x: Tensor, weight: Tensor) -> Tensor:
    return ops.add(ops.matmul(x, ops.t(weight)), bias)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias; one AddmmBackward0 node for 2-D input, as in PyTorch."""
    shape = input.shape
    if not shape or shape[-1] != weight.shape[-1] \
            or input._expr.type.dtype != weight._expr.type.dtype:
        refuse_linear(input, weight, bias)
    if bias is not None and input.ndim == 2:
        return _addmm(bias, input, weight)
    out = ops.matmul(input, ops.t(weight))
    return out if bias is None else ops.add(out, bias)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None):
    """y_k = x1 W_k x2 + b_k for weight (out, in1, in2)."""
    out = ops.einsum("...i,kij,...j->...k", input1, weight, input2)
    return out if bias is None else out + bias


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(input, 0); inplace=True rewrites input, as PyTorch's F.relu(x, inplace=True)."""
    return input.relu_() if inplace else ops.relu(input)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    return softmax(-input, dim, _stacklevel, dtype)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zeroes elements with probability p and scales the rest by 1/(1-p) when training."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    keep = ops.gt(rand(*input.shape), p).to(input.dtype)
    return ops.mul(input, ops.mul(keep, 1.0 / (1.0 - p))) if p < 1.0 else ops.mul(input, 0.0)
