"""Row blocks at which a split product equals the whole product bit for bit (probed).

codegen.gemm_split cuts a large product into blocks of C's rows, one single-threaded BLAS
call each, so gradjit's threads can share it. On one thread the blocks only cost: every
call packs the shared operand again (MLP 784-256-10 forward, (256x784)@(784x256) on the
2-core AMD EPYC, Zen 3: one call 1.44-1.49 ms, four 64-row blocks 1.66-1.70 ms, CPU time).
A kernel may make the one whole call instead when it runs on one thread, but only if that
gives the same bits as the blocks, or results would depend on GRADJIT_NUM_THREADS.

Whether it does depends on the BLAS's inner kernel: OpenBLAS (column-major inside, so C's
rows are its N dimension) tiles N in steps of its kernel's UNROLL_N and sums every element
of a tile in one fixed order; blocks that start on a multiple of that step see the same
tiles and give the same bits, other blocks do not (OpenBLAS 0.3.31, Haswell kernels, which
it runs on Zen 3: sgemm blocks of 12, 24, 36, 48, 72, 96, 144 rows were exact on every shape
tried, 4, 6, 8, 16, 32 and 64 rows were not). Nothing documents that step, so it is probed:
`exact_rows(dtype)` is the smallest candidate step whose blocks reproduce the whole
product bitwise over several shapes, every transpose combination and row blocks of one and
two steps, or None (then kernels keep splitting on every thread count, as before). Blocks
below EXACT_BLOCK_MIN_MACS are neither probed nor used as exact: OpenBLAS's SkylakeX build
runs products up to 1e6 multiply-adds on small-matrix kernels that sum in another order, so
a probe with small blocks found no exact step there and the MLP 784's two products ran as four
blocks on one thread (+0.39 ms a step; its forward product is 633-678 us in one call, 896
us in blocks). Only with the BLAS single-threaded (GRADJIT_BLAS_THREADS=1, the default): a
multi-threaded BLAS partitions calls its own way.

The probe (at most 24 products a candidate, ~30-60 ms on the Xeon) runs only while kernels
run on one thread (exact_rows), and would take a part of every warm start of a program with
a large product, so its answer is noted in the cache directory (runtime/notes.py) under
everything it depends on: the library's path, size and mtime, what the library says of its
build and kernels, the host CPU and the settings that pick kernels, and the probe itself.
Any of them different, or the note missing or unreadable: probed again.
"""
from __future__ import annotations

import ctypes
import itertools
import math
import os

import numpy as np

from ir.core import walk_ops
from runtime import blas, code_switches, config, notes, threads
from runtime.engine import create_execution_engine

SPLIT_MIN_MACS = 1 << 24      # codegen.gemm_split.GEMM_SPLIT_MIN_MACS (a test checks)
EXACT_BLOCK_MIN_MACS = 1 << 21   # codegen.gemm_split.EXACT_BLOCK_MIN_MACS (a test checks)
CANDIDATES = (4, 6, 8, 12, 16, 24, 32, 48, 64)
PROBE_ROWS = 48
# (k, transposes): every transpose combination at a k within one k-block (OpenBLAS's GEMM_Q)
# and beyond it. Each check's m is 2 steps and a remainder below one step, its n as small as
# gives that remainder EXACT_BLOCK_MIN_MACS (odd, so the BLAS's column tiles have a remainder
# too): split products use exactness only for blocks that large
# (codegen.gemm_split), past the sizes that OpenBLAS runs on small-matrix kernels of their own
# on some CPUs (SkylakeX: up to 1e6 multiply-adds), whose sums are in another order
_CHECKS = tuple((k, ta, tb) for k in (300, 1100) for ta, tb in itertools.product((0, 1), (0, 1)))
_DTYPES = {"f32": ("s", np.float32), "f64": ("d", np.float64)}
# in the note's key: notes of earlier probes (24-bit operands, small blocks) are stale
_OPERANDS = "full significands; blocks of EXACT_BLOCK_MIN_MACS"


def exact_rows(dtype: str) -> int | None:
    """The row step of exact splits of dtype's gemm ("f32"/"f64"), or None (see above).
    Probed only while kernels run on one thread, the only count at which an exact split
    pays (one call instead of the blocks; on more threads the blocks run anyway): at the
    default thread count of a multi-core machine a cold start does not pay the ~30-60 ms
    probe, and programs compiled then keep their blocks on one thread too. A noted answer
    is used at any thread count."""
    if dtype in _KNOWN:
        return _KNOWN[dtype]
    if dtype in _UNNOTED and threads.num_threads() != 1:
        return None
    found = blas.binding()
    if found is None or dtype not in _DTYPES or config.blas_threads() != 1:
        return None
    blas.register()              # binds it for kernels: gives the BLAS its one thread
    folder, key = notes.directory(), _note_key(found, dtype)
    noted = notes.recall(folder, f"rows-{dtype}", key) if key is not None else None
    if noted == "none":
        _KNOWN[dtype] = None
        return None
    if noted is not None and noted.isdigit() and int(noted) in CANDIDATES:
        _KNOWN[dtype] = int(noted)
        return _KNOWN[dtype]
    if threads.num_threads() != 1:
        _UNNOTED.add(dtype)      # (asked again only on one thread)
        return None
    step = _probe(found, dtype)
    if key is not None:
        notes.remember(folder, f"rows-{dtype}", key, "none" if step is None else str(step))
    _KNOWN[dtype] = step
    return step


