"""Shape rules and traits of the linear-algebra primitives (registered by ir/primitives.py).

All take float32/float64 operands with leading batch axes ([..., m, n]). On failure (a
matrix that is not positive-definite, a zero pivot of a triangular solve, a non-finite
input) the native code and the interpreter fill the results with NaN, as JAX does; the
imperative front checks and raises PyTorch's errors (tracer/linalg).

    cholesky(a)                      -> l [..., n, n]   lower, a = l l^T (a's lower triangle read)
    triangular_solve(a, b; lower, transpose_a, unit_diagonal)
                                     -> x [..., n, k]   op(a) x = b, op(a) = a or a^T
    lu(a)                            -> (lu [..., n, n], perm i64 [..., n], sign [...])
                                        a[perm] = L U: L unit lower and U upper, packed in lu;
                                        sign = det of the permutation (+1 or -1)
    qr(a)                            -> (q [..., m, k], r [..., k, n]), k = min(m, n), reduced
    eigh(a)                          -> (w [..., n], v [..., n, n]) ascending; a's lower triangle
    svd(a)                           -> (u [..., m, k], s [..., k], vh [..., k, n]) reduced
"""
from __future__ import annotations

from ir.core import ShapeError, TensorType, is_float


def _check(cond: bool, msg: str):
    if not cond:
        raise ShapeError(msg)


def _matrix(name: str, a: TensorType, square: bool = False):
    _check(is_float(a.dtype), f"{name} needs a floating operand, got {a}")
    _check(a.ndim >= 2, f"{name} needs a matrix (rank >= 2), got {a}")
    if square:
        _check(a.shape[-1] == a.shape[-2], f"{name} needs square matrices, got {a}")
    return a.shape[:-2], a.shape[-2], a.shape[-1]


def _cholesky(a):
    _matrix("cholesky", a, square=True)
    return a


def _triangular_solve(a, b, *, lower, transpose_a, unit_diagonal):
    batch, n, _ = _matrix("triangular_solve", a, square=True)
    _matrix("triangular_solve", b)
    for flag in (lower, transpose_a, unit_diagonal):
        _check(isinstance(flag, bool), f"triangular_solve: flags must be bools, got {flag!r}")
    _check(b.dtype == a.dtype and b.shape[:-2] == batch and b.shape[-2] == n,
           f"triangular_solve: right-hand side {b} does not fit {a}")
    return b


def _lu(a):
    batch, n, _ = _matrix("lu", a, square=True)
    return a, TensorType("i64", batch + (n,)), a.with_shape(batch)


def _qr(a):
    batch, m, n = _matrix("qr", a)
    k = min(m, n)
    return a.with_shape(batch + (m, k)), a.with_shape(batch + (k, n))


def _eigh(a):
    batch, n, _ = _matrix("eigh", a, square=True)
    return a.with_shape(batch + (n,)), a


def _svd(a):
    batch, m, n = _matrix("svd", a)
    k = min(m, n)
    return (a.with_shape(batch + (m, k)), a.with_shape(batch + (k,)),
            a.with_shape(batch + (k, n)))


# name -> shape rule; all are kernels of their own (a LAPACK call per matrix)
SHAPE_RULES = {"cholesky": _cholesky, "triangular_solve": _triangular_solve, "lu": _lu,
               "qr": _qr, "eigh": _eigh, "svd": _svd}
TRAITS = {"fusion": "kernel"}
