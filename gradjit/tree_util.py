"""jax.tree_util for gradjit: pytrees (nested tuples, lists, dicts, namedtuples, None and
registered types) as every transform flattens them (tracer/pytree.py)."""
from tracer.pytree import (TreeDef as PyTreeDef, register_dataclass, register_pytree_node,
                           register_pytree_node_class, tree_all, tree_flatten, tree_leaves,
                           tree_map, tree_reduce, tree_structure, tree_unflatten,
                           treedef_is_leaf)

__all__ = ["PyTreeDef", "register_dataclass", "register_pytree_node",
           "register_pytree_node_class", "tree_all", "tree_flatten", "tree_leaves", "tree_map",
           "tree_reduce", "tree_structure", "tree_unflatten", "treedef_is_leaf"]
