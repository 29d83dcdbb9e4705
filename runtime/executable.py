"""Executable: calls a compiled kernel on NumPy arrays through ctypes.

Everything that does not depend on the arguments is prepared once (a call plan): parameter
shapes and dtypes, output shapes, workspace size, the ctypes function. A call then checks
each argument with a few attribute reads (converting it only when needed), allocates the
outputs, takes a workspace (from a small pool, or the one shared workspace of a kernel that
only reads its header) and makes one foreign call. The call releases the GIL, except for
small kernels (a few thousand elements, no loops of their own), which finish sooner than
releasing and re-taking it would take. The workspace header carries the thread count
(runtime.threads) that the kernel's parallel loop nests read.

The call goes through a trampoline every kernel shares (runtime/trampoline.py, compiled once
per process): it receives the kernel's address and buffer count and one Python tuple
(arrays..., workspace), and reads each array's data pointer straight from the PyArrayObject,
which saves building a ctypes pointer array per call. Both layouts it relies on (tuple items
at `tuple.__basicsize__`, the data pointer right after the object header) are probed at
import; if the probe fails the plain pointer-array call is used instead.
"""
from __future__ import annotations

import ctypes
import functools
import sys
import weakref

import numpy as np

from ir.core import Function
from ir.interpret import interpret
from runtime import debug_callback, fastcall, interrupt, threads, tiers
from runtime.trampoline import addresses as trampoline_addresses

threads.load_symbols()
interrupt.load_symbols()
debug_callback.load_symbols()

HEADER_BYTES = 64                      # codegen.emit.HEADER_BYTES: error flag, thread count
SMALL_ELEMENTS = 4096                  # kernels on fewer elements keep the GIL while they run
RECYCLE_BYTES = 1 << 20                # outputs this large are reused once nobody holds them
TUPLE_ITEMS = tuple.__basicsize__
ARRAY_DATA = object.__basicsize__      # PyArrayObject: PyObject_HEAD, then `char *data`


def _probe_layouts() -> bool:
    probe = np.arange(3.0)
    t = (probe,)
    try:
        item = ctypes.c_void_p.from_address(id(t) + TUPLE_ITEMS).value
        data = ctypes.c_void_p.from_address(id(probe) + ARRAY_DATA).value
    except (ValueError, OSError):
        return False
    return item == id(probe) and data == probe.ctypes.data


TRAMPOLINE_OK = _probe_layouts()


def read_only_owner(arr: np.ndarray) -> bool:
    """Whether arr and the array owning its memory are read-only, so that a view of arr may
    be handed out (np.asarray of a Tensor) without any later run writing it: a kernel writes
    a previous call's output again only when nothing references it (_recycled_outputs), and
    a view references it; NumPy refuses to make a view of a read-only owner writable."""
    base = arr.base
    return not arr.flags.writeable and (base is None or (isinstance(base, np.ndarray)
                                                          and not base.flags.writeable))


class BoundsError(RuntimeError):
    """A kernel compiled in bounds-check mode indexed outside a buffer (a codegen bug)."""


