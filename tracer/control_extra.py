"""More structured control flow, as jax.lax spells it: switch, map, associative_scan, and
scan / fori_loop with `unroll=`. Each is built on cond / scan (tracer/control.py) and plain
array ops, so it is native code, differentiable in both modes and batched by vmap.

- switch(index, branches, *operands): the index is clamped into range (as JAX does) and
  selects its branch through a balanced tree of conds (log2(n) native branches).
- map(f, xs): a scan with no carry; batch_size maps f with vmap over batches.
- associative_scan(fn, elems): the parallel prefix of JAX (Blelloch's odd/even recursion),
  O(log n) steps of whole-array ops; no loop at all.
- scan(..., unroll=k): the body is repeated k times per iteration of a native loop of
  length // k steps (and the remainder in a second loop); unroll=True unrolls completely.
"""
from __future__ import annotations

import numpy as np

from tracer import control, record
from tracer.ops.operands import user_error
from tracer.ops.shape import cat, stack
from tracer.pytree import tree_flatten, tree_unflatten
from tracer.staging import as_tensor
from tracer.tensor import Tensor
from tracer.vmap import vmap

__all__ = ["switch", "map", "associative_scan", "scan", "fori_loop"]


# ---- switch --------------------------------------------------------------------------------

def switch(index, branches, *operands):
    """branches[clamp(index, 0, len(branches) - 1)](*operands) (jax.lax.switch)."""
    branches = list(branches)
    if not branches:
        raise user_error(ValueError, "Empty branch sequence")
    n = len(branches)
    if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
        return branches[min(max(int(index), 0), n - 1)](*operands)
    i = as_tensor(index)
    if i._expr.type.shape != () or i._expr.type.dtype not in ("i32", "i64"):
        raise user_error(TypeError, f"switch: index must be a scalar integer, got "
                                    f"{i._expr.type}")
    i = record.apply("convert", i, dtype="i32") if i._expr.type.dtype != "i32" else i
    if n == 1:
        return branches[0](*operands)
    return _tree_of_conds(i, branches, 0, n)(*operands)


def _tree_of_conds(i: Tensor, branches, lo: int, hi: int):
    """The branch for indices [lo, hi): below the middle goes left; the ends take every
    index beyond them, which is the clamp."""
    if hi - lo == 1:
        return branches[lo]
    mid = (lo + hi) // 2
    left, right = _tree_of_conds(i, branches, lo, mid), _tree_of_conds(i, branches, mid, hi)
    bound = record.apply("constant", value=mid, dtype="i32", shape=())
    return lambda *ops: control.cond(record.apply("lt", i, bound), left, right, *ops)


# ---- map -----------------------------------------------------------------------------------

def map(f, xs, *, batch_size: int | None = None):    # noqa: A001  jax.lax.map's name
    """[f(x) for x in xs] along the leading axis, stacked (jax.lax.map): a native loop; with
    batch_size, f is vmapped over batches of that many elements (the rest in one batch)."""
    if batch_size is None:
        return control.scan(lambda carry, x: (carry, f(x)), (), xs)[1]
    leaves, tree = tree_flatten(xs)
    n = _length(leaves, None, "map")
    full = n // batch_size * batch_size
    parts = []
    if full:
        head = tree_unflatten(tree, [as_tensor(x)[:full].reshape(n // batch_size, batch_size,
                                                                 *as_tensor(x).shape[1:])
                                     for x in leaves])
        ys = control.scan(lambda carry, x: (carry, vmap(f)(x)), (), head)[1]
        parts.append(_tree_apply(lambda y: y.reshape(full, *y.shape[2:]), ys))
    if n > full:
        parts.append(vmap(f)(tree_unflatten(tree, [as_tensor(x)[full:] for x in leaves])))
    return parts[0] if len(parts) == 1 else _concat_trees(parts)


def _tree_apply(g, tree):
    leaves, treedef = tree_flatten(tree)
    return tree_unflatten(treedef, [g(x) for x in leaves])


def _concat_trees(parts):
    flat = [tree_flatten(p) for p in parts]
    return tree_unflatten(flat[0][1], [cat(list(xs), 0) for xs in zip(*(f[0] for f in flat))])


