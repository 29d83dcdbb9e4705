"""Random orderings from a key: permutation and choice (as jax.random).

JAX sorts by random 32-bit keys (lax.sort_key_val); gradjit has no sort primitive, so the
order is computed by ranking: element i goes to position #{j: key_j < key_i, or equal and
j < i}, which is a stable sort's. The ranks are one fused n x n comparison, so these cost
O(n^2) time (fine for thousands of elements; a sort would be O(n log n)).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from tracer.ops import compare as cmp
from tracer.ops import elementwise as ew
from tracer.ops.indexing import take_along_dim
from tracer.ops.shape import movedim
from tracer.ops.operands import cast, constant, dtype_of, norm_axis, to_tensor, user_error
from tracer.random.continuous import _shape, gumbel, uniform
from tracer.random.discrete import randint
from tracer.random.keys import random_bits, split
from tracer.record import apply
from tracer.tensor import Tensor

__all__ = ["permutation", "choice"]


def _grid(v: Tensor, axis: int) -> Tensor:
    """v (..., n) broadcast over (..., n, n) along axis (0: v_i on row i, 1: v_j on column j)."""
    lead, n = tuple(v.shape[:-1]), v.shape[-1]
    return apply("broadcast_in_dim", v, shape=lead + (n, n),
                 dims=tuple(range(len(lead))) + (len(lead) + axis,))


def _count(pred: Tensor) -> Tensor:
    return apply("reduce_sum", cast(pred, "i32"), axes=(pred.ndim - 1,))


def order(sort_keys: Tensor, descending: bool = False) -> Tensor:
    """The int32 indices that sort sort_keys along its last axis, stably, as argsort does."""
    shape = tuple(sort_keys.shape) + (sort_keys.shape[-1],)
    mine, other = _grid(sort_keys, 0), _grid(sort_keys, 1)
    rows = apply("iota", dtype="i32", shape=shape, dim=len(shape) - 2)
    cols = apply("iota", dtype="i32", shape=shape, dim=len(shape) - 1)
    ahead = cmp.gt(other, mine) if descending else cmp.lt(other, mine)
    rank = _count(cmp.logical_or(ahead, cmp.logical_and(cmp.eq(other, mine),
                                                        cmp.lt(cols, rows))))
    # position r holds the i whose rank is r
    placed = cmp.eq(_grid(rank, 1), rows)
    return apply("reduce_sum", ew.where(placed, cols, constant(0, "i32", shape)),
                 axes=(len(shape) - 1,))


def _unsigned_order_keys(bits: Tensor) -> Tensor:
    """int32 bits whose signed order is the bits' unsigned order (flip the sign bit)."""
    return apply("bitwise_xor", bits, constant(-(1 << 31), "i32", bits.shape))


def _shuffle(key, x: Tensor, axis: int) -> Tensor:
    """x with each slice along axis shuffled (JAX's _shuffle: rounds of sorting by fresh
    random bits of x's shape, enough rounds for x.size that ties are unlikely)."""
    rounds = math.ceil(3 * math.log(max(1, x.numel())) / math.log(0xFFFFFFFF))
    x = movedim(x, axis, -1)
    for _ in range(rounds):
        keys = split(key)
        key, sub = (apply("reshape", apply("slice", keys, start=(i, 0), limit=(i + 1, 2),
                                           stride=(1, 1)), shape=(2,)) for i in (0, 1))
        bits = _unsigned_order_keys(random_bits(sub, 32, tuple(x.shape)))
        x = take_along_dim(x, order(bits), x.ndim - 1)
    return movedim(x, -1, axis)


def _shuffled_indices(key, n: int) -> Tensor:
    """A random permutation of range(n)."""
    return _shuffle(key, apply("iota", dtype="i32", shape=(n,), dim=0), 0)


def _is_int(x) -> bool:
    return isinstance(x, (numbers.Integral, np.integer)) and not isinstance(x, bool)


def permutation(key, x, axis=0, independent=False) -> Tensor:
    """A shuffled arange(x) for an int x, else x shuffled along axis (jax.random.permutation);
    independent=True shuffles each slice along axis on its own."""
    if _is_int(x):
        return _shuffled_indices(key, int(x))
    t = to_tensor(x)
    if t.ndim == 0:
        raise user_error(TypeError, "permutation of a 0-d array: pass an int or an array")
    ax = norm_axis(axis, t.ndim)
    if independent:
        return _shuffle(key, t, ax)
    return apply("gather", t, _shuffled_indices(key, t.shape[ax]), axis=ax)


def _cumulative(p: Tensor) -> Tensor:
    n = p.shape[0]
    upto = cmp.le(apply("iota", dtype="i32", shape=(n, n), dim=1),
                  apply("iota", dtype="i32", shape=(n, n), dim=0))
    return apply("reduce_sum", ew.where(upto, _grid(p, 1), constant(0, dtype_of(p), (n, n))),
                 axes=(1,))


def _weighted(key, p: Tensor, shape, replace: bool, n_draws: int) -> Tensor:
    """Indices drawn with probabilities p: inverse CDF (replace) or Gumbel top-k (not)."""
    dt = dtype_of(p)
    if replace:
        cum = _cumulative(p)
        total = apply("reshape", apply("slice", cum, start=(cum.shape[0] - 1,),
                                       limit=(cum.shape[0],), stride=(1,)), shape=())
        r = ew.mul(total, ew.sub(1.0, uniform(key, shape, dt)))
        below = cmp.lt(apply("broadcast_in_dim", cum, shape=shape + cum.shape,
                             dims=(len(shape),)),
                       apply("broadcast_in_dim", r, shape=shape + cum.shape,
                             dims=tuple(range(len(shape)))))
        return apply("reduce_sum", cast(below, "i32"), axes=(len(shape),))
    g = ew.add(gumbel(key, p.shape, dt), ew.log(p))
    top = order(g, descending=True)
    return apply("slice", top, start=(0,), limit=(n_draws,), stride=(1,))


def choice(key, a, shape=(), replace=True, p=None, axis=0) -> Tensor:
    """Draws from arange(a) (int a) or from a's slices along axis (jax.random.choice)."""
    shape = _shape(shape)
    arr = None if _is_int(a) else to_tensor(a)
    if arr is not None and arr.ndim == 0:
        raise user_error(ValueError, "choice: a must be an int or an array of rank >= 1")
    ax = 0 if arr is None else norm_axis(axis, arr.ndim)
    n = int(a) if arr is None else arr.shape[ax]
    n_draws = math.prod(shape)
    if n_draws and n == 0:
        raise user_error(ValueError, "a must be greater than 0 unless no samples are taken")
    if not replace and n_draws > n:
        raise user_error(ValueError, "Cannot take a larger sample than population when "
                                     "'replace=False'")
    if p is None:
        if replace:
            ind = randint(key, shape, 0, n)
        else:
            ind = apply("slice", _shuffled_indices(key, n), start=(0,), limit=(n_draws,),
                        stride=(1,))
    else:
        pt = to_tensor(p)
        if tuple(pt.shape) != (n,):
            raise user_error(ValueError, "p must be None or match the shape of a")
        pt = cast(pt, dtype_of(pt) if dtype_of(pt) in ("f32", "f64") else "f32")
        ind = _weighted(key, pt, shape, replace, n_draws)
    ind = apply("reshape", ind, shape=shape)
    return ind if arr is None else apply("gather", arr, ind, axis=ax)
