"""Products computed by codegen.gemm_tiles' function (runtime/blas_tiles.py) instead of BLAS calls.

Checked against float64 NumPy within the worst-case rounding error of the sum (either operand
transposed, the result stored transposed, with and without a batch axis), against the BLAS
path of the same program, bit for bit across tile shapes, vector widths and thread counts
(the order of additions is fixed by the code), by a counter that the function was called and
that the products it refuses still run (on the BLAS), through autodiff (float64 gradients
against central differences), and on two_layer_net_tensor.py's step.
"""
import ctypes

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
import runtime
from codegen import gemm_pack, gemm_tiles, small_gemm
from codegen.dots import MIN_GEMM_MACS
from runtime import blas_tiles
from runtime.engine import create_execution_engine
from tests.gradcheck import numeric_grad
from tests.prim_samples import T, make_fn

NP = {"f32": np.float32, "f64": np.float64}


@pytest.fixture(autouse=True)
def every_size(monkeypatch):
    """The tests here cover the function's layouts on small products too: no lower bound
    (test_products_below_min_macs_stay_on_the_blas checks the real one)."""
    monkeypatch.setattr(gemm_tiles, "MIN_MACS", 0)


def _build(fn, tiles: bool = True):
    """A fresh executable of fn (no cache), with the tile function on or off."""
    with pytest.MonkeyPatch.context() as m:
        if not tiles:
            m.setattr(gemm_tiles, "fits", lambda *a, **k: False)
        return runtime.build_executable(fn)


def _dot(batch, m, n, k, a_trans, b_trans, c_trans, dtype):
    """A Function of one dot_general (batch None: plain matrices) in the requested layouts,
    and its float64 NumPy form: ref(x, y), or with bound=True the worst-case rounding error
    of a k-term sum in any order, k * u * (|A| @ |B|) (u: the unit roundoff of dtype)."""
    lead = () if batch is None else (batch,)
    a_shape = lead + ((k, m) if a_trans else (m, k))
    b_shape = lead + ((n, k) if b_trans else (k, n))
    nb = len(lead)

    def body(b, x, y):
        out = b.dot_general(x, y, contract=((nb + (0 if a_trans else 1),),
                                            (nb + (1 if b_trans else 0),)),
                            batch=(tuple(range(nb)), tuple(range(nb))))
        return [b.transpose(out, perm=tuple(range(nb)) + (nb + 1, nb)) if c_trans else out]
    fn = make_fn("tdot", [T(dtype, a_shape), T(dtype, b_shape)], body)

    def ref(x, y, bound=False):
        x = np.swapaxes(x, -1, -2).astype(np.float64) if a_trans else x.astype(np.float64)
        y = np.swapaxes(y, -1, -2).astype(np.float64) if b_trans else y.astype(np.float64)
        out = np.abs(x) @ np.abs(y) * (k * np.finfo(NP[dtype]).eps / 2) if bound else x @ y
        return np.swapaxes(out, -1, -2) if c_trans else out
    return fn, ref


def _close(out, ref, args):
    """out within the worst-case rounding error of the product."""
    err = np.abs(out - ref(*args))
    assert np.all(err <= ref(*args, bound=True)), err.max()


def _args(fn, seed: int, dtype: str) -> list:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, p.type.shape).astype(NP[dtype]) for p in fn.params]


def _run(fn, args, tiles: bool = True):
    """(result, whether a call of the tile function was emitted)."""
    before = gemm_tiles.STATS["calls_emitted"]
    (out,) = _build(fn, tiles).run(args)
    return out, gemm_tiles.STATS["calls_emitted"] > before


def test_the_symbols_agree():
    assert blas_tiles.SYMBOLS == set(gemm_tiles.SYMBOLS.values()) | \
        set(gemm_tiles.PACKED_SYMBOLS.values()) | set(gemm_tiles.PACKED_BT_SYMBOLS.values())
    assert blas_tiles._SYMBOLS == {key: gemm_tiles.symbol(*key) for key in blas_tiles._SYMBOLS}
    assert len(blas_tiles.SYMBOLS) == len(blas_tiles._SYMBOLS) == 6


@settings(max_examples=40, deadline=None)
@given(batch=st.sampled_from([None, 2]), m=st.integers(1, 70), n=st.integers(1, 90),
       k=st.integers(1, 300), a_trans=st.booleans(), b_trans=st.booleans(),
       c_trans=st.booleans(), dtype=st.sampled_from(["f32", "f64"]))
def test_products_match_numpy_and_the_blas(batch, m, n, k, a_trans, b_trans, c_trans, dtype):
    fn, ref = _dot(batch, m, n, k, a_trans, b_trans, c_trans, dtype)
    args = _args(fn, m * 10000 + n * 100 + k, dtype)
    out, used = _run(fn, args)
    blas, _ = _run(fn, args, tiles=False)
    _close(out, ref, args)
    _close(blas, ref, args)
    if batch is None and not (b_trans or c_trans) and min(n, k) > 1:
        assert used == (m * n * k >= MIN_GEMM_MACS and m >= gemm_tiles.MASKED_ROWS)


