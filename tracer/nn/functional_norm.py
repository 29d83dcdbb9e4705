"""Normalisations of nn.functional: layer_norm, rms_norm, group_norm, batch_norm (with the
in-place running-statistics update PyTorch does), instance_norm, normalize."""
from __future__ import annotations

import tracer.ops as ops
from tracer.autograd.grad_mode import no_grad
from tracer.nn.functional_act import as_float
from tracer.ops.operands import dtype_of, user_error
from tracer.record import torch_op

__all__ = ["layer_norm", "rms_norm", "group_norm", "batch_norm", "instance_norm", "normalize"]


def _shape_tuple(shape) -> tuple:
    return (shape,) if isinstance(shape, int) else tuple(shape)


def _check_trailing(x, shape, what: str):
    if tuple(x.shape[x.ndim - len(shape):]) != shape or len(shape) > x.ndim:
        raise user_error(RuntimeError, f"Given normalized_shape={list(shape)}, expected input "
                         f"with shape [*, {', '.join(map(str, shape))}], but got input of "
                         f"size{list(x.shape)}")


def _standardize(x, dims, eps):
    """(x - mean) / sqrt(biased var + eps) over dims."""
    mean = x.mean(dims, keepdim=True)
    centered = x - mean
    var = (centered * centered).mean(dims, keepdim=True)
    return centered * ops.rsqrt(var + eps)


# one user op (PyTorch's NativeLayerNormBackward0 node), memoised (tracer/op_memo.py)
@torch_op("NativeLayerNorm", saves=(0, 2, 3))
def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """Standardises over the trailing normalized_shape dims, then weight * . + bias."""
    x = as_float(input)
    shape = _shape_tuple(normalized_shape)
    _check_trailing(x, shape, "layer_norm")
    out = _standardize(x, tuple(range(x.ndim - len(shape), x.ndim)), eps)
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def rms_norm(input, normalized_shape, weight=None, eps: float | None = None):
    """x / sqrt(mean(x^2) + eps) over the trailing dims (eps defaults to the dtype's eps)."""
    x = as_float(input)
    shape = _shape_tuple(normalized_shape)
    _check_trailing(x, shape, "rms_norm")
    if eps is None:
        eps = 1.1920928955078125e-07 if dtype_of(x) == "f32" else 2.220446049250313e-16
    dims = tuple(range(x.ndim - len(shape), x.ndim))
    out = x * ops.rsqrt((x * x).mean(dims, keepdim=True) + eps)
    return out if weight is None else out * weight


def _channel_view(t, ndim: int):
    """A per-channel (C,) tensor shaped to broadcast against (N, C, *spatial)."""
    return t.reshape((-1,) + (1,) * (ndim - 2))


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5):
    """Standardises each of num_groups channel groups per sample, then a per-channel affine."""
    x = as_float(input)
    n, c = x.shape[0], x.shape[1]
    if c % num_groups:
        raise user_error(RuntimeError, f"Expected number of channels in input to be divisible "
                         f"by num_groups, but got input of shape {list(x.shape)} and "
                         f"num_groups={num_groups}")
    g = x.reshape(n, num_groups, -1)
    out = _standardize(g, (2,), eps).reshape(tuple(x.shape))
    if weight is not None:
        out = out * _channel_view(weight, x.ndim)
    return out if bias is None else out + _channel_view(bias, x.ndim)


def batch_norm(input, running_mean, running_var, weight=None, bias=None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5):
    """Batch statistics over (N, *spatial) when training (updating running_mean/var in place
    with the unbiased variance, as PyTorch does), else the running statistics."""
    x = as_float(input)
    if x.ndim < 2:
        raise user_error(ValueError, f"expected 2D or 3D input (got {x.ndim}D input)")
    if running_mean is not None and running_mean.shape[0] != x.shape[1]:
        raise user_error(RuntimeError, f"running_mean should contain {x.shape[1]} elements not "
                                       f"{running_mean.shape[0]}")
    dims = (0,) + tuple(range(2, x.ndim))
    count = x.numel() // x.shape[1]
    if training:
        if count == 1:
            raise user_error(ValueError, "Expected more than 1 value per channel when "
                             f"training, got input size torch.Size({list(x.shape)})")
        mean = x.mean(dims)
        centered = x - _channel_view(mean, x.ndim)
        var = (centered * centered).mean(dims)
        if running_mean is not None:
            with no_grad():
                m = momentum
                running_mean.mul_(1 - m).add_(mean.detach() * m)
                running_var.mul_(1 - m).add_(var.detach() * (m * count / (count - 1)))
        out = centered * _channel_view(ops.rsqrt(var + eps), x.ndim)
    else:
        if running_mean is None:
            raise user_error(RuntimeError, "running_mean must be given when not training")
        out = ((x - _channel_view(running_mean, x.ndim))
               * _channel_view(ops.rsqrt(running_var + eps), x.ndim))
    if weight is not None:
        out = out * _channel_view(weight, x.ndim)
    return out if bias is None else out + _channel_view(bias, x.ndim)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats: bool = True, momentum: float = 0.1, eps: float = 1e-5):
    """Standardises each (sample, channel) over its spatial dims."""
    x = as_float(input)
    out = _standardize(x, tuple(range(2, x.ndim)), eps)
    if weight is not None:
        out = out * _channel_view(weight, x.ndim)
    return out if bias is None else out + _channel_view(bias, x.ndim)


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None):
    """x / max(||x||_p along dim, eps)."""
    x = as_float(input)
    if p == 2:
        norm = ops.sqrt((x * x).sum(dim, keepdim=True))
    elif p == 1:
        norm = ops.abs(x).sum(dim, keepdim=True)
    elif p == float("inf"):
        norm = ops.abs(x).amax(dim, keepdim=True)
    else:
        norm = (ops.abs(x) ** p).sum(dim, keepdim=True) ** (1.0 / p)
    return x / ops.clamp_min(norm, eps)
