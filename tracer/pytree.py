"""Pytrees: nested tuples, lists, dicts and None, with arrays and scalars as leaves.

    leaves, tree = tree_flatten({"w": w, "b": (b1, b2)})
    same = tree_unflatten(tree, leaves)

A TreeDef is hashable and comparable, so it can be part of a compile-cache key. Dict keys
are visited in sorted order (as JAX does) so that two dicts with the same keys flatten the
same way whatever their insertion order. Namedtuples keep their type; None is a node with no
children (no leaf), as in JAX. Types registered with register_pytree_node /
register_dataclass are nodes too (their exact type, as JAX looks them up); anything else is a
leaf (Tensors, NumPy arrays, Python scalars, unregistered dataclasses, ...). Every transform
flattens its arguments and results here, so a registered type works with all of them.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class TreeDef:
    """The structure of a pytree: a node kind, static data (dict keys, a type), children."""
    kind: str              # 'leaf', 'none', 'tuple', 'list', 'dict', 'namedtuple', 'custom'
    data: Any = None       # dict keys (a tuple), the namedtuple type, or (type, aux data)
    children: tuple["TreeDef", ...] = ()

    def __post_init__(self):
        # NOTE: a TreeDef is part of every compile-cache key: hash it once, not per lookup
        try:
            key = hash((self.kind, self.data, self.children))
        except TypeError:          # unhashable aux data of a custom node: equality decides
            key = hash((self.kind, self.data[0], self.children))
        object.__setattr__(self, "_hash", key)

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
        if self.kind == "custom":
            return (f"CustomNode({self.data[0].__name__}[{self.data[1]!r}], ["
                    + ", ".join(inner) + "])")
        return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"

    def __repr__(self) -> str:
        return f"PyTreeDef({self})"

    # ---- the methods of jax.tree_util.PyTreeDef (`children` is the tuple field, not JAX's
    # method: the transforms read it) -----------------------------------------------------

    @property
    def num_nodes(self) -> int:
        return 1 + sum(c.num_nodes for c in self.children)

    def node_data(self):
        """(the node's type, its static data), None for a leaf (as JAX's node_data)."""
        if self.kind == "leaf":
            return None
        kinds = {"none": (type(None), None), "tuple": (tuple, None), "list": (list, None),
                 "dict": (dict, self.data), "namedtuple": (self.data, None)}
        return kinds.get(self.kind, self.data)

    def unflatten(self, leaves):
        return tree_unflatten(self, leaves)

    def flatten_up_to(self, tree) -> list:
        """The subtrees of `tree` at this structure's leaves (this structure is a prefix)."""
        out: list = []
        _up_to(self, tree, out)
        return out


LEAF = TreeDef("leaf")

# type -> (flatten(x) -> (children, aux_data), unflatten(aux_data, children) -> x)
_REGISTRY: dict[type, tuple[Callable, Callable]] = {}


def register_pytree_node(nodetype: type, flatten_func: Callable, unflatten_func: Callable):
    """jax.tree_util.register_pytree_node: values of exactly nodetype become nodes;
    flatten_func(x) -> (children, aux_data) (aux_data hashable, compared with ==),
    unflatten_func(aux_data, children) -> x."""
    if nodetype in _REGISTRY or nodetype in (tuple, list, dict, type(None)):
        raise ValueError(f"Duplicate custom PyTreeDef type registration for {nodetype}.")
    _REGISTRY[nodetype] = (flatten_func, unflatten_func)


def register_pytree_node_class(cls: type) -> type:
    """Class decorator: cls.tree_flatten(self) and cls.tree_unflatten(aux, children)."""
    register_pytree_node(cls, lambda x: x.tree_flatten(), cls.tree_unflatten)
    return cls


def register_dataclass(nodetype: type, data_fields=None, meta_fields=None,
                       drop_fields=()) -> type:
    """jax.tree_util.register_dataclass: data_fields are children, meta_fields static data.
    Without them the dataclass's fields are used, those with metadata static=True being meta
    fields. Returns nodetype, so it works as a class decorator."""
    if data_fields is None and meta_fields is None:
        if not dataclasses.is_dataclass(nodetype):
            raise TypeError("register_dataclass without data_fields and meta_fields needs a "
                            f"dataclass, got {nodetype.__name__}")
        fields = [f for f in dataclasses.fields(nodetype) if f.init]
        meta_fields = [f.name for f in fields if f.metadata.get("static", False)]
        data_fields = [f.name for f in fields if not f.metadata.get("static", False)]
    data_fields, meta_fields = tuple(data_fields or ()), tuple(meta_fields or ())

    def flatten(x):
        return [getattr(x, n) for n in data_fields], tuple(getattr(x, n) for n in meta_fields)

    def unflatten(aux, children):
        return nodetype(**dict(zip(data_fields, children)), **dict(zip(meta_fields, aux)))
    register_pytree_node(nodetype, flatten, unflatten)
    return nodetype


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
    custom = _REGISTRY.get(type(x))
    if custom is not None:
        children, aux = custom[0](x)
        kids = tuple(_flatten(c, leaves, is_leaf) for c in children)
        return TreeDef("custom", (type(x), aux), kids)
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
    if t.kind == "custom":
        return _REGISTRY[t.data[0]][1](t.data[1], kids)
    return dict(zip(t.data, kids))


def _up_to(t: TreeDef, x, out: list):
    if t.kind == "leaf":
        out.append(x)
        return
    _, here = tree_flatten(x, is_leaf=lambda y: y is not x)
    if here.kind != t.kind or here.data != t.data or len(here.children) != len(t.children):
        raise ValueError(f"Tree structure mismatch: expected {t}, got a {type(x).__name__} "
                         f"of structure {here}")
    for child, sub in zip(t.children, _children(x, here)):
        _up_to(child, sub, out)


def _children(x, node: TreeDef) -> list:
    """The direct children of x, a node of structure `node` (one level deep)."""
    if node.kind == "dict":
        return [x[k] for k in node.data]
    if node.kind == "custom":
        return list(_REGISTRY[node.data[0]][0](x)[0])
    return [] if node.kind == "none" else list(x)


def tree_leaves(tree, is_leaf: Callable[[Any], bool] | None = None) -> list:
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree, is_leaf: Callable[[Any], bool] | None = None) -> TreeDef:
    return tree_flatten(tree, is_leaf)[1]


def tree_map(f: Callable, tree, *rest, is_leaf: Callable[[Any], bool] | None = None):
    """Applies f leafwise; each tree of `rest` has `tree`'s structure as a prefix (as in
    JAX), and its subtrees at tree's leaves become f's further arguments."""
    leaves, treedef = tree_flatten(tree, is_leaf)
    others = [treedef.flatten_up_to(r) for r in rest]
    return tree_unflatten(treedef, [f(*xs) for xs in zip(leaves, *others)])


_NO_INITIAL = object()


def tree_reduce(function: Callable, tree, initializer=_NO_INITIAL,
                is_leaf: Callable[[Any], bool] | None = None):
    """functools.reduce over the leaves (jax.tree_util.tree_reduce)."""
    leaves = tree_leaves(tree, is_leaf)
    if initializer is _NO_INITIAL:
        return functools.reduce(function, leaves)
    return functools.reduce(function, leaves, initializer)


def tree_all(tree, is_leaf: Callable[[Any], bool] | None = None) -> bool:
    """all() of the leaves (jax.tree_util.tree_all)."""
    return all(tree_leaves(tree, is_leaf))


def treedef_is_leaf(treedef: TreeDef) -> bool:
    return treedef.kind == "leaf"


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
