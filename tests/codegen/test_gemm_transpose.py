"""codegen.gemm_transpose (a transposed B packed by in-register square transposes) and the
packed path taken for B as stored from gemm_tiles.PACKED_MIN_MACS.

The transpose itself against NumPy for every vector width used (16, 8, 4 lanes); the packed
function for a transposed B reading no element past B (B ends at a page that may not be
read: a fresh process, so a fault fails the test, not the run); the size route's decisions
and, through compiled programs, its counters, bits (the plain function's) and the float64
rounding bound.
"""
import ctypes
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from llvmlite import ir as ll

import runtime
from codegen import gemm_tiles
from codegen.gemm_transpose import transpose
from codegen.loops import PTR
from runtime.engine import create_execution_engine
from tests.codegen.test_gemm_packed import _call, _function
from tests.codegen.test_gemm_tiles import NP, _args, _close, _dot, _run


@pytest.fixture(autouse=True)
def every_size(monkeypatch):
    """Small products take the function too (the real MIN_MACS: test_gemm_tiles)."""
    monkeypatch.setattr(gemm_tiles, "MIN_MACS", 0)


def _transposer(elem, lanes: int):
    """void f(ptr src, ptr dst): dst = the lanes x lanes block at src, transposed."""
    module = ll.Module()
    name = f"square_{lanes}_{'f' if elem == ll.FloatType() else 'd'}"
    fn = ll.Function(module, ll.FunctionType(ll.VoidType(), [PTR, PTR]), name)
    bld = ll.IRBuilder(fn.append_basic_block())
    vec = ll.VectorType(elem, lanes)
    src, dst = fn.args
    rows = [bld.load(bld.gep(src, [ll.Constant(ll.IntType(64), r)], source_etype=vec),
                     typ=vec, align=4) for r in range(lanes)]
    for r, value in enumerate(transpose(bld, rows)):
        bld.store(value, bld.gep(dst, [ll.Constant(ll.IntType(64), r)], source_etype=vec),
                  align=4)
    bld.ret_void()
    addr, = create_execution_engine().compile([str(module)], [name], name)
    return ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(addr)


@pytest.mark.parametrize("elem, lanes", [(ll.FloatType(), 16), (ll.FloatType(), 8),
                                         (ll.DoubleType(), 8), (ll.DoubleType(), 4)])
def test_square_transpose_is_numpys(elem, lanes):
    dtype = np.float32 if elem == ll.FloatType() else np.float64
    block = np.arange(lanes * lanes, dtype=dtype).reshape(lanes, lanes) * 1.5 - 7
    out = np.full_like(block, np.nan)
    _transposer(elem, lanes)(block.ctypes.data, out.ctypes.data)
    assert out.tobytes() == np.ascontiguousarray(block.T).tobytes()


ROOT = pathlib.Path(__file__).parents[2]
GUARDED = """
import ctypes, mmap, sys
import numpy as np
sys.path.insert(0, {root!r})
from codegen import gemm_tiles
from runtime.engine import create_execution_engine
n, k, m, dtype, vector_bytes = {n}, {k}, 20, {dtype!r}, {vector_bytes}
np_type = np.float32 if dtype == "f32" else np.float64
size = n * k * np.dtype(np_type).itemsize
pages = -(-size // mmap.PAGESIZE)
area = mmap.mmap(-1, (pages + 1) * mmap.PAGESIZE)
base = ctypes.addressof(ctypes.c_char.from_buffer(area))
libc = ctypes.CDLL(None)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
assert libc.mprotect(base + pages * mmap.PAGESIZE, mmap.PAGESIZE, 0) == 0
b_t = np.frombuffer(area, np_type, n * k, pages * mmap.PAGESIZE - size).reshape(n, k)
rng = np.random.default_rng(0)
b_t[:] = rng.uniform(-1, 1, (n, k))
a = rng.uniform(-1, 1, (m, k)).astype(np_type)
text = gemm_tiles.module_text(dtype, vector_bytes, "guarded", packed=True, b_trans=True)
addr, = create_execution_engine().compile([text], ["guarded"], "guarded")
i, p = ctypes.c_int64, ctypes.c_void_p
fn = ctypes.CFUNCTYPE(None, i, i, i, i, p, i, p, i, p, i)(addr)
c = np.zeros((m, n), np_type)
fn(gemm_tiles.B_TRANS, m, n, k, a.ctypes.data, k, b_t.ctypes.data, k, c.ctypes.data, n)
x = a.astype(np.float64) @ b_t.T.astype(np.float64)
bound = np.abs(a) @ np.abs(b_t.T) * (k * np.finfo(np_type).eps / 2)
print("ok" if np.all(np.abs(c - x) <= bound) else "wrong")
"""


@pytest.mark.parametrize("n, k", [(37, 21), (64, 16), (5, 130), (70, 3)])
@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("vector_bytes", [64, 32])
def test_transposed_pack_reads_nothing_past_b(n, k, dtype, vector_bytes):
    """B^T's last element is the last before a page no one may read: the squares past n
    rows and k steps (masked loads) touch none of it."""
    script = GUARDED.format(root=str(ROOT), n=n,
                            k=k, dtype=dtype, vector_bytes=vector_bytes)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ok"]


@pytest.mark.parametrize("m, n, k, columns, packed", [
    (512, 256, 64, 64, True),       # the transformer's [512,64]x[64,256]
    (512, 64, 256, 64, True),       # and [512,256]x[256,64]
    (256, 192, 64, 64, True),       # 3.1M
    (512, 64, 64, 64, False),       # 2.1M: the plain tiles
    (64, 100, 1000, 64, False),     # two_layer's: 100 of 128 columns
    (512, 64, 256, 24, False),      # AVX2 panels of 24: 72 for 64 columns, 1/8 wasted
    (512, 192, 64, 24, True),       # 8 whole panels of 24
])
def test_size_route_takes_whole_panels_only(m, n, k, columns, packed):
    assert gemm_tiles.packed(1, m, n, k, False, columns) == packed
    assert gemm_tiles.fits(1, m, n, k, False, columns)


@pytest.mark.parametrize("m, n, k, a_trans", [(256, 192, 64, False), (512, 64, 128, True)])
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_programs_take_the_packed_path_for_large_whole_panels(m, n, k, a_trans, dtype):
    """B as stored, at least PACKED_MIN_MACS, whole panels for this target: the packed
    path (counted), with the plain tile function's bits and within float64's bound."""
    columns = gemm_tiles.panel_columns(runtime.externals().vector_bytes, dtype)
    fn, ref = _dot(None, m, n, k, a_trans, False, False, dtype)
    args = _args(fn, 21, dtype)
    before = gemm_tiles.STATS["packed_calls_emitted"]
    out, used = _run(fn, args)
    takes = gemm_tiles.packed(1, m, n, k, False, columns)
    assert used and gemm_tiles.STATS["packed_calls_emitted"] == before + takes
    _close(out, ref, args)
    plain = _function(dtype, runtime.externals().vector_bytes, 0, 0, False)
    a, b = args
    assert out.dtype == NP[dtype]
    assert _call(plain, a, b, a_trans, False).tobytes() == out.tobytes()
