"""GRADJIT_BOUNDS_CHECK covers the small products (codegen.small_gemm through
codegen.bounds.CheckedBuilder): every load and store they emit is checked, a correct product
is unchanged bit for bit, and a product whose addresses leave a buffer (a plan made wrong on
purpose: one row, one column, a leading dimension or a batch offset too many) raises
BoundsError instead of reading or writing outside it.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from llvmlite import ir as ll

import runtime
from codegen import bounds, dots, gemm_tiles, small_gemm
from codegen.buffers import KernelContext
from codegen.loops import i64
from tests.codegen.test_small_gemm import NP, _batched_dot
from tests.codegen.test_small_gemm_layouts import _heads_product


def _run(fn, args, bounds_check):
    before = small_gemm.STATS["emitted"], bounds.STATS["checked"]
    (out,) = runtime.build_executable(fn, bounds_check=bounds_check).run(args)
    return out, small_gemm.STATS["emitted"] > before[0], bounds.STATS["checked"] - before[1]


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(2, 4), m=st.integers(1, 24), n=st.integers(1, 32),
       k=st.integers(1, 80), a_trans=st.booleans(), b_trans=st.booleans(),
       c_trans=st.booleans(), dtype=st.sampled_from(["f32", "f64"]))
def test_checked_small_products_are_the_unchecked_ones(batch, m, n, k, a_trans, b_trans,
                                                        c_trans, dtype):
    """Every layout (A, B, C transposed or not; B packed by tiles, by columns, by a plain
    loop): the checked kernel checks its accesses and gives the unchecked one's bits."""
    fn, ref = _batched_dot(batch, m, n, k, a_trans, b_trans, c_trans, dtype)
    rng = np.random.default_rng(batch * 1000 + m * 100 + n + k)
    args = [rng.uniform(-1, 1, p.type.shape).astype(NP[dtype]) for p in fn.params]
    with pytest.MonkeyPatch.context() as patch:     # every product to the gemm kernels
        patch.setattr(dots, "MIN_GEMM_MACS", 1)
        out, used, checked = _run(fn, args, True)
        plain, used_plain, unchecked = _run(fn, args, False)
    assert used == used_plain
    assert (checked > 0) == used and unchecked == 0
    np.testing.assert_array_equal(out, plain)
    tol = (1e-6 if dtype == "f32" else 1e-14) * np.sqrt(k)
    np.testing.assert_allclose(out, ref(*args), rtol=0, atol=tol)


def _spoiled(how):
    """small_gemm.emit with its plan made wrong in one way (how)."""
    emit = small_gemm.emit

    def spoiled(bld, ctx, batch_shape, m, n, k, lhs, rhs, c, elem, offset, *rest):
        if how == "row":
            m += 1
        elif how == "column":
            k += 1
        elif how == "ld":
            rhs = (rhs[0], rhs[1] + 7, rhs[2])
        elif how.startswith("offset"):
            side = int(how[-1])
            inner = offset

            def offset(bld, p, dims, s):
                q = inner(bld, p, dims, s)
                return bld.gep(q, [i64(5)], inbounds=True, source_etype=elem) if s == side else q
        return emit(bld, ctx, batch_shape, m, n, k, lhs, rhs, c, elem, offset, *rest)
    return spoiled


HOW = ["row", "column", "ld", "offset0", "offset1", "offset2"]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("rhs_trans, k", [(False, 16), (True, 16), (True, 12), (True, 80)])
def test_a_product_leaving_its_buffers_raises(how, rhs_trans, k, monkeypatch):
    """Attention-shaped products (B in row order; B^T packed by tiles, by columns, by a
    loop) with a spoiled plan: BoundsError, and the output is never handed back."""
    fn, args, _ = _heads_product(1, 2, 8, 8, k, rhs_trans, "f32")
    monkeypatch.setattr(dots, "MIN_GEMM_MACS", 1)
    monkeypatch.setattr(small_gemm, "emit", _spoiled(how))
    before = bounds.STATS["checked"]
    exe = runtime.build_executable(fn, bounds_check=True)
    assert bounds.STATS["checked"] > before
    guard = [a.copy() for a in args]
    with pytest.raises(runtime.BoundsError, match="out-of-bounds buffer"):
        exe.run(args)
    for a, g in zip(args, guard):        # inputs untouched (stores went to a scratch slot)
        np.testing.assert_array_equal(a, g)


