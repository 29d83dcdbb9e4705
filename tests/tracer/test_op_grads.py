"""Derivatives of every differentiable op through the IR autodiff (the composite's VJP is
the composition of its primitives' VJPs): reverse and forward mode against central finite
differences in float64 (tests/gradcheck.py), and forward against reverse, <u, J v> ==
<J^T u, v>. Plus the subgradients PyTorch picks at kinks and ties."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracer.ops as gj
from ir.autodiff import grad, jvp, vjp
from ir.core import is_float
from ir.interpret import interpret
from tests.gradcheck import as_float64, check_grads
from tests.tracer.specs import case_id, cases
from tests.tracer.specs_math import ELEMENTWISE, NEURAL, REDUCTIONS
from tests.tracer.specs_struct import STRUCT_SPECS
from tests.tracer.tracing import trace_on

DIFFERENTIABLE = [s for s in ELEMENTWISE + REDUCTIONS + NEURAL + STRUCT_SPECS if s.grad]
SECOND_ORDER = ("exp", "tanh", "sigmoid", "div", "pow_tensor", "logsumexp", "softmax",
                "cross_entropy", "matmul", "prod_dim", "std", "einsum[ij,jk,kl->il]")


@pytest.mark.parametrize("spec,shapes", cases(DIFFERENTIABLE), ids=case_id)
def test_vjp_and_jvp_match_finite_differences(spec, shapes):
    args = spec.sample(shapes, np.random.default_rng(3))
    fn, full = trace_on(spec.fn, args)
    check_grads(fn, full, order=1, modes=("fwd", "rev"), rtol=1e-5, atol=1e-7)


def jvp_vjp_inner_products(fn, args, seed=0) -> tuple[float, float]:
    """(<u, J v>, <J^T u, v>) for random u, v, in float64."""
    fn = as_float64(fn)
    args = [np.asarray(a, p.type.np_dtype) for a, p in zip(args, fn.params)]
    rng = np.random.default_rng(seed)
    v = [rng.standard_normal(p.shape) for p in fn.params if is_float(p.dtype)]
    u = [rng.standard_normal(r.shape) for r in fn.results if is_float(r.dtype)]
    n = len(fn.results)
    jv = interpret(jvp(fn), *args, *v)[n:]
    jtu = interpret(vjp(fn), *args, *u)[n:]
    forward = sum(float(np.vdot(a, b)) for a, b in zip(u, jv))
    reverse = sum(float(np.vdot(a, b)) for a, b in zip(jtu, v))
    return forward, reverse


@pytest.mark.parametrize("spec,shapes", cases(DIFFERENTIABLE, which=2), ids=case_id)
def test_jvp_agrees_with_vjp(spec, shapes):
    args = spec.sample(shapes, np.random.default_rng(4))
    fn, full = trace_on(spec.fn, args)
    forward, reverse = jvp_vjp_inner_products(fn, full)
    assert forward == pytest.approx(reverse, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("spec", [s for s in DIFFERENTIABLE if s.name in SECOND_ORDER],
                         ids=case_id)
def test_second_order_matches_finite_differences(spec):
    args = spec.first_case(np.random.default_rng(5))
    fn, full = trace_on(spec.fn, args)
    check_grads(fn, full, order=2, modes=("rev",), rtol=1e-4, atol=1e-6)


BINARY = {s.name: s for s in ELEMENTWISE if len(s.shapes[0]) == 2}


@settings(max_examples=15, deadline=None)
@given(name=st.sampled_from(sorted(BINARY)),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       seed=st.integers(0, 2 ** 16))
def test_broadcast_gradients_on_random_shapes(name, shapes, seed):
    """Broadcasting is undone in the VJP (sums over stretched axes)."""
    spec = BINARY[name]
    args = spec.sample(shapes.input_shapes, np.random.default_rng(seed))
    fn, full = trace_on(spec.fn, args)
    check_grads(fn, full, order=1, modes=("rev",), rtol=1e-5, atol=1e-7)


# ---- kinks, ties and zeros: PyTorch's choices --------------------------------------------

def gradients(f, *args) -> list[np.ndarray]:
    """The gradient of scalar f at args (float64), through ir.autodiff.grad."""
    fn, full = trace_on(f, [np.asarray(a, np.float64) for a in args])
    return interpret(grad(fn, wrt=tuple(range(len(args)))), *full)[1:]


def test_maximum_and_minimum_split_the_gradient_at_ties():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])
    gx, gy = gradients(lambda a, b: gj.maximum(a, b).sum(), x, y)
    np.testing.assert_array_equal(gx, [0.5, 1.0, 0.5])
    np.testing.assert_array_equal(gy, [0.5, 0.0, 0.5])
    gx, gy = gradients(lambda a, b: gj.minimum(a, b).sum(), x, y)
    np.testing.assert_array_equal(gx, [0.5, 0.0, 0.5])
    np.testing.assert_array_equal(gy, [0.5, 1.0, 0.5])


def test_relu_abs_and_clamp_subgradients_at_their_kinks():
    x = np.array([-1.0, 0.0, 0.5, 1.0])
    (g,) = gradients(lambda a: gj.relu(a).sum(), x)
    np.testing.assert_array_equal(g, [0, 0, 1, 1])
    (g,) = gradients(lambda a: gj.abs(a).sum(), x)
    np.testing.assert_array_equal(g, [-1, 0, 1, 1])
    (g,) = gradients(lambda a: gj.clamp(a, 0.0, 0.5).sum(), x)
    np.testing.assert_array_equal(g, [0, 1, 1, 0])        # inclusive bounds, as PyTorch


def test_max_with_dim_sends_the_gradient_to_the_index_and_amax_splits_ties():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]])
    (g,) = gradients(lambda a: gj.max(a, 1).values.sum(), x)
    idx = np.argmax(x, 1)
    want = np.zeros_like(x)
    want[np.arange(2), idx] = 1
    np.testing.assert_array_equal(g, want)
    (g,) = gradients(lambda a: gj.amax(a, 1).sum(), x)
    np.testing.assert_array_equal(g, [[0, 0.5, 0.5], [0.5, 0, 0.5]])
    (g,) = gradients(lambda a: gj.max(a), x)
    np.testing.assert_array_equal(g, [[0, 0.5, 0.5], [0, 0, 0]])


def test_prod_gradient_with_zeros_is_the_product_of_the_others():
    for x in (np.array([2.0, 0.0, 3.0, 0.5, 1.5]), np.array([2.0, 0.0, 3.0, 0.0])):
        (g,) = gradients(lambda a: gj.prod(a), x)
        want = [np.prod(np.delete(x, i)) for i in range(x.size)]
        np.testing.assert_allclose(g, want, rtol=1e-15)
