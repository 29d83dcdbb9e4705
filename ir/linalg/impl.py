"""NumPy references of the linear-algebra primitives (the interpreter's rules).

Each works on a stack of matrices; a matrix whose factorization fails (not positive-definite,
a zero diagonal in a triangular solve, a non-finite input) gives NaN results, as the native
code does. np.linalg has no LU and no triangular solve, so those two are written out here.
"""
from __future__ import annotations

import numpy as np


def _per_matrix(fn, a: np.ndarray, *outs_like):
    """fn applied to each matrix of a's stack; NaN results where it raises LinAlgError."""
    batch = a.shape[:-2]
    flat = a.reshape((-1,) + a.shape[-2:])
    results = [np.empty((flat.shape[0],) + s, a.dtype) for s in outs_like]
    for i, m in enumerate(flat):
        try:
            if not np.all(np.isfinite(m)):
                raise np.linalg.LinAlgError("non-finite input")
            got = fn(m)
        except np.linalg.LinAlgError:
            got = [np.full(s, np.nan) for s in outs_like]
        for r, g in zip(results, got):
            r[i] = g
    return [r.reshape(batch + r.shape[1:]) for r in results]


def _cholesky(a):
    n = a.shape[-1]
    return _per_matrix(lambda m: [np.linalg.cholesky(np.tril(m) + np.tril(m, -1).T)],
                       a, (n, n))[0]


def _triangular_solve(a, b, *, lower, transpose_a, unit_diagonal):
    n = a.shape[-1]
    tri = np.tril(a) if lower else np.triu(a)
    if unit_diagonal:
        tri = tri - tri * np.eye(n) + np.eye(n)
    if transpose_a:
        tri = np.swapaxes(tri, -1, -2)
    out = np.empty(b.shape, np.result_type(a, b))
    flat_a = tri.reshape((-1, n, n))
    flat_b, flat_o = b.reshape((-1,) + b.shape[-2:]), out.reshape((-1,) + b.shape[-2:])
    for i in range(flat_a.shape[0]):
        if np.any(np.diagonal(flat_a[i]) == 0) or not np.all(np.isfinite(flat_a[i])):
            flat_o[i] = np.nan
        else:
            flat_o[i] = np.linalg.solve(flat_a[i], flat_b[i]) if n else flat_b[i]
    return out


def lu_factor(m: np.ndarray):
    """(lu, perm, sign) of one square matrix by partial pivoting (LAPACK getrf's choices:
    the first largest |pivot|; a zero column is skipped, leaving a zero on U's diagonal)."""
    lu, n = m.astype(np.float64 if m.dtype == np.float64 else m.dtype, copy=True), m.shape[0]
    perm, sign = np.arange(n), 1.0
    for j in range(n):
        p = j + int(np.argmax(np.abs(lu[j:, j])))
        if p != j:
            lu[[j, p]], perm[[j, p]], sign = lu[[p, j]], perm[[p, j]], -sign
        if lu[j, j] != 0:
            lu[j + 1:, j] /= lu[j, j]
            lu[j + 1:, j + 1:] -= np.outer(lu[j + 1:, j], lu[j, j + 1:])
    return lu, perm, sign


def _lu(a):
    n = a.shape[-1]
    flat = a.reshape((-1, n, n))
    lus, perms, signs = np.empty(flat.shape, a.dtype), np.empty(flat.shape[:2], np.int64), \
        np.empty(flat.shape[0], a.dtype)
    for i, m in enumerate(flat):
        lus[i], perms[i], signs[i] = lu_factor(m)
    batch = a.shape[:-2]
    return lus.reshape(a.shape), perms.reshape(batch + (n,)), signs.reshape(batch)


def _qr(a):
    m, n = a.shape[-2:]
    k = min(m, n)
    return _per_matrix(lambda x: np.linalg.qr(x, mode="reduced"), a, (m, k), (k, n))


def _eigh(a):
    n = a.shape[-1]
    return _per_matrix(lambda x: np.linalg.eigh(x, UPLO="L"), a, (n,), (n, n))


def _svd(a):
    m, n = a.shape[-2:]
    k = min(m, n)
    return _per_matrix(lambda x: np.linalg.svd(x, full_matrices=False), a, (m, k), (k,), (k, n))


IMPL_RULES = {"cholesky": _cholesky, "triangular_solve": _triangular_solve, "lu": _lu,
              "qr": _qr, "eigh": _eigh, "svd": _svd}