@pytest.mark.parametrize("m, n, k, a_trans", [
    (64, 100, 1000, False),     # two_layer: x @ w1
    (1000, 100, 64, True),      # two_layer: x.t() @ grad_h
    (100, 10, 64, True),        # two_layer: h_relu.t() @ grad_y_pred
    (64, 10, 100, False),       # two_layer: h_relu @ w2
    (37, 53, 29, False),        # no whole tile, the last tile of rows moved up
    (12, 130, 40, False),       # one tile of rows; columns: two whole tiles and 2 left
    (30, 64, 50, True),         # columns: whole tiles only
])
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_two_layer_shapes_use_the_function(m, n, k, a_trans, dtype):
    """The two_layer tutorials' products call the function, within the rounding bound (as
    the BLAS's)."""
    fn, ref = _dot(None, m, n, k, a_trans, False, False, dtype)
    args = _args(fn, 1, dtype)
    out, used = _run(fn, args)
    assert used
    blas, used_blas = _run(fn, args, tiles=False)
    assert not used_blas
    _close(out, ref, args)
    _close(blas, ref, args)


def _call_variant(dtype, vector_bytes, name, a, b, a_trans):
    """C = op(A) @ B through module_text compiled under its own name for vector_bytes."""
    addr, = create_execution_engine().compile(
        [gemm_tiles.module_text(dtype, vector_bytes, name)], [name], name)
    i, p = ctypes.c_int64, ctypes.c_void_p
    fn = ctypes.CFUNCTYPE(None, i, i, i, i, p, i, p, i, p, i)(addr)
    m = a.shape[1] if a_trans else a.shape[0]
    k, n = b.shape
    c = np.full((m, n), np.nan, a.dtype)
    fn(int(a_trans), m, n, k, a.ctypes.data, a.shape[1], b.ctypes.data, n, c.ctypes.data, n)
    return c


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("m, n, k, a_trans", [(64, 100, 300, False), (90, 37, 64, True),
                                              (13, 130, 40, False)])
def test_bits_do_not_depend_on_tiles_or_vector_width(monkeypatch, dtype, m, n, k, a_trans):
    """Every element is summed in order of p with one FMA a step, whatever the tile shape
    and vector width: the same bits from the function the kernels call, from 6x4 and 2x1
    tiles of 64-byte vectors and from 4x3 tiles of 32-byte (AVX2-wide) vectors."""
    fn, ref = _dot(None, m, n, k, a_trans, False, False, dtype)
    a, b = _args(fn, 2, dtype)
    base, used = _run(fn, [a, b])
    assert used
    tag = f"{dtype}_{m}_{n}_{k}_{int(a_trans)}"
    for vector_bytes, tiles in ((64, (6, 4)), (64, (2, 1)), (32, (4, 3)), (32, (1, 2))):
        monkeypatch.setitem(gemm_tiles.TILES, vector_bytes, tiles)
        name = f"test_tiles_{tag}_{vector_bytes}_{tiles[0]}x{tiles[1]}"
        assert _call_variant(dtype, vector_bytes, name, a, b, a_trans).tobytes() == \
            base.tobytes(), (vector_bytes, tiles)


def test_bits_do_not_depend_on_the_thread_count(gradjit_env):
    """The largest product computed here (MAX_MACS) gives the same bits on one and two
    threads (no split: codegen.gemm_split splits from twice that)."""
    fn, ref = _dot(None, 128, 256, 256, True, False, False, "f32")
    assert 128 * 256 * 256 == gemm_tiles.MAX_MACS
    args = _args(fn, 3, "f32")
    results = []
    for count in ("1", "2"):
        gradjit_env("GRADJIT_NUM_THREADS", count)
        out, used = _run(fn, args)
        assert used
        results.append(out.tobytes())
    assert results[0] == results[1]
    _close(out, ref, args)


@pytest.mark.parametrize("batch, m, n, k, b_trans, why", [
    (None, 128, 128, 128, False, "past gemm_pack.MAX_MACS"),
    (3, 128, 128, 128, True, "past gemm_pack.MAX_MACS a batch element"),
    (None, 11, 300, 100, False, "fewer rows than MASKED_ROWS"),
    (None, 11, 300, 100, True, "fewer rows than MASKED_ROWS, B transposed"),
])
def test_refused_products_run_on_the_blas(monkeypatch, batch, m, n, k, b_trans, why):
    monkeypatch.setattr(gemm_tiles, "MAX_MACS", 1 << 19)   # packed past this
    monkeypatch.setattr(gemm_pack, "MAX_MACS", 1 << 20)    # (the real one: 1 << 26)
    fn, ref = _dot(batch, m, n, k, False, b_trans, False, "f32")
    args = _args(fn, 4, "f32")
    out, used = _run(fn, args)
    assert not used, why
    blas, _ = _run(fn, args, tiles=False)
    assert out.tobytes() == blas.tobytes()
    _close(out, ref, args)