def _length(leaves, length, what: str) -> int:
    sizes = {as_tensor(x).shape[0] for x in leaves if as_tensor(x).ndim}
    if length is not None:
        sizes.add(int(length))
    if len(sizes) != 1:
        raise user_error(ValueError, f"{what}: needs xs sharing one leading axis length (or "
                                     f"length=), got lengths {sorted(sizes)}")
    return sizes.pop()


# ---- scan and fori_loop with unroll --------------------------------------------------------

def scan(f, init, xs=None, length: int | None = None, reverse: bool = False, unroll=1):
    """jax.lax.scan (see tracer.control.scan); unroll=k runs k body steps per loop trip,
    unroll=True all of them (no loop). The results do not depend on unroll."""
    if isinstance(unroll, bool) or unroll in (None, 1):
        k = None if unroll is True else 1
    elif isinstance(unroll, (int, np.integer)) and unroll >= 1:
        k = int(unroll)
    else:
        raise user_error(ValueError, f"scan: unroll must be a positive int or a bool, got "
                                     f"{unroll!r}")
    if k == 1:
        return control.scan(f, init, xs, length=length, reverse=reverse)
    leaves, xtree = tree_flatten(xs)
    n = _length(leaves, length, "scan") if (leaves or length is not None) else None
    if not n:
        return control.scan(f, init, xs, length=length, reverse=reverse)
    k = n if k is None else min(k, n)
    full = n // k * k
    ranges = [(0, full, True), (full, n, False)]
    if reverse:               # iterate from the end: the blocks cover the top, the rest is last
        ranges = [(n - full, n, True), (0, n - full, False)]
    carry, pieces = init, {}
    for lo, hi, blocked in ranges:
        if hi == lo:
            continue
        part = [as_tensor(x)[lo:hi] for x in leaves]
        if blocked:
            carry, ys = _blocked_scan(f, carry, part, xtree, (hi - lo) // k, k, reverse)
        else:
            carry, ys = control.scan(f, carry, tree_unflatten(xtree, part) if leaves else None,
                                     length=hi - lo, reverse=reverse)
        pieces[lo] = ys
    ordered = [pieces[lo] for lo in sorted(pieces)]
    return carry, (ordered[0] if len(ordered) == 1 else _concat_trees(ordered))


def _blocked_scan(f, init, leaves, xtree, trips: int, k: int, reverse: bool):
    """A scan of `trips` steps whose body applies f to k consecutive elements."""
    blocks = [x.reshape(trips, k, *x.shape[1:]) for x in leaves]

    def body(carry, block):
        ys = [None] * k
        for j in (range(k - 1, -1, -1) if reverse else range(k)):
            x = tree_unflatten(xtree, [b[j] for b in block]) if leaves else None
            carry, ys[j] = f(carry, x)
        y_leaves, ytree = tree_flatten(ys[0])
        stacked = [stack([tree_flatten(y)[0][m] for y in ys], 0) for m in range(len(y_leaves))]
        return carry, tree_unflatten(ytree, stacked)
    if trips == 1:                 # unrolled completely: no loop at all
        return body(init, leaves)
    carry, ys = control.scan(body, init, blocks if leaves else None,
                             length=trips, reverse=reverse)
    return carry, _tree_apply(lambda y: y.reshape(trips * k, *y.shape[2:]), ys)


def fori_loop(lower, upper, body_fun, init_val, *, unroll=None):
    """jax.lax.fori_loop (see tracer.control.fori_loop); unroll needs static bounds, as in
    JAX, and unrolls the scan it becomes."""
    if unroll is None or unroll is False or unroll == 1:
        return control.fori_loop(lower, upper, body_fun, init_val)
    static = all(isinstance(b, (int, np.integer)) and not isinstance(b, bool)
                 for b in (lower, upper))
    if not static:
        raise user_error(ValueError, "Can only use `unroll` in `fori_loop` if the loop bounds "
                                     "are statically known.")
    lo, hi = int(lower), int(upper)
    if hi <= lo:
        return init_val
    index = record.apply("add", record.apply("iota", dtype="i32", shape=(hi - lo,), dim=0),
                         record.apply("constant", value=lo, dtype="i32", shape=(hi - lo,)))
    return scan(lambda val, i: (body_fun(i, val), None), init_val, index, unroll=unroll)[0]


# ---- associative_scan ----------------------------------------------------------------------

def associative_scan(fn, elems, reverse: bool = False, axis: int = 0):
    """The inclusive prefix combination of elems along axis under the associative fn
    (jax.lax.associative_scan): out[i] = fn(...fn(fn(e[0], e[1]), e[2])..., e[i])."""
    leaves, tree = tree_flatten(elems)
    if not leaves:
        raise user_error(ValueError, "associative_scan: elems has no arrays")
    xs = [as_tensor(x) for x in leaves]
    ndim = xs[0].ndim
    if not -ndim <= axis < max(ndim, 1) or ndim == 0:
        raise user_error(ValueError, f"associative_scan: axis {axis} out of range for rank "
                                     f"{ndim}")
    axis %= ndim
    if len({x.shape[axis] for x in xs}) != 1:
        raise user_error(ValueError, "associative_scan: elems must share the scanned axis "
                                     f"length, got {[x.shape[axis] for x in xs]}")

    def combine(a, b):
        out = fn(tree_unflatten(tree, a), tree_unflatten(tree, b))
        return [as_tensor(o) for o in tree_flatten(out)[0]]

    if reverse:
        xs = [_flip(x, axis) for x in xs]
    out = _prefix(combine, xs, axis)
    if reverse:
        out = [_flip(x, axis) for x in out]
    return tree_unflatten(tree, out)


def _sl(x: Tensor, axis: int, start: int, stop: int | None, step: int = 1) -> Tensor:
    stop = x.shape[axis] if stop is None else stop
    lo, hi, st = [0] * x.ndim, list(x.shape), [1] * x.ndim
    lo[axis], hi[axis], st[axis] = start, max(stop, start), step
    return record.apply("slice", x, start=tuple(lo), limit=tuple(hi), stride=tuple(st))


def _prefix(combine, xs: list[Tensor], axis: int) -> list[Tensor]:
    """JAX's recursion: combine pairs, scan the half, fill in the even positions."""
    n = xs[0].shape[axis]
    if n < 2:
        return xs
    reduced = combine([_sl(x, axis, 0, n - 1, 2) for x in xs], [_sl(x, axis, 1, None, 2)
                                                               for x in xs])
    odd = _prefix(combine, reduced, axis)
    if n % 2 == 0:
        even = combine([_sl(o, axis, 0, o.shape[axis] - 1) for o in odd],
                       [_sl(x, axis, 2, None, 2) for x in xs])
    else:
        even = combine(odd, [_sl(x, axis, 2, None, 2) for x in xs])
    even = [cat([_sl(x, axis, 0, 1), e], axis) for x, e in zip(xs, even)]
    return [_interleave(e, o, axis) for e, o in zip(even, odd)]


def _interleave(a: Tensor, b: Tensor, axis: int) -> Tensor:
    """out[0::2] = a, out[1::2] = b along axis (len(a) is len(b) or len(b) + 1)."""
    na, nb = a.shape[axis], b.shape[axis]
    zeros = [0] * a.ndim

    def spread(x, lo, hi):
        lo_, hi_, mid = list(zeros), list(zeros), list(zeros)
        lo_[axis], hi_[axis], mid[axis] = lo, hi, 1
        return record.apply("pad", x, lo=tuple(lo_), hi=tuple(hi_), interior=tuple(mid))
    return record.apply("add", spread(a, 0, 1 if na == nb else 0),
                        spread(b, 1, 1 if na > nb else 0))


def _flip(x: Tensor, axis: int) -> Tensor:
    n = x.shape[axis]
    idx = record.apply("sub", record.apply("constant", value=n - 1, dtype="i32", shape=(n,)),
                       record.apply("iota", dtype="i32", shape=(n,), dim=0))
    return record.apply("gather", x, idx, axis=axis)
