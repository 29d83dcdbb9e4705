"""matrix_rank, cond, lu_factor, lu_solve, and eig/eigvals (which gradjit cannot represent):
compositions of the svd, lu and triangular_solve primitives.

lu_factor's pivots are LAPACK's (1-based row swaps, int32, as PyTorch returns them): the lu
primitive gives the permutation itself, and the two are converted by n unrolled swap steps
in IR (so both work under jit; n is static).
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from tracer.linalg.common import (batch_broadcast, batch_prefix, checked, first_failure,
                                  matrix_arg, mm, mT, tri_solve, values)
from tracer.linalg.norms import matrix_norm
from tracer.linalg.solves import lu_parts
from tracer.ops.operands import cast, constant, dtype_of, result_type, to_tensor, user_error
from tracer.record import apply, torch_op
from tracer.tensor import Tensor

__all__ = ["matrix_rank", "cond", "lu_factor", "lu_solve", "eig", "eigvals"]

LUFactorResult = namedtuple("linalg_lu_factor", ["LU", "pivots"])


def _svals(a: Tensor, hermitian: bool) -> Tensor:
    if hermitian:
        w = apply("eigh", a)[0]
        return apply("abs", w)
    return apply("svd", a)[1]


def matrix_rank(A, *, atol=None, rtol=None, hermitian: bool = False, tol=None) -> Tensor:
    """The number of singular values above max(atol, rtol * largest) (int64); rtol defaults
    to eps * max(m, n) when neither is given, as PyTorch and NumPy."""
    a = matrix_arg(A, "matrix_rank")
    dt = dtype_of(a)
    s = apply("stop_gradient", _svals(a, hermitian))
    m, n = a.shape[-2:]
    if tol is not None:
        atol = tol
    if atol is None and rtol is None:
        rtol = float(np.finfo(np.float32 if dt == "f32" else np.float64).eps) * max(m, n)
    largest = apply("reduce_max", s, axes=(s.ndim - 1,))
    bound = constant(0.0, dt, largest.shape)
    if rtol is not None:
        bound = apply("mul", largest, _full(rtol, dt, largest.shape))
    if atol is not None:
        bound = apply("max", bound, _full(atol, dt, largest.shape))
    wide = apply("broadcast_in_dim", bound, shape=tuple(s.shape), dims=tuple(range(s.ndim - 1)))
    above = apply("convert", apply("gt", s, wide), dtype="i64")
    return apply("reduce_sum", above, axes=(s.ndim - 1,))


def _full(value, dt, shape) -> Tensor:
    v = to_tensor(value)
    if isinstance(value, Tensor):
        return apply("broadcast_in_dim", cast(v, dt), shape=tuple(shape),
                     dims=tuple(range(len(shape) - v.ndim, len(shape))))
    return constant(value, dt, shape)


@torch_op("LinalgCond", saves=(0,))
def cond(A, p=None) -> Tensor:
    """The condition number in norm p: None or 2 (largest/smallest singular value, inf for a
    singular A), -2 (the inverse), or 'fro', 'nuc', inf, -inf, 1, -1 (norm(A) norm(A^-1),
    square A only; inf when A is singular, as PyTorch)."""
    a = matrix_arg(A, "cond")
    if p is None or p in (2, -2):
        s = apply("svd", a)[1]
        k = s.shape[-1]
        first, last = _column(s, 0), _column(s, k - 1)
        return apply("div", last, first) if p == -2 else apply("div", first, last)
    if p not in ("fro", "nuc", math.inf, -math.inf, 1, -1):
        raise user_error(RuntimeError, f"linalg.cond got an invalid norm type: {p}")
    a = matrix_arg(A, "cond", square=True)
    lu, perm_matrix, _ = lu_parts(a)
    # the inverse without the singular check: a zero pivot gives inf/NaN entries -> inf
    inverse = tri_solve(lu, tri_solve(lu, perm_matrix, lower=True, unit=True), lower=False)
    value = apply("mul", matrix_norm(a, p), matrix_norm(inverse, p))
    nan = apply("ne", value, value)
    return apply("select", nan, constant(math.inf, dtype_of(a), value.shape), value)


# ---- pivots <-> permutation ---------------------------------------------------------------

def _column(t: Tensor, i: int) -> Tensor:
    """t[..., i] (static i) as a [...] tensor."""
    nd = t.ndim
    part = apply("slice", t, start=(0,) * (nd - 1) + (i,), limit=tuple(t.shape[:-1]) + (i + 1,),
                 stride=(1,) * nd)
    return apply("reshape", part, shape=tuple(t.shape[:-1]))


def _swap(cur: Tensor, i: int, j: Tensor, iota: Tensor) -> Tensor:
    """cur with entries i (static) and j ([...], traced) exchanged along the last axis."""
    dims = tuple(range(cur.ndim - 1))
    wide_j = apply("broadcast_in_dim", j, shape=tuple(cur.shape), dims=dims)
    at_j = apply("eq", iota, wide_j)
    value_i = apply("broadcast_in_dim", _column(cur, i), shape=tuple(cur.shape), dims=dims)
    value_j = apply("reduce_sum", apply("select", at_j, cur, constant(0, "i64", cur.shape)),
                    axes=(cur.ndim - 1,))
    value_j = apply("broadcast_in_dim", value_j, shape=tuple(cur.shape), dims=dims)
    at_i = apply("eq", iota, constant(i, "i64", cur.shape))
    return apply("select", at_i, value_j, apply("select", at_j, value_i, cur))


def _iota(shape) -> Tensor:
    return apply("iota", dtype="i64", shape=tuple(shape), dim=len(shape) - 1)


def _pivots_of(perm: Tensor) -> Tensor:
    """LAPACK's 1-based row swaps (int32) that arrange the rows as perm orders them."""
    n = perm.shape[-1]
    iota = _iota(perm.shape)
    cur, pivots = iota, []
    dims = tuple(range(perm.ndim - 1))
    for i in range(n):
        want = apply("broadcast_in_dim", _column(perm, i), shape=tuple(perm.shape), dims=dims)
        j = apply("argmax", apply("convert", apply("eq", cur, want), dtype="i32"),
                  axis=perm.ndim - 1)
        j = cast(j, "i64")
        pivots.append(apply("reshape", j, shape=tuple(perm.shape[:-1]) + (1,)))
        cur = _swap(cur, i, j, iota)
    swaps = apply("concatenate", *pivots, axis=perm.ndim - 1) if n > 1 else pivots[0]
    return cast(apply("add", swaps, constant(1, "i64", swaps.shape)), "i32")


