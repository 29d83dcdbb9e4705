"""Per-matrix cost of gj.linalg's LAPACK calls on batches of small matrices, against NumPy's
np.linalg (the same OpenBLAS LAPACK, called per matrix by NumPy's own loops).

    python -m tests.linalg.bench_small      # medians of 7 runs, microseconds per matrix
"""
from __future__ import annotations

import time

import numpy as np

import gradjit as gj

LA = gj.linalg
OPS = {
    "cholesky": (LA.cholesky, np.linalg.cholesky, "spd"),
    "solve": (lambda a, b: LA.solve(a, b), lambda a, b: np.linalg.solve(a, b), "rhs"),
    "qr": (lambda a: LA.qr(a)[1], lambda a: np.linalg.qr(a)[1], "any"),
    "eigh": (lambda a: LA.eigh(a)[1], lambda a: np.linalg.eigh(a)[1], "spd"),
    "svd": (lambda a: LA.svd(a, full_matrices=False)[1],
            lambda a: np.linalg.svd(a, compute_uv=False), "any"),
}


def _median(fn, runs=7):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(batch=2000):
    rng = np.random.default_rng(0)
    print(f"{'op':9s} {'n':>3s} {'gradjit us':>11s} {'numpy us':>9s} {'ratio':>6s}")
    for name, (ours, theirs, kind) in OPS.items():
        for n in (2, 4, 8, 32):
            x = rng.standard_normal((batch, n, n))
            a = x @ np.swapaxes(x, -1, -2) + n * np.eye(n) if kind != "any" else x
            args = [a, rng.standard_normal((batch, n, 1))] if kind == "rhs" else [a]
            f = gj.jit(ours)
            tensors = [gj.tensor(v) for v in args]
            f(*tensors)
            t_gj = _median(lambda f=f, t=tensors: f(*t)) / batch * 1e6
            t_np = _median(lambda g=theirs, v=args: g(*v)) / batch * 1e6
            print(f"{name:9s} {n:3d} {t_gj:11.2f} {t_np:9.2f} {t_gj / t_np:6.2f}")


if __name__ == "__main__":
    main()