class Executable:
    """A compiled Function, callable on NumPy arrays; returns a list of new arrays.

    Args of a call: one array-like per parameter. Each is converted to the parameter's dtype
    when that is a same-kind cast (float64 -> float32, int -> float), else ValueError;
    its shape must match exactly (ValueError naming the parameter).

    `kernel` is anything with the KernelSource attributes `entry`, `workspace_bytes` and
    `llvm_ir` (the disk cache passes one that lowers the Function again only if asked).
    `address` is the kernel's entry; with `trampoline` it is called through the shared
    trampolines (runtime/trampoline.py), else through a ctypes pointer array.
    """

    backend = "native"
    origin = ""            # how the code was obtained, for the compile cache's log

    def __init__(self, fn: Function, kernel=None, address: int | None = None,
                 trampoline: bool = False, bounds_check: bool = False, engine=None,
                 uses_pool: bool = True):
        self.fn = fn
        self.uses_pool = uses_pool     # the kernel hands out tasks (has gj.parallel_for)
        self.kernel = kernel
        self.bounds_check = bounds_check
        self._engine = engine
        self._params = [(_param_name(fn, i), p.type.shape, p.type.np_dtype, p.type)
                        for i, p in enumerate(fn.params)]
        self._outs = [(r.shape, r.type.np_dtype) for r in fn.results]
        self._big = [i for i, r in enumerate(fn.results)
                     if r.type.size * r.type.np_dtype.itemsize >= RECYCLE_BYTES]
        self._kept = [None] * len(self._outs)
        self._ws_bytes = kernel.workspace_bytes if kernel is not None else 0
        # NOTE: a kernel that only reads the header (thread count) can share one workspace
        # between concurrent calls; one with temporaries or an error flag needs its own
        # a kernel with a while loop polls for SIGINT and reports it in its error word
        self._polls = _has_while(fn)
        self._shares_ws = self._ws_bytes <= HEADER_BYTES and not bounds_check and not self._polls
        self._pool = []
        self._shared_ws = None
        self._epoch = None
        self._n_bufs = len(self._params) + len(self._outs)
        self._call = None
        self._fast = None              # the builtin trampoline (runtime.fastcall), small kernels
        self._fast_address = 0         # the shared gj_call_fast, for a small kernel
        self._fast_ro = None           # run_read_only's builtin (made on its first call)
        self._address = address
        shared = None
        if trampoline and TRAMPOLINE_OK and address is not None:
            shared = trampoline_addresses(TUPLE_ITEMS, with_pool=uses_pool)
        self.has_trampoline = shared is not None
        if shared is not None:
            # a small kernel runs for less time than releasing and taking back the GIL costs
            small = _is_small(fn, self._ws_bytes)
            proto = ctypes.PYFUNCTYPE if small else ctypes.CFUNCTYPE
            self._desc = np.array([address, self._n_bufs], np.uint64)
            call = proto(None, ctypes.c_void_p, ctypes.py_object)(shared[0])
            self._call = functools.partial(call, self._desc.ctypes.data)
            if small and fastcall.OK:
                self._fast_address = shared[1]
                self._fast = fastcall.builtin(shared[1], address, bytes(self._n_bufs))
        elif address is not None:
            self._entry = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(address)
            self._ptr_array = ctypes.c_void_p * max(self._n_bufs, 1)
            self._call = self._call_pointers

    @property
    def llvm_ir(self) -> str:
        return self.kernel.llvm_ir

    @property
    def optimized_llvm_ir(self) -> str:
        from runtime.engine import create_execution_engine
        engine = self._engine or create_execution_engine()
        return engine.optimized_text(self.kernel.llvm_ir, self.kernel.entry,
                                     tiers.speed_level(self.fn))

    def __call__(self, *args) -> list:
        return self.run(self.check_args(args))

    def run(self, arrays) -> list:
        """The call without argument checks: arrays must be C-contiguous arrays of exactly
        the parameter types (as check_args returns them). For callers that know that."""
        if self._big:
            outs = self._recycled_outputs()
        else:
            outs = [np.empty(shape, dt) for shape, dt in self._outs]
        return self.run_into(arrays, outs)

    def run_into(self, arrays, outs: list) -> list:
        """run() writing into outs: arrays of exactly the result types, C-contiguous. An
        output may be an input's array only where the caller knows the program reads each
        element before writing it and never after (tracer/optim/in_place.py checks that)."""
        if self._epoch != threads.epoch:          # the thread count changed: new workspaces
            self._renew_workspaces()
        ws = self._shared_ws
        if ws is not None:
            if self._fast is not None:
                self._fast(*arrays, *outs, ws)
            else:
                self._call((*arrays, *outs, ws))
            return outs
        try:
            ws = self._pool.pop()
        except IndexError:
            ws = _workspace(self._ws_bytes, self.uses_pool)
        try:
            if self._polls:
                ws[:4] = 0
                interrupt.arm()
            if self._fast is not None:
                self._fast(*arrays, *outs, ws)
            else:
                self._call((*arrays, *outs, ws))
            if self._polls and ws[:4].view(np.int32)[0] & interrupt.ERR_INTERRUPT:
                interrupt.raise_interrupt(self.fn.name)
            if self.bounds_check and ws[:4].view(np.int32)[0]:
                raise BoundsError(self._bounds_message(int(ws[:4].view(np.int32)[0])))
        finally:
            self._pool.append(ws)
        return outs

    def run_read_only(self, arrays) -> list:
        """run(arrays) with its outputs made read-only. A small kernel's builtin clears their
        flag itself (fastcall.READ_ONLY: no flag store per output in Python, and none of
        run()'s tests that only a large, polling or bounds-checked kernel needs); arrays as
        run() takes them."""
        if not self._fast_address or self._big or self._polls or self.bounds_check:
            outs = self.run(arrays)
            for a in outs:
                a.flags.writeable = False
            return outs
        fast = self._fast_ro
        if fast is None:
            modes = bytes(len(self._params)) + bytes([fastcall.READ_ONLY]) * len(self._outs)
            fast = self._fast_ro = fastcall.builtin(self._fast_address, self._address, modes)
        outs = [np.empty(shape, dt) for shape, dt in self._outs]
        if self._epoch != threads.epoch:          # the thread count changed: new workspaces
            self._renew_workspaces()
        ws = self._shared_ws
        if ws is not None:
            fast(*arrays, *outs, ws)
            return outs
        try:
            ws = self._pool.pop()
        except IndexError:
            ws = _workspace(self._ws_bytes, self.uses_pool)
        try:
            fast(*arrays, *outs, ws)
        finally:
            self._pool.append(ws)
        return outs

    def recycles(self) -> bool:
        """Whether run() may hold large outputs for reuse (kept_ids can be non-empty)."""
        return bool(self._big)

    def kept_ids(self) -> set:
        """The ids of the large outputs this executable holds for reuse (run's recycling):
        one more reference to each that is not a reader."""
        return {id(a) for a in self._kept if a is not None}

    def _recycled_outputs(self) -> list:
        """Fresh output arrays, except that a large output of the previous call that nobody
        references any more (the caller dropped it) is written again instead of allocating:
        a new large array costs a page fault and zeroing per 4 KiB page on first touch, which
        is as slow as a fused kernel's whole pass over it. NumPy's own temporary elision
        relies on the same reference-count test."""
        outs = [np.empty(shape, dt) if k not in self._big else None
                for k, (shape, dt) in enumerate(self._outs)]
        kept = self._kept
        for k in self._big:
            old = kept[k]
            # our list, `old` and getrefcount's argument: three references mean no others
            if old is not None and sys.getrefcount(old) == 3 and not weakref.getweakrefcount(old):
                old.setflags(write=True)
                outs[k] = old
            else:
                shape, dt = self._outs[k]
                outs[k] = kept[k] = np.empty(shape, dt)
        return outs

    def fast_caller(self, modes: bytes):
        """The builtin calling this kernel as f(*buffers, workspace) with fastcall's modes per
        buffer (inline scalars, outputs made read-only), or None. For callers that check
        the arguments themselves; only a kernel whose workspace all calls share
        (`shared_workspace`) and that keeps the GIL has one."""
        if not self._fast_address or not self._shares_ws or len(modes) != self._n_bufs:
            return None
        return fastcall.builtin(self._fast_address, self._address, modes)

    def shared_workspace(self) -> np.ndarray:
        """The workspace all calls of a kernel that only reads its header share (see
        fast_caller), renewed when the thread count changed."""
        if self._epoch != threads.epoch:
            self._renew_workspaces()
        return self._shared_ws

    def output_specs(self) -> list:
        """(shape, NumPy dtype) per output."""
        return list(self._outs)

    def _call_pointers(self, buffers: tuple):
        """The plain call: a ctypes array of the data pointers, and the workspace."""
        ptrs = self._ptr_array(*[a.ctypes.data for a in buffers[:-1]])
        self._entry(ptrs, buffers[-1].ctypes.data)

    def _renew_workspaces(self):
        self._pool.clear()
        self._epoch = threads.epoch
        self._shared_ws = (_workspace(self._ws_bytes, self.uses_pool) if self._shares_ws
                           else None)

    def check_args(self, args) -> tuple | list:
        """The arguments as contiguous arrays of the parameter types (ValueError if impossible)."""
        params = self._params
        if len(args) != len(params):
            raise TypeError(f"@{self.fn.name} takes {len(params)} arguments, got {len(args)}")
        out = args
        for i, a in enumerate(args):
            _, shape, dt, _ = params[i]
            # NOTE: `is` first: NumPy's builtin dtypes are singletons, and == costs more
            if not (type(a) is np.ndarray and (a.dtype is dt or a.dtype == dt)
                    and a.shape == shape and a.flags.c_contiguous):
                if out is args:
                    out = list(args)
                out[i] = self._convert(i, a)
        return out

    def _convert(self, i: int, a):
        name, shape, dt, t = self._params[i]
        try:
            arr = np.asarray(a)
        except (TypeError, ValueError) as e:
            raise ValueError(f"@{self.fn.name}: argument {name} is not an array: {e}") from None
        if not np.can_cast(arr.dtype, dt, casting="same_kind"):
            raise ValueError(f"@{self.fn.name}: argument {name} has dtype {arr.dtype}, "
                             f"which does not convert to the parameter type {t}")
        if arr.shape != shape:
            raise ValueError(f"@{self.fn.name}: argument {name} has shape {list(arr.shape)}, "
                             f"the parameter type is {t}")
        # NOTE: not np.ascontiguousarray, which turns a 0-d array into shape (1,)
        return np.array(arr, dtype=dt, order="C")

    def _bounds_message(self, code: int) -> str:
        what = " and ".join(w for bit, w in ((1, "load"), (2, "store")) if code & bit)
        return (f"kernel for @{self.fn.name} made an out-of-bounds buffer {what} "
                f"(bounds-check mode); this is a gradjit code generator bug")

    def __repr__(self) -> str:
        return f"<Executable {self.backend} {self.fn!r}>"