@pytest.mark.parametrize("m, n, k", [(256, 10, 256), (16, 256, 128)])   # mlp's, lstm's
def test_products_below_min_macs_stay_on_the_blas(m, n, k):
    """Below MIN_MACS a product calls the BLAS (a cold start does not build the function
    for them), at and above it the function."""
    gemm_tiles.MIN_MACS = 1 << 20          # (the fixture's monkeypatch restores 0, then the real)
    assert m * n * k < gemm_tiles.MIN_MACS <= 64 * 100 * 1000
    fn, ref = _dot(None, m, n, k, False, False, False, "f32")
    args = _args(fn, 9, "f32")
    out, used = _run(fn, args)
    assert not used
    blas, _ = _run(fn, args, tiles=False)
    assert out.tobytes() == blas.tobytes()
    two_layer, _ = _dot(None, 64, 100, 1000, False, False, False, "f32")
    _, used = _run(two_layer, _args(two_layer, 9, "f32"))
    assert used


def test_without_the_function_kernels_call_the_blas(monkeypatch):
    """A function that could not be built (provide() False) leaves the BLAS call."""
    monkeypatch.setattr(blas_tiles, "provide", lambda dtype, packed=False, b_trans=False: False)
    fn, ref = _dot(None, 64, 100, 200, False, False, False, "f32")
    args = _args(fn, 8, "f32")
    out, used = _run(fn, args)
    assert not used
    _close(out, ref, args)


def test_small_batched_products_stay_with_small_gemm():
    fn, _ = _dot(4, 32, 32, 16, False, False, False, "f32")
    before = small_gemm.STATS["emitted"]
    _, used = _run(fn, _args(fn, 5, "f32"))
    assert not used and small_gemm.STATS["emitted"] == before + 1


def test_float64_gradients_match_finite_differences(gradjit_env):
    """The forward product and the VJP's x^T @ g call the function (g @ w^T, B transposed,
    the BLAS): the compiled gradient against central differences."""
    def loss(x, w):
        return gj.sum(gj.tanh(x @ w))
    gradjit_env("GRADJIT_DISK_CACHE", "0")      # compiled here, so the counter sees it
    runtime.clear_cache()
    rng = np.random.default_rng(6)
    x = rng.standard_normal((24, 40)) * 0.3
    w = rng.standard_normal((40, 30)) * 0.3
    before = gemm_tiles.STATS["calls_emitted"]
    gx, gw = gj.grad(loss, argnums=(0, 1))(gj.tensor(x), gj.tensor(w))
    assert gemm_tiles.STATS["calls_emitted"] >= before + 2
    for g, num in ((gx, numeric_grad(lambda a: np.tanh(a @ w).sum(), x)),
                   (gw, numeric_grad(lambda b: np.tanh(x @ b).sum(), w))):
        np.testing.assert_allclose(g.numpy(), num, rtol=1e-6, atol=1e-7)


def test_two_layer_tensor_steps_match_float64(gradjit_env):
    """two_layer_net_tensor.py's step (hand-written backward, `w -= lr * grad`) through the
    imperative API: its products call the function, and three steps' losses and weights
    agree with a float64 NumPy replay."""
    gradjit_env("GRADJIT_DISK_CACHE", "0")
    runtime.clear_cache()
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(s).astype(np.float32)
              for s in ((64, 1000), (64, 10), (1000, 100), (100, 10))]
    x, y, w1, w2 = (gj.tensor(a) for a in arrays)
    X, Y, W1, W2 = (a.astype(np.float64) for a in arrays)
    lr = 1e-6
    before = gemm_tiles.STATS["calls_emitted"]
    for _ in range(3):
        h = x.mm(w1)
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(w2)
        loss = (y_pred - y).pow(2).sum().item()
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.t().mm(grad_y_pred)
        grad_h = grad_y_pred.mm(w2.t()).clone()
        grad_h[h < 0] = 0
        grad_w1 = x.t().mm(grad_h)
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2

        hh = X @ W1
        p = np.maximum(hh, 0) @ W2
        ref_loss = ((p - Y) ** 2).sum()
        g = 2 * (p - Y)
        gh = g @ W2.T
        gh[hh < 0] = 0
        W2 -= lr * (np.maximum(hh, 0).T @ g)
        W1 -= lr * (X.T @ gh)
        assert abs(loss - ref_loss) <= 1e-5 * ref_loss
    assert gemm_tiles.STATS["calls_emitted"] >= before + 4
    np.testing.assert_allclose(w1.numpy(), W1, rtol=0, atol=1e-5)
    np.testing.assert_allclose(w2.numpy(), W2, rtol=0, atol=1e-5)
