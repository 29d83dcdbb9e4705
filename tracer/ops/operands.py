"""Turning user arguments into Tensors: dtype promotion, broadcasting, axis checks, errors.

Promotion follows PyTorch's `torch.result_type`: operands fall in three priority classes,
tensors with dimensions, 0-d tensors and Python scalars (weakly typed). A lower class only
changes the result when it is of a higher category (bool < integer < floating), so
`x_f32 * 2.0` and `x_f32 * tensor(2.0, dtype=f64)` stay f32, `int_tensor * 2.5` becomes the
default float dtype (f32), and `f32_matrix + f64_matrix` is f64.
"""
from __future__ import annotations

import numbers

import numpy as np

from ir.core import is_float
from ir.primitives import ShapeError
from tracer import record
from tracer.dtypes import AbsentDType, array_dtype, default_float, to_ir_dtype
from tracer.errors import user_location
from tracer.record import apply, torch_op
from tracer.tensor import Tensor, tensor_from_array

_ORDER = ("bool", "i32", "i64", "f32", "f64")      # promotion is the max in this order


# ---- errors that name the user's line --------------------------------------------------

def where_am_i() -> str:
    """The user's file:line of the op being recorded."""
    return getattr(record._state, "loc", None) or user_location() or "<unknown>"


def user_error(exc_type, msg: str) -> Exception:
    """An exception of exc_type whose message ends with the user's file:line."""
    return exc_type(f"{msg} (at {where_am_i()})")


# ---- dtypes ------------------------------------------------------------------------------

def category(dtype: str) -> int:
    return 0 if dtype == "bool" else (2 if is_float(dtype) else 1)


