"""The accuracy of gj.linalg's derivatives against central finite differences in float64.

    python -m tests.linalg.accuracy        # prints the table (VJP and JVP, max rel. error)

For each case of cases.py: the VJP of sum(w * f(x)) (gj.grad, random w) and the JVP along a
random tangent (gj.jvp), against central differences (step 1e-6) of the NumPy reference;
the error is max |analytic - numeric| / max |numeric|.
"""
from __future__ import annotations

import numpy as np

import gradjit as gj
from tests.linalg.cases import CASES, Case

EPS = 1e-6


def _numeric_grad(case: Case, arrays, w):
    grads = []
    for k, a in enumerate(arrays):
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            def at(step, k=k, idx=idx):
                moved = [x.copy() for x in arrays]
                moved[k][idx] += step
                return np.sum(w * case.ref(*moved))
            g[idx] = (at(EPS) - at(-EPS)) / (2 * EPS)
        grads.append(g)
    return grads


def _rel(got, want) -> float:
    scale = max(max(float(np.max(np.abs(w))) for w in want), 1e-300)
    return max(float(np.max(np.abs(g - w))) for g, w in zip(got, want)) / scale


def vjp_error(case: Case, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    arrays = case.inputs(rng)
    w = rng.standard_normal(np.shape(case.ref(*arrays)))
    argnums = tuple(range(len(arrays)))
    loss = lambda *xs: (case.fn(*xs) * gj.tensor(w)).sum()   # noqa: E731
    got = gj.grad(loss, argnums=argnums)(*[gj.tensor(a) for a in arrays])
    return _rel([np.asarray(g) for g in got], _numeric_grad(case, arrays, w))


def jvp_error(case: Case, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    arrays = case.inputs(rng)
    tangents = [rng.standard_normal(a.shape) for a in arrays]
    _, got = gj.jvp(case.fn, tuple(gj.tensor(a) for a in arrays),
                    tuple(gj.tensor(t) for t in tangents))
    plus = case.ref(*[a + EPS * t for a, t in zip(arrays, tangents)])
    minus = case.ref(*[a - EPS * t for a, t in zip(arrays, tangents)])
    return _rel([np.asarray(got)], [(plus - minus) / (2 * EPS)])


def main():
    print(f"{'case':28s} {'VJP rel. err':>14s} {'JVP rel. err':>14s}")
    for case in CASES:
        if case.grad:
            print(f"{case.name:28s} {vjp_error(case):14.2e} {jvp_error(case):14.2e}")


if __name__ == "__main__":
    main()