def test_an_address_the_builder_cannot_follow_is_refused():
    """A load through a pointer not derived from a tracked buffer or a stack array is a
    compile-time CheckError, not an unchecked access."""
    module = ll.Module()
    f32 = ll.FloatType()
    func = ll.Function(module, ll.FunctionType(ll.VoidType(), [ll.PointerType(f32)] * 2), "f")
    ctx = KernelContext(func, func.args[1], True)
    checked = bounds.CheckedBuilder(ctx.bld, ctx)
    with pytest.raises(bounds.CheckError, match="unchecked address"):
        checked.load(checked.gep(func.args[0], [i64(1)], source_etype=f32), typ=f32)
    checked.track(func.args[0], f32, 4)
    with pytest.raises(bounds.CheckError, match="buffer of float"):
        checked.load(func.args[0], typ=ll.DoubleType())


@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 3), m=st.integers(1, 40), n=st.integers(1, 40),
       k=st.integers(1, 40), a_trans=st.booleans(), b_trans=st.booleans(),
       c_trans=st.booleans(), dtype=st.sampled_from(["f32", "f64"]))
def test_checked_blas_products_are_the_unchecked_ones(batch, m, n, k, a_trans, b_trans,
                                                       c_trans, dtype):
    """Products the BLAS makes (small_gemm refused): in bounds-check mode the span each call
    reads and writes is checked per batch element, and the bits are the unchecked ones."""
    fn, ref = _batched_dot(batch, m, n, k, a_trans, b_trans, c_trans, dtype)
    rng = np.random.default_rng(batch * 1000 + m * 100 + n + k)
    args = [rng.uniform(-1, 1, p.type.shape).astype(NP[dtype]) for p in fn.params]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dots, "MIN_GEMM_MACS", 1)
        patch.setattr(small_gemm, "fits", lambda *a: False)
        out, _, checked = _run(fn, args, True)
        plain, _, unchecked = _run(fn, args, False)
    assert checked >= 3 and unchecked == 0
    np.testing.assert_array_equal(out, plain)
    tol = (1e-6 if dtype == "f32" else 1e-14) * np.sqrt(k)
    np.testing.assert_allclose(out, ref(*args), rtol=0, atol=tol)


@pytest.mark.parametrize("kernel", ["blas", "tiles"])
@pytest.mark.parametrize("side", [0, 1, 2])
def test_a_blas_product_leaving_its_buffers_is_not_made(side, kernel, monkeypatch):
    """A product called out (the BLAS's, or codegen.gemm_tiles' function) whose operand
    (side 0, 1) or result (2) starts 5 elements late: BoundsError, the call skipped (nothing
    read or written outside the buffers)."""
    fn, args, _ = _heads_product(2, 2, 16, 16, 16, False, "f64")
    offset, calls = dots._offset, []

    def late(bld, base, dims, strides, elem):
        p = offset(bld, base, dims, strides, elem)
        calls.append(None)
        if (len(calls) - 1) % 3 == side:
            p = bld.gep(p, [i64(5)], inbounds=True, source_etype=elem)
        return p
    monkeypatch.setattr(dots, "MIN_GEMM_MACS", 1)
    monkeypatch.setattr(small_gemm, "fits", lambda *a: False)
    monkeypatch.setattr(dots, "_offset", late)
    if kernel == "blas":
        monkeypatch.setattr(gemm_tiles, "fits", lambda *a: False)
    monkeypatch.setattr(gemm_tiles, "MIN_MACS", 0)
    emitted = gemm_tiles.STATS["calls_emitted"]
    exe = runtime.build_executable(fn, bounds_check=True)
    assert calls
    assert (gemm_tiles.STATS["calls_emitted"] > emitted) == (kernel == "tiles")
    guard = [a.copy() for a in args]
    with pytest.raises(runtime.BoundsError, match="load" if side < 2 else "store"):
        exe.run(args)
    for a, g in zip(args, guard):
        np.testing.assert_array_equal(a, g)
