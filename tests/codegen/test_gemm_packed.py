"""The packed path of codegen.gemm_tiles' function (codegen.gemm_pack): B copied into panels,
k in blocks of KC, m in blocks of rows, a transposed B gathered.

Its bits must be the plain tiles' ones (every element summed over p in order from -0.0, one
FMA a step): checked bit for bit against the plain path on the same operands (B^T made
contiguous for a transposed B), with blocks made small so that shapes of a few hundred
elements cross many of them, on AVX-512 and AVX2-wide tiles; through the compiled programs:
the routing (counters), float64 NumPy within the rounding bound, the BLAS path within it,
1 vs 2 threads bit for bit (the split over rows or columns of C), bounds-check mode, and
float64 gradients against central differences.
"""
import ctypes

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
import runtime
from codegen import bounds, gemm_pack, gemm_split, gemm_tiles
from runtime.engine import create_execution_engine
from tests.codegen.test_gemm_tiles import NP, _args, _close, _dot, _run
from tests.gradcheck import numeric_grad
from tests.runtime.fresh import run_with_cache

_BUILT: dict = {}


@pytest.fixture(autouse=True)
def every_size(monkeypatch):
    """Small products take the function too (the real MIN_MACS: test_gemm_tiles)."""
    monkeypatch.setattr(gemm_tiles, "MIN_MACS", 0)


def _function(dtype: str, vector_bytes: int, kc: int, block_bytes: int, packed: bool):
    """The tile function (packed: the packed ones, for B as stored and transposed, called by
    the flags' B_TRANS) compiled under its own name with gemm_pack's KC and BLOCK_BYTES."""
    if not packed:
        return _compiled(dtype, vector_bytes, kc, block_bytes, False, False)
    stored, transposed = (_compiled(dtype, vector_bytes, kc, block_bytes, True, b_trans)
                          for b_trans in (False, True))
    return lambda flags, *rest: (transposed if flags & gemm_tiles.B_TRANS else stored)(
        flags, *rest)


def _compiled(dtype: str, vector_bytes: int, kc: int, block_bytes: int, packed: bool,
              b_trans: bool):
    key = (dtype, vector_bytes, kc, block_bytes, packed, b_trans)
    if key not in _BUILT:
        name = "test_packed_{}_{}_{}_{}_{}_{}".format(*key)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(gemm_pack, "KC", kc)
            patch.setattr(gemm_pack, "BLOCK_BYTES", block_bytes)
            text = gemm_tiles.module_text(dtype, vector_bytes, name, packed=packed,
                                          b_trans=b_trans)
        addr, = create_execution_engine().compile([text], [name], name)
        i, p = ctypes.c_int64, ctypes.c_void_p
        _BUILT[key] = ctypes.CFUNCTYPE(None, i, i, i, i, p, i, p, i, p, i)(addr)
    return _BUILT[key]


def _call(fn, a, b, a_trans: bool, b_trans: bool, m: int | None = None):
    """C = op(A) @ op(B) through fn (m: the first m rows of op(A) only)."""
    m = m or (a.shape[1] if a_trans else a.shape[0])
    n, k = (b.shape[0], b.shape[1]) if b_trans else (b.shape[1], b.shape[0])
    c = np.full((m, n), np.nan, a.dtype)
    flags = gemm_tiles.A_TRANS * a_trans | gemm_tiles.B_TRANS * b_trans
    fn(flags, m, n, k, a.ctypes.data, a.shape[1], b.ctypes.data, b.shape[1], c.ctypes.data, n)
    return c


def _operands(m, n, k, a_trans, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (k, m) if a_trans else (m, k)).astype(NP[dtype])
    b = rng.uniform(-1, 1, (k, n)).astype(NP[dtype])
    return a, b


def _bound_check(c, a, b, a_trans):
    """c within k * u * (|A| @ |B|) of the float64 product."""
    x = (a.T if a_trans else a).astype(np.float64)
    y = b.astype(np.float64)
    bound = np.abs(x) @ np.abs(y) * (x.shape[1] * np.finfo(a.dtype).eps / 2)
    assert np.all(np.abs(c - x @ y) <= bound)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(12, 80), n=st.integers(1, 150), k=st.integers(1, 70),
       a_trans=st.booleans(), dtype=st.sampled_from(["f32", "f64"]),
       vector_bytes=st.sampled_from([64, 32]), kc=st.sampled_from([1, 7, 16]),
       rows=st.sampled_from([12, 24, 1 << 20]))