class InterpretedExecutable(Executable):
    """GRADJIT_BACKEND=interpret: the same argument checks, then the reference interpreter."""

    backend = "interpret"

    def __call__(self, *args) -> list:
        return self.run(self.check_args(args))

    def run(self, arrays) -> list:
        return interpret(self.fn, *arrays)


def _is_small(fn: Function, ws_bytes: int) -> bool:
    """A kernel that surely runs for microseconds: few elements, no loops of its own."""
    if any(op.regions for op in fn.body) or ws_bytes > 8 * SMALL_ELEMENTS:
        return False
    elements = sum(v.type.size for v in [*fn.params, *fn.results])
    return elements <= SMALL_ELEMENTS


def _has_while(fn: Function) -> bool:
    return any(op.prim.name == "while" or any(_has_while(r) for r in op.regions)
               for op in fn.body)


def _param_name(fn: Function, i: int) -> str:
    hint = fn.params[i].name_hint
    return f"#{i} '%{hint}'" if hint else f"#{i}"


def _workspace(nbytes: int, uses_pool: bool = True) -> np.ndarray:
    """A zeroed byte array of nbytes whose data pointer is 64-byte aligned, with the thread
    count in its header (and the pool's entry, for a kernel that uses it)."""
    raw = np.zeros(max(nbytes, 64) + 64, np.uint8)
    start = (-raw.ctypes.data) % 64
    ws = raw[start:start + max(nbytes, 64)]
    threads.write_header(ws, uses_pool)
    return ws
