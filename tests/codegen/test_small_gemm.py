"""Batched small products emitted as vector code (codegen.small_gemm) instead of BLAS calls.

Checked against float64 NumPy (every layout: either operand transposed, the result stored
transposed, batch axes anywhere), against the BLAS path of the same program (close: the order
of additions differs), by a counter that the kernel was used, and through autodiff: float64
gradients of a batched product against central finite differences.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
import runtime
from codegen import small_gemm
from codegen.dots import MIN_GEMM_MACS
from tests.gradcheck import check_grads, f64, make_fn as grad_fn
from tests.gradcheck import numeric_grad
from tests.prim_samples import T, make_fn

NP = {"f32": np.float32, "f64": np.float64}


def _build(fn, small: bool):
    """A fresh executable of fn (no cache), with the small kernel on or off."""
    with pytest.MonkeyPatch.context() as m:
        if not small:
            m.setattr(small_gemm, "fits", lambda *a, **k: False)
        return runtime.build_executable(fn)


def _batched_dot(batch, m, n, k, a_trans, b_trans, c_trans, dtype):
    """A Function of one batched dot_general in the requested layouts, and its NumPy form."""
    a_shape = (batch, k, m) if a_trans else (batch, m, k)
    b_shape = (batch, n, k) if b_trans else (batch, k, n)

    def body(b, x, y):
        out = b.dot_general(x, y, contract=((1 if a_trans else 2,), (2 if b_trans else 1,)),
                            batch=((0,), (0,)))
        return [b.transpose(out, perm=(0, 2, 1)) if c_trans else out]
    fn = make_fn("bdot", [T(dtype, a_shape), T(dtype, b_shape)], body)

    def ref(x, y):
        x = x.swapaxes(1, 2) if a_trans else x
        y = y.swapaxes(1, 2) if b_trans else y
        out = x.astype(np.float64) @ y.astype(np.float64)
        return out.swapaxes(1, 2) if c_trans else out
    return fn, ref


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(2, 5), m=st.integers(1, 20), n=st.integers(1, 64),
       k=st.integers(1, 40), a_trans=st.booleans(), b_trans=st.booleans(),
       c_trans=st.booleans(), dtype=st.sampled_from(["f32", "f64"]))
def test_batched_products_match_numpy_and_the_blas(batch, m, n, k, a_trans, b_trans, c_trans,
                                                   dtype):
    fn, ref = _batched_dot(batch, m, n, k, a_trans, b_trans, c_trans, dtype)
    rng = np.random.default_rng(batch * 1000 + m * 100 + n + k)
    args = [rng.uniform(-1, 1, p.type.shape).astype(NP[dtype]) for p in fn.params]
    before = small_gemm.STATS["emitted"]
    (out,) = _build(fn, True).run(args)
    used = small_gemm.STATS["emitted"] > before
    (blas,) = _build(fn, False).run(args)
    expected = ref(*args)
    tol = 1e-6 if dtype == "f32" else 1e-14
    scale = np.sqrt(k)          # the error of a k-term sum of O(1) products
    np.testing.assert_allclose(out, expected, rtol=0, atol=tol * scale)
    np.testing.assert_allclose(out, blas, rtol=0, atol=2 * tol * scale)
    if m * n * k >= MIN_GEMM_MACS and not (b_trans or c_trans) and min(m, n, k) > 1:
        assert used == (n * np.dtype(NP[dtype]).itemsize <= small_gemm.MAX_ROW_BYTES)


@pytest.mark.parametrize("a_trans, b_trans, c_trans", [(False, True, False),
                                                       (False, False, False),
                                                       (True, False, True)])
def test_attention_shapes_use_the_kernel(a_trans, b_trans, c_trans):
    """A transformer block's head products (64 heads of 32x32x16 and 32x16x32) are emitted
    here, and are as accurate as the BLAS's."""
    fn, ref = _batched_dot(64, 32, 16 if c_trans else 32, 32 if c_trans else 16,
                           a_trans, b_trans, c_trans, "f32")
    rng = np.random.default_rng(1)
    args = [rng.standard_normal(p.type.shape).astype(np.float32) for p in fn.params]
    before = small_gemm.STATS["emitted"]
    (out,) = _build(fn, True).run(args)
    assert small_gemm.STATS["emitted"] == before + 1
    (blas,) = _build(fn, False).run(args)
    expected = ref(*args)
    err, blas_err = np.abs(out - expected).max(), np.abs(blas - expected).max()
    assert err <= 2 * blas_err + 1e-6


def test_float64_gradients_of_a_batched_product_match_finite_differences(gradjit_env):
    """The VJP of a batched product is two batched products (one with a transposed operand),
    both small enough for the kernel: the compiled gradient against central differences."""
    def loss(x, y):
        return gj.sum(gj.tanh(x @ y))
    gradjit_env("GRADJIT_DISK_CACHE", "0")      # compiled here, so the counter sees it
    runtime.clear_cache()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 24, 20)) * 0.3
    y = rng.standard_normal((3, 20, 24)) * 0.3
    before = small_gemm.STATS["emitted"]
    gx, gy = gj.grad(loss, argnums=(0, 1))(gj.tensor(x), gj.tensor(y))
    assert small_gemm.STATS["emitted"] > before
    for g, num in ((gx, numeric_grad(lambda a: np.tanh(a @ y).sum(), x)),
                   (gy, numeric_grad(lambda b: np.tanh(x @ b).sum(), y))):
        np.testing.assert_allclose(g.numpy(), num, rtol=1e-6, atol=1e-7)


def test_interpreter_gradients_agree_with_the_ir():
    """check_grads on the reference interpreter: the batched product's rules themselves."""
    fn = grad_fn(lambda b, x, y: b.reduce_sum(
        b.dot_general(x, y, contract=((2,), (1,)), batch=((0,), (0,))), axes=(0, 1, 2)),
        f64[3, 4, 5], f64[3, 5, 6])
    rng = np.random.default_rng(4)
    check_grads(fn, [rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 5, 6))], order=1)
