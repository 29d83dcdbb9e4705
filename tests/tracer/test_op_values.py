"""Values of every op against NumPy: traced (reference interpreter) at several shapes
(0-d, size-1 axes, broadcasting pairs), in float32, through the imperative front, and on
shapes drawn by hypothesis."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracer.ops as gj
from tests.tracer.specs import as_list, case_id, cases
from tests.tracer.specs_logic import LOGIC
from tests.tracer.specs_math import ELEMENTWISE, NEURAL, REDUCTIONS
from tests.tracer.specs_struct import STRUCT_SPECS
from tests.tracer.tracing import run_traced
from tracer.tensor import tensor_from_array

ALL_SPECS = ELEMENTWISE + REDUCTIONS + NEURAL + STRUCT_SPECS + LOGIC


def _compare(got, want, rtol, atol=1e-12):
    got, want = as_list(got), as_list(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert np.shape(g) == w.shape, f"shape {np.shape(g)} != {w.shape}"
        np.testing.assert_allclose(np.asarray(g, dtype=np.float64), w.astype(np.float64),
                                   rtol=rtol, atol=atol)


@pytest.mark.parametrize("spec,shapes", cases(ALL_SPECS), ids=case_id)
def test_traced_value_matches_numpy(spec, shapes):
    args = spec.sample(shapes, np.random.default_rng(0))
    got = run_traced(spec.fn, args)
    _compare(got, spec.ref(*args), rtol=spec.rtol)
    for g, w in zip(got, as_list(spec.ref(*args))):
        if np.asarray(w).dtype.kind == "f":
            assert g.dtype == np.float64, "f64 inputs must give f64 results"


@pytest.mark.parametrize("spec", ALL_SPECS, ids=case_id)
def test_float32_inputs_give_float32_results(spec):
    args = spec.first_case(np.random.default_rng(1), np.float32)
    got = run_traced(spec.fn, args)
    want = as_list(spec.ref(*(a.astype(np.float64) for a in args)))
    for g, w in zip(got, want):
        if np.asarray(w).dtype.kind == "f":
            assert g.dtype == np.float32
    _compare(got, want, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("spec", ALL_SPECS, ids=case_id)
def test_imperative_value_matches_numpy(spec):
    """The same op on realised tensors: the lazy graph is compiled and run by the pipeline."""
    args = spec.first_case(np.random.default_rng(2))
    out = spec.fn(*(tensor_from_array(a) for a in args))
    _compare([np.asarray(o) for o in as_list(out)], spec.ref(*args), rtol=1e-7, atol=1e-10)


def test_free_functions_take_numpy_arrays_and_scalars():
    x = np.array([[1.0, -2.0], [3.0, 0.5]])
    np.testing.assert_allclose(np.asarray(gj.add(x, 2)), x + 2)
    np.testing.assert_allclose(np.asarray(gj.mul(3, x)), 3 * x)
    np.testing.assert_allclose(np.asarray(gj.maximum(x, 0.75)), np.maximum(x, 0.75))
    np.testing.assert_allclose(np.asarray(gj.matmul(x, [1.0, 2.0])), x @ [1.0, 2.0])
    np.testing.assert_allclose(np.asarray(gj.exp(2.0)), np.exp(np.float32(2.0)), rtol=1e-6)
    t = tensor_from_array(x)
    np.testing.assert_allclose(np.asarray(x * t), x * x)     # ndarray on the left
    np.testing.assert_allclose(np.asarray(1 - t), 1 - x)
    np.testing.assert_allclose(np.asarray(2 ** t), 2 ** x)


# ---- hypothesis: shapes drawn at random ---------------------------------------------------

ELEMENTWISE_BINARY = {s.name: s for s in ELEMENTWISE if len(s.shapes[0]) == 2}
ELEMENTWISE_UNARY = {s.name: s for s in ELEMENTWISE if len(s.shapes[0]) == 1}
SMALL = dict(min_side=1, max_side=4)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(ELEMENTWISE_BINARY)),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, **SMALL),
       seed=st.integers(0, 2 ** 16))
def test_binary_broadcasting_on_random_shapes(name, shapes, seed):
    spec = ELEMENTWISE_BINARY[name]
    args = spec.sample(shapes.input_shapes, np.random.default_rng(seed))
    got = run_traced(spec.fn, args)
    _compare(got, spec.ref(*args), rtol=1e-7)
    assert got[0].shape == shapes.result_shape


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(sorted(ELEMENTWISE_UNARY)),
       shape=hnp.array_shapes(min_dims=0, max_dims=3, **SMALL), seed=st.integers(0, 2 ** 16))
def test_unary_on_random_shapes(name, shape, seed):
    spec = ELEMENTWISE_UNARY[name]
    args = spec.sample((shape,), np.random.default_rng(seed))
    _compare(run_traced(spec.fn, args), spec.ref(*args), rtol=1e-7)


@settings(max_examples=30, deadline=None)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, **SMALL), data=st.data())
def test_reductions_on_random_axes(shape, data):
    axes = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1,
                              max_size=len(shape), unique_by=lambda a: a % len(shape)))
    keep = data.draw(st.booleans())
    x = np.random.default_rng(len(axes)).normal(size=shape)
    ax = tuple(axes)
    fns = [(lambda t: gj.sum(t, ax, keep), lambda a: np.sum(a, ax, keepdims=keep)),
           (lambda t: gj.mean(t, dim=ax, keepdim=keep), lambda a: np.mean(a, ax, keepdims=keep)),
           (lambda t: gj.amax(t, ax, keep), lambda a: np.max(a, ax, keepdims=keep)),
           (lambda t: gj.prod(t, ax, keep), lambda a: np.prod(a, ax, keepdims=keep)),
           (lambda t: gj.var(t, ax, keepdim=keep, correction=0),
            lambda a: np.var(a, ax, keepdims=keep)),
           (lambda t: gj.logsumexp(t, ax, keep),
            lambda a: np.log(np.sum(np.exp(a), ax, keepdims=keep)))]
    for fn, ref in fns:
        _compare(run_traced(fn, [x]), ref(x), rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(
    signature=np.matmul.signature, max_dims=2, **SMALL), seed=st.integers(0, 2 ** 16))
def test_matmul_on_random_shapes(shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = (rng.normal(size=s) for s in shapes.input_shapes)
    _compare(run_traced(gj.matmul, [a, b]), np.matmul(a, b), rtol=1e-10)
