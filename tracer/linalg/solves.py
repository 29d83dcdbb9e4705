"""solve, inv, det, slogdet, solve_triangular, triangular_solve, matrix_power: compositions of
the lu and triangular_solve primitives (their derivatives come from those rules)."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from tracer.linalg.common import (LinAlgError, batch_broadcast, batch_prefix, checked,
                                  diagonal, eye, first_failure, matrix_arg, mm, mT, tri_solve,
                                  values)
from tracer.ops.operands import cast, constant, dtype_of, result_type, to_tensor, user_error
from tracer.ops.elementwise import abs as abs_, log, mul, sign
from tracer.ops.reduce import prod, sum as sum_
from tracer.record import apply, torch_op

__all__ = ["solve", "inv", "det", "slogdet", "solve_triangular", "triangular_solve",
           "matrix_power"]

SlogdetResult = namedtuple("linalg_slogdet", ["sign", "logabsdet"])
TriangularSolveResult = namedtuple("triangular_solve", ["solution", "cloned_coefficient"])


def lu_parts(a):
    """(lu, P, sign): a[perm] = L U packed in lu, P the permutation as a matrix (P @ a)."""
    lu, perm, sgn = apply("lu", a)
    n = a.shape[-1]
    cols = apply("broadcast_in_dim", apply("iota", dtype="i64", shape=(n, n), dim=1),
                 shape=tuple(perm.shape) + (n,), dims=(perm.ndim - 1, perm.ndim))
    rows = apply("broadcast_in_dim", perm, shape=tuple(perm.shape) + (n,),
                 dims=tuple(range(perm.ndim)))
    p = apply("convert", apply("eq", rows, cols), dtype=dtype_of(a))
    return lu, p, sgn


def _zero_pivot(result, A) -> tuple[int, int] | None:
    """(batch index, 1-based position) of the first zero on U's diagonal when the result
    (imperative only) is not finite: the factorization is repeated apart from the graph."""
    got = values(result)
    if got is None or np.isfinite(got).all():
        return None
    a = to_tensor(values(A))
    d = np.diagonal(values(apply("lu", a)[0]), axis1=-2, axis2=-1)
    i = first_failure((d == 0).any(axis=-1))
    if i is None:
        return None
    return i, int(np.argmax(d.reshape(-1, d.shape[-1])[i] == 0)) + 1


def _check_solve(x, A, *args, **kwargs):
    bad = _zero_pivot(x, A)
    if bad is not None:
        where = batch_prefix(bad[0], to_tensor(A).shape[:-2])
        raise user_error(LinAlgError, f"torch.linalg.solve: {where}The solver failed because "
                                      "the input matrix is singular.")


def _check_inv(x, A, *args, **kwargs):
    bad = _zero_pivot(x, A)
    if bad is not None:
        where = batch_prefix(bad[0], to_tensor(A).shape[:-2])
        raise user_error(LinAlgError, f"linalg.inv: {where}The diagonal element {bad[1]} is "
                                      "zero, the inversion could not be completed because the "
                                      "input matrix is singular.")


def _lu_solve(a, b):
    lu, p, _ = lu_parts(a)
    x = tri_solve(lu, tri_solve(lu, mm(p, b), lower=True, unit=True), lower=False)
    return lu, x


def _pair(A, B, fn: str):
    a = matrix_arg(A, fn, square=True)
    b = to_tensor(B)
    dtype = result_type(a, b)
    return cast(a, dtype), cast(b, dtype)


@checked(_check_solve)
@torch_op("LinalgSolveEx", saves=(0, "out"))
def solve(A, B, *, left: bool = True, out=None):
    """X with A X = B (or X A = B if not left), by LU with partial pivoting. B is a stack of
    matrices, or of vectors when B.ndim == 1 or B.shape == A.shape[:-1] (PyTorch's rule).
    Singular A: LinAlgError in the imperative front; inf/NaN under a trace (as JAX)."""
    a, b = _pair(A, B, "solve")
    n = a.shape[-1]
    vector = b.ndim == 1 or (tuple(b.shape) == tuple(a.shape[:-1]) and left)
    if vector:
        b = apply("reshape", b, shape=tuple(b.shape) + (1,))
    if not left:
        a, b = mT(a), mT(b)
    if b.shape[-2] != n:
        raise user_error(RuntimeError, f"linalg.solve: Incompatible shapes of A and B for the "
                         f"equation AX = B ({list(a.shape[-2:])} and {list(b.shape[-2:])})")
    a, b = batch_broadcast(a, b)
    _, x = _lu_solve(a, b)
    if vector:
        return apply("reshape", x, shape=tuple(x.shape[:-1]))
    return x if left else mT(x)


@checked(_check_inv)
@torch_op("LinalgInvEx", saves=("out",))
def inv(A, *, out=None):
    """A^-1 (LU solve against the identity). Singular: LinAlgError (imperative), inf/NaN
    under a trace."""
    a = matrix_arg(A, "inv", square=True)
    return _lu_solve(a, eye(a.shape[-1], dtype_of(a), a.shape[:-2]))[1]


@torch_op("LinalgDet", saves=(0, "out"))
def det(A, *, out=None):
    """The determinant: the permutation's sign times the product of U's diagonal. At an
    exactly singular A (a zero pivot) the value is 0 with gradient 0, as PyTorch 2.13 gives:
    the differentiated factorization is of the identity there, since the LU adjoint would
    divide by the zero pivot (NaN even for a zero cotangent)."""
    a = matrix_arg(A, "det", square=True)
    probe = diagonal(apply("lu", apply("stop_gradient", a))[0])
    singular = apply("reduce_max", apply("convert", apply("eq", probe, constant(0, dtype_of(a),
                     tuple(probe.shape))), dtype=dtype_of(a)), axes=(probe.ndim - 1,))
    singular = apply("gt", singular, constant(0, dtype_of(a), tuple(singular.shape)))
    wide = apply("broadcast_in_dim", singular, shape=tuple(a.shape),
                 dims=tuple(range(a.ndim - 2)))
    safe = apply("select", wide, eye(a.shape[-1], dtype_of(a), a.shape[:-2]), a)
    lu, _, sgn = lu_parts(safe)
    value = mul(sgn, prod(diagonal(lu), -1))
    return apply("select", singular, constant(0, dtype_of(a), tuple(value.shape)), value)


@torch_op("LinalgSlogdet", saves=(0, "out"))
def slogdet(A, *, out=None):
    """(sign, log|det|); a singular A gives (0, -inf), as PyTorch."""
    a = matrix_arg(A, "slogdet", square=True)
    lu, _, sgn = lu_parts(a)
    d = diagonal(lu)
    return SlogdetResult(mul(sgn, prod(sign(d), -1)), sum_(log(abs_(d)), -1))


@torch_op("LinalgSolveTriangular", saves=(0, "out"))
def solve_triangular(A, B, *, upper: bool | None = None, left: bool = True,
                     unitriangular: bool = False, lower: bool | None = None, out=None):
    """X with A X = B (or X A = B if not left) for a triangular A (only its upper or lower
    triangle is read). upper is PyTorch's required keyword; JAX's lower= is accepted too."""
    if upper is None and lower is None:
        raise user_error(TypeError, "linalg.solve_triangular() missing required keyword "
                                    "argument: 'upper'")
    upper = (not lower) if upper is None else upper
    a, b = _pair(A, B, "solve_triangular")
    a, b = batch_broadcast(a, b) if left else batch_broadcast(a, mT(b))
    if left:
        return tri_solve(a, b, lower=not upper, unit=unitriangular)
    return mT(tri_solve(a, b, lower=not upper, transpose=True, unit=unitriangular))


@torch_op("TriangularSolve", saves=(0, 1, "out"))
def triangular_solve(b, A, upper: bool = True, transpose: bool = False,
                     unitriangular: bool = False):
    """torch.triangular_solve (the older spelling): (X, A) with op(A) X = b."""
    a, rhs = _pair(A, b, "triangular_solve")
    a, rhs = batch_broadcast(a, rhs)
    x = tri_solve(a, rhs, lower=not upper, transpose=transpose, unit=unitriangular)
    return TriangularSolveResult(x, a)


@torch_op("Mm", saves=(0, "out"))
def matrix_power(A, n: int, *, out=None):
    """A^n by repeated squaring; n = 0 gives the identity, n < 0 powers of inv(A)."""
    a = matrix_arg(A, "matrix_power", square=True)
    if n < 0:
        a, n = inv(a), -n
    result = None
    while n:
        if n & 1:
            result = a if result is None else mm(result, a)
        n >>= 1
        if n:
            a = mm(a, a)
    return result if result is not None else eye(a.shape[-1], dtype_of(a), a.shape[:-2])
