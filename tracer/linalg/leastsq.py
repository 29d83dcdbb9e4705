"""pinv and lstsq through the svd primitive (minimum-norm solutions, any rank)."""
from __future__ import annotations

from collections import namedtuple

from tracer.linalg.common import batch_broadcast, matrix_arg, mm, mT, scale_cols
from tracer.ops.operands import cast, constant, dtype_of, result_type, to_tensor, user_error
from tracer.ops.compare import gt
from tracer.ops.elementwise import div, maximum, mul, sub, where
from tracer.ops.reduce import amax, sum as sum_
from tracer.record import apply, torch_op

__all__ = ["pinv", "lstsq"]

LstsqResult = namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])
_EPS = {"f32": 1.1920929e-07, "f64": 2.220446049250313e-16}


def _kept(s, atol, rtol, m, n):
    """(mask of the singular values above the cutoff, the cutoff); PyTorch's defaults: rtol =
    eps * max(m, n) when atol is not given."""
    dtype = dtype_of(s)
    if rtol is None:
        rtol = _EPS[dtype] * max(m, n) if atol is None or atol == 0 else 0.0
    smax = amax(s, -1, keepdim=True) if s.shape[-1] else constant(0, dtype, ())
    cutoff = mul(smax, float(rtol))
    if atol is not None:
        cutoff = maximum(cutoff, cast(to_tensor(atol), dtype))
    return gt(s, cutoff)


def _pinv_parts(a, atol, rtol):
    u, s, vh = apply("svd", a)
    keep = _kept(s, atol, rtol, *a.shape[-2:])
    safe = where(keep, s, constant(1, dtype_of(s), ()))
    s_inv = where(keep, div(1.0, safe), constant(0, dtype_of(s), ()))
    return u, s, vh, s_inv, keep


@torch_op("LinalgPinv", saves=(0, "out"))
def pinv(A, *, atol=None, rtol=None, hermitian: bool = False, rcond=None, out=None):
    """The Moore-Penrose pseudo-inverse V diag(1/s) U^T, singular values at or below
    max(atol, rtol * s_max) dropped (rcond is the older name of rtol)."""
    a = matrix_arg(A, "pinv")
    u, _, vh, s_inv, _ = _pinv_parts(a, atol, rcond if rtol is None else rtol)
    return mm(scale_cols(mT(vh), s_inv), mT(u))


@torch_op("LinalgLstsq", saves=(0, 1, "out"))
def lstsq(A, B, rcond=None, *, driver=None):
    """The minimum-norm least-squares solution of A X = B, through the SVD (what PyTorch's
    driver='gelsd', NumPy and JAX compute): (solution, residuals, rank, singular_values).
    residuals are the squared column residuals when m > n and A has full rank, else empty
    (PyTorch's default driver 'gelsy' returns them, and singular_values, empty)."""
    a = matrix_arg(A, "lstsq")
    b = to_tensor(B)
    dtype = result_type(a, b)
    a, b = cast(a, dtype), cast(b, dtype)
    vector = b.ndim == a.ndim - 1
    if vector:
        b = apply("reshape", b, shape=tuple(b.shape) + (1,))
    m, n = a.shape[-2:]
    if b.shape[-2] != m:
        raise user_error(RuntimeError, f"torch.linalg.lstsq: input.size(-2) should match "
                         f"other.size(-2). Got {m} and {b.shape[-2]}")
    a, b = batch_broadcast(a, b)
    u, s, vh, s_inv, keep = _pinv_parts(a, None, rcond)
    x = mm(scale_cols(mT(vh), s_inv), mm(mT(u), b))
    rank = sum_(keep, -1)
    residuals = constant(0, dtype, (0,))
    if m > n and _full_rank(rank, n):
        r = sub(mm(a, x), b)
        residuals = sum_(mul(r, r), -2)
        if vector:
            residuals = apply("reshape", residuals, shape=tuple(residuals.shape[:-1]))
    if vector:
        x = apply("reshape", x, shape=tuple(x.shape[:-1]))
    return LstsqResult(x, residuals, rank, s)


def _full_rank(rank, n) -> bool:
    """Whether every matrix has rank n: decided from the values in the imperative front,
    assumed under a trace (the residuals' shape cannot depend on traced values)."""
    if rank._expr.symbolic:
        return True
    return bool((rank._realize() == n).all())
