"""The two call trampolines every kernel shares: compiled once per process, not per kernel.

A kernel's entry is `void entry(i8** buffers, i8* workspace)`. Python reaches it through:

    gj_call_py(desc, tuple)     ctypes: `desc` is [kernel address, n buffers] (two u64), the
                                tuple holds the n arrays then the workspace array; the data
                                pointers are read straight from the PyArrayObjects
    gj_call_fast(self, args, nargs)
                                a METH_FASTCALL builtin (runtime/fastcall.py): `self` is the
                                state array holding the PyMethodDef, the kernel's address,
                                the buffer count and one mode byte per buffer

Both loop over the buffers, so one definition serves every kernel and every arity. Before,
each kernel carried its own unrolled pair (per-buffer blocks): ~4 ms of Python IR building
and ~12 ms of LLVM per program (chain's value_and_grad, 7 buffers), ~127 ms for an optimizer
program with 225 buffers. The object code is kept in the disk cache as the thread pool's is
(`gj_call`, a `.gjr` entry), so a process compiles it at most once and usually only links it;
built with the thread pool's code when both are wanted at once (`_build`: `gj_call_pool`).

The layouts read (tuple items, an ndarray's data pointer and flags, a NumPy scalar's value,
the reference count) are the ones runtime/executable.py and runtime/fastcall.py probe at
import; `available()` is False when a probe failed, and calls take the ctypes pointer path.
"""
from __future__ import annotations

import contextlib
import threading

import llvmlite.binding as llvm

from runtime import config, fastcall, pool, threads
from runtime.disk_cache import compiled_object, linked, load_or_store_object
from runtime.engine import LLVM_LOCK

PY, FAST = "gj_call_py", "gj_call_fast"
WITH_POOL = "gj_call_pool"                  # the disk entry of the trampolines and the pool
_state: dict = {"addresses": None, "jit": None, "failed": False}
_lock = threading.Lock()
builds = 0                                  # object code made in this process (tests)

# NOTE: hand-written SSA with nothing for a pass pipeline to do; machine code at O0 (fast
# instruction selection): 2.5 ms instead of 7 at O2, and the tiny call measured the same
_IR = """
define void @gj_call_py(ptr %desc, ptr %tuple) {{
entry:
  %kernel = load ptr, ptr %desc
  %count_at = getelementptr i8, ptr %desc, i64 8
  %n = load i64, ptr %count_at
  %bufs = alloca ptr, i64 %n, align 8
  %items = getelementptr i8, ptr %tuple, i64 {tuple_items}
  br label %head
head:
  %k = phi i64 [0, %entry], [%next, %body]
  %done = icmp uge i64 %k, %n
  br i1 %done, label %call, label %body
body:
  %item = getelementptr ptr, ptr %items, i64 %k
  %obj = load ptr, ptr %item
  %data_at = getelementptr i8, ptr %obj, i64 {array_data}
  %data = load ptr, ptr %data_at
  %slot = getelementptr ptr, ptr %bufs, i64 %k
  store ptr %data, ptr %slot
  %next = add i64 %k, 1
  br label %head
call:
  %ws_item = getelementptr ptr, ptr %items, i64 %n
  %ws_obj = load ptr, ptr %ws_item
  %ws_at = getelementptr i8, ptr %ws_obj, i64 {array_data}
  %ws = load ptr, ptr %ws_at
  call void %kernel(ptr %bufs, ptr %ws)
  ret void
}}

define ptr @gj_call_fast(ptr %self, ptr %args, i64 %nargs) {{
entry:
  %state_at = getelementptr i8, ptr %self, i64 {array_data}
  %state = load ptr, ptr %state_at
  %kernel_at = getelementptr i8, ptr %state, i64 {kernel_at}
  %kernel = load ptr, ptr %kernel_at
  %count_at = getelementptr i8, ptr %state, i64 {count_at}
  %n = load i64, ptr %count_at
  %modes = getelementptr i8, ptr %state, i64 {modes_at}
  %bufs = alloca ptr, i64 %n, align 8
  %want = add i64 %n, 1
  %ok = icmp eq i64 %nargs, %want
  br i1 %ok, label %head, label %bad
bad:
  ret ptr null
head:
  %k = phi i64 [0, %entry], [%next, %store]
  %done = icmp uge i64 %k, %n
  br i1 %done, label %call, label %body
body:
  %arg = getelementptr ptr, ptr %args, i64 %k
  %obj = load ptr, ptr %arg
  %mode_at = getelementptr i8, ptr %modes, i64 %k
  %mode = load i8, ptr %mode_at
  %inline_bit = and i8 %mode, {inline}
  %inline = icmp ne i8 %inline_bit, 0
  br i1 %inline, label %scalar, label %array
scalar:
  %value = getelementptr i8, ptr %obj, i64 {scalar_value}
  br label %store
array:
  %data_at = getelementptr i8, ptr %obj, i64 {array_data}
  %data = load ptr, ptr %data_at
  br label %store
store:
  %ptr = phi ptr [%value, %scalar], [%data, %array]
  %slot = getelementptr ptr, ptr %bufs, i64 %k
  store ptr %ptr, ptr %slot
  %next = add i64 %k, 1
  br label %head
call:
  %ws_arg = getelementptr ptr, ptr %args, i64 %n
  %ws_obj = load ptr, ptr %ws_arg
  %ws_at = getelementptr i8, ptr %ws_obj, i64 {array_data}
  %ws = load ptr, ptr %ws_at
  call void %kernel(ptr %bufs, ptr %ws)
  br label %flag_head
flag_head:
  %j = phi i64 [0, %call], [%j_next, %flag_next]
  %flags_done = icmp uge i64 %j, %n
  br i1 %flags_done, label %finish, label %flag_body
flag_body:
  %jmode_at = getelementptr i8, ptr %modes, i64 %j
  %jmode = load i8, ptr %jmode_at
  %ro_bit = and i8 %jmode, {read_only}
  %ro = icmp ne i8 %ro_bit, 0
  br i1 %ro, label %clear, label %flag_next
clear:
  %jarg = getelementptr ptr, ptr %args, i64 %j
  %jobj = load ptr, ptr %jarg
  %flags_at = getelementptr i8, ptr %jobj, i64 {array_flags}
  %flags = load i32, ptr %flags_at
  %cleared = and i32 %flags, {not_writeable}
  store i32 %cleared, ptr %flags_at
  br label %flag_next
flag_next:
  %j_next = add i64 %j, 1
  br label %flag_head
finish:
  %refs = load i64, ptr %self
  %more = add i64 %refs, 1
  store i64 %more, ptr %self
  ret ptr %self
}}
"""


