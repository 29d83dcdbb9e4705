"""vector_norm, matrix_norm, norm (PyTorch's and NumPy's spellings) and cross: compositions
of reductions, with svd for the spectral (2, -2) and nuclear norms."""
from __future__ import annotations

import math

from tracer.linalg.common import matrix_arg
from tracer.ops.operands import (broadcast, broadcast_shapes, cast, dtype_of, norm_axes,
                                norm_axis, result_type, to_tensor, user_error)
from tracer.ops.elementwise import abs as abs_, mul, pow as pow_, sqrt, sub
from tracer.ops.compare import ne
from tracer.ops.reduce import amax, amin, sum as sum_
from tracer.ops.shape import movedim
from tracer.record import apply, torch_op

__all__ = ["vector_norm", "matrix_norm", "norm", "cross"]

_MATRIX_ORDS = ("fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2)


def _float(x, fn):
    t = to_tensor(x)
    if dtype_of(t) not in ("f32", "f64"):
        raise user_error(RuntimeError, f"linalg.{fn}: Expected a floating point or complex "
                                       f"tensor as input. Got {dtype_of(t)}")
    return t


@torch_op("LinalgVectorNorm", saves=(0, "out"))
def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None, out=None):
    """(sum |x|^ord)^(1/ord) over dim (all elements when None); ord inf / -inf are max / min
    |x|, ord 0 counts the non-zeros. The gradient at x = 0 of ord 2 is NaN (PyTorch gives 0)."""
    t = _float(x, "vector_norm")
    dims = tuple(range(t.ndim)) if dim is None else norm_axes(dim, t.ndim)
    a = abs_(t)
    if ord == math.inf:
        return amax(a, dims, keepdim)
    if ord == -math.inf:
        return amin(a, dims, keepdim)
    if ord == 0:
        return sum_(cast(ne(t, 0), dtype_of(t)), dims, keepdim)
    if ord == 1:
        return sum_(a, dims, keepdim)
    if ord == 2:
        return sqrt(sum_(mul(t, t), dims, keepdim))
    return pow_(sum_(pow_(a, float(ord)), dims, keepdim), 1.0 / float(ord))


def _svals(t):
    return apply("svd", t)[1]


@torch_op("LinalgVectorNorm", saves=(0, "out"))
def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None, out=None):
    """The matrix norm over the two axes dim: 'fro', 'nuc' (sum of singular values), inf /
    -inf (max / min absolute row sum), 1 / -1 (max / min absolute column sum), 2 / -2
    (largest / smallest singular value)."""
    a = matrix_arg(A, "matrix_norm")
    if ord not in _MATRIX_ORDS:
        raise user_error(RuntimeError, f"linalg.matrix_norm: Order {ord} not supported.")
    r, c = norm_axes(dim, a.ndim) if len(dim) == 2 else (None, None)
    if ord == "fro":
        return vector_norm(a, 2, (r, c), keepdim)
    if ord in ("nuc", 2, -2):
        moved = movedim(a, (r, c), (-2, -1))
        s = _svals(moved)
        out = sum_(s, -1) if ord == "nuc" else (amax(s, -1) if ord == 2 else amin(s, -1))
        return _keep(out, (r, c), a.ndim) if keepdim else out
    # inf: rows (sum over columns, then max over rows); 1: columns
    summed, other = (c, r) if abs(ord) == math.inf else (r, c)
    sums = sum_(abs_(a), summed, keepdim=True)
    pick = amax if ord > 0 else amin
    out = pick(sums, other, keepdim=True)
    return out if keepdim else apply("reshape", out, shape=tuple(
        d for i, d in enumerate(a.shape) if i not in (r, c)))


def _keep(t, dims, ndim):
    shape = list(t.shape)
    for d in sorted(dims):
        shape.insert(d, 1)
    return apply("reshape", t, shape=tuple(shape))


@torch_op("LinalgVectorNorm", saves=(0, "out"))
def norm(input, ord=None, dim=None, keepdim: bool = False, *, out=None, dtype=None, axis=None,
         keepdims=None):
    """PyTorch's / NumPy's norm: with ord None the 2-norm of the flattened input (a vector
    norm over an int dim, Frobenius over two dims); with ord given, a vector norm of a 1-d
    input or an int dim, a matrix norm of a 2-d input or a pair of dims. NumPy's axis= and
    keepdims= are accepted."""
    dim = axis if dim is None else dim
    keepdim = keepdims if keepdims is not None else keepdim
    t = _float(input, "norm")
    if isinstance(dim, int):
        dim = (dim,)
    if ord is None:
        if dim is not None and len(dim) == 2:
            return matrix_norm(t, "fro", dim, keepdim)
        return vector_norm(t, 2, dim, keepdim)
    if dim is None:
        if t.ndim not in (1, 2):
            raise user_error(RuntimeError, "linalg.norm: If dim is not specified but ord is, "
                             f"the input must be 1D or 2D. Got {t.ndim}D.")
        dim = tuple(range(t.ndim))
    if len(dim) == 2:
        return matrix_norm(t, ord, dim, keepdim)
    return vector_norm(t, ord, dim, keepdim)


def _take(t, axis, i):
    nd = t.ndim
    start = tuple(i if k == axis else 0 for k in range(nd))
    limit = tuple(i + 1 if k == axis else t.shape[k] for k in range(nd))
    return apply("slice", t, start=start, limit=limit, stride=(1,) * nd)


@torch_op("LinalgCross", saves=(0, 1, "out"))
def cross(input, other, *, dim: int = -1, axis=None, out=None):
    """The cross product of 3-vectors along dim (broadcast); JAX's axis= is accepted."""
    a, b = to_tensor(input), to_tensor(other)
    dtype = result_type(a, b)
    a, b = cast(a, dtype), cast(b, dtype)
    shape = broadcast_shapes(tuple(a.shape), tuple(b.shape))
    a, b = broadcast(a, shape), broadcast(b, shape)
    d = norm_axis(dim if axis is None else axis, len(shape))
    if a.shape[d] != 3 or b.shape[d] != 3:
        raise user_error(RuntimeError, f"linalg.cross: inputs dimension {dim} must have "
                                       f"length 3. Got {a.shape[d]} and {b.shape[d]}")
    x = [_take(a, d, i) for i in range(3)]
    y = [_take(b, d, i) for i in range(3)]
    parts = [sub(mul(x[(i + 1) % 3], y[(i + 2) % 3]), mul(x[(i + 2) % 3], y[(i + 1) % 3]))
             for i in range(3)]
    return apply("concatenate", *parts, axis=d)
