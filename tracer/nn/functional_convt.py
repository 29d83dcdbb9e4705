"""Transposed convolution and adaptive max pooling of nn.functional, as compositions.

conv_transpose{1,2}d is the gradient of conv{1,2}d with respect to its input, written as a
forward convolution: the input spread out by `stride` (stride - 1 zeros between elements),
padded by dilation * (k - 1) - padding on each side (plus output_padding at the end), then
convolved (stride 1) with the kernel flipped and its in/out channels swapped per group.
Adaptive max pooling is separable: a max over each axis's windows [floor(i L / n),
ceil((i + 1) L / n)) in turn."""
from __future__ import annotations

import numpy as np

import tracer.ops as ops
from tracer.creation import tensor
from tracer.nn.functional_act import as_float
from tracer.nn.functional_conv import _batched, _tuple, conv1d, conv2d
from tracer.nn.functional_misc import pad as _pad
from tracer.ops.operands import user_error
from tracer.record import apply, torch_op

__all__ = ["conv_transpose1d", "conv_transpose2d", "adaptive_max_pool1d",
           "adaptive_max_pool2d"]


@torch_op("ConstantPadNd")
def _spread(x, strides: tuple):
    """x with stride - 1 zeros between consecutive elements along each spatial axis (the
    interior padding of the pad primitive)."""
    interior = (0, 0) + tuple(s - 1 for s in strides)
    return apply("pad", x, lo=(0,) * x.ndim, hi=(0,) * x.ndim, interior=interior)


def _flipped_swapped(w, groups: int, nd: int):
    """(C_in, C_out/g, *k) -> (C_out, C_in/g, *k) with each kernel reversed."""
    cin, cog = w.shape[0], w.shape[1]
    kernel = tuple(w.shape[2:])
    w = w.reshape((groups, cin // groups, cog) + kernel)
    w = ops.transpose(w, 1, 2).reshape((groups * cog, cin // groups) + kernel)
    for d in range(nd):
        reverse = tensor(np.arange(kernel[d] - 1, -1, -1, dtype=np.int64))
        w = ops.index_select(w, 2 + d, reverse)
    return w


def _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation,
                    nd: int):
    name = f"conv_transpose{nd}d"
    x, unbatched = _batched(as_float(input), nd, name)
    w = as_float(weight)
    if x.shape[1] != w.shape[0]:
        raise user_error(RuntimeError, f"Given transposed=1, weight of size {list(w.shape)}, "
                         f"expected input{list(x.shape)} to have {w.shape[0]} channels, but "
                         f"got {x.shape[1]} channels instead")
    stride, padding = _tuple(stride, nd, "stride"), _tuple(padding, nd, "padding")
    dilation = _tuple(dilation, nd, "dilation")
    output_padding = _tuple(output_padding, nd, "output_padding")
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= s and op >= d:
            raise user_error(RuntimeError, "output padding must be smaller than either stride "
                             "or dilation")
    amounts = []
    if any(s > 1 for s in stride) and all(x.shape[2:]):
        x = _spread(x, stride)
    for d in reversed(range(nd)):               # F.pad lists the last axis first
        edge = dilation[d] * (w.shape[2 + d] - 1) - padding[d]
        amounts += [edge, edge + output_padding[d]]
    x = _pad(x, amounts)                        # negative amounts crop
    conv = conv1d if nd == 1 else conv2d
    y = conv(x, _flipped_swapped(w, groups, nd), bias, 1, 0, dilation, groups)
    return y.squeeze(0) if unbatched else y


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """Transposed 1-d convolution of (N, C_in, L) input with (C_in, C_out/groups, K) weight."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 1)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """Transposed 2-d convolution of (N, C_in, H, W) input with (C_in, C_out/groups, KH, KW)
    weight."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 2)


def _adaptive_max_axis(x, axis: int, n_out: int):
    n_in = x.shape[axis]
    pieces = []
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        index = [slice(None)] * x.ndim
        index[axis] = slice(lo, hi)
        pieces.append(ops.amax(x[tuple(index)], dim=axis, keepdim=True))
    return ops.cat(pieces, dim=axis)


def _adaptive_max(input, output_size, nd: int, return_indices: bool):
    if return_indices:
        raise user_error(NotImplementedError, f"adaptive_max_pool{nd}d: gradjit does not "
                                              "implement return_indices=True")
    x = as_float(input)
    if x.ndim not in (nd + 1, nd + 2):
        raise user_error(RuntimeError, f"adaptive_max_pool{nd}d(): Expected {nd + 1}D or "
                                       f"{nd + 2}D tensor, but got: {list(x.shape)}")
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * nd
    for k in range(nd):
        d = x.ndim - nd + k
        n_out = x.shape[d] if sizes[k] is None else int(sizes[k])
        if n_out <= 0 or x.shape[d] == 0:
            raise user_error(RuntimeError, f"adaptive_max_pool{nd}d(): output size and the "
                                           "input's spatial sizes must be positive")
        x = _adaptive_max_axis(x, d, n_out)
    return x


def adaptive_max_pool1d(input, output_size, return_indices: bool = False):
    """Max over (N, C, L) input in output_size windows."""
    return _adaptive_max(input, output_size, 1, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices: bool = False):
    """Max over (N, C, H, W) input in output_size windows (None keeps a size)."""
    return _adaptive_max(input, output_size, 2, return_indices)

