"""gradjit's one thread pool per process: compiled once (runtime.pool_ir; its object code is
kept in the disk cache, so later processes only JIT-link it), started lazily. Usually
compiled together with the call trampolines, in one module (runtime.trampoline: `claimed`,
`adopt`); `_compile` builds it alone otherwise, and whenever that joint build did not.

Kernels find the pool through their workspace header: `threads.write_header` stores the
address of `gj_pool_run` at POOL_OFFSET when the thread count is above 1, and 0 otherwise
(the kernel then runs its tasks in a loop on the calling thread, codegen.loops.parallel_for).
So a process that runs with GRADJIT_NUM_THREADS=1 never compiles or starts the pool, and
object code in the disk cache holds no address.

The pool has at most cores - 1 workers (the calling thread is the other one), whatever the
thread count asks: more threads than cores only wait for each other. The code lives in an
LLVM JIT (its own, or the trampolines') that is never freed (runtime.engine's shared engine
is replaced by `fresh_execution_engine`, and the workers run this code for the life of the
process).
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import threading

import llvmlite
import llvmlite.binding as llvm

from runtime.disk_cache import compiled_object, linked, load_or_store_object
from runtime.engine import LLVM_LOCK
from runtime.pool_ir import pool_ir

_lock = threading.Lock()
_functions: dict | None = None      # name -> ctypes function, once compiled
_unavailable = False                # no pool on this platform: everything runs inline
_engine = None                      # kept alive for the life of the process

_SIGNATURES = {"gj_pool_run": (None, [ctypes.c_void_p] * 2 + [ctypes.c_int64] * 2),
               "gj_pool_start": (ctypes.c_int32, [ctypes.c_int64]),
               "gj_pool_after_fork": (None, []),
               "gj_pool_stat": (ctypes.c_int64, [ctypes.c_int64])}


def cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def module_text() -> str | None:
    """The pool's LLVM IR for this host, or None where there is no pool."""
    text = pool_ir(llvm.get_process_triple().split("-")[0])
    return text if text is not None and os.name == "posix" else None


def object_key(text: str) -> dict:
    """What the object code of a runtime module (the pool, the call trampolines) depends on:
    its disk cache key."""
    return {"ir": hashlib.sha256(text.encode()).hexdigest(), "triple": llvm.get_process_triple(),
            "llvmlite": llvmlite.__version__,
            "llvm": ".".join(map(str, llvm.llvm_version_info)), "codegen": "O0"}


def _compile(lock=LLVM_LOCK) -> dict | None:
    """The pool's code, JIT-linked from its object code in the disk cache, else compiled
    (then stored there): code generation took ~15-30 ms of the first multi-threaded call of
    every process. No O3 pipeline: the IR is hand-written SSA with nothing to optimise, and
    the pipeline took 6x longer than code generation. Machine code at O0 (fast instruction
    selection): 8.7 ms instead of 21 at O2 on the first threaded call with an empty disk
    cache, for code that only spins, waits and hands out tasks."""
    global _engine, _unavailable
    text = module_text()
    if text is None:
        _unavailable = True
        return None
    with lock:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        target = llvm.Target.from_triple(llvm.get_process_triple())
        # NOTE: an MCJIT owns (and frees) its target machine: one machine for each
        built: dict = {}

        def build() -> bytes:
            obj, built["jit"] = compiled_object(text, target.create_target_machine(opt=0),
                                                "gj_pool_run")
            return obj
        obj = load_or_store_object("gj_pool", object_key(text), build)
        jit = linked(obj, lambda: target.create_target_machine(opt=0), built)
        _engine = jit
        return _bind(jit)


def _bind(jit) -> dict:
    """{name: ctypes function} of the pool's symbols in jit (an LLVM call: under LLVM_LOCK,
    or on the thread that holds it for the caller)."""
    addresses = [jit.get_function_address(name) for name in _SIGNATURES]
    if not all(addresses):
        raise RuntimeError("gradjit's thread pool: a symbol is missing from its object code")
    funcs = {}
    for (name, (restype, argtypes)), address in zip(_SIGNATURES.items(), addresses):
        funcs[name] = ctypes.CFUNCTYPE(restype, *argtypes)(address)
        funcs[name].address = address
    return funcs


def needed(threads: int) -> bool:
    """Whether a kernel with tasks would run them on the pool at this thread count."""
    return threads > 1 and not _unavailable and min(threads, cores()) > 1


@contextlib.contextmanager
def claimed():
    """Yields whether this thread may build the pool's code now (runtime.trampoline builds it
    with the trampolines, in one module): not built yet, and no other thread building it.
    The lock is taken without waiting (the caller may hold LLVM_LOCK, which a thread
    building the pool waits for) and held until the block ends."""
    if ready() or not _lock.acquire(blocking=False):
        yield False
        return
    try:
        yield not ready()
    finally:
        _lock.release()


def adopt(jit):
    """The pool's code is in jit, an MCJIT holding other runtime code too (built inside
    `claimed()`); it stays alive for the life of the process."""
    global _functions, _engine
    _functions = _bind(jit)
    _engine = jit


def run_address(threads: int) -> int:
    """The address of gj_pool_run with workers for `threads` threads started, or 0 when the
    tasks should run inline (threads <= 1, one core, or no pool on this platform)."""
    global _functions
    if threads <= 1 or _unavailable:
        return 0
    want = min(threads, cores()) - 1
    if want < 1:
        return 0
    with _lock:
        if _functions is None:
            _functions = _compile()
            if _functions is None:
                return 0
        _functions["gj_pool_start"](want)
        return _functions["gj_pool_run"].address


def ready() -> bool:
    """Whether the pool's code is compiled (or there is none on this platform)."""
    return _functions is not None or _unavailable


def prefetch():
    """Compiles the pool's code (no workers started) on runtime.llvm_split's helper thread,
    while the thread that started it holds LLVM_LOCK for it (so it is not taken here: that
    thread waits for this one). Skipped when another thread is compiling it (taking _lock
    could wait on that thread, which waits on LLVM_LOCK)."""
    global _functions
    if ready() or not _lock.acquire(blocking=False):
        return
    try:
        if _functions is None and not _unavailable:
            _functions = _compile(lock=contextlib.nullcontext())
    finally:
        _lock.release()


def stats() -> dict:
    """workers started, the most that ran tasks at once, jobs run on the pool and inline,
    and how many more jobs run inline because the machine was found busy."""
    if _functions is None:
        return {"workers": 0, "peak_running": 0, "jobs": 0, "inline_jobs": 0, "backoff_left": 0}
    stat = _functions["gj_pool_stat"]
    return {"workers": stat(0), "peak_running": stat(1), "jobs": stat(2),
            "inline_jobs": stat(3), "backoff_left": stat(4)}


def run(task, context: int, count: int, threads: int):
    """Runs a job from Python (tests): task is a ctypes void(void*, int64) function."""
    _functions["gj_pool_run"](ctypes.cast(task, ctypes.c_void_p), context, count, threads)


def after_fork_in_child():
    """The child of a fork has none of the parent's workers: start new ones when needed."""
    global _lock
    _lock = threading.Lock()
    if _functions is not None:
        _functions["gj_pool_after_fork"]()