def module_text(tuple_items: int) -> str:
    """The trampolines' LLVM IR for these object layouts (tuple items at tuple_items)."""
    return _IR.format(tuple_items=tuple_items, array_data=fastcall.ARRAY_DATA,
                      array_flags=fastcall.ARRAY_FLAGS, scalar_value=fastcall.SCALAR_VALUE,
                      kernel_at=fastcall.KERNEL_AT, count_at=fastcall.COUNT_AT,
                      modes_at=fastcall.MODES_AT, inline=fastcall.INLINE,
                      read_only=fastcall.READ_ONLY, not_writeable=~fastcall.WRITEABLE)


def addresses(tuple_items: int, with_pool: bool = False) -> tuple[int, int] | None:
    """(gj_call_py, gj_call_fast) addresses, linked into the process on first use; None
    when they could not be built (logged once: calls then take the pointer-array path).
    with_pool: the caller's kernel has tasks, so the thread pool's code is built in the
    same module when it is needed and not built yet (see `_build`)."""
    found = _state["addresses"]
    if found is not None or _state["failed"]:
        return found
    with _lock, _pool_claim(with_pool) as both, LLVM_LOCK:
        if _state["addresses"] is None and not _state["failed"]:
            try:
                _build(tuple_items, both)
            except RuntimeError as e:
                config.log.warning("gradjit: call trampolines unavailable (%s); kernels are "
                                   "called through ctypes pointer arrays", e)
                _state["failed"] = True
    return _state["addresses"]


def ready() -> bool:
    """Whether the trampolines were built (or found unavailable)."""
    return _state["addresses"] is not None or _state["failed"]


def prefetch(tuple_items: int, with_pool: bool = False):
    """addresses() on runtime.llvm_split's helper thread, while the thread that started it
    holds LLVM_LOCK for it (not taken here: that thread waits for this one). Skipped when
    another thread is building them; an error is left for addresses() to meet and log."""
    if ready() or not _lock.acquire(blocking=False):
        return
    try:
        with _pool_claim(with_pool) as both:
            if not ready():
                _build(tuple_items, both)
    finally:
        _lock.release()


def _pool_claim(with_pool: bool):
    """pool.claimed() when a kernel with tasks will want the pool at this thread count."""
    if with_pool and pool.needed(threads.num_threads()):
        return pool.claimed()
    return contextlib.nullcontext(False)


def _build(tuple_items: int, with_pool: bool):
    """Links the trampolines; with_pool: with the pool's code in the same module (one MCJIT
    and one run of the code generator instead of two: ~8.3 instead of ~11 ms of a cold first
    call's CPU, 2-core Xeon), stored in the disk cache as one entry. The pool's own build
    (pool.run_address) stays the fallback: when its code cannot be bound here, it is built
    there and any error raised there."""
    text = module_text(tuple_items)
    pool_text = pool.module_text() if with_pool else None
    if pool_text is not None:
        try:
            jit, found = _link(text + "\n" + pool_text, WITH_POOL)
        except RuntimeError as e:       # each built on its own, as without the pool
            _log_fallback("trampolines and pool built apart", e)
        else:
            _state["jit"], _state["addresses"] = jit, found
            try:
                pool.adopt(jit)
            except RuntimeError as e:
                _log_fallback("the pool's code is built on its own at its first use", e)
            return
    _state["jit"], _state["addresses"] = _link(text, "gj_call")


def _log_fallback(what: str, error: Exception):
    if config.logging_enabled():
        config.log.info("%s (%s: %s)", what, WITH_POOL, error)


def _link(text: str, name: str):
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    # NOTE: an MCJIT owns (and frees) its target machine: one machine for each
    built: dict = {}
    obj = load_or_store_object(name, pool.object_key(text),
                               lambda: _compile(text, target, built))
    jit = linked(obj, lambda: target.create_target_machine(opt=0), built)
    found = (jit.get_function_address(PY), jit.get_function_address(FAST))
    if not all(found):
        raise RuntimeError("a symbol is missing from the trampolines' object code")
    return jit, found


def _compile(text: str, target, built: dict) -> bytes:
    global builds
    builds += 1
    obj, built["jit"] = compiled_object(text, target.create_target_machine(opt=0), PY)
    return obj

