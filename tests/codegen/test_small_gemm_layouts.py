"""codegen.small_gemm on attention's layouts: heads in the middle of a row (leading dimension
larger than the contracted one), a transposed right operand packed on the stack, checked
buffer indices; and the code LLVM makes of the packing stays small (no per-column loops
vectorised into scatters: they cost ~150 ms of LLVM time per backward on AVX2).
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import runtime
from runtime import engine
from codegen import small_gemm
from codegen.dots import MIN_GEMM_MACS
from tests.codegen.test_small_gemm import _batched_dot
from tests.prim_samples import T, make_fn


def _heads_product(batch, heads, m, n, k, rhs_trans, dtype):
    """q k^T (rhs_trans) or p v of arrays laid out (batch, rows, heads, k): every operand row
    is k elements of a heads*k row, as attention's reshaped projections are."""
    np_dtype = np.float32 if dtype == "f32" else np.float64
    if rhs_trans:
        shapes = [(batch, m, heads, k), (batch, n, heads, k)]
        dims = dict(contract=((3,), (3,)), batch=((0, 2), (0, 2)))
        spec = "bihp,bjhp->bhij"
    else:
        shapes = [(batch, m, heads, k), (batch, k, heads, n)]
        dims = dict(contract=((3,), (1,)), batch=((0, 2), (0, 2)))
        spec = "bihp,bphj->bhij"
    fn = make_fn("heads", [T(dtype, s) for s in shapes],
                 lambda b, x, y: [b.dot_general(x, y, **dims)])
    rng = np.random.default_rng(batch * 97 + heads * 31 + m * 7 + n * 3 + k)
    args = [rng.uniform(-1, 1, s).astype(np_dtype) for s in shapes]
    expected = np.einsum(spec, *(a.astype(np.float64) for a in args))
    return fn, args, expected


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 3), heads=st.integers(2, 4), m=st.integers(8, 40),
       n=st.integers(2, 64), k=st.integers(8, 40), rhs_trans=st.booleans(),
       dtype=st.sampled_from(["f32", "f64"]))
def test_head_products_with_strided_rows_match_numpy_with_checked_indices(
        batch, heads, m, n, k, rhs_trans, dtype):
    fn, args, expected = _heads_product(batch, heads, m, n, k, rhs_trans, dtype)
    before = small_gemm.STATS["emitted"]
    (out,) = runtime.build_executable(fn, bounds_check=True).run(args)
    (unchecked,) = runtime.build_executable(fn).run(args)
    itemsize = 4 if dtype == "f32" else 8
    fits = small_gemm.fits(batch * heads, m, n, k, rhs_trans, itemsize)
    used = small_gemm.STATS["emitted"] > before
    assert fits or not used
    if m * n * k >= MIN_GEMM_MACS:          # a gemm, not a loop nest
        assert used == fits
    tol = (1e-6 if dtype == "f32" else 1e-14) * np.sqrt(k)
    np.testing.assert_allclose(out, expected, rtol=0, atol=tol)
    np.testing.assert_array_equal(out, unchecked)


@pytest.mark.parametrize("heads, m, n, k, dtype", [
    (4, 32, 32, 16, "f32"),     # attention's q k^T: tiles of 8 x 8 transposed in registers
    (3, 24, 16, 24, "f32"),
    (4, 32, 16, 20, "f64"),     # tiles of 4 x 4
    (2, 32, 24, 20, "f32"),     # k not a multiple of the tile: packed column by column
    (2, 8, 12, 100, "f32"),     # and a column longer than MAX_COLUMN: a plain loop nest
])
def test_transposed_right_operands_pack_exactly(heads, m, n, k, dtype):
    """B stored transposed is copied (data movement only), so the product equals the one of
    the same data with B stored in row order, bit for bit, with checked indices."""
    fn, args, expected = _heads_product(2, heads, m, n, k, True, dtype)
    before = dict(small_gemm.STATS)
    (out,) = runtime.build_executable(fn, bounds_check=True).run(args)
    assert small_gemm.STATS["emitted"] == before["emitted"] + 1
    tile = small_gemm.TILE_BYTES // np.dtype(dtype.replace("f", "float")).itemsize
    tiled = k % tile == 0 and n % tile == 0
    assert small_gemm.STATS["tiled_packs"] == before["tiled_packs"] + tiled
    row_order = args[1].transpose(0, 3, 2, 1).copy()        # (batch, k, heads, n)
    plain, _, _ = _heads_product(2, heads, m, n, k, False, dtype)
    (same,) = runtime.build_executable(plain, bounds_check=True).run([args[0], row_order])
    assert out.tobytes() == same.tobytes()
    tol = (1e-6 if dtype == "f32" else 1e-14) * np.sqrt(k)
    np.testing.assert_allclose(out, expected, rtol=0, atol=tol)


def _optimized_lines(fn) -> list:
    return [line for line in runtime.build_executable(fn).optimized_llvm_ir.splitlines()
            if line.startswith("  ")]


def test_the_packed_product_compiles_to_about_the_unpacked_ones_code():
    """q k^T (B transposed: packed) against p v (B in row order: not packed), attention's
    shapes: the packing adds a loop of tiles transposed in registers, no scatters, no
    gathers, and the optimised IR stays within twice the unpacked product's."""
    packed, _ = _batched_dot(64, 32, 32, 16, False, True, False, "f32")
    plain, _ = _batched_dot(64, 32, 16, 32, False, False, False, "f32")
    before = small_gemm.STATS["emitted"]
    packed_ir, plain_ir = _optimized_lines(packed), _optimized_lines(plain)
    assert small_gemm.STATS["emitted"] == before + 2
    text = "\n".join(packed_ir)
    assert "masked.scatter" not in text and "masked.gather" not in text
    assert len(packed_ir) <= 2 * len(plain_ir) + 32 * 16 // 8


@pytest.mark.parametrize("n, blocks", [(32, (2, 4)), (16, (4, 8))])
def test_the_vector_width_sets_the_rows_summed_at_once_not_the_bits(n, blocks):
    """Externals.vector_bytes (64 on an AVX-512 target) doubles the rows of C summed at once
    (8 registers of partial sums); each element's additions stay in the same order."""
    from codegen.emit import lower_function
    fn, args, expected = _heads_product(2, 4, 32, n, 32 if n == 16 else 16, n == 32, "f32")
    outs = []
    for vector_bytes, block in zip((32, 64), blocks):
        ext = runtime.externals(fn).replace(vector_bytes=vector_bytes)
        kernel = lower_function(fn, bounds_check=True, externals=ext)
        assert small_gemm.STATS["block"] == block
        (out,) = runtime.build_executable(fn, kernel, bounds_check=True).run(args)
        outs.append(out)
    assert outs[0].tobytes() == outs[1].tobytes()
    np.testing.assert_allclose(outs[0], expected, rtol=0, atol=1e-6 * 4)


def test_the_target_sets_the_vector_width(gradjit_env):
    """AVX-512 in the target's features (the last +/-avx512f wins, as in LLVM) gives 64."""
    assert runtime._vector_bytes("+avx2,+avx512f,+fma") == 64
    assert runtime._vector_bytes("+avx512f,+avx2,-avx512f") == 32
    assert runtime._vector_bytes("") == 32
    assert engine.enabled_features(" +avx2, -fma,+fma,+avx512f ,-avx2") == {"fma", "avx512f"}
    fn, _, _ = _heads_product(2, 4, 32, 32, 16, True, "f32")
    gradjit_env("GRADJIT_TARGET_CPU", "haswell")
    assert runtime.externals(fn).vector_bytes == 32
