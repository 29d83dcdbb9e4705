"""The Tensor surface and the finer points: random basic indexing against NumPy, boolean
masks, both dim=/axis= spellings, (values, indices) results, numerical stability of the
neural functions at logits of magnitude 1e3, and the method table."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tracer.ops as gj
from ir.autodiff import grad
from ir.interpret import interpret
from tests.tracer.specs_math import ce_ref
from tests.tracer.tracing import run_traced, trace_on
from tracer.pipeline import compile_function
from tracer.tensor import Tensor, tensor_from_array


@st.composite
def basic_keys(draw, shape):
    """A random basic index for shape: ints, slices with steps, None and at most one ..."""
    key, dims = [], list(shape)
    ellipsis = draw(st.booleans())
    while dims:
        if ellipsis and draw(st.integers(0, 3)) == 0:
            key.append(Ellipsis)
            ellipsis = False
            break
        n = dims.pop(0)
        kind = draw(st.sampled_from(["int", "slice", "none", "full"]))
        if kind == "int":
            key.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            lo = draw(st.none() | st.integers(-n - 1, n + 1))
            hi = draw(st.none() | st.integers(-n - 1, n + 1))
            key.append(slice(lo, hi, draw(st.none() | st.integers(1, 3))))
        elif kind == "none":
            key.extend([None, slice(None)])
        else:
            key.append(slice(None))
    return tuple(key)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_basic_indexing_matches_numpy(data):
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple))
    key = data.draw(basic_keys(shape))
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    (got,) = run_traced(lambda t: t[key], [x])
    np.testing.assert_array_equal(got, x[key])


def test_boolean_masks_on_concrete_tensors():
    x = np.arange(24.0).reshape(2, 3, 4)
    t = tensor_from_array(x)
    np.testing.assert_array_equal(np.asarray(t[t > 10.5]), x[x > 10.5])
    mask = np.array([[True, False, True], [False, False, True]])
    np.testing.assert_array_equal(np.asarray(t[mask]), x[mask])
    np.testing.assert_array_equal(np.asarray(t[:, [True, False, True]]), x[:, [True, False, True]])
    np.testing.assert_array_equal(np.asarray(t[tensor_from_array(mask), 1:3]), x[mask, 1:3])


def test_integer_array_index_may_be_traced():
    """An index computed in traced code (argmax) gathers, with negatives wrapped."""
    x = np.random.default_rng(0).normal(size=(4, 5))
    (got,) = run_traced(lambda t: t[gj.argmax(t, 0) - 4], [x])
    np.testing.assert_array_equal(got, x[np.argmax(x, 0) - 4])


def test_iteration_and_len():
    x = np.arange(6.0).reshape(3, 2)
    rows = list(tensor_from_array(x))
    assert len(rows) == 3
    for r, want in zip(rows, x):
        np.testing.assert_array_equal(np.asarray(r), want)


def test_dim_and_axis_spellings_agree():
    x = tensor_from_array(np.random.default_rng(1).normal(size=(3, 4)))
    pairs = [(x.sum(dim=1, keepdim=True), gj.sum(x, axis=1, keepdims=True)),
             (x.mean(dim=0), gj.mean(x, axis=0)), (x.amax(dim=-1), gj.amax(x, axis=-1)),
             (gj.cat([x, x], dim=1), gj.concatenate([x, x], axis=1)),
             (x.var(dim=1), gj.var(x, axis=1, ddof=1)), (gj.softmax(x, dim=1), x.softmax(1))]
    for a, b in pairs:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_max_with_dim_returns_values_and_indices_like_torch():
    x = tensor_from_array(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]]))
    out = x.max(dim=1)
    values, indices = out
    np.testing.assert_array_equal(np.asarray(out.values), [5.0, 7.0])
    np.testing.assert_array_equal(np.asarray(indices), [1, 0])
    assert repr(out).startswith("torch.return_types.max(\nvalues=")
    lo = gj.min(x, 0, keepdim=True)
    assert tuple(lo.values.shape) == (1, 3) and repr(lo).startswith("torch.return_types.min(")
    np.testing.assert_array_equal(np.asarray(gj.max(x, x * 0 + 3)), np.maximum(np.asarray(x), 3))


def test_einsum_takes_a_list_of_operands():
    a, b = (np.random.default_rng(2).normal(size=s) for s in ((2, 3), (3, 4)))
    got = gj.einsum("ij,jk->ik", [tensor_from_array(a), b])
    np.testing.assert_allclose(np.asarray(got), a @ b, rtol=1e-12)


BIG = np.array([[1000.0, -1000.0, 999.0, 0.0], [-1000.0, -1001.0, 1000.0, 1000.0]],
               np.float32)
TARGET = np.array([1, 0])
STABLE = [
    ("softmax", lambda x: (gj.softmax(x, 1) * np.arange(4.0)).sum()),
    ("log_softmax", lambda x: gj.log_softmax(x, 1).sum()),
    ("logsumexp", lambda x: gj.logsumexp(x, 1).sum()),
    ("cross_entropy", lambda x: gj.cross_entropy(x, TARGET)),
    ("softplus", lambda x: gj.softplus(x).sum()),
    ("sigmoid", lambda x: gj.sigmoid(x).sum()),
]


@pytest.mark.parametrize("name,f", STABLE, ids=[n for n, _ in STABLE])
def test_large_logits_give_finite_values_and_gradients(name, f):
    fn, full = trace_on(f, [BIG])
    g = grad(fn)
    for outs in (interpret(g, *full), compile_function(g)(*full)):
        assert all(np.isfinite(o).all() for o in outs), outs
    f64, full64 = trace_on(f, [BIG.astype(np.float64)])
    want = interpret(grad(f64), *full64)
    for got, w in zip(compile_function(g)(*full), want):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)


def test_cross_entropy_at_large_logits_matches_the_exact_value():
    loss = gj.cross_entropy(tensor_from_array(BIG.astype(np.float64)), TARGET)
    np.testing.assert_allclose(float(loss), ce_ref(BIG.astype(np.float64), TARGET), rtol=1e-12)
    assert float(loss) == pytest.approx((2000.0 + np.log1p(np.exp(-1.0) + np.exp(-1000.0))
                                         + 2000.0 + np.log(2.0)) / 2, rel=1e-12)


METHODS = ("add sub mul div neg pow exp log log1p expm1 sqrt rsqrt abs sign sin cos tan tanh "
           "sigmoid relu maximum minimum clamp where sum mean max min prod var std logsumexp "
           "argmax argmin amax amin matmul dot outer reshape view transpose permute expand "
           "broadcast_to squeeze unsqueeze flatten split chunk float double long int bool to "
           "type_as gather index_add scatter_add softmax log_softmax eq ne lt le gt ge").split()


def test_tensor_has_the_methods_and_operators():
    missing = [m for m in METHODS if not callable(getattr(Tensor, m, None))]
    assert not missing
    x = tensor_from_array(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(np.asarray(x.T), [[1.0, 3.0], [2.0, 4.0]])
    np.testing.assert_array_equal(np.asarray(abs(-x)), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(+x), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(x.where(x > 2, 0.0)), [[0, 0], [3, 4]])
    np.testing.assert_array_equal(np.asarray(x.view_as(x.reshape(4)).shape), [4])
