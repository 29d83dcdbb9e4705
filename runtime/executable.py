"""Executable: calls a compiled kernel on NumPy arrays through ctypes (the GIL is released).

Everything that does not depend on the arguments is prepared once (a call plan): parameter
shapes and dtypes, output shapes, workspace size, the ctypes function. A call then checks
each argument with a few attribute reads (converting it only when needed), allocates the
outputs, takes a workspace from a small pool and makes one foreign call.

The call goes through a trampoline JIT-compiled next to the kernel: it receives one Python
tuple (arrays..., workspace) and reads each array's data pointer straight from the
PyArrayObject, which saves building a ctypes pointer array per call. Both layouts it relies
on (tuple items at `tuple.__basicsize__`, the data pointer right after the object header)
are probed at import; if the probe fails the plain pointer-array call is used instead.
"""
from __future__ import annotations

import ctypes

import numpy as np
from llvmlite import ir as llir

from ir.core import Function
from ir.interpret import interpret

_PTR = llir.PointerType()
_I64 = llir.IntType(64)
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


def trampoline_ir(entry: str, n_buffers: int) -> tuple[str, str]:
    """Module text of `void <entry>.py(PyObject* tuple)`: the last item is the workspace."""
    module = llir.Module(name=entry + ".py")
    target = llir.Function(module, llir.FunctionType(llir.VoidType(), [_PTR, _PTR]), entry)
    name = entry + ".py"
    func = llir.Function(module, llir.FunctionType(llir.VoidType(), [_PTR]), name)
    bld = llir.IRBuilder(func.append_basic_block("entry"))
    bufs = bld.alloca(llir.ArrayType(_PTR, max(n_buffers, 1)))

    def data(k):
        item_at = bld.gep(func.args[0], [llir.Constant(_I64, TUPLE_ITEMS + 8 * k)],
                          source_etype=llir.IntType(8))
        obj = bld.load(item_at, typ=_PTR)
        return bld.load(bld.gep(obj, [llir.Constant(_I64, ARRAY_DATA)],
                                source_etype=llir.IntType(8)), typ=_PTR)

    for k in range(n_buffers):
        bld.store(data(k), bld.gep(bufs, [llir.Constant(_I64, 0), llir.Constant(_I64, k)]))
    bld.call(target, [bufs, data(n_buffers)])
    bld.ret_void()
    return str(module), name


class BoundsError(RuntimeError):
    """A kernel compiled in bounds-check mode indexed outside a buffer (a codegen bug)."""


class Executable:
    """A compiled Function, callable on NumPy arrays; returns a list of new arrays.

    Args of a call: one array-like per parameter. Each is converted to the parameter's dtype
    when that is a same-kind cast (float64 -> float32, int -> float), else ValueError;
    its shape must match exactly (ValueError naming the parameter).
    """

    backend = "native"

    def __init__(self, fn: Function, kernel=None, address: int | None = None,
                 trampoline: int | None = None, bounds_check: bool = False, engine=None):
        self.fn = fn
        self.kernel = kernel
        self.bounds_check = bounds_check
        self._engine = engine
        self._params = [(_param_name(fn, i), p.type.shape, p.type.np_dtype, p.type)
                        for i, p in enumerate(fn.params)]
        self._outs = [(r.shape, r.type.np_dtype) for r in fn.results]
        self._ws_bytes = kernel.workspace_bytes if kernel is not None else 0
        self._pool = []
        self._n_bufs = len(self._params) + len(self._outs)
        self._tramp = self._entry = None
        if trampoline is not None:
            self._tramp = ctypes.CFUNCTYPE(None, ctypes.py_object)(trampoline)
        elif address is not None:
            self._entry = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(address)
            self._ptr_array = ctypes.c_void_p * max(self._n_bufs, 1)

    @property
    def llvm_ir(self) -> str:
        return self.kernel.llvm_ir

    @property
    def optimized_llvm_ir(self) -> str:
        return self._engine.optimized_text(self.kernel.llvm_ir, self.kernel.entry)

    def __call__(self, *args) -> list:
        arrays = self.check_args(args)
        outs = [np.empty(shape, dt) for shape, dt in self._outs]
        try:
            ws = self._pool.pop()
        except IndexError:
            ws = _workspace(self._ws_bytes)
        try:
            if self._tramp is not None:
                self._tramp((*arrays, *outs, ws))
            else:
                ptrs = self._ptr_array(*[a.ctypes.data for a in arrays],
                                       *[o.ctypes.data for o in outs])
                self._entry(ptrs, ws.ctypes.data)
            if self.bounds_check and ws[:4].view(np.int32)[0]:
                raise BoundsError(self._bounds_message(int(ws[:4].view(np.int32)[0])))
        finally:
            self._pool.append(ws)
        return outs

    def check_args(self, args) -> list:
        """The arguments as contiguous arrays of the parameter types (ValueError if impossible)."""
        params = self._params
        if len(args) != len(params):
            raise TypeError(f"@{self.fn.name} takes {len(params)} arguments, got {len(args)}")
        out = list(args)
        for i, a in enumerate(args):
            _, shape, dt, _ = params[i]
            if not (type(a) is np.ndarray and a.dtype == dt and a.shape == shape
                    and a.flags.c_contiguous):
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
        return np.ascontiguousarray(arr, dtype=dt)

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
        return interpret(self.fn, *self.check_args(args))


def _param_name(fn: Function, i: int) -> str:
    hint = fn.params[i].name_hint
    return f"#{i} '%{hint}'" if hint else f"#{i}"


def _workspace(nbytes: int) -> np.ndarray:
    """A zeroed byte array of nbytes whose data pointer is 64-byte aligned."""
    raw = np.zeros(nbytes + 64, np.uint8)
    start = (-raw.ctypes.data) % 64
    return raw[start:start + nbytes]
