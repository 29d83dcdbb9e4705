"""The public linalg ops as cases: a gradjit function, its NumPy reference and an input
maker (well-conditioned, batched). Each case's function returns one float tensor, so the
same table drives the value, gradient, JVP, compiled and vmap tests."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

import gradjit as gj

LA = gj.linalg


def rand(rng, *shape):
    return rng.standard_normal(shape)


def well(rng, *shape):
    """Square matrices with singular values bounded away from 0 (x + 4 I)."""
    return rand(rng, *shape) * 0.5 + 2.0 * np.eye(shape[-1])


def spd(rng, *shape):
    x = rand(rng, *shape)
    return x @ np.swapaxes(x, -1, -2) + 3 * np.eye(shape[-1])


def sym(rng, *shape):
    x = rand(rng, *shape)
    return x + np.swapaxes(x, -1, -2)


def separated(rng, *shape):
    """U diag(1, 2, ...) V^T: singular values apart, so singular vectors are smooth."""
    m, n = shape[-2:]
    k = min(m, n)
    u = np.linalg.qr(rand(rng, *shape[:-2], m, k))[0]
    v = np.linalg.qr(rand(rng, *shape[:-2], n, k))[0]
    return (u * np.arange(1.0, k + 1)) @ np.swapaxes(v, -1, -2)


def _mT(x):
    return np.swapaxes(x, -1, -2)




def gj_sym(t):
    return (t + t.mT) * 0.5


@dataclass
class Case:
    name: str
    fn: Callable            # gradjit tensors -> tensor
    ref: Callable           # NumPy arrays -> array
    inputs: Callable        # rng -> list of arrays
    grad: bool = True       # a differentiable map of every input


def _eigh_vecs(t):
    w, v = LA.eigh(t)
    return v * v.sum(-2, keepdim=True).sign()        # signs fixed by column sums


def _np_eigh_vecs(a):
    v = np.linalg.eigh(a)[1]
    return v * np.sign(v.sum(-2, keepdims=True))


def _svd_u(t):
    u, s, vh = LA.svd(t, full_matrices=False)
    sg = u.sum(-2, keepdim=True).sign()
    return (u * sg) @ (vh * sg.mT) + s.sum(-1, keepdim=True).unsqueeze(-1)


def _np_svd_u(a):
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    sg = np.sign(u.sum(-2, keepdims=True))
    return (u * sg) @ (vh * _mT(sg)) + s.sum(-1, keepdims=True)[..., None]


def _qr_both(t):
    q, r = LA.qr(t)
    return q.sum(-1) * 2 + r.sum(-2)[..., :1]


def _np_qr_both(a):
    q, r = np.linalg.qr(a)
    return q.sum(-1) * 2 + r.sum(-2)[..., :1]


CASES = [
    Case("solve", lambda a, b: LA.solve(a, b), np.linalg.solve,
         lambda r: [well(r, 2, 4, 4), rand(r, 2, 4, 3)]),
    Case("solve_vector", lambda a, b: LA.solve(a, b),
         lambda a, b: np.linalg.solve(a, b[..., None])[..., 0],
         lambda r: [well(r, 3, 3), rand(r, 3)]),
    Case("inv", lambda a: LA.inv(a), np.linalg.inv, lambda r: [well(r, 2, 3, 3)]),
    Case("det", lambda a: LA.det(a), np.linalg.det, lambda r: [well(r, 3, 4, 4)]),
    Case("slogdet", lambda a: LA.slogdet(a).logabsdet * LA.slogdet(a).sign,
         lambda a: np.linalg.slogdet(a)[1] * np.linalg.slogdet(a)[0],
         lambda r: [rand(r, 2, 3, 3)]),
    Case("cholesky", lambda a: LA.cholesky(gj_sym(a)), lambda a: np.linalg.cholesky(
        (a + _mT(a)) / 2), lambda r: [spd(r, 2, 4, 4)]),
    Case("cholesky_upper", lambda a: LA.cholesky(gj_sym(a), upper=True),
         lambda a: _mT(np.linalg.cholesky((a + _mT(a)) / 2)), lambda r: [spd(r, 3, 3)]),
    Case("solve_triangular", lambda a, b: LA.solve_triangular(a, b, upper=True),
         lambda a, b: np.linalg.solve(np.triu(a), b), lambda r: [well(r, 2, 3, 3),
                                                                 rand(r, 2, 3, 2)]),
    Case("solve_triangular_right", lambda a, b: LA.solve_triangular(
        a, b, upper=False, left=False, unitriangular=True),
         lambda a, b: b @ np.linalg.inv(np.tril(a, -1) + np.eye(a.shape[-1])),
         lambda r: [well(r, 3, 3), rand(r, 2, 3)]),
    Case("qr", _qr_both, _np_qr_both, lambda r: [rand(r, 2, 5, 3)]),
    Case("qr_wide", _qr_both, _np_qr_both, lambda r: [rand(r, 3, 5)]),
    Case("eigh_values", lambda a: LA.eigvalsh(gj_sym(a)),
         lambda a: np.linalg.eigvalsh((a + _mT(a)) / 2), lambda r: [sym(r, 2, 4, 4)]),
    Case("eigh_vectors", lambda a: _eigh_vecs(gj_sym(a)),
         lambda a: _np_eigh_vecs((a + _mT(a)) / 2), lambda r: [sym(r, 2, 3, 3)]),
    Case("svd_tall", _svd_u, _np_svd_u, lambda r: [separated(r, 2, 5, 3)]),
    Case("svd_wide", _svd_u, _np_svd_u, lambda r: [separated(r, 3, 4)]),
    Case("svdvals", lambda a: LA.svdvals(a), lambda a: np.linalg.svd(a, compute_uv=False),
         lambda r: [separated(r, 2, 4, 3)]),
    Case("pinv", lambda a: LA.pinv(a), np.linalg.pinv, lambda r: [separated(r, 2, 4, 3)]),
    Case("lstsq", lambda a, b: LA.lstsq(a, b).solution,
         lambda a, b: np.linalg.lstsq(a, b, rcond=None)[0],
         lambda r: [separated(r, 5, 3), rand(r, 5, 2)]),
    Case("matrix_power_3", lambda a: LA.matrix_power(a, 3),
         lambda a: np.linalg.matrix_power(a, 3), lambda r: [rand(r, 2, 3, 3)]),
    Case("matrix_power_-2", lambda a: LA.matrix_power(a, -2),
         lambda a: np.linalg.matrix_power(a, -2), lambda r: [well(r, 3, 3)]),
    Case("cross", lambda a, b: LA.cross(a, b), np.cross, lambda r: [rand(r, 4, 3),
                                                                   rand(r, 4, 3)]),
    Case("vector_norm_2", lambda a: LA.vector_norm(a, dim=-1),
         lambda a: np.linalg.norm(a, axis=-1), lambda r: [rand(r, 3, 4)]),
    Case("vector_norm_3", lambda a: LA.vector_norm(a, 3, dim=(0, 1)),
         lambda a: np.sum(np.abs(a) ** 3, axis=(0, 1)) ** (1 / 3), lambda r: [rand(r, 3, 4, 2)]),
    Case("vector_norm_inf", lambda a: LA.vector_norm(a, float("inf")),
         lambda a: np.max(np.abs(a)), lambda r: [rand(r, 3, 4)]),
    Case("vector_norm_-inf", lambda a: LA.vector_norm(a, float("-inf"), dim=-1),
         lambda a: np.min(np.abs(a), axis=-1), lambda r: [rand(r, 3, 4)]),
    Case("vector_norm_0", lambda a: LA.vector_norm(a, 0, dim=-1),
         lambda a: np.sum(a != 0, axis=-1).astype(float), lambda r: [rand(r, 3, 4)],
         grad=False),
    Case("norm_default", lambda a: LA.norm(a), lambda a: np.linalg.norm(a.reshape(-1)),
         lambda r: [rand(r, 2, 3, 4)]),
] + [
    Case(f"matrix_norm_{o}", lambda a, o=o: LA.matrix_norm(a, o),
         lambda a, o=o: np.linalg.norm(a, o, axis=(-2, -1)), lambda r: [separated(r, 2, 4, 3)])
    for o in ("fro", "nuc", float("inf"), float("-inf"), 1, -1, 2, -2)
] + [
    Case(f"norm_ord_{o}", lambda a, o=o: LA.norm(a, o), lambda a, o=o: np.linalg.norm(a, o),
         lambda r: [separated(r, 3, 4)])
    for o in ("fro", "nuc", float("inf"), 1, -2)
] + [
    Case(f"norm_vector_ord_{o}", lambda a, o=o: LA.norm(a, o), lambda a, o=o: np.linalg.norm(a, o),
         lambda r: [rand(r, 5)])
    for o in (1, 2, 3, float("inf"), float("-inf"))
]
