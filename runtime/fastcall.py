"""A small kernel called as a Python builtin function instead of through ctypes.

A ctypes foreign call costs ~0.35 us (argument conversion, a tuple, the error check); a call
of a builtin function with METH_FASTCALL costs ~0.03 us. So next to each kernel a second
trampoline is JIT-compiled, `PyObject *<entry>.fast(PyObject *self, PyObject *const *args,
Py_ssize_t nargs)`, and wrapped as a builtin (PyCFunction_NewEx) whose `self` is one byte
array holding the PyMethodDef, the builtin's name and one mode byte per buffer:

    INLINE     the argument is a NumPy scalar (np.float32(1.5)): its value sits in the object
               itself, so the kernel reads it there (no np.asarray per call);
    READ_ONLY  an output: its WRITEABLE flag is cleared after the kernel wrote it (the caller
               hands it out as an immutable result; ndarray.setflags costs ~0.15 us).

The builtin returns `self` (one reference added), which the caller drops. It keeps the GIL,
so it serves only kernels that finish sooner than releasing the GIL would take
(runtime.executable's small kernels). Every layout it relies on (the data pointer and flags
of an ndarray, a NumPy scalar's value, the reference count at the start of an object) is
probed at import; when a probe fails `OK` is False and calls go through ctypes as before.
"""
from __future__ import annotations

import ctypes
import sys

import numpy as np

ARRAY_DATA = object.__basicsize__      # PyArrayObject: PyObject_HEAD, then `char *data`
ARRAY_FLAGS = ARRAY_DATA + 48          # data, nd (+pad), dimensions, strides, base, descr
SCALAR_VALUE = object.__basicsize__    # a NumPy scalar: PyObject_HEAD, then its value
WRITEABLE = 0x0400                     # NPY_ARRAY_WRITEABLE
INLINE, READ_ONLY = 1, 2
METH_FASTCALL = 0x0080
_DEF_BYTES = 32                        # PyMethodDef: name, meth, flags (+pad), doc
_NAME = b"gradjit_kernel\0"
_MODES_AT = 48                         # the mode bytes, after the def and the name
SCALAR_TYPES = (np.float32, np.float64, np.int32, np.int64, np.bool_)
# NOTE: the trampoline has a few blocks per buffer: a program with 10,000 buffers (a backward
# over 5,000 leaves) made LLVM's register allocator take minutes on it. The tiny call has 2-6.
MAX_BUFFERS = 32


def _probe() -> bool:
    try:
        obj = object()
        refs = ctypes.c_ssize_t.from_address(id(obj)).value
        if refs != sys.getrefcount(obj) - 1:           # a free-threaded build, say
            return False
        a = np.empty(3)
        if ctypes.c_void_p.from_address(id(a) + ARRAY_DATA).value != a.ctypes.data:
            return False
        before = ctypes.c_int.from_address(id(a) + ARRAY_FLAGS).value
        a.setflags(write=False)
        after = ctypes.c_int.from_address(id(a) + ARRAY_FLAGS).value
        if before ^ after != WRITEABLE or not before & WRITEABLE:
            return False
        for t, c in zip(SCALAR_TYPES, (ctypes.c_float, ctypes.c_double, ctypes.c_int32,
                                       ctypes.c_int64, ctypes.c_bool)):
            s = t(1)
            if c.from_address(id(s) + SCALAR_VALUE).value != 1 or np.dtype(t).itemsize \
                    != ctypes.sizeof(c):
                return False
    except (ValueError, OSError, TypeError):
        return False
    return True


OK = _probe()

_new_builtin = ctypes.pythonapi.PyCFunction_NewEx
_new_builtin.restype = ctypes.py_object
_new_builtin.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.c_void_p]


def fast_symbol(entry: str) -> str:
    return entry + ".fast"


def emit(ll, module, target, n_buffers: int):
    """Adds `<entry>.fast` to module (an ir.Module of llvmlite's IR builder `ll`, holding the
    declaration of the kernel `target`): n_buffers arrays or scalars, then the workspace."""
    ptr, i64, i8, i32 = ll.PointerType(), ll.IntType(64), ll.IntType(8), ll.IntType(32)
    func = ll.Function(module, ll.FunctionType(ptr, [ptr, ptr, i64]), fast_symbol(target.name))
    self_, args, nargs = func.args
    bld = ll.IRBuilder(func.append_basic_block("entry"))
    body, bad = func.append_basic_block("body"), func.append_basic_block("bad")
    bld.cbranch(bld.icmp_unsigned("==", nargs, ll.Constant(i64, n_buffers + 1)), body, bad)
    bld.position_at_end(bad)
    bld.ret(ll.Constant(ptr, None))             # SystemError: a wrong count is never run
    bld.position_at_end(body)

    def at(base, offset):
        return bld.gep(base, [ll.Constant(i64, offset)], source_etype=i8)

    def load(base, offset, typ=ptr):
        return bld.load(at(base, offset), typ=typ)

    def flag(mode, bit):
        return bld.icmp_unsigned("!=", bld.and_(mode, ll.Constant(i8, bit)), ll.Constant(i8, 0))

    modes = at(load(self_, ARRAY_DATA), _MODES_AT)
    bufs = bld.alloca(ll.ArrayType(ptr, max(n_buffers, 1)))
    objs = [load(args, 8 * k) for k in range(n_buffers)]
    mode_bytes = [load(modes, k, i8) for k in range(n_buffers)]
    for k, (obj, mode) in enumerate(zip(objs, mode_bytes)):
        data = bld.select(flag(mode, INLINE), at(obj, SCALAR_VALUE), load(obj, ARRAY_DATA))
        bld.store(data, bld.gep(bufs, [ll.Constant(i64, 0), ll.Constant(i64, k)]))
    workspace = load(load(args, 8 * n_buffers), ARRAY_DATA)
    bld.call(target, [bufs, workspace])
    for obj, mode in zip(objs, mode_bytes):
        with bld.if_then(flag(mode, READ_ONLY)):
            flags_at = at(obj, ARRAY_FLAGS)
            bld.store(bld.and_(bld.load(flags_at, typ=i32), ll.Constant(i32, ~WRITEABLE)),
                      flags_at)
    refs = bld.load(self_, typ=i64)
    bld.store(bld.add(refs, ll.Constant(i64, 1)), self_)
    bld.ret(self_)


def builtin(address: int, modes) -> object:
    """The builtin calling the `.fast` trampoline at address with per-buffer modes."""
    modes = bytes(modes)
    state = np.zeros(_MODES_AT + max(len(modes), 1), np.uint8)
    base = state.ctypes.data
    state[_DEF_BYTES:_DEF_BYTES + len(_NAME)] = np.frombuffer(_NAME, np.uint8)
    state[_MODES_AT:_MODES_AT + len(modes)] = np.frombuffer(modes, np.uint8)
    head = np.array([base + _DEF_BYTES, address, METH_FASTCALL, 0], np.uint64)
    state[:_DEF_BYTES] = head.view(np.uint8)
    return _new_builtin(base, state, None)
