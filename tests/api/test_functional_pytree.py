"""Pytrees: flatten/unflatten round trips and structure keys (tracer/pytree.py)."""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.pytree import leaf_paths, tree_flatten, tree_map, tree_unflatten

Point = namedtuple("Point", "x y")

leaves = st.one_of(st.integers(-5, 5), st.floats(-1, 1), st.booleans())
trees = st.recursive(
    leaves | st.none(),
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.tuples(kids, kids),
                           st.dictionaries(st.sampled_from("abcd"), kids, max_size=3),
                           st.builds(Point, kids, kids)),
    max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(trees)
def test_flatten_unflatten_round_trip(tree):
    flat, treedef = tree_flatten(tree)
    assert treedef.num_leaves == len(flat)
    rebuilt = tree_unflatten(treedef, flat)
    assert rebuilt == tree and type(rebuilt) is type(tree)
    again = tree_flatten(rebuilt)[1]
    assert again == treedef and hash(again) == hash(treedef)
    assert len(leaf_paths(treedef, "arg")) == len(flat)


def test_dict_order_does_not_matter_and_structures_differ():
    a = tree_flatten({"w": 1, "b": 2})
    b = tree_flatten({"b": 2, "w": 1})
    assert a == b and a[0] == [2, 1]
    assert tree_flatten((1, 2))[1] != tree_flatten([1, 2])[1]
    assert tree_flatten((1, None))[1] != tree_flatten((1,))[1]


def test_arrays_are_leaves_and_tree_map():
    x = np.ones(3)
    flat, treedef = tree_flatten({"a": x, "b": [x, (x,)]})
    assert len(flat) == 3 and all(f is x for f in flat)
    doubled = tree_map(lambda u, v: u + v, {"p": 1, "q": (2, 3)}, {"p": 10, "q": (20, 30)})
    assert doubled == {"p": 11, "q": (22, 33)}
    assert leaf_paths(treedef, "params") == ["params_a", "params_b_0", "params_b_1_0"]