# this process's answers: dtype -> step (or None) noted or probed; dtypes found unnoted
# while kernels ran on several threads (not probed)
_KNOWN: dict = {}
_UNNOTED: set = set()


def forget():
    """Drops this process's answers (tests: the next call reads the note or probes)."""
    _KNOWN.clear()
    _UNNOTED.clear()


def _probe(found, dtype: str) -> int | None:
    # the operands are made once (making them was most of a check's time), each check
    # reading a prefix
    data = _data(dtype, max(_elements(step, shape) for step in CANDIDATES
                            for shape, _, _ in checks(step)))
    for step in CANDIDATES:
        if all(_exact(found, dtype, step, *check, data=data) for check in checks(step)):
            return step
    return None


def _elements(step: int, shape) -> int:
    """Elements of A and B of a check's product at step."""
    tiles, extra, n, k = shape
    return (tiles * step + extra + n) * k


def checks(step: int) -> list:
    """The probe's products at one step: [((tiles, extra rows, n, k), ta, tb)]: at least
    PROBE_ROWS rows (the BLAS's row tiles: a block ending inside a tile the whole product
    fills sums it another way: SkylakeX dgemm, blocks of 4 rows), then a last block of extra
    rows (half a step and one) of at least EXACT_BLOCK_MIN_MACS too."""
    extra = step // 2 + 1
    tiles = max(2, -(-PROBE_ROWS // step))
    return [((tiles, extra, -(-EXACT_BLOCK_MIN_MACS // (extra * k)) | 1, k), ta, tb)
            for k, ta, tb in _CHECKS]


# settings that make OpenBLAS or MKL pick other kernels at run time
_KERNEL_SETTINGS = ("OPENBLAS_CORETYPE", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR",
                    "MKL_DEBUG_CPU_TYPE")


def _note_key(found, dtype: str) -> str | None:
    """Everything the probe's answer depends on, or None (the library's file is gone)."""
    try:
        st = os.stat(found.path)
    except OSError:
        return None
    engine = create_execution_engine()
    return repr((dtype, found.path, st.st_size, st.st_mtime_ns, found.layout, found.int_bits,
                 found.names, _library_says(found), engine.host_cpu, engine.host_features,
                 {k: os.environ.get(k) for k in _KERNEL_SETTINGS}, CANDIDATES, _CHECKS,
                 _OPERANDS))


def _library_says(found) -> tuple:
    """OpenBLAS's build string and the kernels it picked for this CPU (empty otherwise)."""
    said = []
    for what in ("get_config", "get_corename"):
        fn = blas._openblas_function(found.lib, what) if found.lib is not None else None
        if fn is not None:
            fn.restype = ctypes.c_char_p
            said.append((fn() or b"").decode("ascii", "replace"))
    return tuple(said)


def _exact(found, dtype: str, step: int, shape, ta: int, tb: int, data=None) -> bool:
    """Whether row blocks of 1 and 2 steps reproduce the whole product bit for bit (data:
    probe operands of at least the product's elements, else made here)."""
    t, np_dtype = _DTYPES[dtype]
    tiles, extra, n, k = shape
    m = tiles * step + extra
    if data is None:
        data = _data(dtype, _elements(step, shape))
    a = data[:m * k].reshape((k, m) if ta else (m, k))
    b = data[m * k:m * k + n * k].reshape((n, k) if tb else (k, n))
    flags = [blas.TRANS if ta else blas.NO_TRANS, blas.TRANS if tb else blas.NO_TRANS]
    whole = np.zeros((m, n), np_dtype)
    blas._call(found, t, *flags, m, n, k, a, a.shape[1], b, b.shape[1], whole, n)
    for rows in (step, 2 * step):
        parts = np.zeros((m, n), np_dtype)
        for start in range(0, m, rows):
            size = min(rows, m - start)
            # op(A)'s rows start..: A's columns when transposed (a view keeps lda)
            a_rows = a[:, start:] if ta else a[start:]
            blas._call(found, t, *flags, size, n, k, a_rows, a.shape[1], b, b.shape[1],
                       parts[start:], n)
        if parts.tobytes() != whole.tobytes():
            return False
    return True


def _data(dtype: str, size: int) -> np.ndarray:
    """Probe operands: values in [-0.5, 0.5) with every bit of dtype's significand used,
    scattered by a multiplicative hash (a random generator, or float modulo, took most of a
    probe's time). Full significands matter: products of 24-bit values are exact in f64 and
    their sums nearly so, so f64 blocks summed in another order still matched bit for bit
    (SkylakeX dgemm passed a probe with them and then differed on a 400x250 product)."""
    bits = 24 if dtype == "f32" else 53
    hashed = (np.arange(size, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> \
        np.uint64(64 - bits)
    return (hashed * (1.0 / (1 << bits)) - 0.5).astype(_DTYPES[dtype][1])


def cache_tag(fn) -> str:
    """What of this module decides fn's generated code, for the disk cache's key: the probed
    step of each dtype with a product big enough to be split (no probe for the others)."""
    dtypes = sorted(_DTYPES) if fn is None else sorted(
        {op.inputs[0].dtype for op in walk_ops(fn) if op.prim.name == "dot_general"
         and op.inputs[0].dtype in _DTYPES and _dot_macs(op) >= SPLIT_MIN_MACS})
    return "".join(f" rows={dt}:{exact_rows(dt)}" for dt in dtypes)


def _dot_macs(op) -> int:
    x, (contract, _) = op.inputs[0], op.params["contract"]
    return op.results[0].type.size * math.prod(x.shape[a] for a in contract)


code_switches.snapshot(__name__)      # (last: the values as imported)
