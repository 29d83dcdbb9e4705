"""The host side of debug_print: native code calls `gradjit_debug_print(spec, buffers)`.

spec is the JSON string ir/debug_print.spec wrote into the code (the format and the buffers'
types); buffers is an array of pointers to the values. The callback copies them into NumPy
arrays and prints through ir.debug_print.emit, as the interpreter does. It runs on the
kernel's calling thread (debug_print is a kernel step, never inside a parallel loop nest);
an exception in it is printed by ctypes and the kernel goes on.
"""
from __future__ import annotations

import ctypes
import functools
import json

import llvmlite.binding as llvm
import numpy as np

from ir import debug_print
from ir.core import DTYPES

SYMBOL = "gradjit_debug_print"       # codegen.custom_call.DEBUG_PRINT_SYMBOL
_registered = False


@functools.lru_cache(maxsize=256)
def _parse(spec: bytes) -> dict:
    return json.loads(spec.decode())


def _arrays(types, buffers) -> list[np.ndarray]:
    out = []
    for i, (dtype, shape) in enumerate(types):
        np_dtype = np.dtype(DTYPES[dtype])
        n = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
        if n == 0:
            out.append(np.zeros(shape, np_dtype))
            continue
        raw = (ctypes.c_char * n).from_address(buffers[i])
        out.append(np.frombuffer(raw, np_dtype).reshape(shape).copy())
    return out


def _on_print(spec: bytes, buffers) -> None:
    s = _parse(spec)
    debug_print.emit(s["fmt"], s["names"], s["batch_dims"], _arrays(s["types"], buffers))


_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p))(_on_print)


def load_symbols():
    """Makes the callback visible to JIT-compiled code under SYMBOL (idempotent)."""
    global _registered
    if not _registered:
        llvm.add_symbol(SYMBOL, ctypes.cast(_CALLBACK, ctypes.c_void_p).value)
        _registered = True
