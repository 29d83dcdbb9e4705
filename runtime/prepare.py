"""The runtime code a first call needs besides its kernel (the call trampolines; the thread
pool when calls use threads), made on a second thread while this one generates the kernel.

A cold start compiled them one after the other: the kernel (codegen in Python, then LLVM),
the trampolines when the Executable was made (~2.5 ms) and the pool on the first threaded
call (~9 ms of machine code). LLVM releases the GIL while it works, so the second thread's
LLVM runs while this one lowers the kernel in Python: only wall time changes, never what is
built (the same module text, the same object code, stored in the disk cache under the same
key). `start` is called when a kernel is about to be built; the consumers
(`trampoline.addresses`, `pool.run_address`) take the same locks as before and wait for a
build under way instead of starting a second one.

The thread is not a daemon: the interpreter waits for it at exit (tens of milliseconds at
most) instead of unloading LLVM under it. GRADJIT_PREPARE=0 builds everything on the calling
thread, as before.
"""
from __future__ import annotations

import threading

from ir.core import Function, walk_ops
from runtime import config, pool, threads, trampoline

_thread: threading.Thread | None = None
starts = 0                 # second threads started (tests read it)


def start(fn: Function, tuple_items: int | None) -> None:
    """Builds (or loads from the disk cache) what fn's first call will need on a second
    thread, unless it is there already or GRADJIT_PREPARE=0. tuple_items: the trampolines'
    layout (None: calls will not use them)."""
    global _thread, starts
    if not config.prepare_enabled() or _thread is not None and _thread.is_alive():
        return
    need_pool = threads.num_threads() > 1 and pool.needs_compile() and _may_split(fn)
    need_trampolines = tuple_items is not None and not trampoline.ready()
    if not (need_trampolines or need_pool):
        return
    _thread = threading.Thread(target=_build, args=(need_trampolines and tuple_items, need_pool),
                               name="gradjit-prepare")
    starts += 1
    _thread.start()


def _build(tuple_items, need_pool: bool) -> None:
    # NOTE: a failure here is only logged: the consumers build on their own thread then
    try:
        if tuple_items:
            trampoline.addresses(tuple_items)
        if need_pool:
            pool.compile_only()
    except Exception as e:                     # noqa: BLE001 (the caller's thread retries)
        if config.logging_enabled():
            config.log.info("gradjit: preparing runtime code on a second thread failed: %s", e)


def _may_split(fn: Function) -> bool:
    """A guess (only ever costs or saves time) at whether fn's kernel will hand out tasks:
    a value of 2^15 elements or more (codegen splits nests of 2^20 units of work, a
    transcendental 10 units per element, and products of 2^24 multiply-adds)."""
    return any(v.type.size >= POOL_GUESS_ELEMENTS
               for v in [*fn.params, *(r for op in walk_ops(fn) for r in op.results)])


POOL_GUESS_ELEMENTS = 1 << 15


def wait() -> None:
    """Waits for a second thread under way (tests; fork)."""
    found = _thread
    if found is not None:
        found.join()