def test_packed_bits_are_the_plain_ones(m, n, k, a_trans, dtype, vector_bytes, kc, rows):
    """Any k (blocks of kc, the last one shorter), n (whole panels and one under masks), m
    (blocks of at most `rows` rows, the last tile of a block repeating its last row), A
    transposed or not, B in place or transposed: the plain path's bits."""
    fn = _function(dtype, vector_bytes, kc, rows * kc * (4 if dtype == "f32" else 8), True)
    a, b = _operands(m, n, k, a_trans, dtype, m * 100000 + n * 100 + k)
    plain = _call(_function(dtype, vector_bytes, kc, 0, False), a, b, a_trans, False)
    _bound_check(plain, a, b, a_trans)
    assert _call(fn, a, b, a_trans, False).tobytes() == plain.tobytes()
    b_t = np.ascontiguousarray(b.T)
    assert _call(fn, a, b_t, a_trans, True).tobytes() == plain.tobytes()


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("m", [1, 5, 11])
def test_packed_takes_fewer_rows_than_a_tile(dtype, m):
    """m below the tile's rows (the refused plain path needs MASKED_ROWS): the rows of a
    taller product, bit for bit."""
    fn = _function(dtype, 64, 16, 1 << 16, True)
    a, b = _operands(30, 70, 40, False, dtype, m)
    whole = _call(_function(dtype, 64, 16, 0, False), a, b, False, False)
    for b_trans, operand in ((False, b), (True, np.ascontiguousarray(b.T))):
        assert _call(fn, a, operand, False, b_trans, m=m).tobytes() == whole[:m].tobytes()


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_real_blocks_cross_k_and_rows(dtype):
    """The function the kernels call (KC, BLOCK_BYTES as shipped) on a product with several
    blocks of k (the last shorter) and of rows: the plain path's bits."""
    most = gemm_pack.BLOCK_BYTES // (gemm_pack.KC * (4 if dtype == "f32" else 8))
    fn = _function(dtype, 64, gemm_pack.KC, gemm_pack.BLOCK_BYTES, True)
    a, b = _operands(most + 37, 90, 2 * gemm_pack.KC + 5, True, dtype, 3)
    plain = _call(_function(dtype, 64, 0, 0, False), a, b, True, False)
    assert _call(fn, a, b, True, False).tobytes() == plain.tobytes()
    assert _call(fn, a, np.ascontiguousarray(b.T), True, True).tobytes() == plain.tobytes()


# n = 192: whole panels for every target and dtype (64 / 32 columns with AVX-512, 24 / 12
# with AVX2)
@pytest.mark.parametrize("m, n, k, a_trans, b_trans, c_trans", [
    (64, 192, 300, False, True, False),     # x @ w.T (Linear's layout)
    (90, 192, 64, True, True, False),
    (192, 70, 200, False, False, True),     # C stored transposed: C^T = B^T A^T
    (13, 192, 40, True, True, False),       # one tile of rows and one row
])
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_programs_route_transposed_b_to_the_packed_path(m, n, k, a_trans, b_trans, c_trans,
                                                        dtype):
    """Products with op(B) transposed (as the kernel sees them) take the packed path; within
    the rounding bound of float64 NumPy, as the BLAS path is."""
    fn, ref = _dot(None, m, n, k, a_trans, b_trans, c_trans, dtype)
    args = _args(fn, 11, dtype)
    before = gemm_tiles.STATS["packed_calls_emitted"]
    out, used = _run(fn, args)
    assert used and gemm_tiles.STATS["packed_calls_emitted"] == before + 1
    blas, used_blas = _run(fn, args, tiles=False)
    assert not used_blas
    _close(out, ref, args)
    _close(blas, ref, args)


@pytest.mark.parametrize("m, n, k, a_trans, b_trans", [
    (256, 256, 784, False, True),           # MLP 784's forward x @ W1^T
    (256, 784, 256, True, False),           # its dW1 = dh^T @ x
])
def test_mlp_products_split_on_two_threads_with_the_bits_of_one(gradjit_env, m, n, k,
                                                                 a_trans, b_trans):
    """The MLP 784's products (past MAX_MACS, past the split's threshold) take the packed
    path, are split (columns for B transposed, rows otherwise), and give the same bits on
    one thread (one call) and two (the blocks)."""
    split = gemm_split.tiles_split(1, m, n, k, gemm_tiles.panel_columns(64, "f32"), b_trans)
    assert split is not None and split.exact and split.blocks > 1
    assert split.axis == ("n" if b_trans else "m")
    fn, ref = _dot(None, m, n, k, a_trans, b_trans, False, "f32")
    args = _args(fn, 12, "f32")
    results = []
    for count in ("1", "2"):
        gradjit_env("GRADJIT_NUM_THREADS", count)
        before = gemm_tiles.STATS["packed_calls_emitted"]
        out, used = _run(fn, args)
        assert used and gemm_tiles.STATS["packed_calls_emitted"] > before
        results.append(out.tobytes())
    assert results[0] == results[1]
    _close(out, ref, args)


def test_tiles_split_refuses_small_products():
    assert gemm_split.tiles_split(1, 128, 128, 512, 64, True) is None      # 8M
    found = gemm_split.tiles_split(1, 100, 640, 512, 64, True)
    assert found.axis == "n" and found.rows % 64 == 0 and found.exact
    found = gemm_split.tiles_split(1, 600, 100, 512, 64, True)              # n < 2 panels
    assert found.axis == "m" and found.exact


