"""gj.tree_util / gj.tree: pytrees as JAX treats them, and every transform flattening them."""
import dataclasses
import typing

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from gradjit import tree_util as tu


class Point(typing.NamedTuple):
    x: object
    y: object


@tu.register_dataclass
@dataclasses.dataclass
class Params:
    w: object
    b: object
    name: str = dataclasses.field(default="lin", metadata=dict(static=True))


@dataclasses.dataclass
class Unregistered:
    v: object


@tu.register_pytree_node_class
class Box:
    def __init__(self, v, tag):
        self.v, self.tag = v, tag

    def tree_flatten(self):
        return (self.v,), self.tag

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children[0], aux)


def test_leaves_structure_and_round_trip():
    tree = {"b": (1, Point(2, 3)), "a": None, "c": [4, {"z": 5, "y": 6}]}
    leaves, treedef = tu.tree_flatten(tree)
    assert leaves == [1, 2, 3, 4, 6, 5]          # dict keys sorted, None has no leaf
    assert treedef.num_leaves == 6
    assert tu.tree_unflatten(treedef, leaves) == tree
    assert treedef.unflatten(leaves) == tree
    assert tu.tree_structure(tree) == treedef and hash(tu.tree_structure(tree)) == hash(treedef)
    assert repr(tu.tree_structure((1, [2], None))) == "PyTreeDef((*, [*], None))"
    assert tu.tree_structure(1).num_nodes == 1 and tu.treedef_is_leaf(tu.tree_structure(1))
    assert tu.tree_structure((1, 2)).num_nodes == 3
    # an unregistered dataclass is a leaf, as in JAX
    u = Unregistered(1)
    assert tu.tree_leaves([u]) == [u]
    assert tu.tree_leaves((1, 2), is_leaf=lambda x: isinstance(x, tuple)) == [(1, 2)]


def test_tree_map_with_several_trees_and_prefixes():
    a = {"x": 1, "y": (2, None)}
    b = {"x": 10, "y": (20, None)}
    assert tu.tree_map(lambda p, q: p + q, a, b) == {"x": 11, "y": (22, None)}
    assert gj.tree.map(lambda p, q: p + q, a, b) == {"x": 11, "y": (22, None)}
    # the first tree is a prefix of the others: f gets their subtrees
    assert tu.tree_map(lambda p, q: (p, q), [1, 2], [(3, 4), {"k": 5}]) == [
        (1, (3, 4)), (2, {"k": 5})]
    assert tu.tree_map(lambda v: v * 2, Point(1, [2])) == Point(2, [4])
    with pytest.raises(ValueError, match="Tree structure mismatch"):
        tu.tree_map(lambda p, q: p, [1, 2], (1, 2))
    with pytest.raises(ValueError, match="Tree structure mismatch"):
        tu.tree_map(lambda p, q: p, {"a": 1}, {"b": 1})


def test_tree_short_spellings_reduce_and_all():
    tree = {"a": 1, "b": [2, 3]}
    leaves, treedef = gj.tree.flatten(tree)
    assert gj.tree.leaves(tree) == leaves == [1, 2, 3]
    assert gj.tree.unflatten(treedef, [4, 5, 6]) == {"a": 4, "b": [5, 6]}
    assert gj.tree.structure(tree) == treedef
    assert gj.tree.reduce(lambda p, q: p + q, tree) == 6
    assert tu.tree_reduce(lambda p, q: p + q, tree, 10) == 16
    assert tu.tree_all([True, (1, None)]) and not gj.tree.all([True, (0,)])


def test_registered_nodes_and_flatten_up_to():
    box = Box(np.arange(3.0), "tag")
    leaves, treedef = tu.tree_flatten(box)
    assert len(leaves) == 1 and treedef.node_data() == (Box, "tag")
    rebuilt = tu.tree_unflatten(treedef, [7])
    assert isinstance(rebuilt, Box) and rebuilt.v == 7 and rebuilt.tag == "tag"
    p = Params(1.0, 2.0)
    assert tu.tree_leaves(p) == [1.0, 2.0]
    assert tu.tree_map(lambda v: v + 1, p) == Params(2.0, 3.0)
    assert tu.tree_structure(Params(1, 2, "a")) != tu.tree_structure(Params(1, 2, "b"))
    assert tu.tree_structure([1, (2, 3)]).flatten_up_to([[4], ({"a": 5}, 6)]) == [
        [4], {"a": 5}, 6]
    with pytest.raises(ValueError, match="Duplicate custom PyTreeDef"):
        tu.register_pytree_node(Box, lambda b: ((), None), lambda a, c: None)


def test_transforms_take_registered_dataclasses_namedtuples_and_none():
    x = np.array([3.0, -1.0])
    p = Params(np.array([1.0, 2.0]), np.float64(0.5))

    def loss(p, x, unused):
        return ((p.w * x).sum() + p.b) ** 2
    g = gj.grad(loss)(p, x, None)
    assert isinstance(g, Params) and g.name == "lin"
    np.testing.assert_allclose(g.w.numpy(), 2 * 1.5 * x)
    np.testing.assert_allclose(float(g.b), 3.0)
    np.testing.assert_array_equal(gj.jit(lambda pt: pt.x * pt.y)(Point(x, x)).numpy(), x * x)
    batched = gj.vmap(lambda q: q.w.sum() + q.b)(Params(np.ones((4, 2)), np.ones(4)))
    np.testing.assert_array_equal(batched.numpy(), np.full(4, 3.0))
    gb = gj.grad(lambda b: (b.v ** 2).sum())(Box(x, "t"))
    assert isinstance(gb, Box) and gb.tag == "t"
    np.testing.assert_array_equal(gb.v.numpy(), 2 * x)
    out = gj.jit(lambda t: {"sum": t["a"] + t["b"], "none": None})({"a": x, "b": x})
    assert out["none"] is None
    np.testing.assert_array_equal(out["sum"].numpy(), 2 * x)


_trees = st.recursive(
    st.integers(-5, 5) | st.none(),
    lambda kids: (st.lists(kids, max_size=3) | st.lists(kids, max_size=3).map(tuple)
                  | st.dictionaries(st.sampled_from("abcd"), kids, max_size=3)
                  | st.tuples(kids, kids).map(lambda p: Point(*p))),
    max_leaves=8)


@settings(max_examples=60, deadline=None)
@given(_trees)
def test_random_trees_round_trip_and_map(tree):
    leaves, treedef = tu.tree_flatten(tree)
    assert all(x is not None for x in leaves)
    assert tu.tree_unflatten(treedef, leaves) == tree
    assert tu.tree_map(lambda v: v, tree) == tree
    doubled = tu.tree_map(lambda a, b: a + b, tree, tree)
    assert tu.tree_leaves(doubled) == [2 * v for v in leaves]
    assert tu.tree_structure(doubled) == treedef
    assert treedef.num_leaves == len(leaves)
    assert treedef.flatten_up_to(tree) == leaves
