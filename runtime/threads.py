"""How many threads compiled kernels use, and the native symbols their fork/join needs.

Kernels split large loop nests and products into tasks (codegen.loops.parallel_for) that run
on the process's one thread pool (runtime.pool): native code throughout, so the GIL
(released by the ctypes call) is never involved and no Python thread is woken per call. The
thread count and the pool's entry are read by the kernel at run time from the workspace
header (`THREADS_OFFSET`, `POOL_OFFSET`; `write_header` fills them), so one compiled kernel
serves every setting and the object code in the disk cache does not depend on it. Tasks are
cut from the shapes alone, so the results are bitwise the same for any thread count. The
pool has at most min(cores, thread count) - 1 workers: a count above the cores starts no
more threads.

    GRADJIT_NUM_THREADS=1 python train.py     # or runtime.threads.set_num_threads(1)

The default is GRADJIT_NUM_THREADS when set (runtime.config; taken when first needed), else
the number of cores this process may run on. `epoch` changes whenever the setting does,
which is how an Executable knows that the thread count in its pooled workspaces is stale.

os.fork() while another thread compiles: a child inherits every lock in the state it was in,
and the thread that held one does not exist there, so the child would wait forever on the
first compile. Before a fork gradjit therefore waits for imports that another thread has
under way (a compile imports codegen late; the module's import lock would stay held in the
child; the last check is made with the GIL's switch interval raised, so no thread starts
one between it and the fork), then takes runtime.engine.LLVM_LOCK and llvmlite's own lock (the fork
waits for an LLVM step in progress to finish, so the child never holds LLVM half-way through
one); in the child it replaces the Python locks registered with `reinit_after_fork` (the
compile cache's, held for a whole compile) by new ones.
"""
from __future__ import annotations

import _imp
import ctypes.util
import os
import sys
import threading
import time
import weakref

import numpy as np

from runtime import config, pool
from runtime.engine import LLVM_LOCK

THREADS_OFFSET = 8      # must equal codegen.loops.THREADS_OFFSET (checked by the tests)
POOL_OFFSET = 16        # codegen.loops.POOL_OFFSET: address of runtime.pool's gj_pool_run, or 0
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


def write_header(ws, uses_pool: bool = True):
    """Writes the thread count and the pool's entry (0: run tasks inline) into a workspace
    header (a uint8 array of at least 24 bytes); starts the pool's workers if needed. A kernel
    that hands out no tasks (no `gj.parallel_for`: it never reads the pool's entry) gets 0
    and links or starts no pool (~3-5 ms of the first call of a process)."""
    n = num_threads()
    if n > 1 and uses_pool:
        load_symbols()            # the pool calls pthread_create
    ws[THREADS_OFFSET:THREADS_OFFSET + 8].view(np.int64)[0] = n
    ws[POOL_OFFSET:POOL_OFFSET + 8].view(np.uint64)[0] = pool.run_address(n) if uses_pool else 0


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


# ---- os.fork() ---------------------------------------------------------------------------

_REINIT = weakref.WeakSet()       # objects whose `lock` attribute is replaced in a fork child


def reinit_after_fork(obj):
    """Gives obj (which has a `lock` attribute, an RLock) a new lock in a forked child."""
    _REINIT.add(obj)


def _llvmlite_lock():
    """llvmlite's lock around every call into libllvmlite, if this llvmlite has one."""
    from llvmlite.binding import ffi
    lock = getattr(getattr(ffi, "lib", None), "_lock", None)
    return lock if hasattr(lock, "__enter__") else None


FORK_WAIT_SECONDS = 10.0    # longer than any import or LLVM step; then the fork goes on


def _imports_under_way() -> bool:
    """Whether another thread holds a module's import lock or is about to take one
    (importlib takes one per module being imported, before the module appears in
    sys.modules), or holds the global import lock (taken while a module lock is made)."""
    from importlib import _bootstrap
    me = threading.get_ident()
    if _imp.lock_held():
        return True
    for tid, waits in list(getattr(_bootstrap, "_blocking_on", {}).items()):
        if tid != me and waits:
            return True
    for ref in list(getattr(_bootstrap, "_module_locks", {}).values()):
        lock = ref()
        if lock is not None and getattr(lock, "owner", None) not in (None, 0, me):
            return True
    return False


# the switch interval before a fork, put back after it (a list: set and read by the hooks)
_SWITCH = []


def _before_fork():
    """Takes LLVM_LOCK and llvmlite's lock at a moment when no other thread is importing.

    Taking a lock lets other threads run (and maybe start an import), so the check is
    repeated with the locks held, and with the GIL's switch interval raised so that no
    other thread runs between that check and the fork (another thread could otherwise
    start an import in that gap, and its module lock would stay held in the child: a
    forked child deadlocked once in CI that way). An import that does not end within
    FORK_WAIT_SECONDS (one waiting for this thread, say) is not waited for.
    """
    deadline = time.monotonic() + FORK_WAIT_SECONDS
    while True:
        while _imports_under_way() and time.monotonic() < deadline:
            time.sleep(0.001)
        LLVM_LOCK.acquire()
        lock = _llvmlite_lock()
        if lock is not None:
            lock.__enter__()
        _SWITCH.append(sys.getswitchinterval())
        sys.setswitchinterval(FORK_WAIT_SECONDS)
        if not _imports_under_way() or time.monotonic() >= deadline:
            return
        _after_fork_in_parent()


def _after_fork_in_parent():
    if _SWITCH:
        sys.setswitchinterval(_SWITCH.pop())
    lock = _llvmlite_lock()
    if lock is not None:
        lock.__exit__(None, None, None)
    LLVM_LOCK.release()


def _after_fork_in_child():
    _after_fork_in_parent()       # this thread took them before the fork, and lives on here
    pool.after_fork_in_child()
    for obj in list(_REINIT):
        obj.lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
