"""Elementwise math: unary functions, arithmetic, maximum/minimum, where, clamp, pow.

Each op converts its arguments (tracer/ops/operands.py: promotion, broadcasting) and records
one IR primitive, or a short composition of them. Names and `saves` follow PyTorch's backward
nodes (derivatives.yaml): exp/tanh/sigmoid/sqrt/rsqrt/expm1/tan/relu keep their result,
log/log1p/sin/cos/erf/abs keep their input, add/sub/neg keep nothing.
"""
from __future__ import annotations

import numbers

from ir.core import is_float
from tracer.ops.operands import (broadcast, broadcast_shapes, cast, constant, dtype_of,
                                 float_dtype, is_scalar, operands, result_type, to_tensor,
                                 user_error)
from tracer.ops.eager_only import nonzero
from tracer.ops.rounding import div_rounded
from tracer import step_follow
from tracer.record import apply, torch_op
from tracer.tensor import Tensor

__all__ = ["add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "neg",
           "negative", "positive", "pow", "square", "exp", "log", "log1p", "expm1", "sqrt",
           "rsqrt", "abs", "absolute", "sign", "sin", "cos", "tan", "tanh", "sigmoid", "erf",
           "relu", "reciprocal", "maximum", "minimum", "where", "clamp", "clamp_min",
           "clamp_max", "masked_fill", "stop_gradient"]


def stop_gradient(x) -> Tensor:
    """x itself, with zero derivative in every transform (JAX's lax.stop_gradient)."""
    return apply("stop_gradient", to_tensor(x))


def _float_unary(name: str, prim: str, node: str, saves: tuple):
    """A floating-point function: integer and bool inputs compute in the default float."""
    def op(input):
        t = to_tensor(input)
        return apply(prim, cast(t, float_dtype(dtype_of(t))))
    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise {name} (IR primitive `{prim}`); ints promote to float32."
    return torch_op(node, saves=saves)(op)


# saves: what PyTorch's backward node keeps (the result for exp-like functions)
exp = _float_unary("exp", "exp", "Exp", ("out",))
log = _float_unary("log", "log", "Log", (0,))
log1p = _float_unary("log1p", "log1p", "Log1P", (0,))
expm1 = _float_unary("expm1", "expm1", "Expm1", ("out",))
erf = _float_unary("erf", "erf", "Erf", (0,))
sqrt = _float_unary("sqrt", "sqrt", "Sqrt", ("out",))
rsqrt = _float_unary("rsqrt", "rsqrt", "Rsqrt", ("out",))
sin = _float_unary("sin", "sin", "Sin", (0,))
cos = _float_unary("cos", "cos", "Cos", (0,))
tan = _float_unary("tan", "tan", "Tan", ("out",))
tanh = _float_unary("tanh", "tanh", "Tanh", ("out",))
sigmoid = _float_unary("sigmoid", "logistic", "Sigmoid", ("out",))


def _numeric(x, what: str, cls=RuntimeError):
    """x, refused when bool with PyTorch 2.13's class (abs: NotImplementedError)."""
    t = to_tensor(x)
    if dtype_of(t) == "bool":
        raise user_error(cls, f"{what} is not supported on bool tensors; use ~ or "
                                    "logical_not() to invert a mask")
    return t


@torch_op("Neg")
def neg(input):
    """-x."""
    return apply("neg", _numeric(input, "negation (the - operator)"))


@torch_op("Abs", saves=(0,))
def abs(input):
    """|x|; the gradient at 0 is 0, as in PyTorch."""
    return apply("abs", _numeric(input, "abs", NotImplementedError))


@torch_op("Sign")
def sign(input):
    """-1, 0 or 1 (same dtype); its gradient is zero."""
    t = to_tensor(input)
    if dtype_of(t) == "bool":
        return apply("reshape", t, shape=tuple(t.shape))
    return apply("sign", t)


@torch_op("Relu", saves=("out",))
def relu(input):
    """max(x, 0) with gradient 0 at x <= 0 (PyTorch's threshold_backward), via select.
    NaN stays NaN with gradient 1, as in PyTorch: the test is x <= 0, which NaN fails."""
    t = _numeric(input, "relu")
    zero = constant(0, dtype_of(t), t.shape)
    return apply("select", apply("le", t, zero), zero, t)


@torch_op("Reciprocal", saves=("out",))
def reciprocal(input):
    t = to_tensor(input)
    t = cast(t, float_dtype(dtype_of(t)))
    return apply("div", constant(1, dtype_of(t), t.shape), t)


# ---- arithmetic -----------------------------------------------------------------------------

