"""How many threads compiled kernels use, and the native symbols their fork/join needs.

Kernels split large loop nests into tasks and run them on pthreads they start themselves
(codegen.loops.parallel_for): a fork/join entirely in native code, so the GIL (released by
the ctypes call) is never involved and no Python thread is woken per call. The thread count
is read by the kernel at run time from the workspace header (`THREADS_OFFSET`, an i64 the
Executable writes), so one compiled kernel serves every setting and the object code in the
disk cache does not depend on it. Tasks are cut from the shapes alone, so the results are
bitwise the same for any thread count.

    GRADJIT_NUM_THREADS=1 python train.py     # or runtime.threads.set_num_threads(1)

The default is GRADJIT_NUM_THREADS when set (runtime.config; taken when first needed), else
the number of cores this process may run on. `epoch` changes whenever the setting does,
which is how an Executable knows that the thread count in its pooled workspaces is stale.
"""
from __future__ import annotations

import ctypes.util
import os

from runtime import config

THREADS_OFFSET = 8      # must equal codegen.loops.THREADS_OFFSET (checked by the tests)
MAX_THREADS = 64        # codegen.loops.MAX_THREADS: more are not started

_override: int | None = None
_default: int | None = None
_symbols_loaded = False
epoch = 0


def default_num_threads() -> int:
    """GRADJIT_NUM_THREADS, else the cores available to this process."""
    n = config.num_threads()
    if n is not None:
        return min(n, MAX_THREADS)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_THREADS))


def num_threads() -> int:
    """The thread count kernels use for their large loop nests (1 = the calling thread only)."""
    global _default
    if _override is not None:
        return _override
    if _default is None:
        _default = default_num_threads()
    return _default


def set_num_threads(n: int | None):
    """Sets the thread count for every later call; None goes back to the default.

    Raises:
        ValueError: n is not a positive integer.
    """
    global _override, _default, epoch
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"set_num_threads: expected a positive integer or None, got {n!r}")
    _override = None if n is None else min(n, MAX_THREADS)
    _default = None           # None: take GRADJIT_NUM_THREADS again
    epoch += 1


def load_symbols():
    """Makes pthread_create/pthread_join resolvable by the JIT (idempotent).

    They live in libc (glibc >= 2.34) or libpthread; both are already mapped into Python,
    but LLVM's symbol search only sees libraries loaded through it.
    """
    global _symbols_loaded
    if _symbols_loaded:
        return
    import llvmlite.binding as llvm
    # NOTE: the usual sonames first: ctypes.util.find_library runs `ldconfig -p` (~10 ms)
    for name in ("libc.so.6", "libpthread.so.0"):
        try:
            llvm.load_library_permanently(name)
        except RuntimeError:
            pass
    if not llvm.address_of_symbol("pthread_create"):
        for lib in ("c", "pthread"):
            name = ctypes.util.find_library(lib)
            if name:
                try:
                    llvm.load_library_permanently(name)
                except RuntimeError:
                    pass
    _symbols_loaded = True
