"""codegen.gemm_prefetch: the tile gemm functions ask for the next tile's lines of C for writing.

A prefetch changes no value: the plain and packed functions with and without them give the
same bits (hypothesis over sizes across tiles, panels, blocks of k and rows, both layouts of
A and B, f32 and f64, AVX-512 and AVX2 widths). Every prefetch is for writing and addresses an
element of C: checked by compiling the functions with the prefetch intrinsic replaced by a
call that records its address (a prefetch past C would not fault, so nothing else would see
it), which also counts that the prefetches are made at all.
"""
import ctypes

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import llvmlite.binding as llvm

from codegen import gemm_pack, gemm_prefetch, gemm_tiles
from runtime.engine import create_execution_engine

NP = {"f32": np.float32, "f64": np.float64}
_BUILT: dict = {}
_SEEN: list = []        # (address, rw) of each recorded prefetch


@ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32)
def _record(address, rw, locality, cache):
    _SEEN.append((address, rw))


HOOK = "test_gemm_prefetch_hook"
llvm.add_symbol(HOOK, ctypes.cast(_record, ctypes.c_void_p).value)


def _function(dtype, vector_bytes, packed, b_trans, mode, kc=gemm_pack.KC,
              block_bytes=gemm_pack.BLOCK_BYTES):
    """The tile function compiled under its own name; mode: "off" (no prefetches), "on" (as
    shipped) or "hook" (each prefetch a call of _record)."""
    key = (dtype, vector_bytes, packed, b_trans, mode, kc, block_bytes)
    if key not in _BUILT:
        name = "test_prefetch_{}_{}_{}_{}_{}_{}_{}".format(*key)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(gemm_prefetch, "ENABLED", mode != "off")
            patch.setattr(gemm_pack, "KC", kc)
            patch.setattr(gemm_pack, "BLOCK_BYTES", block_bytes)
            text = gemm_tiles.module_text(dtype, vector_bytes, name, packed=packed,
                                          b_trans=b_trans)
        assert ("llvm.prefetch" in text) == (mode != "off")
        if mode == "hook":
            text = text.replace('"llvm.prefetch.p0"', f'"{HOOK}"')
        addr, = create_execution_engine().compile([text], [name], name)
        i, p = ctypes.c_int64, ctypes.c_void_p
        _BUILT[key] = ctypes.CFUNCTYPE(None, i, i, i, i, p, i, p, i, p, i)(addr)
    return _BUILT[key]


def _operands(m, n, k, a_trans, b_trans, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (k, m) if a_trans else (m, k)).astype(NP[dtype])
    b = rng.uniform(-1, 1, (n, k) if b_trans else (k, n)).astype(NP[dtype])
    return a, b


def _call(fn, a, b, a_trans, b_trans, m, n, k, ldc=None):
    """C = op(A) @ op(B) into a NaN-filled C with rows of ldc (>= n) elements."""
    ldc = ldc or n
    c = np.full((m, ldc), np.nan, a.dtype)
    flags = gemm_tiles.A_TRANS * a_trans | gemm_tiles.B_TRANS * b_trans
    fn(flags, m, n, k, a.ctypes.data, a.shape[1], b.ctypes.data, b.shape[1], c.ctypes.data, ldc)
    return c


SIZES = [1, 2, 11, 12, 15, 16, 17, 63, 64, 65, 100, 130]


@settings(max_examples=50, deadline=None)
@given(m=st.sampled_from(SIZES[3:]), n=st.sampled_from(SIZES), k=st.sampled_from(SIZES),
       a_trans=st.booleans(), b_trans=st.booleans(), dtype=st.sampled_from(["f32", "f64"]),
       vector_bytes=st.sampled_from([64, 32]), packed=st.booleans())
def test_prefetches_change_no_bit(m, n, k, a_trans, b_trans, dtype, vector_bytes, packed):
    """Plain (m >= MASKED_ROWS, B as stored) and packed functions (blocks of k and rows made
    small so these sizes cross several), with and without the prefetches: the same bits."""
    b_trans = b_trans and packed
    a, b = _operands(m, n, k, a_trans, b_trans, dtype, m * 10000 + n * 100 + k)
    outs = [_call(_function(dtype, vector_bytes, packed, b_trans, mode, 16, 16 * 24 * 8), a, b,
                  a_trans, b_trans, m, n, k) for mode in ("off", "on")]
    assert outs[0].tobytes() == outs[1].tobytes()
    assert not np.isnan(outs[0]).any()


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("packed, b_trans", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("m, n, k, a_trans", [
    (12, 1, 3, False), (13, 17, 5, True), (40, 100, 33, False), (67, 65, 20, True),
    (100, 130, 9, False)])
def test_prefetches_write_inside_c_only(m, n, k, a_trans, dtype, packed, b_trans):
    """Every prefetch is for writing and lands on an element of C (rows of ldc > n: not on
    the columns between one row's last element and the next row), and some are made for
    every tile after the first. Fails when a row or a column is not clamped to C's."""
    a, b = _operands(m, n, k, a_trans, b_trans, dtype, m + n + k)
    fn = _function(dtype, 64, packed, b_trans, "hook", 8, 12 * 8 * 8)
    ldc = n + 3
    _SEEN.clear()
    c = _call(fn, a, b, a_trans, b_trans, m, n, k, ldc)
    assert _SEEN, "no prefetch made"
    size = c.itemsize
    base = c.ctypes.data
    for address, rw in _SEEN:
        assert rw == 1
        offset = address - base
        assert offset % size == 0 and 0 <= offset < c.nbytes, (offset, c.nbytes)
        assert (offset // size) % ldc < n, ("between rows", offset // size)
    off = _call(_function(dtype, 64, packed, b_trans, "off", 8, 12 * 8 * 8), a, b, a_trans,
                b_trans, m, n, k, ldc)
    assert c.tobytes() == off.tobytes()


def test_shipped_functions_prefetch():
    """The functions the kernels call (module_text as shipped) carry the prefetches."""
    for packed, b_trans in ((False, False), (True, False), (True, True)):
        text = gemm_tiles.module_text("f32", 64, "shipped", packed=packed, b_trans=b_trans)
        assert "call void @\"llvm.prefetch.p0\"" in text
