"""Reverse-mode rules of the linear-algebra primitives: rule(b, gs, outs, *inputs, **params).

gs and outs are tuples (one entry per result; None for a zero cotangent) for the
multi-result ones, single values for cholesky and triangular_solve. References: Giles
2008 (solves, LU), Murray 2016 (Cholesky), Walter & Lehmann / Seeger et al. 2017 (QR, eigh),
Townsend 2016 (SVD); the formulas are PyTorch's (FunctionsManual.cpp). The symmetric-input
ops (cholesky, eigh) give the symmetric gradient, as PyTorch and JAX do. Repeated eigenvalues
or singular values make the eigenvector / singular-vector terms infinite (JAX and PyTorch do
the same); a loss of the values alone (norms, eigvalsh) never builds those terms.
"""
from __future__ import annotations

import numpy as np

from ir.autodiff.common import plus
from ir.linalg.matrix import (cols, diag, diag_embed, eye_like, gap_reciprocals, mask, mm, mT,
                              perm_matrix, rows, skew, solve_tri, solve_tri_right, sym, tril,
                              triu)


def _cholesky(b, g, l, a):
    phi = mask(b, mm(b, mT(b, l), g), np.tri(a.shape[-1]) - 0.5 * np.eye(a.shape[-1]))
    # L^-T phi L^-1
    x = solve_tri_right(b, l, solve_tri(b, l, phi, lower=True, transpose=True), lower=True)
    return (sym(b, x),)


def _triangular_solve(b, g, x, a, rhs, *, lower, transpose_a, unit_diagonal):
    g_rhs = solve_tri(b, a, g, lower, not transpose_a, unit_diagonal)
    g_a = b.neg(mm(b, x, mT(b, g_rhs)) if transpose_a else mm(b, g_rhs, mT(b, x)))
    n = a.shape[-1]
    keep = np.tri(n, n, -1 if unit_diagonal else 0)
    return mask(b, g_a, keep if lower else keep.T), g_rhs


def _lu(b, gs, outs, a):
    g, lu, perm = gs[0], outs[0], outs[1]
    if g is None:
        return (None,)
    l_full = b.add(tril(b, lu, -1), eye_like(b, a))
    inner = b.add(tril(b, mm(b, mT(b, l_full), tril(b, g, -1)), -1),
                  triu(b, mm(b, triu(b, g), mT(b, triu(b, lu)))))
    y = solve_tri(b, lu, inner, lower=True, transpose=True, unit=True)
    g_pa = solve_tri_right(b, lu, y, lower=False, transpose=True)
    return (mm(b, mT(b, perm_matrix(b, perm, a)), g_pa),)


def _qr_tall(b, gq, gr, q, r):
    """gA of A = QR with m >= n (PyTorch's linalg_qr_backward)."""
    m_ = None
    if gr is not None:
        m_ = mm(b, gr, mT(b, r))
    if gq is not None:
        qtgq = mm(b, mT(b, q), gq)
        m_ = b.neg(qtgq) if m_ is None else b.sub(m_, qtgq)
    m_ = triu(b, m_)
    adj = b.sub(b.add(m_, mT(b, m_)), diag_embed(b, diag(b, m_)))
    y = plus(b, mm(b, q, adj), gq)
    return solve_tri_right(b, r, y, lower=False, transpose=True)


def _split_cols(b, x, k):
    """x [..., m, n] as (x[..., :k], x[..., k:])."""
    nd = x.ndim
    zero, full, ones = (0,) * nd, tuple(x.shape), (1,) * nd
    return (b.slice(x, start=zero, limit=full[:-1] + (k,), stride=ones),
            b.slice(x, start=(0,) * (nd - 1) + (k,), limit=full, stride=ones))


def _qr(b, gs, outs, a):
    (gq, gr), (q, r) = gs, outs
    m, n = a.shape[-2:]
    if m >= n:
        return (_qr_tall(b, gq, gr, q, r),)
    # wide: A = [X | Y] with X = Q U square and V = Q^T Y (R = [U | V])
    y = _split_cols(b, a, m)[1]
    gu, gv = _split_cols(b, gr, m) if gr is not None else (None, None)
    u = _split_cols(b, r, m)[0]
    gy = None if gv is None else mm(b, q, gv)
    gq2 = plus(b, gq, None if gv is None else mm(b, y, mT(b, gv)))
    gx = _qr_tall(b, gq2, gu, q, u)
    if gy is None:
        gy = b.full_like(0, y)
    return (b.concatenate(gx, gy, axis=a.ndim - 1),)


def _eigh(b, gs, outs, a):
    (gw, gv), (w, v) = gs, outs
    inner = None if gw is None else diag_embed(b, gw)
    if gv is not None:
        vgv = mm(b, mT(b, v), gv)
        half_skew = b.mul(skew(b, vgv), b.full_like(0.5, vgv))
        inner = plus(b, inner, b.mul(half_skew, gap_reciprocals(b, w)))
    return (mm(b, mm(b, v, inner), mT(b, v)),)


def _svd(b, gs, outs, a):
    (gu, gs_, gvh), (u, s, vh) = gs, outs
    m, n = a.shape[-2:]
    k = s.shape[-1]
    v = mT(b, vh)
    inner = None if gs_ is None else diag_embed(b, gs_)
    f = gap_reciprocals(b, s, squared=True) if gu is not None or gvh is not None else None
    extra = None
    if gu is not None:
        j = b.mul(f, skew(b, mm(b, mT(b, u), gu)))
        inner = plus(b, inner, b.mul(j, rows(b, s, k)))
        if m > k:   # (I - U U^T) gU S^-1 V^T
            proj = b.sub(gu, mm(b, u, mm(b, mT(b, u), gu)))
            extra = mm(b, b.div(proj, rows(b, s, m)), vh)
    if gvh is not None:
        gv = mT(b, gvh)
        j = b.mul(f, skew(b, mm(b, mT(b, v), gv)))
        inner = plus(b, inner, b.mul(cols(b, s, k), j))
        if n > k:   # U S^-1 gV^T (I - V V^T)
            proj = b.sub(gv, mm(b, v, mm(b, vh, gv)))
            extra = plus(b, extra, mm(b, u, mT(b, b.div(proj, rows(b, s, n)))))
    return (plus(b, mm(b, mm(b, u, inner), vh), extra),)


VJP_RULES = {"cholesky": _cholesky, "triangular_solve": _triangular_solve, "lu": _lu,
             "qr": _qr, "eigh": _eigh, "svd": _svd}
