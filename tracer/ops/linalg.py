"""matmul (@) with NumPy/PyTorch batching and 1-d rules, mm, bmm, mv, dot, outer, tensordot.

Every product is one `dot_general`: a batched matrix and an unbatched one are contracted
directly (no broadcast copy of the matrix), and batch axes are broadcast only when both
sides are batched. The grad_fn name follows what PyTorch records for the ranks involved
(MmBackward0, MvBackward0, DotBackward0, UnsafeViewBackward0 for batched products).
"""
from __future__ import annotations

from ir.primitives import ShapeError
from tracer.ops.operands import (broadcast, broadcast_shapes, cast, norm_axis,
                                 result_type, to_tensor, user_error)
from tracer.ops.elementwise import mul
from tracer import step_follow
from tracer.record import apply, torch_op
from tracer.tensor import Tensor

__all__ = ["matmul", "mm", "bmm", "mv", "dot", "vdot", "inner", "outer", "ger", "tensordot"]


def _pair(x, y, what: str):
    """x and y as Tensors of their promoted (numeric) dtype."""
    a, b = to_tensor(x), to_tensor(y)
    dtype = result_type(a, b)
    if dtype == "bool":
        raise user_error(TypeError, f"{what}: bool tensors cannot be multiplied")
    return cast(a, dtype), cast(b, dtype)


def _mismatch(a, b, ka: int, kb: int):
    return user_error(ShapeError, f"matmul: shapes {list(a.shape)} and {list(b.shape)} cannot "
                                  f"be multiplied ({ka} != {kb})")


def _dot(a, b, xc, yc, xb=(), yb=()):
    return apply("dot_general", a, b, contract=(tuple(xc), tuple(yc)), batch=(tuple(xb), tuple(yb)))


