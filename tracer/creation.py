"""Tensor creation (docs/api.md section 2): tensor, zeros, randn, arange, ... as in PyTorch.

Created tensors are realised leaves (their data is a NumPy array behind a data Expr).
Dtype rules are PyTorch's: Python floats give float32 (the default float dtype), Python
ints int64, bools bool; NumPy arrays keep their dtype. `requires_grad=True` is only
accepted for floating dtypes. Random numbers come from one module-level NumPy Generator
that `manual_seed` reseeds: reproducible, but not PyTorch's stream.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np

import functools

from tracer import device as devices
from tracer.device import device, get_default_device, set_default_device
from tracer.dtypes import (DType, array_dtype, default_float, dtype_from_ir, set_default_float,
                           to_ir_dtype)
from ir.core import DTYPES
from tracer.errors import user_frame_path, user_location
from tracer.expr import data_expr
from tracer.python_data import array_of, check_fits
from tracer.tensor import Tensor, legacy_expr, tensor_from_array
from tracer.tensor_str import set_printoptions
from tracer.tracing import is_tracing

__all__ = ["tensor", "as_tensor", "from_numpy", "randn", "rand", "randint", "randperm",
           "zeros", "ones", "full", "empty", "arange", "linspace", "eye", "zeros_like",
           "ones_like", "full_like", "empty_like", "randn_like", "rand_like",
           "randint_like", "manual_seed", "seed", "initial_seed", "is_tensor",
           "is_floating_point", "numel", "get_default_dtype", "set_default_dtype",
           "set_printoptions", "Generator", "device", "set_default_device",
           "get_default_device", "FloatTensor", "DoubleTensor", "LongTensor", "IntTensor",
           "BoolTensor"]

FACTORY_GRAD_ERROR = "Only Tensors of floating point and complex dtype can require gradients"


class Generator:
    """torch.Generator's seeding surface over a NumPy Generator."""

    def __init__(self, device="cpu"):
        self._seed = 0
        self.np = np.random.default_rng(0)

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = int(seed)
        self.np = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        return self._seed

    def seed(self) -> int:
        s = int(np.random.SeedSequence().entropy % (2 ** 63))
        self.manual_seed(s)
        return s


# PyTorch's default seed: like PyTorch, a fresh process draws the same numbers every run
default_generator = Generator().manual_seed(67280421310721)


def generator(g: Generator | None = None) -> np.random.Generator:
    """The NumPy Generator behind g (default: the module's)."""
    if is_tracing():
        _warn_random_while_tracing()
    return (g or default_generator).np


def _warn_random_while_tracing():
    """The warning, attributed to the user's line (so warning filters see that line)."""
    path, _, line = (user_frame_path() or "<unknown>:0").rpartition(":")
    warnings.warn_explicit(RANDOM_WHILE_TRACING.format(where=user_location()), UserWarning,
                           path, int(line))


RANDOM_WHILE_TRACING = (
    "random numbers drawn at {where} while tracing (inside jit, grad, vmap or a cond / scan / "
    "while_loop body) are drawn once, when the function is traced, and every call of the "
    "compiled function reuses the same values (e.g. the same dropout mask). Draw them "
    "outside and pass them in as arguments.")


