"""Sample rows of the linear-algebra primitives (ir/linalg): derivative cases on
well-conditioned inputs (built in the case: x x^T + 3I for cholesky, x + x^T for eigh,
x + 4I for the solves) and compiled cases over single and batched matrices."""
from __future__ import annotations

import numpy as np

from tests.prim_samples.cases import FLOATS, CompiledCase, F, Row, T, grad_cases, make_fn

ROWS: dict[str, Row] = {}


def _eye(b, x, scale):
    n = x.shape[-1]
    return b.broadcast_to(b.const((np.eye(n) * scale).tolist(), x.dtype, (n, n)), x.shape)


def _mT(b, x):
    k = x.ndim
    return b.transpose(x, perm=tuple(range(k - 2)) + (k - 1, k - 2))


def _gram(b, x):
    """x x^T + 3I: symmetric positive-definite."""
    nb = x.ndim - 2
    xx = b.dot_general(x, x, contract=((nb + 1,), (nb + 1,)),
                       batch=(tuple(range(nb)), tuple(range(nb))))
    return b.add(xx, _eye(b, x, 3.0))


def _sym(b, x):
    return b.add(x, _mT(b, x))


def _shifted(b, x):
    return b.add(x, _eye(b, x, 4.0))


def _cases(prim, shapes, build):
    return [c for s in shapes
            for c in grad_cases(prim, "x".join(map(str, s)), build, F(*s))]


def _separated(rng, types):
    """Matrices U diag(s) V^T with singular values 1, 2, 3, ...: singular vectors that are
    well-conditioned, so f32 results agree to f32 precision whichever LAPACK path ran."""
    out = []
    for t in types:
        m, n = t.shape[-2:]
        k = min(m, n)
        u = np.linalg.qr(rng.standard_normal(t.shape[:-2] + (m, k)))[0]
        v = np.linalg.qr(rng.standard_normal(t.shape[:-2] + (n, k)))[0]
        s = np.arange(1.0, k + 1)
        out.append(((u * s) @ np.swapaxes(v, -1, -2)).astype(t.np_dtype))
    return out


def _compiled(prim, shapes, prepare=None, sample=None, dtypes=FLOATS, **params):
    """One Function applying prim to a matrix of each shape (after prepare(b, x))."""
    def build(dt):
        def body(b, *xs):
            out = []
            for x in xs:
                r = b.emit(prim, prepare(b, x) if prepare else x, **params)
                out.extend(r if isinstance(r, tuple) else (r,))
            return out
        return make_fn(prim, [T(dt, s) for s in shapes], body)
    return CompiledCase(build, dtypes, low=-1.0, high=1.0, sample=sample)


SQUARE = [(3, 3), (2, 4, 4), (1, 1)]
ANY = [(4, 3), (3, 4), (3, 3), (2, 2, 5, 3), (1, 1)]

ROWS["cholesky"] = Row(_cases("cholesky", [(3, 3), (2, 3, 3)],
                              lambda b, x: b.cholesky(_gram(b, x))),
                       [_compiled("cholesky", SQUARE + [(4, 4)], _gram)])
ROWS["lu"] = Row(_cases("lu", [(3, 3), (2, 4, 4)], lambda b, x: b.lu(_shifted(b, x))),
                 [_compiled("lu", SQUARE + [(6, 6)], _shifted)])
ROWS["qr"] = Row(_cases("qr", [(4, 3), (3, 3), (2, 4), (2, 4, 3)], lambda b, x: b.qr(x)),
                 [_compiled("qr", ANY)])
ROWS["eigh"] = Row(_cases("eigh", [(3, 3), (2, 4, 4)], lambda b, x: b.eigh(_sym(b, x))),
                   [_compiled("eigh", SQUARE, _sym)])
# NOTE: compiled in f64 only: in f32 a singular vector's sign can differ between NumPy's
# call of gesdd and ours (seen on one matrix of 12); tests/linalg compares f32 up to sign
ROWS["svd"] = Row(_cases("svd", [(4, 3), (3, 4), (3, 3), (2, 3, 2)], lambda b, x: b.svd(x)),
                  [_compiled("svd", ANY, sample=_separated, dtypes=("f64",))])


def _tri_grad(lower, transpose, unit):
    label = f"{'lower' if lower else 'upper'}{'-T' if transpose else ''}{'-unit' if unit else ''}"
    return grad_cases("triangular_solve", label, lambda b, a, r: b.triangular_solve(
        _shifted(b, a), r, lower=lower, transpose_a=transpose, unit_diagonal=unit),
        F(2, 3, 3), F(2, 3, 2))


def _tri_compiled(dt):
    flags = [(lo, tr, un) for lo in (True, False) for tr in (False, True) for un in (False, True)]
    types = [t for _ in flags for t in (T(dt, (2, 4, 4)), T(dt, (2, 4, 3)))]

    def body(b, *xs):
        return [b.triangular_solve(_shifted(b, a), r, lower=lo, transpose_a=tr, unit_diagonal=un)
                for (lo, tr, un), a, r in zip(flags, xs[::2], xs[1::2])]
    return make_fn("triangular_solve", types, body)


ROWS["triangular_solve"] = Row(
    [c for lo in (True, False) for tr in (False, True) for un in (False, True)
     for c in _tri_grad(lo, tr, un)],
    [CompiledCase(_tri_compiled, FLOATS, low=-1.0, high=1.0)])
