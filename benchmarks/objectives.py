"""The benchmark objectives written once for every array library `m` (gradjit, jax.numpy,
torch): imported by benchmarks/workloads.py and by benchmarks/startup.py's fresh processes,
so this module imports nothing but NumPy."""
from __future__ import annotations

import numpy as np


def gmm_objective(m, take, lse, alphas, means, icf, x, lower_index, gamma=1.0, wishart_m=0):
    """ADBench GMM: icf holds log-diagonals then the strict lower triangle of each Q."""
    n, d = x.shape
    k = alphas.shape[0]
    log_diag = icf[:, :d]
    q_diag = m.exp(log_diag)
    sum_qs = log_diag.sum(axis=1)
    padded = m.concatenate([m.zeros((k, 1), dtype=icf.dtype), icf[:, d:]], axis=1)
    lower = take(padded, lower_index).reshape(k, d, d)       # (k, d, d), zero above diagonal
    xc = x[:, None, :] - means[None, :, :]                   # (n, k, d)
    lx = q_diag[None] * xc + m.einsum("kij,nkj->nki", lower, xc)
    inner = alphas[None] + sum_qs[None] - 0.5 * (lx * lx).sum(axis=2)
    const = -n * d * 0.5 * np.log(2 * np.pi)
    wishart = 0.5 * gamma ** 2 * ((q_diag ** 2).sum() + (icf[:, d:] ** 2).sum()) \
        - wishart_m * sum_qs.sum()
    return const + lse(inner, 1).sum() - n * lse(alphas, 0) + wishart


def lower_index(d: int) -> np.ndarray:
    """Column of padded icf for each (i, j) of a d x d matrix: 0 (a zero) unless i > j."""
    index = np.zeros((d, d), np.int64)
    col = 1
    for j in range(d):
        for i in range(j + 1, d):
            index[i, j] = col
            col += 1
    return index.reshape(-1)


def lstm_loss(m, scan, w1, b1, w2, b2, xs, hidden):
    """Two stacked LSTM layers over xs (T, B, H); loss = mean of the last layer's outputs^2."""
    batch = xs.shape[1]

    def cell(w, b, h, c, inp):
        gates = m.concatenate([inp, h], axis=1) @ w + b
        i = _sig(m, gates[:, :hidden])
        f = _sig(m, gates[:, hidden:2 * hidden])
        o = _sig(m, gates[:, 2 * hidden:3 * hidden])
        g = m.tanh(gates[:, 3 * hidden:])
        c = f * c + i * g
        return o * m.tanh(c), c

    def step(carry, x):
        h1, c1, h2, c2 = carry
        h1, c1 = cell(w1, b1, h1, c1, x)
        h2, c2 = cell(w2, b2, h2, c2, h1)
        return (h1, c1, h2, c2), h2

    zeros = m.zeros((batch, hidden), dtype=xs.dtype)
    _, ys = scan(step, (zeros, zeros, zeros, zeros), xs)
    return (ys * ys).mean()


def _sig(m, z):
    return 1 / (1 + m.exp(-z))
