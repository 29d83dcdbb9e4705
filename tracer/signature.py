"""Call signatures of staged functions: array leaves (traced) and static values (the key).

A call's arguments are split into array leaves, traced as symbolic parameters, and static
values (Python scalars, other hashables), which are part of the compile-cache key together
with each leaf's dtype and shape (tracer/staging.py).
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

import numpy as np

from ir.core import DTYPES, dtype_of_numpy
from tracer.pytree import TreeDef, leaf_paths, tree_flatten, tree_unflatten
from tracer.tensor import Tensor


def is_array_leaf(x) -> bool:
    return isinstance(x, (Tensor, np.ndarray, np.generic))


def _static_key(x):
    try:
        hash(x)
    except TypeError:
        raise TypeError(f"non-array argument {x!r} of type {type(x).__name__} is static (part "
                        "of the compile-cache key) and must be hashable; pass arrays as "
                        "NumPy arrays or Tensors") from None
    return (type(x), _exact(x))


def _exact(x):
    """x with floats keyed by their bits: -0.0 and 0.0 differ, and nan equals itself."""
    if type(x) is float:
        return ("float", x.hex())
    if type(x) in (tuple, list):
        return (type(x).__name__,) + tuple(_exact(e) for e in x)
    return x


# ---- signatures --------------------------------------------------------------------------

@dataclass
class Signature:
    """A call's arguments split into array leaves (traced) and static values (the key)."""
    key: tuple
    tree: TreeDef                    # of (dynamic positional args, kwargs)
    leaves: list                     # every leaf of that tree
    static: dict                     # static positional args by position
    owners: list                     # per leaf: its positional argument's index, or None

    @property
    def arrays(self) -> list:
        return [x for x in self.leaves if is_array_leaf(x)]

    def rebuild(self, leaves) -> tuple[tuple, dict]:
        """(args, kwargs) with the given leaves in place of this signature's leaves."""
        dyn, kwargs = tree_unflatten(self.tree, leaves)
        args = list(dyn)
        for i in sorted(self.static):
            args.insert(i, self.static[i])
        return tuple(args), kwargs


def normalize_argnums(argnums, nargs: int, what: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    out = []
    for i in nums:
        if not isinstance(i, int) or not -nargs <= i < nargs:
            raise ValueError(f"{what} {i!r} is out of range for {nargs} positional arguments")
        out.append(i % nargs)
    return tuple(out)


FAST_LEAVES = (np.ndarray, Tensor, np.float32, np.float64, np.int32, np.int64, np.bool_)
_NP_NAMES = {dt: name for name, dt in DTYPES.items()}


@functools.lru_cache(maxsize=64)
def _flat_tree(n: int) -> TreeDef:
    """The tree of (n array arguments, no kwargs)."""
    return tree_flatten((tuple(range(n)), {}))[1]


def _leaf_key(x) -> tuple:
    """(dtype name, shape) of an array leaf: its part of the cache key."""
    if isinstance(x, Tensor):
        t = x._expr.type
        return (t.dtype, t.shape)
    if not isinstance(x, (np.ndarray, np.generic)):
        x = np.asarray(x)
    name = _NP_NAMES.get(x.dtype)
    if name is None:
        dtype_of_numpy(x.dtype)                # raises the clear "unsupported dtype" error
    return (name, x.shape)


def signature(args: tuple, kwargs: dict, static_argnums=()) -> Signature:
    """Splits a call's arguments into traced array leaves and the static cache key."""
    if not kwargs and not static_argnums and all(type(a) in FAST_LEAVES for a in args):
        # the common call: positional arrays only (no pytree walk)
        tree = _flat_tree(len(args))
        key = (tree, tuple(_leaf_key(a) for a in args), ())
        return Signature(key, tree, list(args), {}, list(range(len(args))))
    static_pos = normalize_argnums(static_argnums, len(args), "static_argnums") if static_argnums \
        else ()
    static = {i: args[i] for i in static_pos}
    dyn = tuple(a for i, a in enumerate(args) if i not in static)
    leaves, tree = tree_flatten((dyn, dict(kwargs)))
    parts = tuple(_leaf_key(x) if is_array_leaf(x) else _static_key(x) for x in leaves)
    statics = tuple((i, _static_key(v)) for i, v in sorted(static.items()))
    owners = []
    for i, a in enumerate(args):
        if i not in static:
            owners += [i] * tree_flatten(a)[1].num_leaves
    owners += [None] * (len(leaves) - len(owners))
    return Signature((tree, parts, statics), tree, leaves, static, owners)


def arg_names(fun, nargs: int) -> list[str]:
    """Names for positional arguments, from fun's signature (`w`, `x`), for IR name hints."""
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = next((p.name for p in params if p.kind == p.VAR_POSITIONAL), "arg")
    return [positional[i] if i < len(positional) else f"{varargs}{i}" for i in range(nargs)]


def leaf_hints(fun, sig: Signature) -> list[str]:
    """One name hint per leaf of sig.tree."""
    nargs = len(sig.tree.children[0].children) + len(sig.static)
    names = [n for i, n in enumerate(arg_names(fun, nargs)) if i not in sig.static]
    args_def, kwargs_def = sig.tree.children
    hints = []
    for name, sub in zip(names, args_def.children):
        hints += leaf_paths(sub, name)
    return hints + leaf_paths(kwargs_def)
