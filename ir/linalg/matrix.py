"""Matrix helpers in IR for the linear-algebra rules: every value is a stack [..., m, n]."""
from __future__ import annotations

import numpy as np

from ir.builder import Builder
from ir.core import Value


def mT(b: Builder, x: Value) -> Value:
    """x with its last two axes swapped."""
    k = x.ndim
    return b.transpose(x, perm=tuple(range(k - 2)) + (k - 1, k - 2))


def mm(b: Builder, x: Value, y: Value) -> Value:
    """The batched product x @ y of [..., m, k] and [..., k, n] (equal batch axes)."""
    nb = x.ndim - 2
    return b.dot_general(x, y, contract=((nb + 1,), (nb,)),
                         batch=(tuple(range(nb)), tuple(range(nb))))


def mask(b: Builder, x: Value, keep: np.ndarray) -> Value:
    """x times a constant 0/1 (or any) matrix keep of shape x.shape[-2:], broadcast."""
    c = b.const(keep.astype(float).tolist(), x.dtype, keep.shape)
    return b.mul(x, b.broadcast_to(c, x.shape))


def tril(b: Builder, x: Value, k: int = 0) -> Value:
    return mask(b, x, np.tri(x.shape[-2], x.shape[-1], k))


def triu(b: Builder, x: Value, k: int = 0) -> Value:
    return mask(b, x, 1 - np.tri(x.shape[-2], x.shape[-1], k - 1))


def eye_like(b: Builder, x: Value) -> Value:
    """The identity [..., n, n] (broadcast over x's batch axes)."""
    n = x.shape[-1]
    return b.broadcast_to(b.const(np.eye(n).tolist(), x.dtype, (n, n)), x.shape[:-2] + (n, n))


def diag(b: Builder, x: Value) -> Value:
    """The diagonal [..., n] of a square stack [..., n, n]."""
    return b.reduce_sum(mask(b, x, np.eye(x.shape[-1])), axes=(x.ndim - 1,))


def diag_embed(b: Builder, v: Value) -> Value:
    """The diagonal matrices [..., n, n] with v [..., n] on the diagonal."""
    n = v.shape[-1]
    wide = b.broadcast_in_dim(v, shape=v.shape + (n,), dims=tuple(range(v.ndim - 1)) + (v.ndim,))
    return mask(b, wide, np.eye(n))


def rows(b: Builder, v: Value, m: int) -> Value:
    """v [..., n] repeated as m rows: [..., m, n] with entry (i, j) = v[j]."""
    return b.broadcast_in_dim(v, shape=v.shape[:-1] + (m, v.shape[-1]),
                              dims=tuple(range(v.ndim - 1)) + (v.ndim,))


def cols(b: Builder, v: Value, n: int) -> Value:
    """v [..., m] repeated as n columns: [..., m, n] with entry (i, j) = v[i]."""
    return b.broadcast_in_dim(v, shape=v.shape + (n,), dims=tuple(range(v.ndim)))


def sym(b: Builder, x: Value) -> Value:
    """(x + x^T) / 2."""
    return b.mul(b.add(x, mT(b, x)), b.full_like(0.5, x))


def skew(b: Builder, x: Value) -> Value:
    """x - x^T."""
    return b.sub(x, mT(b, x))


def solve_tri(b: Builder, a: Value, rhs: Value, lower: bool, transpose: bool = False,
              unit: bool = False) -> Value:
    """op(a)^-1 rhs for a triangular a."""
    return b.triangular_solve(a, rhs, lower=lower, transpose_a=transpose, unit_diagonal=unit)


def solve_tri_right(b: Builder, a: Value, rhs: Value, lower: bool, transpose: bool = False,
                    unit: bool = False) -> Value:
    """rhs op(a)^-1 (a right-side solve: its transpose is a left-side one)."""
    return mT(b, solve_tri(b, a, mT(b, rhs), lower, not transpose, unit))


def perm_matrix(b: Builder, perm: Value, like: Value) -> Value:
    """P [..., n, n] with P[i, j] = (perm[i] == j), in like's dtype: (P @ a) = a[perm]."""
    n = perm.shape[-1]
    cols_ = b.broadcast_to(b.iota(dtype=perm.dtype, shape=(n, n), dim=1), perm.shape + (n,))
    return b.convert(b.eq(cols(b, perm, n), cols_), dtype=like.dtype)


def gap_reciprocals(b: Builder, w: Value, squared: bool = False) -> Value:
    """F [..., n, n] with F[i, j] = 1 / (w_j - w_i) (or 1 / (w_j^2 - w_i^2)) off the
    diagonal and 0 on it; equal values give inf, as in JAX and PyTorch."""
    n = w.shape[-1]
    wj, wi = rows(b, w, n), cols(b, w, n)
    gap = b.sub(b.mul(wj, wj), b.mul(wi, wi)) if squared else b.sub(wj, wi)
    eye = eye_like(b, gap)
    return b.sub(b.div(b.full_like(1, gap), b.add(gap, eye)), eye)