def _perm_of(pivots: Tensor) -> Tensor:
    """The row order (int64) that LAPACK's 1-based swaps produce."""
    piv = cast(pivots, "i64")
    iota = _iota(piv.shape)
    cur = iota
    for i in range(piv.shape[-1]):
        j = apply("sub", _column(piv, i), constant(1, "i64", tuple(piv.shape[:-1])))
        cur = _swap(cur, i, j, iota)
    return cur


def _check_lu_factor(result, A, *args, **kwargs):
    """PyTorch's error for an exactly zero pivot (imperative only; traced: inf/NaN later)."""
    lu = values(result[0])
    if lu is None:
        return
    d = np.diagonal(lu, axis1=-2, axis2=-1).reshape(-1, lu.shape[-1])
    i = first_failure((d == 0).any(axis=-1))
    if i is not None:
        k = int(np.argmax(d[i] == 0)) + 1
        where = batch_prefix(i, tuple(lu.shape[:-2]))
        raise user_error(RuntimeError, f"torch.linalg.lu_factor: {where}U[{k},{k}] is zero and "
                         "using it on lu_solve would result in a division by zero. If you still "
                         "want to perform the factorization, consider calling linalg.lu(A, "
                         "pivot) or linalg.lu_factor_ex(A, pivot)")


@checked(_check_lu_factor)
@torch_op("LinalgLuFactorEx", saves=("out",))
def lu_factor(A, *, pivot: bool = True, out=None) -> LUFactorResult:
    """(LU, pivots): L (unit lower, below the diagonal) and U packed in LU with P A = L U,
    pivots LAPACK's 1-based row swaps (int32), as torch.linalg.lu_factor. Differentiable in
    LU. An exactly singular A raises PyTorch's error eagerly (under a trace: inf/NaN)."""
    if not pivot:
        raise user_error(NotImplementedError, "linalg.lu_factor: pivot=False is not "
                                              "implemented in gradjit (partial pivoting only)")
    a = matrix_arg(A, "lu_factor", square=True)
    lu, perm, _ = apply("lu", a)
    return LUFactorResult(lu, _pivots_of(perm))


@torch_op("LinalgLuSolve", saves=(0, "out"))
def lu_solve(LU, pivots, B, *, left: bool = True, adjoint: bool = False, out=None) -> Tensor:
    """X with A X = B from lu_factor's (LU, pivots) (A^T X = B with adjoint, X A = B when not
    left), as torch.linalg.lu_solve; differentiable in LU and B."""
    lu = matrix_arg(LU, "lu_solve", square=True)
    b = to_tensor(B)
    dt = result_type(lu, b)
    lu, b = cast(lu, dt), cast(b, dt)
    if not left:                       # X A = B  <=>  A^T X^T = B^T
        return mT(lu_solve(lu, pivots, mT(b), adjoint=not adjoint))
    perm = _perm_of(to_tensor(pivots))
    n = lu.shape[-1]
    rows = apply("broadcast_in_dim", perm, shape=tuple(perm.shape) + (n,),
                 dims=tuple(range(perm.ndim)))
    p = apply("convert", apply("eq", rows, _iota(tuple(perm.shape) + (n,))), dtype=dt)
    lu, b = batch_broadcast(lu, b)
    p, _ = batch_broadcast(p, b)
    if adjoint:                        # A = P^T L U: A^T X = B  <=>  X = P^T L^-T U^-T B
        y = tri_solve(lu, tri_solve(lu, b, lower=False, transpose=True), lower=True,
                      transpose=True, unit=True)
        return mm(mT(p), y)
    return tri_solve(lu, tri_solve(lu, mm(p, b), lower=True, unit=True), lower=False)


_COMPLEX = ("gradjit tensors are real (float32/float64), and the eigenvalues of a general "
            "matrix are complex: use linalg.eigh / eigvalsh for symmetric matrices, or "
            "linalg.svd")


def eig(A, *, out=None):
    """Not available: complex results cannot be represented (NotImplementedError)."""
    raise user_error(NotImplementedError, f"linalg.eig: {_COMPLEX}")


def eigvals(A, *, out=None):
    """Not available: complex results cannot be represented (NotImplementedError)."""
    raise user_error(NotImplementedError, f"linalg.eigvals: {_COMPLEX}")