def manual_seed(seed: int) -> Generator:
    """Seeds gradjit's random numbers (rand, randn, nn.init, ...)."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_default_dtype() -> DType:
    return dtype_from_ir(default_float())


def set_default_dtype(d: DType) -> None:
    """The dtype Python floats, `torch.Tensor(...)` and float factories give (PyTorch's)."""
    ir = to_ir_dtype(d) if isinstance(d, DType) else None
    if ir not in ("f32", "f64"):
        raise TypeError("only floating-point types are supported as the default type")
    set_default_float(ir)


class _TypedMeta(type):
    """isinstance(t, torch.FloatTensor) asks for a float32 Tensor, as in PyTorch."""
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj._expr.type.dtype == cls.ir


class _TypedTensor(metaclass=_TypedMeta):
    """The legacy typed constructors: torch.LongTensor([1, 2]), torch.FloatTensor(2, 3)."""
    ir = "f32"

    def __new__(cls, *args, **kwargs) -> Tensor:
        return Tensor(legacy_expr(args, kwargs, cls.ir))


class FloatTensor(_TypedTensor):
    ir = "f32"


class DoubleTensor(_TypedTensor):
    ir = "f64"


class LongTensor(_TypedTensor):
    ir = "i64"


class IntTensor(_TypedTensor):
    ir = "i32"


class BoolTensor(_TypedTensor):
    ir = "bool"


def _cpu_only(factory):
    """A factory whose `device=` must name the CPU (default device and "cuda" as PyTorch)."""
    @functools.wraps(factory)
    def create(*args, **kwargs):
        devices.check(kwargs.get("device"))
        return factory(*args, **kwargs)
    return create


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def is_floating_point(input: Tensor) -> bool:
    return input.dtype.is_floating_point


def numel(t: Tensor) -> int:
    return t.numel()


# ---- helpers -------------------------------------------------------------------------------

def _finish(arr: np.ndarray, dtype: str, requires_grad: bool) -> Tensor:
    """A leaf Tensor holding arr as dtype."""
    if requires_grad and dtype not in ("f32", "f64"):
        raise RuntimeError(FACTORY_GRAD_ERROR)
    t = tensor_from_array(arr, dtype)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _size(size, keyword=None) -> tuple[int, ...]:
    """zeros(2, 3), zeros((2, 3)) and zeros(size=(2, 3)) alike."""
    if keyword is not None:
        if size:
            raise TypeError("got multiple values for argument 'size'")
        size = (keyword,)
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = tuple(int(s) for s in size)
    if any(s < 0 for s in shape):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(shape)}: "
                           f"{list(shape)}")
    return shape


def _dtype(dtype, default: str) -> str:
    return to_ir_dtype(dtype) or default


def _infer_dtype(data) -> str:
    """PyTorch's dtype for Python data: bool < int64 < float32 (the default float)."""
    kinds = set()
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            stack.extend(x)
        elif isinstance(x, Tensor):
            kinds.add(x._expr.type.dtype)
        elif isinstance(x, (bool, np.bool_)):
            kinds.add("bool")
        elif isinstance(x, (numbers.Integral, np.integer)):
            kinds.add("i64")
        elif isinstance(x, (numbers.Real, np.floating)):
            kinds.add(default_float())
        else:
            raise TypeError(f"Could not infer dtype of {type(x).__name__}")
    for dtype in ("f64", "f32", "i64", "i32", "bool"):
        if dtype in kinds:
            return default_float() if dtype == "f64" and kinds != {"f64"} else dtype
    return default_float()          # an empty list


def _numpy_dtype(arr: np.ndarray) -> str:
    dtype = array_dtype(arr.dtype)
    if dtype is not None:
        return dtype
    raise TypeError(f"can't convert np.ndarray of type {arr.dtype}. The only supported types "
                    "are: float64, float32, int64, int32, and bool.")


# ---- from data -----------------------------------------------------------------------------

@_cpu_only
def tensor(data, dtype=None, device=None, requires_grad=False, pin_memory=False) -> Tensor:
    """A new leaf Tensor holding a copy of data (nested lists, NumPy arrays, numbers)."""
    if isinstance(data, Tensor):
        warnings.warn("To copy construct from a tensor, it is recommended to use "
                      "sourceTensor.detach().clone() or sourceTensor.detach().clone()."
                      "requires_grad_(True), rather than torch.tensor(sourceTensor).",
                      UserWarning, stacklevel=2)
        arr = np.array(data._realize())
        return _finish(arr, _dtype(dtype, data._expr.type.dtype), requires_grad)
    if isinstance(data, (np.ndarray, np.generic)):
        arr = np.array(data)
        return _finish(arr, _dtype(dtype, _numpy_dtype(arr)), requires_grad)
    target = _dtype(dtype, _infer_dtype(data))
    return _finish(array_of(_plain(data), target), target, requires_grad)


