"""The structural key shared by the backward replay and the realisation plans
(tracer/structure_key.py): equal for graphs a program rebuilds on new arrays, different
wherever the program would differ (shapes, sharing, data held, params, which result)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tracer.structure_key import Unkeyable, walk

OPS = ("add", "mul", "sub_first", "tanh", "sum0", "square_shared")


def _build(shape, ops, seed, realize_at=None):
    """A pending graph from fresh arrays: the same ops on other data."""
    rng = np.random.default_rng(seed)
    a = gj.tensor(rng.standard_normal(shape).astype(np.float32))
    b = gj.tensor(rng.standard_normal(shape).astype(np.float32))
    x = a
    for i, op in enumerate(ops):
        if op == "add":
            x = x + b
        elif op == "mul":
            x = x * a
        elif op == "sub_first":
            x = a - x
        elif op == "tanh":
            x = gj.tanh(x)
        elif op == "sum0":
            x = x.sum(0, keepdim=True) + x
        else:
            x = x * x
        if i == realize_at:
            x.numpy()                       # this value now holds data
    return x._expr


def _key(e, through_data=True):
    return walk([e], through_data, 4096)[2]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       st.lists(st.sampled_from(OPS), min_size=1, max_size=6), st.integers(0, 100))
def test_same_program_on_new_arrays_same_key_and_positions(shape, ops, seed):
    e1, e2 = _build(shape, ops, seed), _build(shape, ops, seed + 1)
    exprs1, index1, parts1 = walk([e1], True, 4096)
    exprs2, index2, parts2 = walk([e2], True, 4096)
    assert parts1 == parts2
    # the same position holds the corresponding value: leaves by their data's role
    assert [x.data is not None for x in exprs1] == [x.data is not None for x in exprs2]
    assert [x.type for x in exprs1] == [x.type for x in exprs2]
    assert index1[id(e1)] == index2[id(e2)] == 0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(2, 4), min_size=1, max_size=2).map(tuple),
       st.lists(st.sampled_from(OPS), min_size=1, max_size=5), st.data())
def test_a_changed_shape_op_or_realised_value_changes_the_key(shape, ops, data):
    base = _key(_build(shape, ops, 0))
    assert _key(_build(shape + (1,), ops, 0)) != base
    # with nothing before it, x is a: `x * a` (mul) and `x * x` (square_shared) are one graph
    same = {"mul", "square_shared"} if len(ops) == 1 and ops[0] in ("mul", "square_shared") \
        else set()
    other = data.draw(st.sampled_from([o for o in OPS if o != ops[-1] and o not in same]))
    assert _key(_build(shape, ops[:-1] + [other], 0)) != base
    at = data.draw(st.integers(0, len(ops) - 1))
    held = _key(_build(shape, ops, 0, realize_at=at))
    assert held != base                      # an Expr holding data is a different input


def test_sharing_and_params_are_part_of_the_key():
    a = gj.tensor(np.ones(3, np.float32))
    b = gj.tensor(np.ones(3, np.float32))
    assert _key((a * a)._expr) != _key((a * b)._expr)
    assert _key(a.sum(0)._expr) == _key(b.sum(0)._expr)
    m = gj.tensor(np.ones((2, 3), np.float32))
    assert _key(m.sum(0)._expr) != _key(m.sum(1)._expr)


def test_data_stops_the_walk_only_when_asked():
    # an autograd node's output keeps its op once it holds data (others forget it)
    a = gj.tensor(np.ones(3, np.float32), requires_grad=True)
    y = gj.tanh(a * 2.0)
    y.sum().item()
    assert y._expr.data is not None and y._expr.op is not None
    assert len(walk([y._expr], False, 4096)[0]) == 1       # a read: y is an input
    assert len(walk([y._expr], True, 4096)[0]) > 1         # backward: through to a


def test_symbolic_values_and_size_limit_are_unkeyable():
    a = gj.tensor(np.ones(3, np.float32))
    x = a
    for _ in range(10):
        x = x + 1.0
    with pytest.raises(Unkeyable, match="over 5 values"):
        walk([x._expr], True, 5)

    def f(t):
        with pytest.raises(Unkeyable, match="symbolic"):
            walk([(t * 2.0)._expr], True, 4096)
        return t
    gj.jit(f)(a)
