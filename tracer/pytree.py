"""Pytrees: nested tuples, lists, dicts and None, with arrays and scalars as leaves.

    leaves, tree = tree_flatten({"w": w, "b": (b1, b2)})
    same = tree_unflatten(tree, leaves)

A TreeDef is hashable and comparable, so it can be part of a compile-cache key. Dict keys
are visited in sorted order (as JAX does) so that two dicts with the same keys flatten the
same way whatever their insertion order. Namedtuples keep their type. Anything that is not
a tuple, list, dict or None is a leaf (Tensors, NumPy arrays, Python scalars, ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class TreeDef:
    """The structure of a pytree: a node kind, static data (dict keys, a type), children."""
    kind: str                         # 'leaf', 'none', 'tuple', 'list', 'dict', 'namedtuple'
    data: Any = None                  # dict keys (a tuple) or the namedtuple type
    children: tuple["TreeDef", ...] = ()

    def __post_init__(self):
        # NOTE: a TreeDef is part of every compile-cache key: hash it once, not per lookup
        object.__setattr__(self, "_hash", hash((self.kind, self.data, self.children)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)

    def __str__(self) -> str:
        if self.kind == "leaf":
            return "*"
        if self.kind == "none":
            return "None"
        inner = [str(c) for c in self.children]
        if self.kind == "dict":
            return "{" + ", ".join(f"{k!r}: {c}" for k, c in zip(self.data, inner)) + "}"
        if self.kind == "list":
            return "[" + ", ".join(inner) + "]"
        if self.kind == "namedtuple":
            return f"{self.data.__name__}(" + ", ".join(inner) + ")"
        return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"


LEAF = TreeDef("leaf")


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _sorted_keys(d: dict) -> tuple:
    try:
        return tuple(sorted(d))
    except TypeError:
        # keys of mixed types cannot be sorted; insertion order is still deterministic
        return tuple(d)


def tree_flatten(tree, is_leaf: Callable[[Any], bool] | None = None):
    """Returns (leaves, treedef): the leaves left to right, and the structure around them."""
    leaves: list = []
    treedef = _flatten(tree, leaves, is_leaf)
    return leaves, treedef


def _flatten(x, leaves: list, is_leaf) -> TreeDef:
    if is_leaf is not None and is_leaf(x):
        leaves.append(x)
        return LEAF
    if x is None:
        return TreeDef("none")
    if _is_namedtuple(x):
        kids = tuple(_flatten(c, leaves, is_leaf) for c in x)
        return TreeDef("namedtuple", type(x), kids)
    if isinstance(x, (tuple, list)):
        kids = tuple(_flatten(c, leaves, is_leaf) for c in x)
        return TreeDef("tuple" if isinstance(x, tuple) else "list", None, kids)
    if isinstance(x, dict):
        keys = _sorted_keys(x)
        kids = tuple(_flatten(x[k], leaves, is_leaf) for k in keys)
        return TreeDef("dict", keys, kids)
    leaves.append(x)
    return LEAF


def tree_unflatten(treedef: TreeDef, leaves):
    """Rebuilds a pytree of structure treedef from an iterable of leaves."""
    if treedef.kind == "leaf" and isinstance(leaves, list) and len(leaves) == 1:
        return leaves[0]
    it = iter(leaves)
    out = _unflatten(treedef, it)
    for _ in it:
        raise ValueError(f"too many leaves for tree structure {treedef}")
    return out


def _unflatten(t: TreeDef, it):
    if t.kind == "leaf":
        try:
            return next(it)
        except StopIteration:
            raise ValueError("too few leaves for the tree structure") from None
    if t.kind == "none":
        return None
    kids = [_unflatten(c, it) for c in t.children]
    if t.kind == "tuple":
        return tuple(kids)
    if t.kind == "list":
        return kids
    if t.kind == "namedtuple":
        return t.data(*kids)
    return dict(zip(t.data, kids))


def tree_leaves(tree) -> list:
    return tree_flatten(tree)[0]


def tree_structure(tree) -> TreeDef:
    return tree_flatten(tree)[1]


def tree_map(f: Callable, tree, *rest):
    """Applies f leafwise; `rest` are trees of the same structure whose leaves become args."""
    leaves, treedef = tree_flatten(tree)
    others = []
    for r in rest:
        r_leaves, r_def = tree_flatten(r)
        if r_def != treedef:
            raise ValueError(f"tree_map: structure {r_def} does not match {treedef}")
        others.append(r_leaves)
    return tree_unflatten(treedef, [f(*xs) for xs in zip(leaves, *others)])


def leaf_paths(treedef: TreeDef, prefix: str = "") -> list[str]:
    """A readable name per leaf (`params_w`, `xs_0`), used as IR name hints."""
    if treedef.kind == "leaf":
        return [prefix]
    if treedef.kind == "none":
        return []
    keys = treedef.data if treedef.kind == "dict" else range(len(treedef.children))
    if treedef.kind == "namedtuple":
        keys = treedef.data._fields
    out = []
    for k, child in zip(keys, treedef.children):
        name = f"{prefix}_{k}" if prefix else str(k)
        out += leaf_paths(child, name)
    return out
