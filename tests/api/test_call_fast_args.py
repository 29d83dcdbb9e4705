"""The tiny call's fast path for arguments and results beyond arrays (tracer/call_plan.py,
tracer/call_fast.py): Python scalars (static values, guarded by type and exact value),
Tensor subclasses such as Parameters when no autograd is recorded, and dict results.
Counted, never timed; every answer equals a fresh function's (the slow path) bitwise."""
from __future__ import annotations

import collections

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj
from tests.api.test_call_fast import (X, Paths, assert_same, fresh_answer, one, values,
                                      warmed)
from tracer.call_fast import tree_expression
from tracer.call_plan import unflattener
from tracer.pytree import tree_flatten, tree_unflatten


@pytest.fixture
def paths(monkeypatch):
    return Paths(monkeypatch)


@pytest.mark.parametrize("tree", [
    {"a": 1, "b": (2, 3)}, {3: [1], -1: {"x": 2}}, ({"b": 1, "a": 2},), {},
])
def test_dicts_keyed_by_strings_and_ints_are_rebuilt_by_expression(tree):
    leaves, treedef = tree_flatten(tree)
    assert tree_expression(treedef, [f"l[{i}]" for i in range(len(leaves))]) is not None
    rebuilt = unflattener(treedef)(leaves)
    assert rebuilt == tree and repr(rebuilt) == repr(tree_unflatten(treedef, leaves))


def test_a_dict_result_takes_the_fast_path(paths):
    def f(x):
        return {"double": x * 2, "a": (x + 1,)}

    g, plan = warmed(f, X)
    paths.watch(plan)
    out = g(X)
    assert paths.counts() == (1, 0, 0)
    want = fresh_answer(f, X)
    assert list(out) == list(want) == ["a", "double"]    # the order tree_unflatten gives
    assert_same(out, want)


def test_other_trees_are_rebuilt_the_general_way():
    Pair = collections.namedtuple("Pair", "a b")
    for tree in ({(1, 2): 1}, {True: 1}, Pair(1, 2)):
        leaves, treedef = tree_flatten(tree)
        assert tree_expression(treedef, ["l0", "l1"]) is None
        assert unflattener(treedef)(leaves) == tree
    g = gj.jit(lambda x: Pair(x * 2, x))
    g(X)
    g(X)
    assert g.quick is None and len(g.plans) == 1
    np.testing.assert_array_equal(np.asarray(g(X).a), X * 2)


# ---- Python scalars: static values, guarded by value ------------------------------------

def scaled(x, k):
    return x * k + k


def test_a_python_scalar_takes_the_fast_path_for_its_own_value(paths):
    others = (3.5, 2, True, -2.5)          # another value or type: another signature
    want = dict(zip(map(repr, (2.5,) + others), [fresh_answer(scaled, X, k)
                                                 for k in (2.5,) + others]))
    g, plan = warmed(scaled, X, 2.5)
    traces = g.trace_count
    paths.watch(plan)
    assert_same(g(X, 2.5), want["2.5"])
    assert paths.counts() == (1, 0, 0)
    for k in others:
        assert_same(g(X, k), want[repr(k)])
    assert paths.fast == 1 and paths.slow == 4 and g.trace_count == traces + 4
    for k in others:                       # each has its plan now (not the quick one)
        assert_same(g(X, k), want[repr(k)])
    assert paths.slow == 4


def test_a_zero_keeps_its_sign_and_a_nan_is_never_a_hit(paths):
    nan = float("nan")
    want = {repr(k): fresh_answer(scaled, X, k) for k in (0.0, -0.0)}   # (0.0 == -0.0)
    g, plan = warmed(scaled, X, 0.0)
    paths.watch(plan)
    neg = g(X, -0.0)
    assert paths.fast == 0
    assert_same(neg, want["-0.0"])
    assert np.signbit(np.asarray(neg)[0, 0])          # 0 * -0.0 + -0.0 is -0.0
    assert_same(g(X, 0.0), want["0.0"])
    for _ in range(3):
        assert np.isnan(np.asarray(g(X, nan))).all()
    assert paths.fast == 1                  # the 0.0 call; a NaN never equals its guard


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                 st.integers(-2 ** 70, 2 ** 70), st.booleans()))
def test_python_scalars_equal_the_slow_path(k):
    g = gj.jit(scaled)
    x = X.astype(np.float64)
    try:
        want = values(fresh_answer(scaled, x, k))
    except Exception as e:                  # noqa: BLE001 (compared below)
        with pytest.raises(type(e)):
            g(x, k)
        return
    for _ in range(3):                      # trace, plan, then the fast call
        got = values(g(x, k))
        assert [a.tobytes() for a in got] == [b.tobytes() for b in want]


def test_a_grad_function_keeps_python_floats_as_inputs():
    """value_and_grad turns a differentiated Python float into an f32 input (its prepare
    hook): no value-keyed plan, and every value gives its own correct answer."""
    vg = gj.jit(gj.value_and_grad(lambda x: 3 * x ** 2))
    for v in (1.5, 1.5, 2.0, 1.5):
        value, grad = vg(v)
        assert float(value) == 3 * v * v and float(grad) == 6 * v
    assert vg.trace_count == 1 and not vg.plans


def test_a_parameter_takes_the_fast_path_when_grad_is_not_recorded(paths):
    p = gj.nn.Parameter(gj.tensor(X))
    with gj.no_grad():
        g, plan = warmed(one, p)
        paths.watch(plan)
        out = g(p)
    assert paths.fast == 1 and type(plan.call_fast.__globals__["T0"]) is type
    assert_same(out, fresh_answer(one, X))
    value, _ = g(p)                           # grad mode on: recorded, the general way
    assert paths.fast == 1 and value.grad_fn is not None
    assert_same(g(gj.tensor(X)), fresh_answer(one, X))     # a plain Tensor: not the guard's
    assert paths.fast == 1
