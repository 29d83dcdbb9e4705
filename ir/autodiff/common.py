"""Helpers shared by the VJP and JVP rule tables: None-aware arithmetic on derivative values
(None stands for a symbolic zero and is never materialised) and the partial derivatives that
both modes need (pow, max/min tie weights, the arg-extremum mask of reduce_max/min).
"""
from __future__ import annotations

from ir.builder import Builder
from ir.core import TensorType, Value, dot_free_axes


def zeros(b: Builder, t: TensorType) -> Value:
    """A materialised zero of type t: a scalar constant 0, broadcast when t is not a scalar."""
    zero = b.const(0, t.dtype)
    return zero if t.shape == () else b.broadcast_in_dim(zero, shape=t.shape, dims=())


def plus(b: Builder, x: Value | None, y: Value | None) -> Value | None:
    """x + y where None is zero."""
    if x is None:
        return y
    return x if y is None else b.add(x, y)


def times(b: Builder, t: Value | None, d: Value) -> Value | None:
    """t * d where None is zero."""
    return None if t is None else b.mul(t, d)


def kept_axes(x: Value, axes) -> tuple[int, ...]:
    """The axes of x that a reduction over `axes` keeps, in order."""
    return tuple(a for a in range(x.ndim) if a not in axes)


def inverse_perm(perm) -> tuple[int, ...]:
    """The permutation that undoes transpose(perm)."""
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


# ---- partial derivatives ---------------------------------------------------------------

def pow_dx(b: Builder, out: Value, x: Value, y: Value) -> Value:
    """d(x**y)/dx = y * x**(y-1), defined as 0 where y == 0 (PyTorch, JAX) so 0**0 has no nan."""
    one, zero = b.full_like(1, x), b.full_like(0, x)
    y_is_zero = b.eq(y, zero)
    exponent = b.select(y_is_zero, one, b.sub(y, one))
    return b.select(y_is_zero, zero, b.mul(y, b.pow(x, exponent)))


def pow_dy(b: Builder, out: Value, x: Value, y: Value) -> Value:
    """d(x**y)/dy = log(x) * x**y, defined as 0 where x == 0 and y >= 0 (PyTorch's rule)."""
    zero = b.full_like(0, x)
    at_zero = b.logical_and(b.eq(x, zero), b.ge(y, zero))
    return b.select(at_zero, zero, b.mul(b.log(x), out))


def extremum_weights(b: Builder, x: Value, y: Value, wins: str) -> tuple[Value, Value]:
    """The shares of max(x, y) (wins='gt') or min(x, y) (wins='lt') that go to x and to y.

    0.5 each at ties (torch.maximum splits the gradient evenly); otherwise 0 for the operand
    that strictly loses and 1 for the other. Unordered (NaN) operands lose to nothing, so
    each gets the whole gradient, as PyTorch's masked_fill(self < other, 0) gives.
    """
    loses = "lt" if wins == "gt" else "gt"
    half, zero, one = b.full_like(0.5, x), b.full_like(0, x), b.full_like(1, x)
    tie = b.eq(x, y)
    wx = b.select(tie, half, b.select(b.emit(loses, x, y), zero, one))
    wy = b.select(tie, half, b.select(b.emit(wins, x, y), zero, one))
    return wx, wy


def extremum_mask(b: Builder, out: Value, x: Value, axes) -> tuple[Value, Value]:
    """(mask, count) for reduce_max/min: mask is 1 where x equals the reduced value, count
    the number of such positions per output element (PyTorch's amax splits ties evenly)."""
    dims = kept_axes(x, axes)
    hit = b.eq(x, b.broadcast_in_dim(out, shape=x.shape, dims=dims))
    mask = b.convert(hit, dtype=x.dtype)
    return mask, b.reduce_sum(mask, axes=tuple(axes))


def dot_transpose(b: Builder, g: Value, other: Value, mine: dict, theirs: dict,
                  g_free_of_other: tuple) -> Value:
    """The cotangent of one dot_general operand ("mine") given g and the other operand.

    mine/theirs hold the operand's 'batch', 'contract' and 'free' axis lists. g's axes are
    (batch, x free, y free); contracting g's free axes of the other operand against the
    other's free axes gives (batch, my free, other's contracting axes in the other's order),
    which a transpose puts back into my axis order.
    """
    nb = len(mine["batch"])
    r = b.dot_general(g, other, contract=(g_free_of_other, theirs["free"]),
                      batch=(tuple(range(nb)), theirs["batch"]))
    paired = [mine["contract"][theirs["contract"].index(a)] for a in sorted(theirs["contract"])]
    order = list(mine["batch"]) + list(mine["free"]) + paired   # my axis at each axis of r
    perm = inverse_perm(order)
    return r if perm == tuple(range(len(perm))) else b.transpose(r, perm=perm)


def dot_axes(x: Value, contract, batch) -> dict:
    """The batch, contract and free axes of one dot_general operand."""
    contract, batch = tuple(contract), tuple(batch)
    return {"batch": batch, "contract": contract,
            "free": dot_free_axes(x.ndim, contract, batch)}