def _matmul(x, y):
    """The product for any ranks >= 1 (NumPy's matmul rules)."""
    a, b = _pair(x, y, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise user_error(ShapeError, "both arguments to matmul need to be at least 1D, but they "
                                     f"are {a.ndim}D and {b.ndim}D")
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise _mismatch(a, b, ka, kb)
    if b.ndim <= 2:
        # vector or single matrix on the right: contract a's last axis with it directly
        return _dot(a, b, (a.ndim - 1,), (0,))
    if a.ndim == 1:
        return _dot(a, b, (0,), (b.ndim - 2,))
    if a.ndim == 2:
        out = _dot(a, b, (1,), (b.ndim - 2,))       # (m, *batch, n)
        k = out.ndim
        return apply("transpose", out, perm=tuple(range(1, k - 1)) + (0, k - 1))
    batch = broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    a = broadcast(a, batch + tuple(a.shape[-2:]))
    b = broadcast(b, batch + tuple(b.shape[-2:]))
    nb = len(batch)
    return _dot(a, b, (nb + 1,), (nb,), range(nb), range(nb))


_VARIANTS = {name: torch_op(name, saves=(0, 1))(_matmul)
             for name in ("Dot", "Mv", "Mm", "Squeeze", "UnsafeView")}


_NO_KWARGS: dict = {}


def _node_name(a_ndim: int, b_ndim: int) -> str:
    if a_ndim == 1 and b_ndim == 1:
        return "Dot"
    if a_ndim == 2 and b_ndim == 1:
        return "Mv"
    if a_ndim == 2 and b_ndim == 2:
        return "Mm"
    if a_ndim == 1 and b_ndim == 2:
        return "Squeeze"
    return "UnsafeView"


def matmul(input, other):
    """x @ y: dot for vectors, matrix products, and batched products with broadcasting."""
    if type(input) is Tensor and type(other) is Tensor:
        # the captured step's next call? (its key's shapes fix the variant: one body for all)
        out = step_follow.follow(_matmul, (input, other), _NO_KWARGS)
        if out is not step_follow.MISS:
            return out
    a, b = to_tensor(input), to_tensor(other)
    return _VARIANTS[_node_name(a.ndim, b.ndim)](input, other)


matmul.torch_name = "Mm"


def _need(t, ndim: int, what: str, which: str):
    if t.ndim != ndim:
        raise user_error(ShapeError, f"{what}: {which} must be a {ndim}D tensor, got "
                                     f"{t.ndim}D ({list(t.shape)})")


@torch_op("Mm", saves=(0, 1))
def mm(input, mat2):
    """Matrix product of two 2-d tensors."""
    a, b = _pair(input, mat2, "mm")
    _need(a, 2, "mm", "self")
    _need(b, 2, "mm", "mat2")
    if a.shape[1] != b.shape[0]:
        raise user_error(ShapeError, f"mat1 and mat2 shapes cannot be multiplied "
                                     f"({a.shape[0]}x{a.shape[1]} and {b.shape[0]}x{b.shape[1]})")
    return _dot(a, b, (1,), (0,))


@torch_op("Bmm", saves=(0, 1))
def bmm(input, mat2):
    """Batched matrix product of two 3-d tensors with equal batch sizes."""
    a, b = _pair(input, mat2, "bmm")
    _need(a, 3, "bmm", "batch1")
    _need(b, 3, "bmm", "batch2")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise user_error(ShapeError, f"bmm: shapes {list(a.shape)} and {list(b.shape)} do not "
                                     "fit")
    return _dot(a, b, (2,), (1,), (0,), (0,))


@torch_op("Mv", saves=(0, 1))
def mv(input, vec):
    """Matrix-vector product."""
    a, b = _pair(input, vec, "mv")
    _need(a, 2, "mv", "self")
    _need(b, 1, "mv", "vec")
    if a.shape[1] != b.shape[0]:
        raise _mismatch(a, b, a.shape[1], b.shape[0])
    return _dot(a, b, (1,), (0,))


@torch_op("Dot", saves=(0, 1))
def dot(input, tensor):
    """Inner product of two 1-d tensors of the same length."""
    a, b = _pair(input, tensor, "dot")
    if a.ndim != 1 or b.ndim != 1:
        raise user_error(ShapeError, f"1D tensors expected, but got {a.ndim}D and {b.ndim}D "
                                     "tensors")
    if a.shape[0] != b.shape[0]:
        raise user_error(ShapeError, f"inconsistent tensor size, expected tensor [{a.shape[0]}] "
                                     f"and src [{b.shape[0]}] to have the same number of elements")
    return _dot(a, b, (0,), (0,))


def vdot(input, other):
    """dot under PyTorch's vdot keywords (input, other); real tensors need no conjugate."""
    return dot(input, other)


vdot.torch_name = "Dot"


@torch_op("Inner", saves=(0, 1))
def inner(input, other):
    """Contraction over the last axis of both (0-d operands multiply)."""
    a, b = _pair(input, other, "inner")
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    if a.shape[-1] != b.shape[-1]:
        raise _mismatch(a, b, a.shape[-1], b.shape[-1])
    return _dot(a, b, (a.ndim - 1,), (b.ndim - 1,))


@torch_op("Mul", saves=(0, 1))
def outer(input, vec2):
    """x[:, None] * y[None, :] for 1-d x and y (PyTorch records it as a mul)."""
    a, b = _pair(input, vec2, "outer")
    if a.ndim != 1 or b.ndim != 1:
        raise user_error(ShapeError, f"outer: 1D tensors expected, got {a.ndim}D and {b.ndim}D")
    shape = (a.shape[0], b.shape[0])
    a2 = apply("broadcast_in_dim", a, shape=shape, dims=(0,))
    b2 = apply("broadcast_in_dim", b, shape=shape, dims=(1,))
    return apply("mul", a2, b2)


ger = outer


@torch_op("UnsafeView", saves=(0, 1))
def tensordot(a, b, dims=2):
    """Contracts the last `dims` axes of a with the first of b, or the listed axis pairs."""
    a, b = _pair(a, b, "tensordot")
    if isinstance(dims, int):
        xa, ya = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        xa, ya = ([d] if isinstance(d, int) else list(d) for d in dims)
    xa = [norm_axis(d, a.ndim) for d in xa]
    ya = [norm_axis(d, b.ndim) for d in ya]
    if len(xa) != len(ya) or any(a.shape[i] != b.shape[j] for i, j in zip(xa, ya)):
        raise user_error(ShapeError, f"tensordot: axes {xa} of {list(a.shape)} do not match axes "
                                     f"{ya} of {list(b.shape)}")
    return _dot(a, b, xa, ya)
