"""Forward-mode rules of the linear-algebra primitives: rule(b, ts, outs, *inputs, **params)
-> one tangent per result (None for integer results; lu's sign, piecewise constant, gets 0).

The formulas are JAX's (jax/_src/lax/linalg.py): each is the linearisation that the VJP
rule (vjp.py) transposes, with the same symmetric-input convention for cholesky and eigh
(the tangent is symmetrised first) and the same infinities at repeated eigen/singular values.
"""
from __future__ import annotations

import numpy as np

from ir.linalg.matrix import (cols, diag, eye_like, gap_reciprocals, mask, mm, mT,
                              perm_matrix, rows, solve_tri, solve_tri_right, sym, tril, triu)
from ir.linalg.vjp import _split_cols


def _cholesky(b, ts, l, a):
    (da,) = ts
    n = a.shape[-1]
    x = solve_tri(b, l, solve_tri_right(b, l, sym(b, da), lower=True, transpose=True),
                  lower=True)
    return mm(b, l, mask(b, x, np.tri(n) - 0.5 * np.eye(n)))


def _triangular_solve(b, ts, x, a, rhs, *, lower, transpose_a, unit_diagonal):
    da, drhs = ts
    n = a.shape[-1]
    rest = drhs
    if da is not None:
        keep = np.tri(n, n, -1 if unit_diagonal else 0)
        da = mask(b, da, keep if lower else keep.T)
        da_x = mm(b, mT(b, da) if transpose_a else da, x)
        rest = b.neg(da_x) if rest is None else b.sub(rest, da_x)
    return solve_tri(b, a, rest, lower, transpose_a, unit_diagonal)


def _lu(b, ts, outs, a):
    (da,), (lu, perm, sign) = ts, outs
    pda = mm(b, perm_matrix(b, perm, a), da)
    x = solve_tri_right(b, lu, solve_tri(b, lu, pda, lower=True, unit=True), lower=False)
    l_full = b.add(tril(b, lu, -1), eye_like(b, a))
    return (b.add(mm(b, l_full, tril(b, x, -1)), mm(b, triu(b, x), triu(b, lu))), None,
            b.full_like(0, sign))     # the sign is piecewise constant


def _qr_tall(b, da, q, r):
    dx_rinv = solve_tri_right(b, r, da, lower=False)
    qt = mm(b, mT(b, q), dx_rinv)
    low = tril(b, qt, -1)
    do = b.sub(low, mT(b, low))
    dq = b.add(mm(b, q, b.sub(do, qt)), dx_rinv)
    return dq, mm(b, b.sub(qt, do), r)


def _qr(b, ts, outs, a):
    (da,), (q, r) = ts, outs
    m, n = a.shape[-2:]
    if m >= n:
        return _qr_tall(b, da, q, r)
    # wide: A = [X | Y], X = Q U, V = Q^T Y
    dx, dy = _split_cols(b, da, m)
    u = _split_cols(b, r, m)[0]
    y = _split_cols(b, a, m)[1]
    dq, du = _qr_tall(b, dx, q, u)
    dv = b.add(mm(b, mT(b, dq), y), mm(b, mT(b, q), dy))
    return dq, b.concatenate(du, dv, axis=a.ndim - 1)


def _eigh(b, ts, outs, a):
    (da,), (w, v) = ts, outs
    vdv = mm(b, mm(b, mT(b, v), sym(b, da)), v)
    return diag(b, vdv), mm(b, v, b.mul(gap_reciprocals(b, w), vdv))


def _svd(b, ts, outs, a):
    (da,), (u, s, vh) = ts, outs
    m, n = a.shape[-2:]
    k = s.shape[-1]
    v = mT(b, vh)
    ds_mat = mm(b, mm(b, mT(b, u), da), v)
    f = gap_reciprocals(b, s, squared=True)
    dss = b.mul(ds_mat, rows(b, s, k))
    sds = b.mul(cols(b, s, k), ds_mat)
    du = mm(b, u, b.mul(f, b.add(dss, mT(b, dss))))
    dv = mm(b, v, b.mul(f, b.add(sds, mT(b, sds))))
    if m > k:
        dav = mm(b, da, v)
        du = b.add(du, b.div(b.sub(dav, mm(b, u, mm(b, mT(b, u), dav))), rows(b, s, m)))
    if n > k:
        dahu = mm(b, mT(b, da), u)
        dv = b.add(dv, b.div(b.sub(dahu, mm(b, v, mm(b, vh, dahu))), rows(b, s, n)))
    return du, diag(b, ds_mat), mT(b, dv)


JVP_RULES = {"cholesky": _cholesky, "triangular_solve": _triangular_solve, "lu": _lu,
             "qr": _qr, "eigh": _eigh, "svd": _svd}
