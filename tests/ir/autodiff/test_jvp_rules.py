"""The JVP rule of every primitive: finite differences, and <u, J v> == <J^T u, v> against
the (independently written) VJP rule."""
import numpy as np
import pytest

from ir.autodiff import jvp, jvp_rules, vjp
from ir.builder import Builder
from ir.core import Function, Value, is_float
from ir.interpret import interpret
from ir.primitives import PRIMITIVES
from tests.ir.autodiff.helpers import assert_typed_derivatives, op_of, rule_kwargs
from tests.prim_samples import grad_cases_of as cases_of
from tests.gradcheck import check_grads, f64, make_fn

NAMES = sorted(PRIMITIVES)


@pytest.mark.parametrize("name", NAMES)
def test_jvp_matches_finite_differences(name):
    for case in cases_of(name):
        check_grads(case.fn(), case.sample(), modes=("fwd",))


@pytest.mark.parametrize("name", NAMES)
def test_jvp_and_vjp_are_transposes(name):
    """<u, J v> from the JVP equals <J^T u, v> from the VJP, to rounding."""
    for case in cases_of(name):
        if "rev" not in case.modes:
            continue
        fn = case.fn()
        args = case.sample()
        rng = np.random.default_rng(3)
        floats = [p for p in fn.params if is_float(p.dtype)]
        v = [rng.standard_normal(p.type.shape) for p in floats]
        u = [rng.standard_normal(r.type.shape) for r in fn.results if is_float(r.dtype)]
        n = len(fn.results)
        jv = interpret(jvp(fn), *args, *v)[n:]
        vj = interpret(vjp(fn), *args, *u)[n:]
        lhs = sum(float(np.vdot(a, c)) for a, c in zip(u, jv))
        rhs = sum(float(np.vdot(a, c)) for a, c in zip(vj, v))
        assert np.isclose(lhs, rhs, rtol=1e-10, atol=1e-12), (case.id, lhs, rhs)


@pytest.mark.parametrize("name", NAMES)
def test_rule_gives_a_typed_tangent(name):
    """Applied on its own, a rule returns a tangent of the result's type, None for the
    non-differentiable primitives (and for integer/bool results)."""
    for case in cases_of(name):
        op = op_of(case.fn(), name)
        b = Builder()
        ts = tuple(Value(x.type) if is_float(x.dtype) else None for x in op.inputs)
        if all(t is None for t in ts):
            continue                          # iota and constant have no operands
        multi = op.prim.kind == "control" or len(op.results) > 1    # rules take tuples
        out = tuple(op.results) if multi else op.result
        tangent = jvp_rules[name](b, ts, out, *op.inputs, **rule_kwargs(op))
        tangents = tangent if multi else (tangent,)
        assert_typed_derivatives(op, tangents, op.results)


@pytest.mark.parametrize("name", NAMES)
def test_f32_jvp_agrees_with_f64(name):
    for case in cases_of(name):
        case.assert_f32_agrees_with_f64(jvp)


@pytest.mark.parametrize("name", ["cond", "scan", "while"])
def test_plain_control_rules_match_the_transform(name):
    """jvp emits one fused op for primal and tangent; the table's rules emit a second op for
    the tangent alone. Applied by hand, they must agree with the transform."""
    for case in cases_of(name):
        fn = case.fn()
        op = op_of(fn, name)
        floats = [p for p in fn.params if is_float(p.dtype)]
        ts = [Value(p.type) for p in floats]
        tangent_of = dict(zip(floats, ts))
        b = Builder()
        b.ops = list(fn.body)
        tangents = jvp_rules[name](b, tuple(tangent_of.get(x) for x in op.inputs),
                                   tuple(op.results), *op.inputs, regions=op.regions,
                                   **op.params)
        wanted = [t for t, r in zip(tangents, op.results) if is_float(r.dtype)]
        by_rule = Function("by_rule", fn.params + ts, b.ops, wanted)
        args = case.sample()
        vs = [np.random.default_rng(2).standard_normal(t.type.shape) for t in ts]
        by_transform = interpret(jvp(fn), *args, *vs)[len(fn.results):]
        for got, want in zip(interpret(by_rule, *args, *vs), by_transform, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_max_jvp_averages_the_tangents_at_ties():
    fn = make_fn(lambda b, x, y: b.max(x, y), f64[3], f64[3])
    x, y = np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])
    tx, ty = np.array([10.0, 20.0, 30.0]), np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(interpret(jvp(fn), x, y, tx, ty)[1], [1.0, 11.0, 30.0])


def test_reduce_max_jvp_averages_over_ties():
    fn = make_fn(lambda b, x: b.reduce_max(x, axes=(1,)), f64[2, 3])
    x = np.array([[1.0, 3.0, 3.0], [0.0, 5.0, -1.0]])
    t = np.array([[7.0, 2.0, 4.0], [1.0, 6.0, 1.0]])
    np.testing.assert_allclose(interpret(jvp(fn), x, t)[1], [3.0, 6.0])


def test_tangent_of_a_result_that_ignores_the_inputs_is_a_zeros_constant():
    fn = make_fn(lambda b, x: (b.sin(x), b.full_like(2.0, x), b.sign(x)), f64[2])
    out = jvp(fn)
    tangents = interpret(out, np.array([0.5, -1.0]), np.array([1.0, 1.0]))[4:]
    np.testing.assert_array_equal(tangents, np.zeros((2, 2)))
    assert sum(op.prim.name == "constant" for op in out.body) >= 2


@pytest.mark.parametrize("prim", ["reduce_max", "reduce_min"])
def test_extremum_over_an_empty_axis_has_a_zero_tangent(prim):
    """The max of nothing is the constant -inf: its tangent is 0, not 0/0 (and so <u, J v>
    matches <J^T u, v>, which is a sum over no elements)."""
    fn = make_fn(lambda b, x: b.emit(prim, x, axes=(0,)), f64[0, 3])
    x = np.zeros((0, 3))
    value, tangent = interpret(jvp(fn), x, x)
    assert np.isinf(value).all() and tangent.tolist() == [0.0, 0.0, 0.0]