def _scaled(y, alpha, x=None):
    """other * alpha for add/sub's alpha= keyword (kept a Python number when it is one); a
    float alpha on integral operands x, y is PyTorch's RuntimeError."""
    if alpha == 1:
        return y
    if isinstance(alpha, float) and not (type(x) is Tensor and is_float(dtype_of(x))) \
            and not is_float(result_type(x, y)):       # (a float x: no promotion needed)
        raise user_error(RuntimeError, "For integral input tensors, argument alpha must not "
                                       "be a floating point number.")
    if is_scalar(y):
        return y * alpha
    return mul(y, alpha)


@torch_op("Add")
def add(input, other, *, alpha=1):
    """x + alpha * y with NumPy broadcasting and PyTorch's promotion (bool + bool is or)."""
    a, b = operands(input, _scaled(other, alpha, input))
    if dtype_of(a) == "bool":
        return apply("logical_or", a, b)
    return apply("add", a, b)


@torch_op("Sub")
def sub(input, other, *, alpha=1):
    """x - alpha * y (PyTorch refuses a bool on either side, a Python True included)."""
    if any(isinstance(v, bool) or (isinstance(v, Tensor) and dtype_of(v) == "bool")
           for v in (input, other)):
        if all(isinstance(v, Tensor) and dtype_of(v) == "bool" for v in (input, other)):
            raise user_error(RuntimeError, "Subtraction, the `-` operator, with two bool "
                                           "tensors is not supported. Use the `^` or "
                                           "`logical_xor()` operator instead.")
        raise user_error(RuntimeError, "Subtraction, the `-` operator, with a bool tensor is "
                                       "not supported. If you are trying to invert a mask, use "
                                       "the `~` or `logical_not()` operator instead.")
    a, b = operands(input, _scaled(other, alpha, input))
    return apply("sub", a, b)


@torch_op("Mul", saves=(0, 1))
def mul(input, other):
    """x * y (bool * bool is and)."""
    a, b = operands(input, other)
    if dtype_of(a) == "bool":
        return apply("logical_and", a, b)
    return apply("mul", a, b)


@torch_op("Div", saves=(0, 1))
def div(input, other, *, rounding_mode=None):
    """True division: integer operands give the default float dtype. rounding_mode 'trunc'
    or 'floor' rounds the quotient (keeping integer dtypes), as PyTorch's div."""
    if rounding_mode is not None:
        return div_rounded(input, other, rounding_mode)
    dtype = float_dtype(result_type(input, other))
    a, b = operands(input, other, dtype=dtype)
    return apply("div", a, b)


@torch_op("Maximum", saves=(0, 1))
def maximum(input, other):
    """Elementwise max; at ties the gradient is split evenly, as in PyTorch."""
    a, b = operands(input, other)
    return apply("max", a, b)


@torch_op("Minimum", saves=(0, 1))
def minimum(input, other):
    """Elementwise min; at ties the gradient is split evenly, as in PyTorch."""
    a, b = operands(input, other)
    return apply("min", a, b)


# ---- pow --------------------------------------------------------------------------------------

def _integral(e) -> bool:
    """An exponent integer_pow can take: an int, or a float with an integral value."""
    if isinstance(e, (bool, numbers.Integral)):
        return True
    return float(e).is_integer() and -2 ** 31 < float(e) < 2 ** 31


def _int_pow(a, b):
    """int ** int through exact f64 arithmetic (pow is a floating primitive)."""
    out = apply("pow", cast(a, "f64"), cast(b, "f64"))
    return cast(out, dtype_of(a))


@torch_op("Pow", saves=(0,))
def _pow_scalar(x, exponent):
    t = to_tensor(x)
    dtype = result_type(t, exponent)
    t = cast(t, dtype)
    if dtype == "bool":              # bool ** True / False: counted in ints, as PyTorch
        return cast(apply("integer_pow", cast(t, "i64"), n=int(exponent)), "bool")
    if _integral(exponent):
        n = int(exponent)
        if n < 0 and not is_float(dtype):
            raise user_error(RuntimeError, "Integers to negative integer powers are not allowed.")
        return apply("integer_pow", t, n=n)
    if is_float(dtype) and float(exponent) in (0.5, -0.5):
        # PyTorch (and NumPy's `x ** 0.5`) take sqrt / rsqrt here, not C's pow: so
        # (-inf) ** 0.5 is nan (pow says inf) and (-0.) ** 0.5 is -0.
        return apply("sqrt" if float(exponent) > 0 else "rsqrt", t)
    return apply("pow", t, constant(exponent, dtype, t.shape))


def _refuse_bool(a):
    if dtype_of(a) == "bool":        # (a Python number exponent keeps bool ** True legal)
        raise user_error(NotImplementedError, "\"pow\" not implemented for 'Bool'")


@torch_op("Pow", saves=(0, 1, "out"))
def _pow_tensor(x, exponent):
    a, b = operands(x, exponent)
    _refuse_bool(a)
    return apply("pow", a, b) if is_float(dtype_of(a)) else _int_pow(a, b)


