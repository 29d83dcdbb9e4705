"""Derivatives of derivatives: the transforms' output is plain IR, so it differentiates again."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.autodiff import grad, jvp, vjp
from ir.interpret import interpret
from ir.primitives import PRIMITIVES
from tests.ir.autodiff.helpers import PROGRAM_STEP, random_program
from tests.prim_samples import grad_cases_of as cases_of
from tests.gradcheck import check_grads, f64, make_fn, take_results


def _derivative(fn):
    """x -> f'(x) for a scalar fn: the gradient half of grad(fn)."""
    return take_results(grad(fn), [1], name=f"d_{fn.name}")


SECOND_DERIVATIVES = [
    ("sin", lambda b, x: b.sin(x), lambda x: -np.sin(x)),
    ("exp", lambda b, x: b.exp(x), np.exp),
    ("cube", lambda b, x: b.integer_pow(x, n=3), lambda x: 6 * x),
    ("tanh", lambda b, x: b.tanh(x), lambda x: -2 * np.tanh(x) / np.cosh(x) ** 2),
    ("log", lambda b, x: b.log(x), lambda x: -1 / x ** 2),
    ("pow", lambda b, x: b.pow(x, b.full_like(2.5, x)), lambda x: 2.5 * 1.5 * x ** 0.5),
    ("x_sin_x", lambda b, x: b.mul(x, b.sin(x)), lambda x: 2 * np.cos(x) - x * np.sin(x)),
    ("logistic", lambda b, x: b.logistic(x),
     lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s)),
    ("rsqrt", lambda b, x: b.rsqrt(x), lambda x: 0.75 * x ** -2.5),
    ("div", lambda b, x: b.div(b.full_like(1, x), b.add(x, b.full_like(2, x))),
     lambda x: 2 / (x + 2) ** 3),
]


@pytest.mark.parametrize("name, build, want", SECOND_DERIVATIVES, ids=[s[0] for s in
                                                                        SECOND_DERIVATIVES])
def test_grad_of_grad_gives_the_second_derivative(name, build, want):
    fn = make_fn(build, f64[()], name=name)
    d2 = grad(_derivative(fn))
    for x in (0.3, 1.1, 2.0):
        value, second = interpret(d2, np.array(x))
        np.testing.assert_allclose(value, interpret(_derivative(fn), np.array(x))[0])
        np.testing.assert_allclose(second, want(x), rtol=1e-12)


def test_third_derivative_of_sin_is_minus_cos():
    fn = make_fn(lambda b, x: b.sin(x), f64[()], name="sin")
    d3 = _derivative(_derivative(_derivative(fn)))
    for x in (0.0, 0.7, 2.5):
        np.testing.assert_allclose(interpret(d3, np.array(x))[0], -np.cos(x), rtol=1e-12)


def _quadratic_plus_sin():
    """f(x) = x.A x / 2 + sum(sin x): H = (A + A^T) / 2 - diag(sin x)."""
    def build(b, x, a):
        ax = b.dot_general(a, x, contract=((1,), (0,)), batch=((), ()))
        xax = b.dot_general(x, ax, contract=((0,), (0,)), batch=((), ()))
        quad = b.mul(xax, b.const(0.5, x.dtype))
        return b.add(quad, b.reduce_sum(b.sin(x), axes=(0,)))
    return make_fn(build, f64[4], f64[4, 4], name="quad")


def _hessian(x, a):
    return (a + a.T) / 2 - np.diag(np.sin(x))


@pytest.mark.parametrize("outer", [jvp, vjp], ids=["forward_over_reverse",
                                                   "reverse_over_reverse"])
def test_hessian_vector_product(outer):
    """jvp of the gradient along v is H v (HVP, the standard composition); so is the vjp
    with v as the cotangent, H being symmetric."""
    fn = _quadratic_plus_sin()
    rng = np.random.default_rng(0)
    x, a, v = rng.standard_normal(4), rng.standard_normal((4, 4)), rng.standard_normal(4)
    hvp = outer(take_results(grad(fn, wrt=(0,)), [1]), wrt=(0,))
    grad_x, hv = interpret(hvp, x, a, v)
    np.testing.assert_allclose(grad_x, (a + a.T) / 2 @ x + np.cos(x), rtol=1e-12)
    np.testing.assert_allclose(hv, _hessian(x, a) @ v, rtol=1e-12)


def test_hessian_of_a_scan_matches_finite_differences_of_its_gradient():
    """grad of a loss over an RNN scan, differentiated again (forward and reverse)."""
    case = next(c for c in cases_of("scan") if c.label == "rnn")
    step = case.fn().body[0]

    def loss(b, h, w, xs):
        h_last, _, ys = b.emit("scan", h, w, xs, regions=step.regions, **step.params)
        return b.add(b.reduce_sum(h_last, axes=(0,)), b.reduce_sum(ys, axes=(0, 1)))

    fn = make_fn(loss, f64[3], f64[3], f64[4, 3], name="rnn_loss")
    gradient = take_results(grad(fn), [1, 2, 3])
    check_grads(gradient, case.sample(), order=1)


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_second_order_matches_finite_differences(name):
    """check_grads(order=2): the VJP and JVP Functions are themselves checked in both modes."""
    for case in cases_of(name):
        check_grads(case.fn(), case.sample(), order=2, modes=case.modes)


@settings(max_examples=10, deadline=None)
@given(steps=st.lists(PROGRAM_STEP, min_size=1, max_size=6), nparams=st.integers(1, 2),
       seed=st.integers(0, 2**16))
def test_random_programs_second_order(steps, nparams, seed):
    fn = make_fn(random_program(steps), *([f64[3]] * nparams))
    args = [np.random.default_rng(seed + i).uniform(-1.5, 1.5, 3) for i in range(nparams)]
    check_grads(fn, args, order=2, seed=seed)
