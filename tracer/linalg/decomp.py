"""cholesky, qr, eigh, eigvalsh, svd, svdvals: one decomposition primitive each (ir/linalg),
with PyTorch's signatures and result names (also JAX's: the fields unpack alike)."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from tracer.linalg.common import (LinAlgError, batch_prefix, checked, eye, first_failure,
                                  matrix_arg, mm, mT, values)
from tracer.ops.operands import constant, user_error
from tracer.ops.elementwise import sub
from tracer.record import apply, torch_op

__all__ = ["cholesky", "qr", "eigh", "eigvalsh", "svd", "svdvals"]

QRResult = namedtuple("linalg_qr", ["Q", "R"])
EighResult = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
SVDResult = namedtuple("linalg_svd", ["U", "S", "Vh"])


def _failed_minor(m: np.ndarray) -> int:
    """The order of the first leading minor of m (its lower triangle) that is not
    positive-definite, as LAPACK's potrf finds it."""
    a = np.tril(m) + np.tril(m, -1).T
    n = a.shape[0]
    low = np.zeros_like(a)
    for j in range(n):
        d = a[j, j] - low[j, :j] @ low[j, :j]
        if not d > 0:
            return j + 1
        low[j, j] = np.sqrt(d)
        low[j + 1:, j] = (a[j + 1:, j] - low[j + 1:, :j] @ low[j, :j]) / low[j, j]
    return n


def _check_cholesky(low, A, *args, **kwargs):
    result = values(low)
    if result is None or not np.isnan(result).any():
        return
    given = values(A)
    bad = np.isnan(result).any(axis=(-2, -1)) & np.isfinite(given).all(axis=(-2, -1))
    i = first_failure(bad)
    if i is not None:
        order = _failed_minor(given.reshape((-1,) + given.shape[-2:])[i])
        raise user_error(LinAlgError, f"linalg.cholesky: {batch_prefix(i, given.shape[:-2])}The "
                         "factorization could not be completed because the input is not "
                         f"positive-definite (the leading minor of order {order} is not "
                         "positive-definite).")


@checked(_check_cholesky)
@torch_op("LinalgCholeskyEx", saves=("out",))
def cholesky(A, *, upper: bool = False, out=None):
    """The Cholesky factor L (A = L L^T, A's lower triangle read), or U = L^T if upper.

    Not positive-definite: LinAlgError with PyTorch's text in the imperative front; NaN under
    jit/grad/vmap (as JAX). The gradient is the symmetric one (PyTorch's and JAX's).
    """
    a = matrix_arg(A, "cholesky", square=True)
    low = apply("cholesky", a)
    return mT(low) if upper else low


@torch_op("LinalgQr", saves=(0, "out"))
def qr(A, mode: str = "reduced", *, out=None):
    """Q, R with A = Q R (Householder, LAPACK geqrf/orgqr). mode 'reduced' (Q m x k, R k x n,
    k = min(m, n)), 'r' (Q empty) or 'complete' (Q m x m, R m x n; for m <= n the same as
    'reduced'). A tall A's completing columns of Q are an orthonormal basis of the complement
    of its column space, but not the one LAPACK's orgqr (PyTorch, NumPy) gives, and carry no
    gradient (PyTorch raises in backward there); the first n columns and R are PyTorch's and
    differentiate as in 'reduced'."""
    a = matrix_arg(A, "qr")
    m, n = a.shape[-2:]
    if mode not in ("reduced", "r", "complete"):
        raise user_error(RuntimeError, f"qr received unrecognized mode '{mode}' but expected "
                                       "one of 'reduced' (default), 'r', or 'complete'")
    q, r = apply("qr", a)
    if mode == "complete" and m > n:
        q = _complete(q)
        nd = r.ndim
        r = apply("pad", r, lo=(0,) * nd, hi=(0,) * (nd - 2) + (m - n, 0), interior=(0,) * nd)
    if mode == "r":
        q = constant(0, q._expr.type.dtype, (0,))
    return QRResult(q, r)


@torch_op("LinalgEigh", saves=("out",))
def eigh(A, UPLO: str = "L", *, out=None):
    """Eigenvalues (ascending) and eigenvectors (columns) of symmetric matrices, reading the
    UPLO triangle. Repeated eigenvalues make eigenvector gradients inf/NaN (as PyTorch, JAX)."""
    a = matrix_arg(A, "eigh", square=True)
    if UPLO not in ("L", "U"):
        raise user_error(RuntimeError, f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    w, v = apply("eigh", mT(a) if UPLO == "U" else a)
    return EighResult(w, v)


@torch_op("LinalgEigh", saves=("out",))
def eigvalsh(A, UPLO: str = "L", *, out=None):
    """The eigenvalues of eigh alone (their gradient has no eigenvalue-gap terms)."""
    return eigh(A, UPLO).eigenvalues


def _complete(u):
    """u [..., m, k] (orthonormal columns) completed to an orthogonal [..., m, m]: the
    eigenvectors of I - u u^T with eigenvalue 1 span the complement."""
    m, k = u.shape[-2:]
    fixed = apply("stop_gradient", u)     # the completion is not differentiable (PyTorch)
    proj = sub(eye(m, u._expr.type.dtype, u.shape[:-2]), mm(fixed, mT(fixed)))
    _, vecs = apply("eigh", proj)
    nd = vecs.ndim
    rest = apply("slice", vecs, start=(0,) * (nd - 1) + (k,), limit=tuple(vecs.shape),
                 stride=(1,) * nd)
    return apply("concatenate", u, rest, axis=nd - 1)


@torch_op("LinalgSvd", saves=("out",))
def svd(A, full_matrices: bool = True, *, driver=None, out=None):
    """U, S, Vh with A = U diag(S) Vh (LAPACK gesdd). full_matrices=True (PyTorch's and
    NumPy's default) completes U or Vh of a non-square A to a square orthogonal matrix; the
    completed columns carry no gradient (PyTorch raises in backward for them), the first
    min(m, n) columns differentiate as with full_matrices=False. Repeated singular values make U/Vh
    gradients inf/NaN (as PyTorch, JAX); S alone is always differentiable."""
    a = matrix_arg(A, "svd")
    u, s, vh = apply("svd", a)
    m, n = a.shape[-2:]
    if full_matrices and m > n:
        u = _complete(u)
    elif full_matrices and n > m:
        vh = mT(_complete(mT(vh)))
    return SVDResult(u, s, vh)


@torch_op("LinalgSvd", saves=("out",))
def svdvals(A, *, driver=None, out=None):
    """The singular values of A, descending."""
    return apply("svd", matrix_arg(A, "svdvals"))[1]