@torch_op("Pow", saves=(1, "out"))
def _pow_rscalar(x, exponent):
    a, b = operands(x, exponent)
    _refuse_bool(a)
    return apply("pow", a, b) if is_float(dtype_of(a)) else _int_pow(a, b)


def pow(input, exponent):
    """x ** exponent. An integral scalar exponent records `integer_pow` (exact for negative
    bases, cheap to differentiate); tensor exponents record `pow`."""
    if type(input) is Tensor and (type(exponent) is int or type(exponent) is float):
        # the captured step's next call? (offered as linalg.matmul offers it: no is_scalar,
        # no op wrapper; polynomial_tensor.py's x.pow(2), five a step)
        out = step_follow.follow(_POW_SCALAR, (input, exponent), _NO_KWARGS)
        if out is not step_follow.MISS:
            return out
    if is_scalar(exponent):
        return _pow_scalar(input, exponent)
    if is_scalar(input):
        return _pow_rscalar(input, exponent)
    return _pow_tensor(input, exponent)


pow.torch_name = "Pow"
_POW_SCALAR = _pow_scalar.memo_body          # (what its wrapper offers to step_follow.follow)
_NO_KWARGS: dict = {}


@torch_op("Pow", saves=(0,))
def square(input):
    """x ** 2 (bool and int inputs keep their dtype, bool becomes int64 as in PyTorch)."""
    t = to_tensor(input)
    t = cast(t, "i64") if dtype_of(t) == "bool" else t
    return apply("integer_pow", t, n=2)


# ---- where and clamp ----------------------------------------------------------------------

@torch_op("Where", saves=(0,))
def where(condition, input=None, other=None):
    """input where condition else other (broadcast together); condition must be bool. With
    the condition alone, nonzero(condition, as_tuple=True) (eager only: tracer/ops/eager_only)."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    cond = to_tensor(condition)
    if dtype_of(cond) != "bool":
        raise user_error(RuntimeError, "where expected condition to be a boolean tensor, but got "
                                    f"a tensor with dtype {dtype_of(cond)}")
    a, b = operands(input, other)
    shape = broadcast_shapes(tuple(cond.shape), tuple(a.shape))
    return apply("select", broadcast(cond, shape), broadcast(a, shape), broadcast(b, shape))


def _clamp_impl(x, lo, hi):
    if lo is None and hi is None:
        raise user_error(ValueError, "clamp: At least one of 'min' or 'max' must not be None")
    bounds = [b for b in (lo, hi) if b is not None]
    args = operands(x, *bounds)
    t, rest = args[0], list(args[1:])
    # select keeps the gradient of x inside [min, max] (inclusive), as PyTorch's clamp does;
    # a tensor bound gets it where x is strictly beyond it; an unordered pair (x or the bound
    # NaN) gives NaN through max/min of the detached operands: no gradient to either
    if lo is not None:
        low = rest.pop(0)
        t = apply("select", apply("ge", t, low), t, apply("select", apply("lt", t, low), low,
                  apply("max", stop_gradient(t), stop_gradient(low))))
    if hi is not None:
        high = rest.pop(0)
        t = apply("select", apply("le", t, high), t, apply("select", apply("gt", t, high), high,
                  apply("min", stop_gradient(t), stop_gradient(high))))
    return t


@torch_op("Clamp", saves=(0,))
def _clamp_scalar(x, min=None, max=None):
    return _clamp_impl(x, min, max)


@torch_op("Clamp", saves=(0, 1, 2))
def _clamp_tensor(x, min=None, max=None):
    return _clamp_impl(x, min, max)


def clamp(input, min=None, max=None):
    """x limited to [min, max]; either bound may be None, a number or a tensor."""
    if all(b is None or is_scalar(b) for b in (min, max)):
        return _clamp_scalar(input, min, max)
    return _clamp_tensor(input, min, max)


def clamp_min(input, min):
    return clamp(input, min=min)


def clamp_max(input, max):
    return clamp(input, max=max)


clamp.torch_name = "Clamp"
subtract, multiply, divide, true_divide = sub, mul, div, div
negative, absolute = neg, abs


def positive(input):
    """+x: the tensor itself, as in PyTorch."""
    return to_tensor(input)


@torch_op("MaskedFill", saves=(1,))
def masked_fill(input, mask, value):
    """x with value written where mask (bool, broadcast to x) is true."""
    t = to_tensor(input)
    m = to_tensor(mask)
    if dtype_of(m) != "bool":
        raise user_error(TypeError, f"masked_fill only supports boolean masks, but got mask "
                                    f"with dtype {dtype_of(m)}")
    v = value if is_scalar(value) else cast(to_tensor(value), dtype_of(t))
    if not is_scalar(v) and v.ndim:
        raise user_error(ValueError, "masked_fill only supports a 0-dimensional value tensor")
    a, b = operands(t, v, dtype=dtype_of(t))
    return apply("select", broadcast(m, tuple(t.shape)), b, a)
