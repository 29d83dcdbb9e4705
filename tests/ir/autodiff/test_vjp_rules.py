"""The VJP rule of every primitive, against finite differences and by direct application."""
import numpy as np
import pytest

from ir.autodiff import grad, vjp, vjp_rules
from ir.builder import Builder
from ir.core import Function, Value
from ir.interpret import interpret
from ir.primitives import PRIMITIVES
from tests.ir.autodiff.helpers import assert_typed_derivatives, op_of, rule_kwargs
from tests.prim_samples import grad_cases_of as cases_of
from tests.gradcheck import check_grads, f32, f64, i64, make_fn

NAMES = sorted(PRIMITIVES)


@pytest.mark.parametrize("name", NAMES)
def test_vjp_matches_finite_differences(name):
    for case in cases_of(name):
        if "rev" in case.modes:
            check_grads(case.fn(), case.sample(), modes=("rev",))


@pytest.mark.parametrize("name", NAMES)
def test_rule_gives_one_typed_cotangent_per_operand(name):
    """Applied on its own, a rule returns a cotangent of each float operand's type (or None),
    None for integer/bool operands, and only None for the non-differentiable primitives.
    (The select predicate and gather/scatter indices are integer or bool.)"""
    for case in cases_of(name):
        if "rev" not in case.modes:
            continue
        op = op_of(case.fn(), name)
        b = Builder()
        g = tuple(Value(r.type) for r in op.results)
        out = tuple(Value(r.type) for r in op.results)
        if op.prim.kind != "control" and len(op.results) == 1:    # multi-result: tuples
            g, out = g[0], out[0]
        cts = vjp_rules[name](b, g, out, *op.inputs, **rule_kwargs(op))
        assert_typed_derivatives(op, cts, op.inputs)


@pytest.mark.parametrize("name", NAMES)
def test_f32_vjp_agrees_with_f64(name):
    for case in cases_of(name):
        if "rev" in case.modes:
            case.assert_f32_agrees_with_f64(vjp)


def test_while_is_refused_in_reverse_mode():
    (case,) = cases_of("while")
    with pytest.raises(TypeError, match="reverse-mode differentiation of while is not "
                                        "supported; use fori_loop with static bounds or scan"):
        vjp(case.fn())


def _total(b, v):
    return b.reduce_sum(v, axes=tuple(range(v.ndim)))


def _grads(build, *types, args):
    """The gradients of sum(build(...)) at args."""
    fn = make_fn(lambda b, *xs: _total(b, build(b, *xs)), *types)
    return interpret(grad(fn), *args)[1:]


def test_max_min_split_the_gradient_evenly_at_ties():
    """torch.maximum: 1 to the larger operand, 0 to the smaller, 0.5 to each at a tie."""
    x, y = np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])
    gx, gy = _grads(lambda b, x, y: b.max(x, y), f64[3], f64[3], args=[x, y])
    np.testing.assert_array_equal(gx, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(gy, [1.0, 0.5, 0.0])
    gx, gy = _grads(lambda b, x, y: b.min(x, y), f64[3], f64[3], args=[x, y])
    np.testing.assert_array_equal(gx, [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(gy, [0.0, 0.5, 1.0])


def test_reduce_max_splits_ties_evenly():
    """torch.amax: the gradient is shared evenly by the positions holding the maximum."""
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    (gmax,) = _grads(lambda b, x: b.reduce_max(x, axes=(1,)), f64[2, 3], args=[x])
    np.testing.assert_allclose(gmax, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    (gmin,) = _grads(lambda b, x: b.reduce_min(x, axes=(0, 1)), f64[2, 3], args=[x])
    np.testing.assert_allclose(gmin, [[1, 0, 0], [0, 0, 0]])


def test_abs_has_zero_subgradient_at_zero():
    (g,) = _grads(lambda b, x: b.abs(x), f64[3], args=[np.array([-2.0, 0.0, 5.0])])
    np.testing.assert_array_equal(g, [-1.0, 0.0, 1.0])


def test_pow_is_safe_at_zero_base():
    """At x = 0: d/dx x**y = y * x**(y-1) (0 at y = 0, not nan), d/dy = 0 for y >= 0."""
    x = np.zeros(4)
    y = np.array([0.0, 1.0, 2.0, 0.5])
    gx, gy = _grads(lambda b, x, y: b.pow(x, y), f64[4], f64[4], args=[x, y])
    np.testing.assert_array_equal(gx, [0.0, 1.0, 0.0, np.inf])
    np.testing.assert_array_equal(gy, [0.0, 0.0, 0.0, 0.0])


def test_convert_between_float_widths_converts_the_cotangent_back():
    fn = make_fn(lambda b, x: b.reduce_sum(b.exp(b.convert(x, dtype="f64")), axes=(0,)), f32[3])
    g = grad(fn)
    assert [str(t) for t in g.result_types] == ["f64[]", "f32[3]"]
    x = np.array([0.5, -1.0, 2.0], np.float32)
    np.testing.assert_allclose(interpret(g, x)[1], np.exp(x.astype(np.float64)), rtol=1e-6)


def test_gather_with_repeated_indices_accumulates():
    fn = make_fn(lambda b, x, i: b.reduce_sum(b.gather(x, i, axis=0), axes=(0,)),
                 f64[4], i64[5])
    g = interpret(grad(fn), np.arange(4.0), np.array([0, 2, 2, 3, 2]))[1]
    np.testing.assert_array_equal(g, np.bincount([0, 2, 2, 3, 2], minlength=4))


@pytest.mark.parametrize("name", ["cond", "scan"])
def test_plain_control_rules_match_the_transform(name):
    """vjp uses a taped forward scan instead of the plain rule (which recomputes the tape),
    so the plain rules, applied by hand to the op, are checked against the transform here."""
    for case in cases_of(name):
        fn = case.fn()
        op = op_of(fn, name)
        assert list(op.results) == fn.results and set(op.inputs) >= set(fn.params)
        gs = [Value(r.type) if r.dtype == "f64" else None for r in op.results]
        seeds = [g for g in gs if g is not None]
        b = Builder()
        b.ops = list(fn.body)
        cts = vjp_rules[name](b, tuple(gs), tuple(op.results), *op.inputs, regions=op.regions,
                              **op.params)
        wanted = [cts[op.inputs.index(p)] for p in fn.params if p.dtype == "f64"]
        by_rule = Function("by_rule", fn.params + seeds, b.ops, wanted)
        args = case.sample()
        us = [np.random.default_rng(2).standard_normal(g.type.shape) for g in seeds]
        by_transform = interpret(vjp(fn), *args, *us)[len(fn.results):]
        for got, want in zip(interpret(by_rule, *args, *us), by_transform, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
