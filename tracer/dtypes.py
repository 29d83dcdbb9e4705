"""User-facing dtypes and Size, spelled as PyTorch spells them so printed output matches."""
from __future__ import annotations

import builtins

import numpy as np

from ir.core import DTYPES, dtype_of_numpy
from tracer.errors import user_location

DEFAULT_FLOAT = "f32"     # PyTorch's initial default dtype: Python floats become f32
_default_float = [DEFAULT_FLOAT]


def default_float() -> str:
    """The IR dtype Python floats and float factories give (set_default_dtype changes it)."""
    return _default_float[0]


def set_default_float(ir_name: str) -> None:
    _default_float[0] = ir_name


def array_dtype(np_dtype: np.dtype) -> str | None:
    """The IR dtype a NumPy array of np_dtype becomes (as torch.from_numpy keeps it, narrower
    types widened: f16 -> f32, int8/16 and uint8/16/32 -> i64), or None when there is none
    (uint64 does not fit i64; complex, strings, objects)."""
    kind, size = np_dtype.kind, np_dtype.itemsize
    if kind == "b":
        return "bool"
    if kind == "f" and size <= 8:
        return "f64" if size == 8 else "f32"
    if kind == "i" or (kind == "u" and size < 8):
        return "i32" if np_dtype == np.int32 else "i64"
    return None


class DType:
    """A tensor element type: `gradjit.float32` wraps the IR dtype 'f32'."""
    def __init__(self, name: str, ir_name: str, is_floating_point: bool):
        self.name = name
        self.ir = ir_name
        self.is_floating_point = is_floating_point

    @property
    def numpy(self) -> np.dtype:
        return DTYPES[self.ir]

    def __repr__(self) -> str:
        # PyTorch's spelling: seed programs print dtypes and must match real PyTorch
        return f"torch.{self.name}"

    def __reduce__(self):
        return (dtype_from_ir, (self.ir,))


float32 = DType("float32", "f32", True)
float64 = DType("float64", "f64", True)
int32 = DType("int32", "i32", False)
int64 = DType("int64", "i64", False)
bool_ = DType("bool", "bool", False)


class AbsentDType(DType):
    """A PyTorch dtype gradjit has no tensors of (float16, bfloat16): the name exists, so
    programs that only name it (a dict of choices, `dtype == torch.float16`, nanoGPT's
    `ptdtype`) run; making or converting a tensor (or a Module) to it raises TypeError
    naming the user's line (docs/compat.md: computing in float32 instead would print other
    numbers than PyTorch's float16 kernels, which round every result)."""
    def __init__(self, name: str):       # no IR name: `ir` below refuses
        self.name = name
        self.is_floating_point = True

    def refusal(self) -> str:
        return (f"gradjit has no torch.{self.name} tensors (it computes in float32 and "
                f"float64; PyTorch rounds every {self.name} result, so computing in float32 "
                f"would give other numbers): use torch.float32 (at {user_location()})")

    @property
    def ir(self):
        raise TypeError(self.refusal())

    @property
    def numpy(self) -> np.dtype:
        return self.ir

    def __reduce__(self):
        return self.name          # the module global of that name: unpickles to the same one


float16 = AbsentDType("float16")
bfloat16 = AbsentDType("bfloat16")
half = float16        # torch.half
float = float32       # torch.float
double = float64      # torch.double
long = int64          # torch.long
int = int32           # torch.int

_BY_IR = {d.ir: d for d in (float32, float64, int32, int64, bool_)}


def dtype_from_ir(ir_name: str) -> DType:
    return _BY_IR[ir_name]


def to_ir_dtype(dtype) -> str | None:
    """Accepts a DType, an IR name, a NumPy dtype or a Python type; None stays None."""
    if dtype is None:
        return None
    if isinstance(dtype, DType):
        return dtype.ir
    if isinstance(dtype, str) and dtype in DTYPES:
        return dtype
    if dtype is builtins.float:
        return "f32"
    if dtype is builtins.int:
        return "i64"
    if dtype is builtins.bool:
        return "bool"
    return dtype_of_numpy(np.dtype(dtype))


class Size(tuple):
    """A shape, printed as PyTorch prints torch.Size."""
    def __repr__(self) -> str:
        return f"torch.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for d in self:
            n *= d
        return n
