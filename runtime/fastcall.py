"""A small kernel called as a Python builtin function instead of through ctypes.

A ctypes foreign call costs ~0.35 us (argument conversion, a tuple, the error check); a call
of a builtin function with METH_FASTCALL costs ~0.03 us. So a small kernel is wrapped as a
builtin (PyCFunction_NewEx) of the shared trampoline `gj_call_fast(PyObject *self, PyObject
*const *args, Py_ssize_t nargs)` (runtime/trampoline.py), whose `self` is one byte array
holding the PyMethodDef, the builtin's name, the kernel's address, the number of buffers
and one mode byte per buffer:

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
KERNEL_AT = 48                         # the kernel's address, after the def and the name
COUNT_AT = 56                          # the number of buffers
MODES_AT = 64                          # one mode byte per buffer
SCALAR_TYPES = (np.float32, np.float64, np.int32, np.int64, np.bool_)


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


def builtin(trampoline: int, kernel: int, modes) -> object:
    """The builtin calling the kernel at address `kernel` through the shared `gj_call_fast`
    trampoline (at address `trampoline`), with one mode byte per buffer."""
    modes = bytes(modes)
    state = np.zeros(MODES_AT + max(len(modes), 1), np.uint8)
    base = state.ctypes.data
    state[_DEF_BYTES:_DEF_BYTES + len(_NAME)] = np.frombuffer(_NAME, np.uint8)
    state[KERNEL_AT:MODES_AT] = np.array([kernel, len(modes)], np.uint64).view(np.uint8)
    state[MODES_AT:MODES_AT + len(modes)] = np.frombuffer(modes, np.uint8)
    head = np.array([base + _DEF_BYTES, trampoline, METH_FASTCALL, 0], np.uint64)
    state[:_DEF_BYTES] = head.view(np.uint8)
    return _new_builtin(base, state, None)
