"""x.at[idx].set(v) and friends: JAX's functional indexed update (a new array; x unchanged).

`idx` is anything x[idx] accepts. The updated positions are found by indexing an iota of
flat positions with idx, and the values are scattered there, so every update is
differentiable (in x and v) and works under jit and vmap. With basic indexing (ints and
slices) the positions are distinct and each update is one scatter; with index arrays they
may repeat: `add` accumulates repeats (one scatter_add), `set` keeps the last (as NumPy's
x[idx] = v), `multiply`/`min`/`max` combine them all, through a positions x updates grid
(O(x.size * updates) work).
"""
from __future__ import annotations

import numbers

import numpy as np

from tracer.ops import compare as cmp
from tracer.ops import elementwise as ew
from tracer.ops.operands import broadcast, cast, constant, dtype_of, to_tensor, user_error
from tracer.ops.reduce import prod
from tracer.record import apply
from tracer.tensor import Tensor


def _basic(idx) -> bool:
    """True when idx has no index arrays, so the positions it selects are distinct."""
    parts = idx if isinstance(idx, tuple) else (idx,)
    return all(p is None or p is Ellipsis or isinstance(p, slice) or (
        isinstance(p, (numbers.Integral, np.integer)) and not isinstance(p, bool))
        for p in parts)


def _extreme(dt: str, low: bool):
    if dt in ("f32", "f64"):
        return -np.inf if low else np.inf
    info = np.iinfo(np.int32 if dt == "i32" else np.int64)
    return int(info.min if low else info.max)


class _Ref:
    """x.at[idx]: the update methods."""

    def __init__(self, x: Tensor, idx):
        self.x, self.idx = x, idx

    def get(self, **options) -> Tensor:
        """x[idx]."""
        _check(options)
        return self.x[self.idx]

    def _setup(self, v, options):
        _check(options)
        x = self.x
        n = x.numel()
        flat = apply("reshape", apply("iota", dtype="i64", shape=(n,), dim=0), shape=x.shape)
        pos = to_tensor(flat[self.idx])
        vals = broadcast(constant(v, dtype_of(x)) if isinstance(v, numbers.Number)
                         else cast(to_tensor(v), dtype_of(x)), tuple(pos.shape))
        m = pos.numel()
        unique = _basic(self.idx) or options.get("unique_indices", False)
        return (apply("reshape", x, shape=(n,)), apply("reshape", pos, shape=(m,)),
                apply("reshape", vals, shape=(m,)), unique)

    def _scatter(self, xf, pos, vals) -> Tensor:
        zeros = constant(0, dtype_of(vals), xf.shape)
        return apply("scatter_add", zeros, pos, vals, axis=0)

    def _hit(self, xf, pos) -> Tensor:
        ones = constant(1, "i32", pos.shape)
        return cmp.gt(apply("scatter_add", constant(0, "i32", xf.shape), pos, ones, axis=0), 0)

    def _grid(self, xf, pos) -> Tensor:
        """[p, j]: update j writes position p."""
        shape = (xf.shape[0], pos.shape[0])
        return cmp.eq(apply("broadcast_in_dim", pos, shape=shape, dims=(1,)),
                      apply("iota", dtype="i64", shape=shape, dim=0))

    def _done(self, flat: Tensor) -> Tensor:
        return apply("reshape", flat, shape=tuple(self.x.shape))

    def set(self, v, **options) -> Tensor:
        """x with x[idx] = v (of repeated positions, the last update wins)."""
        xf, pos, vals, unique = self._setup(v, options)
        if unique:
            return self._done(ew.where(self._hit(xf, pos), self._scatter(xf, pos, vals), xf))
        grid = self._grid(xf, pos)
        order = apply("iota", dtype="i64", shape=tuple(grid.shape), dim=1)
        last = apply("reduce_max", ew.where(grid, order, constant(-1, "i64", grid.shape)),
                     axes=(1,))
        picked = apply("gather", vals, ew.clamp(last, 0), axis=0)
        return self._done(ew.where(cmp.ge(last, 0), picked, xf))

    def add(self, v, **options) -> Tensor:
        """x with v added at idx (repeated positions accumulate)."""
        xf, pos, vals, _ = self._setup(v, options)
        return self._done(ew.add(xf, self._scatter(xf, pos, vals)))

    def subtract(self, v, **options) -> Tensor:
        return self.add(ew.neg(to_tensor(v)), **options)

    def multiply(self, v, **options) -> Tensor:
        """x with x[idx] *= v (repeated positions multiply in turn)."""
        xf, pos, vals, unique = self._setup(v, options)
        if unique:
            hit = self._hit(xf, pos)
            return self._done(ew.where(hit, ew.mul(xf, self._scatter(xf, pos, vals)), xf))
        grid = self._grid(xf, pos)
        factors = ew.where(grid, broadcast(vals, tuple(grid.shape)),
                           constant(1, dtype_of(vals), grid.shape))
        return self._done(ew.mul(xf, prod(factors, 1)))

    mul = multiply

    def divide(self, v, **options) -> Tensor:
        return self.multiply(ew.reciprocal(to_tensor(v)), **options)

    def _extremum(self, v, options, low: bool) -> Tensor:
        xf, pos, vals, unique = self._setup(v, options)
        pick = ew.minimum if low else ew.maximum
        if unique:
            hit = self._hit(xf, pos)
            return self._done(ew.where(hit, pick(xf, self._scatter(xf, pos, vals)), xf))
        grid = self._grid(xf, pos)
        neutral = constant(_extreme(dtype_of(vals), not low), dtype_of(vals), grid.shape)
        chosen = ew.where(grid, broadcast(vals, tuple(grid.shape)), neutral)
        best = apply("reduce_min" if low else "reduce_max", chosen, axes=(1,))
        return self._done(pick(xf, best))

    def min(self, v, **options) -> Tensor:
        """x with x[idx] = minimum(x[idx], v)."""
        return self._extremum(v, options, low=True)

    def max(self, v, **options) -> Tensor:
        """x with x[idx] = maximum(x[idx], v)."""
        return self._extremum(v, options, low=False)


def _check(options):
    unknown = set(options) - {"indices_are_sorted", "unique_indices", "mode"}
    if unknown:
        raise user_error(TypeError, f"unexpected keyword arguments {sorted(unknown)}")
    if options.get("mode") not in (None, "promise_in_bounds"):
        raise user_error(NotImplementedError, f"x.at[...] mode={options['mode']!r} is not "
                                              "implemented in gradjit")


class IndexUpdate:
    """x.at: x.at[idx] gives the update methods (set, get, add, subtract, multiply/mul,
    divide, min, max), each returning a new Tensor."""

    def __init__(self, x: Tensor):
        self.x = x

    def __getitem__(self, idx) -> _Ref:
        return _Ref(self.x, idx)


def at(x) -> IndexUpdate:
    """The `.at` property of a Tensor."""
    return IndexUpdate(to_tensor(x))
