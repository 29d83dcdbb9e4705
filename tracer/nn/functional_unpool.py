"""max_unpool1d/2d: the inverse of max pooling with return_indices, as PyTorch: zeros with
each input value written at its index (flat over each (N, C) plane of the output).

Written with scatter_add: where two pooled windows chose the same element (overlapping
windows), PyTorch writes that value once and its backward gives each input the full
gradient at the index; here the value is scattered scaled by 1/count (the same value once)
and the gradient path is the unscaled scatter's, so both value and gradient are PyTorch's.
"""
from __future__ import annotations

import numpy as np

from tracer.creation import ones_like, zeros
from tracer.ops.operands import user_error
from tracer.tensor import Tensor

__all__ = ["max_unpool1d", "max_unpool2d"]


def _ntuple(v, n: int) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def unpool_size(input_size, kernel_size, stride, padding, output_size, nd: int) -> tuple:
    """The spatial output size: PyTorch's default, or output_size checked against it."""
    k, s, p = _ntuple(kernel_size, nd), _ntuple(stride if stride is not None else
                                                kernel_size, nd), _ntuple(padding, nd)
    default = [(input_size[-nd + d] - 1) * s[d] + k[d] - 2 * p[d] for d in range(nd)]
    if output_size is None:
        return tuple(default)
    size = tuple(int(n) for n in output_size)
    if len(size) == nd + 2:
        size = size[2:]
    if len(size) != nd:
        raise user_error(ValueError, f"output_size should be a sequence containing {nd} or "
                                     f"{nd + 2} elements, but it has a length of '{len(size)}'")
    for d in range(nd):
        lo, hi = default[d] - s[d], default[d] + s[d]
        if not lo < size[d] < hi:
            raise user_error(ValueError, f'invalid output_size "{tuple(output_size)}" (dim '
                                         f'{d} must be between {lo} and {hi})')
    return size


def _unpool(input: Tensor, indices: Tensor, nd: int, kernel_size, stride, padding,
            output_size) -> Tensor:
    if input.ndim not in (nd + 1, nd + 2):
        raise user_error(RuntimeError, f"max_unpool{nd}d: expected {nd + 1}D or {nd + 2}D "
                                       f"input, got {input.ndim}D")
    if tuple(indices.shape) != tuple(input.shape):
        raise user_error(RuntimeError, f"Expected shape of indices to be same as that of the "
                                       f"input tensor ({list(input.shape)}) but got indices "
                                       f"tensor with shape: {list(indices.shape)}")
    size = unpool_size(tuple(input.shape), kernel_size, stride, padding, output_size, nd)
    lead = tuple(input.shape[:-nd])
    plane = int(np.prod(size))
    x = input.reshape(lead + (-1,))
    idx = indices.reshape(lead + (-1,)).long()
    _check_indices(idx, plane, size)
    empty = zeros(lead + (plane,), dtype=input.dtype)
    counts = empty.scatter_add(-1, idx, ones_like(x))
    share = counts.gather(-1, idx)                    # how many windows chose each element
    full = empty.scatter_add(-1, idx, x)              # its gradient: gather at the indices
    once = empty.scatter_add(-1, idx, x / share)      # its value: each element once
    out = full - (full - once).detach()
    return out.reshape(lead + size)


def _check_indices(idx: Tensor, plane: int, size: tuple):
    """PyTorch's error for an index outside the output plane (indices are read here, as
    PyTorch's kernel reads them; inside a trace they cannot be)."""
    if idx._expr.symbolic or idx.numel() == 0:
        return
    values = idx.detach().numpy()
    bad = values[(values < 0) | (values >= plane)]
    if bad.size:
        shape = "x".join(str(n) for n in (size if len(size) > 1 else size + (1,)))
        raise user_error(RuntimeError, f"Found an invalid max index: {int(bad.flat[0])} "
                                       f"(output volumes are of size {shape}")


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Zeros of length (L - 1) * stride - 2 * padding + kernel_size (or output_size) with
    input's values at indices (max_pool1d's return_indices)."""
    return _unpool(input, indices, 1, kernel_size, stride, padding, output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """max_unpool1d over (H, W) planes: indices are flat positions h * W_out + w."""
    return _unpool(input, indices, 2, kernel_size, stride, padding, output_size)
