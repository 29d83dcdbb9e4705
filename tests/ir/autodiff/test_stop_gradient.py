"""stop_gradient: the value passes, the derivative does not (in both modes, at any order)."""
import numpy as np

from ir.autodiff import grad, jvp
from ir.interpret import interpret
from ir.passes import optimize
from tests.gradcheck import make_fn, f64


def _x_times_frozen_x():
    return make_fn(lambda b, x: b.reduce_sum(b.mul(x, b.stop_gradient(x)), axes=(0,)), f64[3])


def test_reverse_mode_treats_the_stopped_value_as_a_constant():
    x = np.array([1.0, -2.0, 3.0])
    value, g = interpret(grad(_x_times_frozen_x()), x)
    np.testing.assert_allclose(value, np.sum(x * x))
    np.testing.assert_allclose(g, x)           # d/dx (x * c) = c, not 2x


def test_forward_mode_gives_no_tangent_through_it():
    x, t = np.array([1.0, -2.0, 3.0]), np.array([1.0, 1.0, 1.0])
    _, tangent = interpret(jvp(_x_times_frozen_x()), x, t)
    np.testing.assert_allclose(tangent, np.sum(x * t))


def test_optimisation_before_autodiff_keeps_it():
    fn = optimize(_x_times_frozen_x())
    assert any(op.prim.name == "stop_gradient" for op in fn.body)
    _, g = interpret(grad(fn), np.array([2.0, 2.0, 2.0]))
    np.testing.assert_allclose(g, [2.0, 2.0, 2.0])


def test_of_a_constant_it_folds_to_the_constant():
    """stop_gradient is elementwise (a trait), so fold treats it as any elementwise op: of a
    constant it is that constant, whose derivative is zero anyway."""
    fn = make_fn(lambda b, x: b.reduce_sum(b.mul(x, b.stop_gradient(b.full_like(3.0, x))),
                                           axes=(0,)), f64[3])
    folded = optimize(fn)
    assert not any(op.prim.name == "stop_gradient" for op in folded.body)
    x = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(interpret(grad(folded), x)[1], [3.0, 3.0, 3.0])
