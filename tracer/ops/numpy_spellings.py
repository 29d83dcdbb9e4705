"""NumPy / jax.numpy spellings of ops whose PyTorch namesake means something else.

Each function here replaces its PyTorch namesake in `gradjit` (and on Tensor where noted),
deciding by the spelling of the call: NumPy's form does what NumPy does, any other form is
handed to the PyTorch function unchanged.

    dot(a, b)                    numpy.dot for 0-d/2-d/N-d operands; torch.dot for 1-d pairs
    transpose(x)                 reversed axes; transpose(x, axes) / axes= permute;
                                 transpose(x, dim0, dim1) swaps (PyTorch)
    split(x, n_or_indices, axis=...)   numpy.split (sections or indices); dim=/positional:
                                 PyTorch's sizes
    tensordot(a, b, axes=...)    numpy's keyword (PyTorch's is dims=)
    take_along_axis(x, idx, axis)      numpy.take_along_axis
    astype(x, dtype)             x converted to dtype (NumPy's method, jnp.astype)
"""
from __future__ import annotations

import numbers

import numpy as np

from tracer.ops import linalg, shape
from tracer.ops.convert import to as _to
from tracer.ops.elementwise import mul
from tracer.ops.indexing import take_along_dim
from tracer.ops.operands import ir_dtype, norm_axis, to_tensor, user_error
from tracer.tensor import Tensor

__all__ = ["dot", "transpose", "split", "tensordot", "take_along_axis", "astype"]


def dot(input, tensor) -> Tensor:
    """numpy.dot: a product of scalars, a matrix product, or for N-d operands the sum over
    x's last axis and y's second-to-last; two vectors give torch.dot (an inner product)."""
    a, b = to_tensor(input), to_tensor(tensor)
    if a.ndim == 1 and b.ndim == 1:
        return linalg.dot(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    if b.ndim <= 2:
        return linalg.matmul(a, b)
    return linalg.tensordot(a, b, ([a.ndim - 1], [b.ndim - 2]))


dot.torch_name = linalg.dot.torch_name


def _is_int(v) -> bool:
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)


def transpose(input, *dims, axes=None, dim0=None, dim1=None) -> Tensor:
    """transpose(x) reverses the axes and transpose(x, axes) / axes= permutes them (NumPy);
    transpose(x, dim0, dim1) swaps two (PyTorch). As a method, x.transpose() and
    x.transpose(2, 0, 1) are NumPy's, x.transpose(0, 1) PyTorch's."""
    if dim0 is not None or dim1 is not None:
        return shape.transpose(input, *dims, *(d for d in (dim0, dim1) if d is not None))
    if len(dims) == 2 and all(_is_int(d) for d in dims) and axes is None:
        return shape.transpose(input, *dims)
    if len(dims) == 1 and axes is None:
        axes = dims[0]
    elif dims:
        if axes is not None:
            raise user_error(TypeError, "transpose: give the axes once")
        axes = dims
    t = to_tensor(input)
    if axes is None:
        axes = tuple(range(t.ndim))[::-1]
    axes = tuple(axes)
    if sorted(norm_axis(a, t.ndim) for a in axes) != list(range(t.ndim)):
        raise user_error(ValueError, "axes don't match array")
    return shape.permute(t, axes)


transpose.torch_name = shape.transpose.torch_name


def _bounds(x: Tensor, axis: int, indices_or_sections) -> list[tuple[int, int]]:
    n = x.shape[axis]
    if _is_int(indices_or_sections):
        k = int(indices_or_sections)
        if k <= 0:
            raise user_error(ValueError, "number sections must be larger than 0.")
        if n % k:
            raise user_error(ValueError, "array split does not result in an equal division")
        return [(i * (n // k), (i + 1) * (n // k)) for i in range(k)]
    cuts = [int(i) for i in indices_or_sections]
    edges = [0] + [min(max(c + n if c < 0 else c, 0), n) for c in cuts] + [n]
    return [(a, max(a, b)) for a, b in zip(edges, edges[1:])]


def split(tensor, split_size_or_sections=None, dim=None, *, axis=None,
          indices_or_sections=None):
    """numpy.split with axis= (equal sections, or cuts at indices); PyTorch's split (piece
    sizes) with dim= or a positional dim."""
    if indices_or_sections is not None:
        split_size_or_sections = indices_or_sections
    if axis is None:
        return shape.split(tensor, split_size_or_sections, 0 if dim is None else dim)
    if dim is not None:
        raise user_error(TypeError, "give dim (PyTorch's split) or axis (NumPy's), not both")
    t = to_tensor(tensor)
    ax = norm_axis(axis, t.ndim)
    lead = (slice(None),) * ax
    return [t[lead + (slice(a, b),)] for a, b in _bounds(t, ax, split_size_or_sections)]


split.torch_name = shape.split.torch_name


def tensordot(a, b, dims=2, *, axes=None) -> Tensor:
    """Contracts a's last `axes` axes with b's first, or the listed pairs (numpy's axes=,
    PyTorch's dims=)."""
    return linalg.tensordot(a, b, dims if axes is None else axes)


tensordot.torch_name = linalg.tensordot.torch_name


def take_along_axis(x, indices, axis) -> Tensor:
    """numpy.take_along_axis: x's values at indices along axis (None: the flattened x)."""
    return take_along_dim(x, indices, axis)


take_along_axis.torch_name = take_along_dim.torch_name


def astype(x, dtype) -> Tensor:
    """x converted to dtype (a copy; float to int truncates toward zero)."""
    return _to(to_tensor(x), ir_dtype(dtype))


astype.torch_name = "ToCopy"