def _plain(data):
    """Nested lists with Tensors replaced by their values."""
    if isinstance(data, Tensor):
        return np.asarray(data._realize())
    if isinstance(data, (list, tuple)):
        return [_plain(x) for x in data]
    return data


@_cpu_only
def as_tensor(data, dtype=None, device=None) -> Tensor:
    """data itself when it is already a Tensor of that dtype, else tensor(data, dtype)."""
    if isinstance(data, Tensor):
        want = _dtype(dtype, data._expr.type.dtype)
        if want == data._expr.type.dtype:
            return data
        return data.to(dtype_from_ir(want))
    return tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray, /) -> Tensor:
    """A Tensor with the array's dtype sharing its memory, as in PyTorch: a write through
    either is seen by the other (see Tensor.numpy for the lazy-op difference). An array
    that is not C-contiguous, aligned and native-endian is copied."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    dtype = _numpy_dtype(array)
    if not (array.flags.c_contiguous and array.flags.aligned and array.dtype.isnative
            and array.dtype == DTYPES[dtype]):
        return _finish(np.array(array), dtype, False)
    t = Tensor(data_expr(array))
    t._storage.host = array
    return t


# ---- filled --------------------------------------------------------------------------------

def _filled(size, value, dtype, requires_grad) -> Tensor:
    shape = _size(size)
    ir = _dtype(dtype, default_float())
    return _finish(np.full(shape, value), ir, requires_grad)


@_cpu_only
def zeros(*size_, size=None, dtype=None, device=None, requires_grad=False, out=None) -> Tensor:
    return _filled(_size(size_, size), 0, dtype, requires_grad)


@_cpu_only
def ones(*size_, size=None, dtype=None, device=None, requires_grad=False, out=None) -> Tensor:
    return _filled(_size(size_, size), 1, dtype, requires_grad)


@_cpu_only
def empty(*size_, size=None, dtype=None, device=None, requires_grad=False, out=None) -> Tensor:
    """Uninitialised in PyTorch; zeros here (reading it is reproducible)."""
    return _filled(_size(size_, size), 0, dtype, requires_grad)


@_cpu_only
def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    default = _infer_dtype(fill_value.item() if isinstance(fill_value, Tensor) else fill_value)
    shape = _size((size,))
    value = fill_value.item() if isinstance(fill_value, Tensor) else fill_value
    target = _dtype(dtype, default)
    if target in ("i32", "i64") and isinstance(value, numbers.Integral):
        check_fits([int(value)], target)        # (np.full made 2**63 a wrapped int64)
    elif isinstance(value, numbers.Integral) and not -(1 << 63) <= int(value) < 1 << 63:
        value = float(value)                     # a float tensor of a huge int: rounded
    return _finish(np.full(shape, value), target, requires_grad)


@_cpu_only
def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(np.eye(n, m), _dtype(dtype, default_float()), requires_grad)


@_cpu_only
def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """int64 when start, end and step are all integers, else float32 (PyTorch's rule)."""
    if end is None:
        start, end = 0, start
    values = [_number(v) for v in (start, end, step)]
    default = "i64" if all(isinstance(v, numbers.Integral) for v in values) else default_float()
    start, end, step = values
    if step == 0:
        raise RuntimeError("step must be nonzero")
    count = max(0, int(np.ceil((end - start) / step)))
    arr = start + step * np.arange(count, dtype=np.float64 if default != "i64" else np.int64)
    return _finish(arr, _dtype(dtype, default), requires_grad)


def _number(v):
    return v.item() if isinstance(v, Tensor) else v


@_cpu_only
def linspace(start, end, steps: int, dtype=None, device=None, requires_grad=False) -> Tensor:
    arr = np.linspace(_number(start), _number(end), int(steps))
    return _finish(arr, _dtype(dtype, default_float()), requires_grad)


# ---- random --------------------------------------------------------------------------------

@_cpu_only
def randn(*size_, size=None, generator=None, dtype=None, device=None,
          requires_grad=False) -> Tensor:
    """Standard normal samples (gradjit's generator, not PyTorch's stream)."""
    arr = _gen(generator).standard_normal(_size(size_, size))
    return _finish(arr, _dtype(dtype, default_float()), requires_grad)


@_cpu_only
def rand(*size_, size=None, generator=None, dtype=None, device=None,
         requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1)."""
    ir = _dtype(dtype, default_float())
    arr = _gen(generator).random(_size(size_, size))
    # NOTE: rounding to float32 can turn 0.99999999 into 1.0; keep the interval half-open
    arr = np.minimum(arr.astype(dtype_from_ir(ir).numpy), np.nextafter(np.float32(1), 0)) \
        if ir == "f32" else arr
    return _finish(arr, ir, requires_grad)


@_cpu_only
def randint(low, high=None, size=None, generator=None, dtype=None, device=None,
            requires_grad=False) -> Tensor:
    """randint(high, size) or randint(low, high, size): int64 samples in [low, high)."""
    if size is None:
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    arr = _gen(generator).integers(low, high, _size((size,)))
    return _finish(arr, _dtype(dtype, "i64"), requires_grad)


@_cpu_only
def randperm(n: int, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(_gen(generator).permutation(n), _dtype(dtype, "i64"), requires_grad)


def _gen(g) -> np.random.Generator:
    return generator(g)


# ---- *_like --------------------------------------------------------------------------------

def _like(t, dtype):
    """The shape and dtype of t (a Tensor, or a NumPy array as numpy.zeros_like takes)."""
    if not isinstance(t, Tensor):
        arr = np.asarray(t)
        return arr.shape, _dtype(dtype, array_dtype(arr.dtype) or default_float())
    return tuple(t.shape), _dtype(dtype, t._expr.type.dtype)


@_cpu_only
def zeros_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape, ir = _like(input, dtype)
    return _finish(np.zeros(shape), ir, requires_grad)


@_cpu_only
def ones_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape, ir = _like(input, dtype)
    return _finish(np.ones(shape), ir, requires_grad)


@_cpu_only
def empty_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return zeros_like(input, dtype=dtype, requires_grad=requires_grad)


@_cpu_only
def full_like(input: Tensor, fill_value, dtype=None, device=None,
              requires_grad=False) -> Tensor:
    shape, ir = _like(input, dtype)
    return _finish(np.full(shape, fill_value), ir, requires_grad)


@_cpu_only
def randn_like(input: Tensor, dtype=None, device=None, requires_grad=False, *,
               generator=None) -> Tensor:
    shape, ir = _like(input, dtype)
    return randn(shape, generator=generator, dtype=dtype_from_ir(ir),
                 requires_grad=requires_grad)


@_cpu_only
def rand_like(input: Tensor, dtype=None, device=None, requires_grad=False, *,
              generator=None) -> Tensor:
    shape, ir = _like(input, dtype)
    return rand(shape, generator=generator, dtype=dtype_from_ir(ir),
                requires_grad=requires_grad)


@_cpu_only
def randint_like(input: Tensor, low, high=None, dtype=None, device=None, requires_grad=False, *,
                 generator=None) -> Tensor:
    if high is None:
        low, high = 0, low
    shape, ir = _like(input, dtype)
    return randint(low, high, shape, generator=generator, dtype=dtype_from_ir(ir),
                   requires_grad=requires_grad)


# ---- Tensor.new_* (attached by tracer/surface.py) ----------------------------------------

def new_factory(factory):
    """t.new_zeros(size) from zeros: a new tensor with t's dtype unless one is given."""
    def method(self, *size_, size=None, dtype=None, device=None, requires_grad=False):
        devices.check(device)
        dtype = dtype or self.dtype
        return factory(_size(size_, size), dtype=dtype, requires_grad=requires_grad)
    method.__name__ = f"new_{factory.__name__}"
    return method


@_cpu_only
def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
    return full(size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad)


@_cpu_only
def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    return tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad)