def promote_types(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return b if a is None else a
    return max(a, b, key=_ORDER.index)


def _combine(higher: str | None, lower: str | None) -> str | None:
    """PyTorch's combine_categories: a lower class wins only by being of a higher category."""
    if higher is None or lower is None:
        return lower if higher is None else higher
    if is_float(higher):
        return higher
    if higher == "bool" or is_float(lower):
        return promote_types(higher, lower)
    return higher


def is_scalar(x) -> bool:
    """A Python (or NumPy) number: weakly typed in promotion."""
    t = type(x)
    if t is float or t is int or t is bool:
        return True                 # the common cases, without the abc checks (hot path)
    if isinstance(x, Tensor):
        return False
    return isinstance(x, (numbers.Number, np.generic)) and not isinstance(x, np.ndarray)


def scalar_dtype(x) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "bool"
    if isinstance(x, (numbers.Integral, np.integer)):
        return "i64"
    if isinstance(x, (numbers.Real, np.floating)):
        return default_float()
    raise user_error(TypeError, f"unsupported scalar {x!r} of type {type(x).__name__}")


def result_type(*args) -> str:
    """The dtype PyTorch gives an elementwise op on args (Tensors, arrays, scalars)."""
    dim = zero = weak = None
    for a in args:
        if is_scalar(a):
            weak = promote_types(weak, scalar_dtype(a))
            continue
        t = to_tensor(a)
        if t.ndim == 0:
            zero = promote_types(zero, t._expr.type.dtype)
        else:
            dim = promote_types(dim, t._expr.type.dtype)
    return _combine(dim, _combine(zero, weak))


def float_dtype(dtype: str) -> str:
    """The dtype a floating-only op computes in: ints and bools become the default float."""
    return dtype if is_float(dtype) else default_float()


def ir_dtype(dtype) -> str:
    try:
        return to_ir_dtype(dtype)
    except (TypeError, KeyError):
        if isinstance(dtype, AbsentDType):           # float16, bfloat16: say why
            raise TypeError(dtype.refusal()) from None
        raise user_error(TypeError, f"unsupported dtype {dtype!r}") from None


# ---- conversion -----------------------------------------------------------------------------

def _array_dtype(arr: np.ndarray) -> str:
    """The IR dtype for a NumPy array (tracer.dtypes.array_dtype), else an error naming the
    user's line."""
    dtype = array_dtype(arr.dtype)
    if dtype is None:
        raise user_error(TypeError, f"unsupported array dtype {arr.dtype}")
    return dtype


def _from_list(data) -> Tensor:
    """torch.tensor(list): Python floats give the default float dtype."""
    if any(isinstance(e, Tensor) for e in _flat(data)):
        return _stack([to_tensor(e) for e in data])
    arr = np.array(data)
    if arr.dtype == object:
        raise user_error(ValueError, "cannot make a tensor from a ragged nested sequence")
    if arr.dtype.kind == "f":
        return tensor_from_array(arr, default_float())
    return tensor_from_array(arr, _array_dtype(arr) if arr.size else default_float())


def _flat(data):
    for e in data:
        if isinstance(e, (list, tuple)):
            yield from _flat(e)
        else:
            yield e


def to_tensor(x, dtype: str | None = None) -> Tensor:
    """x as a Tensor (converted to dtype if given). Scalars become 0-d constants."""
    if isinstance(x, Tensor):
        t = x
    elif is_scalar(x):
        return constant(x, dtype or scalar_dtype(x), ())
    elif isinstance(x, np.ndarray):
        t = tensor_from_array(x, _array_dtype(x))
    elif isinstance(x, (list, tuple)):
        t = _from_list(x)
    elif hasattr(x, "__array__"):
        t = to_tensor(np.asarray(x))
    else:
        raise user_error(TypeError, f"expected a Tensor, array or number, got {type(x).__name__}")
    return cast(t, dtype) if dtype is not None else t


def written_as(value, dtype: str) -> Tensor:
    """value (a number or Tensor) as a Tensor of dtype, for a write into a tensor of dtype
    (`x[i] = v`, `fill_`, `index_fill_`): a Python float goes straight to dtype, as PyTorch
    keeps a number's double precision (an f32 constant first rounded 0.1 written into a
    float64 tensor to 0.10000000149...)."""
    if isinstance(value, float) and is_float(dtype):
        return constant(value, dtype, ())
    return cast(to_tensor(value), dtype)


def constant(value, dtype: str, shape=()) -> Tensor:
    """A constant splatted over shape (a `constant` op; folded by the optimiser)."""
    if dtype == "bool":
        value = bool(value)
    elif is_float(dtype):
        value = float(value)
    else:
        value = int(value)
    return apply("constant", value=value, dtype=dtype, shape=tuple(shape))


def cast(t: Tensor, dtype: str) -> Tensor:
    if t._expr.type.dtype == dtype:
        return t
    return apply("convert", t, dtype=dtype)


def dtype_of(t: Tensor) -> str:
    return t._expr.type.dtype


def same_dtype(tensors, what: str) -> list[Tensor]:
    """The tensors of cat/stack, promoted to one dtype."""
    ts = [to_tensor(v) for v in tensors]
    if not ts:
        raise user_error(ValueError, f"{what}(): expected a non-empty list of Tensors")
    dtype = None
    for v in ts:
        dtype = promote_types(dtype, dtype_of(v))
    return [cast(v, dtype) for v in ts]


def stack_tensors(tensors, dim=0) -> Tensor:
    """torch.stack's computation (tracer.ops.shape.stack is the op): also what a list
    holding Tensors becomes."""
    ts = same_dtype(tensors, "stack")
    for v in ts[1:]:
        if tuple(v.shape) != tuple(ts[0].shape):
            raise user_error(ShapeError, f"stack expects each tensor to be equal size, but got "
                                         f"{list(ts[0].shape)} and {list(v.shape)}")
    d = norm_axis(dim, ts[0].ndim + 1)
    shape = tuple(ts[0].shape[:d]) + (1,) + tuple(ts[0].shape[d:])
    return apply("concatenate", *(apply("reshape", v, shape=shape) for v in ts), axis=d)


_stack = torch_op("Stack")(stack_tensors)


# ---- broadcasting --------------------------------------------------------------------------

def broadcast_shapes(*shapes) -> tuple[int, ...]:
    """NumPy's broadcast of shapes; ShapeError naming the user's line when they clash."""
    if shapes and all(s == shapes[0] for s in shapes):
        return tuple(shapes[0])
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        sizes = {s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0}
        sizes.discard(1)
        if len(sizes) > 1:
            shown = " and ".join(str(list(s)) for s in shapes)
            raise user_error(ShapeError, f"shapes {shown} cannot be broadcast together")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def broadcast(t: Tensor, shape) -> Tensor:
    """t broadcast to shape (leading axes added, size-1 axes stretched)."""
    shape = tuple(shape)
    if t._expr.value.type.shape == shape:
        return t
    lead = len(shape) - t.ndim
    if lead < 0 or any(d not in (1, s) for d, s in zip(t.shape, shape[lead:])):
        raise user_error(ShapeError, f"cannot broadcast shape {list(t.shape)} to {list(shape)}")
    return apply("broadcast_in_dim", t, shape=shape, dims=tuple(range(lead, len(shape))))


def operands(*args, dtype: str | None = None) -> list[Tensor]:
    """args as Tensors of one dtype (promoted, or dtype) broadcast to one shape."""
    if _alike(args, dtype):
        return list(args)
    args = [a if is_scalar(a) else to_tensor(a) for a in args]
    dtype = dtype or result_type(*args)
    shape = broadcast_shapes(*(() if is_scalar(a) else tuple(a.shape) for a in args))
    return [constant(a, dtype, shape) if is_scalar(a) else broadcast(cast(a, dtype), shape)
            for a in args]


def _alike(args, dtype) -> bool:
    """All args are Tensors of one dtype (dtype, if given) and one shape: nothing to do."""
    first = args[0] if args else None
    if not isinstance(first, Tensor):
        return False
    t = first._expr.value.type
    if dtype is not None and t.dtype != dtype:
        return False
    for a in args[1:]:
        if not isinstance(a, Tensor) or a._expr.value.type != t:
            return False
    return True


# ---- axes ------------------------------------------------------------------------------------

def norm_axis(axis, ndim: int) -> int:
    """A non-negative axis; IndexError (PyTorch's text) when out of range."""
    if isinstance(axis, Tensor) or not isinstance(axis, (numbers.Integral, np.integer)):
        raise user_error(TypeError, f"dim must be an int, got {type(axis).__name__}")
    axis = int(axis)
    rank = max(ndim, 1)
    if not -rank <= axis < rank:
        raise user_error(IndexError, f"Dimension out of range (expected to be in range of "
                                     f"[{-rank}, {rank - 1}], but got {axis})")
    return axis % rank


def norm_axes(axes, ndim: int) -> tuple[int, ...]:
    """axes (None, int or sequence) as sorted non-negative axes; None or () means all."""
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, (list, tuple)):
        if len(axes) == 0:
            return tuple(range(ndim))
        out = [norm_axis(a, ndim) for a in axes]
        if len(set(out)) != len(out):
            raise user_error(ValueError, f"dim {list(axes)} appears multiple times in the list")
        return tuple(sorted(a for a in out if a < ndim))
    a = norm_axis(axes, ndim)
    return (a,) if a < ndim else ()


def pick_dim(dim, axis, default=None):
    """Accepts both spellings, dim= (PyTorch) and axis= (NumPy)."""
    if dim is not None and axis is not None:
        raise user_error(TypeError, "give dim or axis, not both")
    return dim if dim is not None else (axis if axis is not None else default)


def shape_arg(shape) -> tuple:
    """(2, 3), [2, 3], Size or varargs (2, 3) as a tuple of ints."""
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = tuple(shape[0])
    out = []
    for d in shape:
        if isinstance(d, Tensor):
            d = int(d)
        if not isinstance(d, (numbers.Integral, np.integer)):
            raise user_error(TypeError, f"shape entries must be ints, got {d!r}")
        out.append(int(d))
    return tuple(out)