@pytest.mark.parametrize("b_trans", [False, True])
def test_bounds_check_mode_makes_the_whole_call(b_trans):
    """GRADJIT_BOUNDS_CHECK: the packed call goes through the span checks (no split), with
    the unchecked program's bits."""
    fn, ref = _dot(None, 256, 256, 300, False, b_trans, False, "f32")
    args = _args(fn, 13, "f32")
    checked_before = bounds.STATS["checked"]
    before = gemm_tiles.STATS["packed_calls_emitted"]
    (checked,) = runtime.build_executable(fn, bounds_check=True).run(args)
    assert gemm_tiles.STATS["packed_calls_emitted"] == before + 1
    assert bounds.STATS["checked"] > checked_before
    plain, used = _run(fn, args)
    assert used
    assert checked.tobytes() == plain.tobytes()
    _close(checked, ref, args)


def test_float64_gradients_through_a_linear_layer(gradjit_env):
    """x @ w.T (B transposed: packed) and its VJPs: gradients against central differences."""
    def loss(x, w):
        return gj.sum(gj.tanh(x @ w.T))
    gradjit_env("GRADJIT_DISK_CACHE", "0")      # compiled here, so the counter sees it
    runtime.clear_cache()
    rng = np.random.default_rng(14)
    x = rng.standard_normal((24, 40)) * 0.3
    w = rng.standard_normal((64, 40)) * 0.3
    before = gemm_tiles.STATS["packed_calls_emitted"]
    gx, gw = gj.grad(loss, argnums=(0, 1))(gj.tensor(x), gj.tensor(w))
    assert gemm_tiles.STATS["packed_calls_emitted"] > before
    for g, num in ((gx, numeric_grad(lambda a: np.tanh(a @ w.T).sum(), x)),
                   (gw, numeric_grad(lambda b: np.tanh(x @ b.T).sum(), w))):
        np.testing.assert_allclose(g.numpy(), num, rtol=1e-6, atol=1e-7)


SCRIPT = """
import numpy as np, gradjit as gj
from runtime import blas_tiles
rng = np.random.default_rng(0)
x = rng.standard_normal((256, 784)).astype(np.float32)
w = rng.standard_normal((256, 784)).astype(np.float32)
y = gj.jit(lambda a, b: a @ b.T)(x, w)
print(blas_tiles.builds, np.asarray(y).tobytes().hex())
"""


def test_packed_function_built_alone_then_taken_from_the_disk_cache(tmp_path):
    """The MLP 784's forward product builds only the packed function for a transposed B
    (not the plain one, nor the packed one for B as stored); a second process loads it from
    the disk cache and computes the same bits."""
    first = run_with_cache(SCRIPT, tmp_path)
    builds, y1 = first.stdout.split()
    assert int(builds) == 1 and "disk cache miss for gj_gradjit_packed_bt_f32" in first.stderr
    assert "gj_gradjit_tiles_f32" not in first.stderr
    assert "gj_gradjit_packed_f32" not in first.stderr
    second = run_with_cache(SCRIPT, tmp_path)
    builds, y2 = second.stdout.split()
    assert int(builds) == 0 and "disk cache hit for gj_gradjit_packed_bt_f32" in second.stderr
    assert y1 == y2
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 784)).astype(np.float32)
    w = rng.standard_normal((256, 784)).astype(np.float32)
    y = np.frombuffer(bytes.fromhex(y1), np.float32).reshape(256, 256)
    bound = np.abs(x).astype(np.float64) @ np.abs(w.T) * 784 * np.finfo(np.float32).eps / 2
    assert np.all(np.abs(y - x.astype(np.float64) @ w.T.astype(np.float64)) <= bound)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_batched_products_past_max_macs_in_all(monkeypatch, dtype):
    """A batch whose elements together pass gemm_tiles.MAX_MACS takes the packed path for
    each element: each with the plain function's bits (rows of 128: not codegen.small_gemm's)."""
    monkeypatch.setattr(gemm_tiles, "MAX_MACS", 3 * 40 * 128 * 60 - 1)
    fn, ref = _dot(3, 40, 128, 60, True, False, False, dtype)
    args = _args(fn, 15, dtype)
    before = gemm_tiles.STATS["packed_calls_emitted"]
    out, used = _run(fn, args)
    assert used and gemm_tiles.STATS["packed_calls_emitted"] == before + 1
    _close(out, ref, args)
    plain = _function(dtype, 64, 0, 0, False)
    for a, b, c in zip(*args, out):
        assert _call(plain, np.ascontiguousarray(a), b, True, False).tobytes() == c.tobytes()


@pytest.mark.parametrize("n, packed", [(10, False), (100, False), (256, True), (784, True)])
def test_narrow_transposed_b_stays_on_the_blas(n, packed):
    """B transposed with few columns (a Linear layer to 10 outputs) would sum mostly unused
    columns of the packed path's panels: the BLAS instead, unless the waste is small."""
    columns = gemm_tiles.panel_columns(runtime.externals().vector_bytes, "f32")
    assert gemm_tiles.fits(1, 256, n, 256, True, columns) == packed
    fn, ref = _dot(None, 256, n, 256, False, True, False, "f32")
    args = _args(fn, 16, "f32")
    out, used = _run(fn, args)
    assert used == packed
    _close(out, ref, args)
