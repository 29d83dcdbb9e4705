"""Rows of a small product cut into register-sized vector pieces (small_gemm.row_pieces).

A row of C of a length that is not a power of two (gmm's 10 doubles) used to be one LLVM
vector, which LLVM carries across the loop's back edge as many 2-element registers rebuilt
by shuffles when it outgrows one register. The pieces only change how a row is held:
checked bitwise against the whole-row code (row_pieces patched back to one vector), against
NumPy and the reference interpreter, with bounds checks on, and through the gmm objective's
gradient.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from llvmlite import ir as ll

import gradjit as gj
import runtime
from benchmarks.objectives import gmm_objective, lower_index
from codegen import dots, small_gemm
from ir.interpret import interpret
from tracer import pipeline
from tests.codegen.test_small_gemm import NP, _batched_dot


def _whole_rows(elem, n, lanes):
    """The code before the pieces: a row of C is one vector of n elements."""
    return [(0, ll.VectorType(elem, n))]


def _run(fn, args, whole: bool, bounds_check: bool = False):
    """(result, small_gemm used, pieces per row) of a fresh executable of fn; every product
    goes to the gemm kernels, however small."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(dots, "MIN_GEMM_MACS", 1)
        if whole:
            m.setattr(small_gemm, "row_pieces", _whole_rows)
        before = small_gemm.STATS["emitted"]
        (out,) = runtime.build_executable(fn, bounds_check=bounds_check).run(args)
        return out, small_gemm.STATS["emitted"] > before, small_gemm.STATS["pieces"]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 200), lanes=st.sampled_from([2, 4, 8, 16]))
def test_pieces_are_whole_registers_then_the_rest_in_order(n, lanes):
    pieces = small_gemm.row_pieces(ll.DoubleType(), n, lanes)
    first = 0
    for start, vec in pieces:
        assert start == first
        assert vec.count == lanes or (vec.count < lanes and start + vec.count == n)
        first += vec.count
    assert first == n
    assert len(pieces) == -(-n // lanes)


@settings(max_examples=30, deadline=None)   # rows of at most 32: C^T too fits the kernel
@given(batch=st.integers(2, 4), m=st.integers(1, 32), n=st.integers(1, 32),
       k=st.integers(1, 24), a_trans=st.booleans(), b_trans=st.booleans(),
       c_trans=st.booleans(), dtype=st.sampled_from(["f32", "f64"]))
def test_pieces_give_the_whole_row_codes_bits(batch, m, n, k, a_trans, b_trans, c_trans, dtype):
    fn, ref = _batched_dot(batch, m, n, k, a_trans, b_trans, c_trans, dtype)
    rng = np.random.default_rng(batch * 1000 + m * 100 + n + k)
    args = [rng.uniform(-1, 1, p.type.shape).astype(NP[dtype]) for p in fn.params]
    out, used, _ = _run(fn, args, whole=False, bounds_check=True)
    whole, used_whole, _ = _run(fn, args, whole=True)
    assert used and used_whole
    np.testing.assert_array_equal(out, whole)
    tol = (1e-6 if dtype == "f32" else 1e-14) * np.sqrt(k)
    np.testing.assert_allclose(out, ref(*args), rtol=0, atol=tol)


@pytest.mark.parametrize("m, n, a_trans, b_trans, c_trans, row", [
    (10, 100, False, True, True, 10),     # gmm's forward product: C stored transposed
    (100, 10, False, False, False, 10),   # its backward products
    (100, 10, True, False, False, 10),
    (200, 13, False, False, False, 13),   # a shorter tail: 8 + 5 or 4 + 4 + 4 + 1
])
def test_gmm_shaped_products_use_pieces(m, n, a_trans, b_trans, c_trans, row):
    """25 products of (m x 10) @ (10 x n), rows of C (or C^T) of `row` elements: the kernel
    is used, no sum is kept in a vector of that length, and the results match NumPy, the
    interpreter and the whole rows."""
    fn, ref = _batched_dot(25, m, n, 10, a_trans, b_trans, c_trans, "f64")
    rng = np.random.default_rng(n)
    args = [rng.standard_normal(p.type.shape) for p in fn.params]
    out, used, pieces = _run(fn, args, whole=False)
    assert used and pieces > 1
    assert f"alloca <{row} x double>" not in runtime.lower(fn).llvm_ir     # the sums
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(small_gemm, "row_pieces", _whole_rows)
        assert f"alloca <{row} x double>" in runtime.lower(fn).llvm_ir
    whole, _, whole_pieces = _run(fn, args, whole=True)
    assert whole_pieces == 1
    np.testing.assert_array_equal(out, whole)
    np.testing.assert_allclose(out, ref(*args), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(out, interpret(fn, *args)[0], rtol=1e-13, atol=1e-13)


def test_gmm_gradient_is_unchanged_and_matches_finite_differences(gradjit_env):
    """The gmm objective (k=3, n=100, d=10): value and gradient bitwise those of the whole
    rows, and the gradient against float64 central differences."""
    gradjit_env("GRADJIT_DISK_CACHE", "0")
    k, n, d = 3, 100, 10            # products of 10x10x100: the gemm kernels
    rng = np.random.default_rng(5)
    args = (rng.standard_normal(k), rng.standard_normal((k, d)),
            rng.standard_normal((k, d + d * (d - 1) // 2)) * 0.1, rng.standard_normal((n, d)))
    idx = lower_index(d)

    def f(a, mu, q, x):
        return gmm_objective(gj, lambda t, i: t[:, gj.tensor(i)], gj.logsumexp, a, mu, q, x, idx)

    def value_and_grad():
        runtime.clear_cache()
        pipeline.clear_cache()
        before = small_gemm.STATS["emitted"]
        value, grads = gj.jit(gj.value_and_grad(lambda *a: f(*a), argnums=(0, 1, 2)))(*args)
        assert small_gemm.STATS["emitted"] > before
        return [np.asarray(value)] + [np.asarray(g) for g in grads]

    new = value_and_grad()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(small_gemm, "row_pieces", _whole_rows)
        old = value_and_grad()
    for a, b in zip(new, old):
        np.testing.assert_array_equal(a, b)

    def objective(*a):
        return gmm_objective(np, lambda t, i: t[:, i], _logsumexp, *a, idx)
    eps = 1e-6
    for arg in range(3):
        num = np.zeros_like(args[arg])
        for at in np.ndindex(args[arg].shape):
            plus, minus = [list(args) for _ in range(2)]
            plus[arg], minus[arg] = args[arg].copy(), args[arg].copy()
            plus[arg][at] += eps
            minus[arg][at] -= eps
            num[at] = (objective(*plus) - objective(*minus)) / (2 * eps)
        np.testing.assert_allclose(new[1 + arg], num, rtol=1e-5, atol=1e-5)


def _logsumexp(t, axis):
    top = t.max(axis=axis, keepdims=True)
    return np.log(np.exp(t - top).sum(axis=axis)) + np.squeeze(top, axis)
