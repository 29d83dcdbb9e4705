"""Argument checks, PyTorch's error texts and small matrix helpers shared by tracer/linalg.

Errors the shapes decide (a non-square or 1-d operand, an integer dtype) are raised in both
fronts. Errors the values decide (a singular or non-positive-definite matrix) are raised by
the imperative front only, after the result is computed: under jit/grad/vmap the values are
not known while tracing, and the compiled code returns NaN instead (as JAX does).
"""
from __future__ import annotations

import functools

import numpy as np

from ir.core import is_float
from tracer.ops.operands import broadcast_shapes, dtype_of, to_tensor, user_error
from tracer.record import apply
from tracer.tensor import Tensor

_TORCH_DTYPE = {"i32": "Int", "i64": "Long", "bool": "Bool"}


class LinAlgError(RuntimeError):
    """torch.linalg.LinAlgError: a matrix the operation cannot handle (singular, not
    positive-definite). A RuntimeError, as in PyTorch."""


def matrix_arg(x, fn: str, square: bool = False) -> Tensor:
    """x as a float tensor of rank >= 2 (square matrices if asked), or PyTorch's error."""
    t = to_tensor(x)
    if not is_float(dtype_of(t)):
        raise user_error(RuntimeError, f"linalg.{fn}: Expected a floating point or complex "
                                       f"tensor as input. Got {_TORCH_DTYPE[dtype_of(t)]}")
    if t.ndim < 2:
        raise user_error(RuntimeError, f"linalg.{fn}: The input tensor A must have at least "
                                       "2 dimensions.")
    if square and t.shape[-1] != t.shape[-2]:
        raise user_error(RuntimeError, f"linalg.{fn}: A must be batches of square matrices, "
                                       f"but they are {t.shape[-2]} by {t.shape[-1]} matrices")
    return t


def concrete(t: Tensor) -> bool:
    """Whether t has a value now (the imperative front), not a traced placeholder."""
    return not t._expr.symbolic


def checked(check):
    """Runs check(result, *args) after the decorated op returns (after its autograd hook):
    realising a value inside the op would cut it out of the autograd graph, while the op's
    result and its inputs are recorded values that keep their history when realised."""
    def wrap(op):
        @functools.wraps(op)
        def inner(*args, **kwargs):
            result = op(*args, **kwargs)
            check(result, *args)
            return result
        return inner
    return wrap


def values(t) -> np.ndarray | None:
    """t's value in the imperative front (None under a trace)."""
    t = to_tensor(t)
    return None if t._expr.symbolic else t._realize()


def batch_prefix(index: int, batch_shape) -> str:
    return f"(Batch element {index}): " if len(batch_shape) else ""


def first_failure(bad: np.ndarray) -> int | None:
    """The flat batch index of the first True in bad (a bool array over the batch), or None."""
    flat = np.asarray(bad).reshape(-1)
    hits = np.flatnonzero(flat)
    return int(hits[0]) if hits.size else None


# ---- matrix helpers on Tensors ------------------------------------------------------------

def mT(t: Tensor) -> Tensor:
    k = t.ndim
    return apply("transpose", t, perm=tuple(range(k - 2)) + (k - 1, k - 2))


def mm(x: Tensor, y: Tensor) -> Tensor:
    """x @ y for stacks with equal batch axes (one dot_general)."""
    nb = x.ndim - 2
    return apply("dot_general", x, y, contract=((nb + 1,), (nb,)),
                 batch=(tuple(range(nb)), tuple(range(nb))))


def eye(n: int, dtype: str, batch=()) -> Tensor:
    rows, cols = (apply("iota", dtype="i64", shape=(n, n), dim=d) for d in (0, 1))
    e = apply("convert", apply("eq", rows, cols), dtype=dtype)
    return broadcast_to(e, tuple(batch) + (n, n))


def broadcast_to(t: Tensor, shape) -> Tensor:
    shape = tuple(shape)
    if tuple(t.shape) == shape:
        return t
    lead = len(shape) - t.ndim
    return apply("broadcast_in_dim", t, shape=shape, dims=tuple(range(lead, len(shape))))


def diagonal(t: Tensor) -> Tensor:
    """The diagonal [..., n] of a stack of square matrices."""
    n = t.shape[-1]
    masked = apply("mul", t, eye(n, dtype_of(t), t.shape[:-2]))
    return apply("reduce_sum", masked, axes=(t.ndim - 1,))


def diag_embed(v: Tensor) -> Tensor:
    n = v.shape[-1]
    wide = apply("broadcast_in_dim", v, shape=tuple(v.shape) + (n,),
                 dims=tuple(range(v.ndim - 1)) + (v.ndim,))
    return apply("mul", wide, eye(n, dtype_of(v), v.shape[:-1]))


def scale_cols(t: Tensor, v: Tensor) -> Tensor:
    """t [..., m, k] with column j multiplied by v [..., k]."""
    wide = apply("broadcast_in_dim", v, shape=tuple(t.shape),
                 dims=tuple(range(v.ndim - 1)) + (t.ndim - 1,))
    return apply("mul", t, wide)


def tri_solve(a: Tensor, b: Tensor, lower: bool, transpose: bool = False,
              unit: bool = False) -> Tensor:
    return apply("triangular_solve", a, b, lower=lower, transpose_a=transpose,
                 unit_diagonal=unit)


def batch_broadcast(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """a [..., n, n] and b [..., n, k] with their batch axes broadcast to one shape."""
    batch = broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    return (broadcast_to(a, batch + tuple(a.shape[-2:])),
            broadcast_to(b, batch + tuple(b.shape[-2:])))
