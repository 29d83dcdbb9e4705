"""gradjit.save / gradjit.load: tensors, state_dicts, optimizer state and nested containers.

The file is a zip of NumPy .npy arrays plus a JSON tree (archive/tree.json) that says how
they nest: loading reads only data (np.load with allow_pickle=False, json.loads), so a file
can never run code, whatever weights_only says. A PyTorch-written .pt (a zip with data.pkl)
loads through tracer/serialization_torch.py, an unpickler that knows only PyTorch's tensor
rebuild functions. Tensors that are the same object stay one object after loading; distinct
views of one storage load as separate tensors.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from collections import OrderedDict

import numpy as np

from tracer.creation import tensor
from tracer.nn.module import Parameter
from tracer import serialization_objects as objects
from tracer.serialization_torch import read_torch_archive
from tracer.tensor import Tensor

__all__ = ["save", "load"]

TREE = "archive/tree.json"
FORMAT = "gradjit-save-1"


def save(obj, f, pickle_module=None, pickle_protocol=None,
         _use_new_zipfile_serialization=True, _disable_byteorder_record=False) -> None:
    """torch.save: writes obj (Tensors, numbers, str, None, lists/tuples/dicts/sets of them,
    and objects such as a whole Module, as their class and attributes) to a path or a
    writable binary file object. The pickle arguments are accepted and unused: the format is
    a zip of .npy arrays and a JSON tree."""
    writer = _Writer()
    tree = writer.encode(obj)
    if isinstance(f, (str, os.PathLike)):
        parent = os.path.dirname(os.fspath(f))
        if parent and not os.path.isdir(parent):
            raise RuntimeError(f"Parent directory {parent} does not exist.")
        with open(f, "wb") as handle:
            _write(handle, tree, writer.arrays)
    else:
        _write(_open(f, "wb"), tree, writer.arrays)


def _write(handle, tree, arrays: list):
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as z:
        z.writestr(TREE, json.dumps({"format": FORMAT, "tree": tree}))
        for i, array in enumerate(arrays):
            buf = io.BytesIO()
            np.save(buf, np.array(array, order="C"), allow_pickle=False)
            z.writestr(f"archive/arrays/{i}.npy", buf.getvalue())


def load(f, map_location=None, pickle_module=None, *, weights_only: bool = True,
         mmap=None, **pickle_load_args):
    """torch.load: reads what save wrote, or a PyTorch .pt state_dict (tensors, containers,
    numbers), from a path or a readable binary file object. Nothing in the file is executed;
    a saved object's class must be allowlisted (serialization.safe_globals) unless
    weights_only=False, as in PyTorch."""
    _check_location(map_location)
    data = _open(f, "rb").read() if not isinstance(f, (str, os.PathLike)) else None
    if data is None:
        open(f, "rb").close()       # FileNotFoundError as in PyTorch (is_zipfile says False)
    source = io.BytesIO(data) if data is not None else f
    if not zipfile.is_zipfile(source):
        raise RuntimeError("gradjit.load: not a zip archive; gradjit reads files written by "
                           "gradjit.save and PyTorch's default (zip) torch.save format, not "
                           "the legacy pickle-only format")
    if data is not None:
        source.seek(0)
    with zipfile.ZipFile(source) as z:
        names = z.namelist()
        if TREE in names:
            return _read_gradjit(z, weights_only)
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if pickles:
            return read_torch_archive(z, pickles[0].split("/")[0], make_tensor)
    raise RuntimeError("gradjit.load: the archive holds neither a gradjit tree "
                       "(archive/tree.json) nor a PyTorch data.pkl")


def _open(f, mode: str):
    if isinstance(f, (str, os.PathLike)):
        return open(f, mode)
    want = "write" if "w" in mode else "read"
    if not hasattr(f, want):
        raise TypeError(f"gradjit.{'save' if want == 'write' else 'load'}: expected a path or "
                        f"a binary file object with .{want}(), got {type(f).__name__}")
    return f


def _check_location(map_location):
    """gradjit runs on the CPU: any map_location naming the CPU (or None) is fine."""
    if map_location is None or callable(map_location) and not isinstance(map_location, str):
        return
    targets = map_location.values() if isinstance(map_location, dict) else [map_location]
    for target in targets:
        if not str(target).startswith("cpu"):
            raise RuntimeError(f"gradjit.load: map_location={target!r}: gradjit is a CPU "
                               "compiler; only 'cpu' is available")


class _Writer:
    """Turns an object into a JSON tree, collecting the arrays it holds."""

    def __init__(self):
        self.arrays: list[np.ndarray] = []
        self.tensors: dict[int, int] = {}      # id(Tensor) -> index in arrays
        self.keep: list = []                   # keeps ids valid while writing

    def encode(self, x):
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, int):
            return x
        if isinstance(x, float):
            return {"float": repr(x)}
        if isinstance(x, Tensor):
            return self.tensor(x)
        if isinstance(x, np.ndarray):
            self.arrays.append(x)
            return {"ndarray": len(self.arrays) - 1}
        if isinstance(x, np.generic):
            return self.encode(x.item())
        if isinstance(x, dict):
            return {"dict": [[self.encode(k), self.encode(v)] for k, v in x.items()],
                    "ordered": isinstance(x, OrderedDict)}
        if isinstance(x, (list, tuple)):
            return {type(x).__name__ if type(x) in (list, tuple) else "list":
                    [self.encode(v) for v in x]}
        if isinstance(x, (set, frozenset)):
            return {type(x).__name__: [self.encode(v) for v in x]}
        if objects.is_global(x):
            return {"global": objects.global_path(x)}
        if objects.is_instance_of_a_class(x):
            self.keep.append(x)
            return {"object": objects.global_path(type(x)), "state": self.encode(vars(x))}
        raise TypeError(f"gradjit.save cannot store a {type(x).__name__}: it saves Tensors, "
                        "arrays, numbers, strings, None, lists/tuples/dicts/sets of them and "
                        "objects of module-level classes")

    def tensor(self, t: Tensor):
        index = self.tensors.get(id(t))
        if index is None:
            t._require_concrete("gradjit.save")
            self.arrays.append(t._numpy())
            index = self.tensors[id(t)] = len(self.arrays) - 1
            self.keep.append(t)
        return {"tensor": index, "requires_grad": bool(t.requires_grad),
                "parameter": isinstance(t, Parameter)}


def _read_gradjit(z: zipfile.ZipFile, weights_only: bool):
    doc = json.loads(z.read(TREE))
    if doc.get("format") != FORMAT:
        raise RuntimeError(f"gradjit.load: unknown format {doc.get('format')!r}")
    arrays: dict[int, np.ndarray] = {}

    def array(i: int) -> np.ndarray:
        if i not in arrays:
            arrays[i] = np.load(io.BytesIO(z.read(f"archive/arrays/{int(i)}.npy")),
                                allow_pickle=False)
        return arrays[i]
    return _Reader(array, weights_only).decode(doc["tree"])


class _Reader:
    def __init__(self, array, weights_only: bool):
        self.array = array
        self.weights_only = weights_only
        self.tensors: dict[int, Tensor] = {}

    def decode(self, node):
        if node is None or isinstance(node, (bool, str, int)):
            return node
        if isinstance(node, dict):
            (kind, value), = ((k, v) for k, v in node.items() if k not in
                              ("ordered", "requires_grad", "parameter", "state"))
            return getattr(self, "read_" + kind)(value, node)
        raise RuntimeError(f"gradjit.load: malformed tree node {node!r}")

    def read_float(self, value, node):
        return float(value)

    def read_list(self, value, node):
        return [self.decode(v) for v in value]

    def read_tuple(self, value, node):
        return tuple(self.decode(v) for v in value)

    def read_dict(self, value, node):
        pairs = [(_hashable(self.decode(k)), self.decode(v)) for k, v in value]
        return OrderedDict(pairs) if node.get("ordered") else dict(pairs)

    def read_set(self, value, node):
        return {_hashable(self.decode(v)) for v in value}

    def read_frozenset(self, value, node):
        return frozenset(self.read_set(value, node))

    def read_global(self, value, node):
        return objects.resolve(value, self.weights_only)

    def read_object(self, value, node):
        cls = objects.resolve(value, self.weights_only)
        return objects.rebuild(cls, self.decode(node["state"]))

    def read_ndarray(self, value, node):
        return self.array(value)

    def read_tensor(self, value, node):
        if value not in self.tensors:
            self.tensors[value] = make_tensor(self.array(value), node.get("requires_grad"),
                                              node.get("parameter"))
        return self.tensors[value]


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def make_tensor(array: np.ndarray, requires_grad: bool, parameter: bool) -> Tensor:
    """A fresh leaf Tensor (or nn.Parameter) owning a copy of array."""
    t = tensor(np.array(array, copy=True))
    if parameter:
        return Parameter(t, requires_grad=bool(requires_grad))
    return t.requires_grad_(True) if requires_grad else t
