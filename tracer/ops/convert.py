"""Dtype conversions: `.to(dtype)`, `.type_as(other)`, `.type(dtype)`, `.float()`, ...

Conversions record `convert`, whose gradient converts back (ToCopyBackward0); converting
to the dtype a tensor already has returns the tensor itself, as PyTorch does. Tensor
methods only (tracer/surface.py), as in PyTorch.
"""
from __future__ import annotations

from tracer import device as devices
from tracer.ops.operands import cast, dtype_of, ir_dtype, to_tensor, user_error
from tracer.record import torch_op
from tracer.tensor import Tensor


@torch_op("ToCopy")
def _to_copy(x, dtype: str):
    return cast(x, dtype)


def _convert(x, dtype) -> Tensor:
    t = to_tensor(x)
    dtype = ir_dtype(dtype)
    return t if dtype_of(t) == dtype else _to_copy(t, dtype)


def to(x, *args, dtype=None, device=None, copy=False, non_blocking=False):
    """x.to(dtype), x.to(other) or x.to('cpu'); the same tensor when nothing changes."""
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, devices.device) or (isinstance(a, str) and a not in (
                "f32", "f64", "i32", "i64", "bool")):
            device = a
        else:
            dtype = a
    devices.check(device)
    t = to_tensor(x)
    out = t if dtype is None else _convert(t, dtype)
    if copy and out is t:
        return _to_copy(t, dtype_of(t))
    return out


def type_as(x, other):
    return _convert(x, dtype_of(to_tensor(other)))


_TYPE_NAMES = {"f32": "Float", "f64": "Double", "i32": "Int", "i64": "Long", "bool": "Bool"}


def type_(x, dtype=None, non_blocking=False):
    """x.type(dtype); x.type() gives PyTorch's type string; x.type(torch.LongTensor) and
    x.type("torch.LongTensor") convert as x.long() does."""
    if dtype is None:
        return f"torch.{_TYPE_NAMES[dtype_of(to_tensor(x))]}Tensor"
    if isinstance(dtype, type) and isinstance(getattr(dtype, "ir", None), str):
        dtype = dtype.ir                      # the typed constructors (tracer/creation.py)
    elif isinstance(dtype, str) and dtype.startswith("torch."):
        if dtype.startswith("torch.cuda."):
            devices.check("cuda")
        by_name = {f"torch.{n}Tensor": ir for ir, n in _TYPE_NAMES.items()}
        if dtype not in by_name:
            raise user_error(ValueError, f"invalid type: '{dtype}'")
        dtype = by_name[dtype]
    return _convert(x, dtype)


def caster(dtype: str):
    """The methods .float() .double() .long() .int() .bool()."""
    def method(x):
        return _convert(x, dtype)
    method.__name__ = {"f32": "float", "f64": "double", "i64": "long", "i32": "int",
                       "bool": "bool"}[dtype]
    return method


to.torch_name = type_as.torch_name = "ToCopy"
