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
product bitwise over several shapes, every transpose combination and row blocks of one,
two and three steps, or None (then kernels keep splitting on every thread count, as
before). Only with the BLAS single-threaded (GRADJIT_BLAS_THREADS=1, the default): a
multi-threaded BLAS partitions calls its own way.

The probe (125 products) took ~10 ms of every warm start of a program with a large f32
product, so its answer is noted in the cache directory (runtime/notes.py) under everything
it depends on: the library's path, size and mtime, what the library says of its build and
kernels, the host CPU and the settings that pick kernels, and the probe itself. Any of them
different, or the note missing or unreadable: probed again.
"""
from __future__ import annotations

import ctypes
import functools
import itertools
import math
import os

import numpy as np

from ir.core import walk_ops
from runtime import blas, config, notes
from runtime.engine import create_execution_engine

SPLIT_MIN_MACS = 1 << 24      # codegen.gemm_split.GEMM_SPLIT_MIN_MACS (a test checks)
CANDIDATES = (4, 6, 8, 12, 16, 24, 32, 48, 64)
# (row tiles, extra rows, n, k, transposes): a remainder below one step, k beyond one
# k-block (OpenBLAS's GEMM_Q), every transpose combination once; and products past 1e6
# multiply-adds, the size up to which OpenBLAS runs small products on kernels of their own
# on some CPUs (its "small matrix" and "direct" sgemm paths, AVX-512 builds): one whose
# row blocks stay below that size (a split across those paths is refused, so such a CPU
# keeps splitting on every thread count), one whose blocks are past it too
_CHECKS = tuple(((5, 7, 37, 300), ta, tb) for ta, tb in itertools.product((0, 1), (0, 1))) + \
    (((3, 0, 20, 1100), 0, 1), ((4, 3, 9, 40), 1, 0),
     ((5, 7, 64, 300), 0, 0), ((5, 7, 64, 300), 0, 1), ((5, 7, 300, 300), 1, 0))
_DTYPES = {"f32": ("s", np.float32), "f64": ("d", np.float64)}
_OPERANDS = "full significands"   # in the note's key: notes probed with 24-bit f64 data are stale


@functools.lru_cache(maxsize=None)
def exact_rows(dtype: str) -> int | None:
    """The row step of exact splits of dtype's gemm ("f32"/"f64"), or None (see above)."""
    found = blas.binding()
    if found is None or dtype not in _DTYPES or config.blas_threads() != 1:
        return None
    blas.register()              # binds it for kernels: gives the BLAS its one thread
    folder, key = notes.directory(), _note_key(found, dtype)
    noted = notes.recall(folder, f"rows-{dtype}", key) if key is not None else None
    if noted == "none":
        return None
    if noted is not None and noted.isdigit() and int(noted) in CANDIDATES:
        return int(noted)
    step = _probe(found, dtype)
    if key is not None:
        notes.remember(folder, f"rows-{dtype}", key, "none" if step is None else str(step))
    return step


def _probe(found, dtype: str) -> int | None:
    for step in CANDIDATES:
        if all(_exact(found, dtype, step, *check) for check in _CHECKS):
            return step
    return None


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


def _exact(found, dtype: str, step: int, shape, ta: int, tb: int) -> bool:
    """Whether row blocks of 1, 2 and 3 steps reproduce the whole product bit for bit."""
    t, np_dtype = _DTYPES[dtype]
    tiles, extra, n, k = shape
    m = tiles * step + extra
    data = _data(dtype, m * k + n * k)
    a = data[:m * k].reshape((k, m) if ta else (m, k))
    b = data[m * k:].reshape((n, k) if tb else (k, n))
    flags = [blas.TRANS if ta else blas.NO_TRANS, blas.TRANS if tb else blas.NO_TRANS]
    whole = np.zeros((m, n), np_dtype)
    blas._call(found, t, *flags, m, n, k, a, a.shape[1], b, b.shape[1], whole, n)
    for rows in (step, 2 * step, 3 * step):
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
