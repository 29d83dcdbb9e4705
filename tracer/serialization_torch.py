"""Reading a PyTorch-written .pt (torch.save's zip format) without running its pickle's code.

A .pt is a zip: <name>/data.pkl (a pickle of the object tree) and <name>/data/<key> (raw
storage bytes). The pickle names the functions that rebuild tensors; a normal unpickler
imports and calls whatever a file names, which is how a malicious .pt runs code. This
unpickler's find_class answers only from the table below (PyTorch's tensor and parameter
rebuild functions, mapped to NumPy, its storage types, OrderedDict) and refuses every
other global; persistent ids must be PyTorch's storage tuples. Nothing else can be called.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict

import numpy as np


STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    """Stands for torch.FloatStorage etc. in a persistent id: only its dtype is used."""

    def __init__(self, name: str):
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Storage:
    """One storage's elements; slots only, so a pickle's BUILD cannot add attributes."""
    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array


class _Loaded:
    """A tensor as the pickle describes it, turned into a gradjit Tensor at the end (so a
    parameter's requires_grad, given by an outer call, applies)."""
    __slots__ = ("array", "requires_grad", "parameter")

    def __init__(self, array: np.ndarray, requires_grad: bool, parameter: bool = False):
        self.array, self.requires_grad, self.parameter = array, requires_grad, parameter


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("gradjit.load: a tensor without a storage")
    array = storage.array
    _check_layout(len(array), storage_offset, size, stride)
    if not size or all(n > 0 for n in size):
        item = array.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(array[storage_offset:], shape=tuple(size),
                                               strides=tuple(s * item for s in stride),
                                               writeable=False)
    else:
        view = np.zeros(tuple(size), array.dtype)
    return _Loaded(np.array(view, copy=True), requires_grad is True)


def _check_layout(length: int, offset, size, stride):
    """Every element the layout addresses lies inside the storage (a crafted file must not
    read outside it)."""
    ints = [offset, *size, *stride]
    if (not isinstance(size, tuple) or not isinstance(stride, tuple) or len(size) != len(stride)
            or any(type(v) is not int or v < 0 for v in ints)):
        raise pickle.UnpicklingError("gradjit.load: malformed tensor layout")
    if any(n == 0 for n in size):
        return
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= length:
        raise pickle.UnpicklingError("gradjit.load: a tensor reaches past its storage")


def _rebuild_parameter(data, requires_grad, backward_hooks, *rest):
    if not isinstance(data, _Loaded):
        raise pickle.UnpicklingError("gradjit.load: a Parameter without a tensor")
    return _Loaded(data.array, requires_grad is True, parameter=True)


ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): OrderedDict,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        raise pickle.UnpicklingError(
            f"gradjit.load refuses to load the global {module}.{name}: a file may only "
            "contain tensors, numbers, strings and containers (gradjit never runs code "
            "from a file)")

    def persistent_load(self, pid):
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"gradjit.load: unsupported persistent id {pid!r}")
        return self.storages(pid[1].dtype, str(pid[2]))


def read_torch_archive(z: zipfile.ZipFile, prefix: str, make_tensor):
    """The object a torch.save zip archive holds, with make_tensor(array, requires_grad,
    parameter) building its tensors."""
    order = z.read(f"{prefix}/byteorder").decode() if f"{prefix}/byteorder" in z.namelist() \
        else "little"
    cache: dict[str, np.ndarray] = {}

    def storage(dtype: np.dtype, key: str) -> np.ndarray:
        if key not in cache:
            raw = z.read(f"{prefix}/data/{key}")
            cache[key] = _Storage(np.frombuffer(raw, dtype.newbyteorder(
                "<" if order == "little" else ">")))
        return cache[key]
    tree = _RestrictedUnpickler(io.BytesIO(z.read(f"{prefix}/data.pkl")), storage).load()
    return _convert(tree, {}, make_tensor)


def _convert(x, done: dict, make_tensor):
    if isinstance(x, _Loaded):
        if (not isinstance(x.array, np.ndarray) or x.array.dtype.type not in
                STORAGE_DTYPES.values()):
            raise pickle.UnpicklingError("gradjit.load: a tensor whose data is not an array")
        if id(x) not in done:
            done[id(x)] = make_tensor(x.array, x.requires_grad, x.parameter)
        return done[id(x)]
    if isinstance(x, dict):
        out = type(x)() if isinstance(x, OrderedDict) else {}
        for k, v in x.items():
            out[k] = _convert(v, done, make_tensor)
        return out
    if isinstance(x, (list, tuple)):
        return type(x)(_convert(v, done, make_tensor) for v in x)
    if isinstance(x, (_StorageType, _Storage)) or callable(x):
        raise pickle.UnpicklingError("gradjit.load: the file holds a bare storage type or "
                                     "function, not data")
    return x
