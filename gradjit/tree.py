"""jax.tree for gradjit: the short spellings of gradjit.tree_util (tree.map, tree.leaves, ...)."""
from tracer.pytree import (tree_all as all, tree_flatten as flatten,  # noqa: A004
                           tree_leaves as leaves, tree_map as map, tree_reduce as reduce,
                           tree_structure as structure, tree_unflatten as unflatten)

__all__ = ["all", "flatten", "leaves", "map", "reduce", "structure", "unflatten"]
