"""Special functions that are IR primitives: inverse trigonometric and hyperbolic functions,
log2/log10/exp2, atan2, erfc/erfinv, lgamma/digamma/polygamma (ir/special.py has their rules,
codegen/vmath_special.py and vmath_gamma.py their vectorised bodies).

PyTorch's names, NumPy's where they differ (arcsin ... arctan2), and torch.special's
(gammaln, psi) for the same functions. Integer and bool inputs compute in the default float,
as PyTorch's. `saves` follows derivatives.yaml: most keep their input, exp2 its result.
"""
from __future__ import annotations

import numbers

from tracer.ops.elementwise import _float_unary
from tracer.ops.operands import cast, dtype_of, float_dtype, operands, result_type, to_tensor
from tracer.ops.operands import user_error
from tracer.record import apply, torch_op
from tracer.tensor import Tensor

__all__ = ["asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "arcsin",
           "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "log2", "log10", "exp2", "erfc",
           "erfinv", "lgamma", "gammaln", "digamma", "psi", "polygamma", "atan2", "arctan2"]

asin = _float_unary("asin", "asin", "Asin", (0,))
acos = _float_unary("acos", "acos", "Acos", (0,))
atan = _float_unary("atan", "atan", "Atan", (0,))
sinh = _float_unary("sinh", "sinh", "Sinh", (0,))
cosh = _float_unary("cosh", "cosh", "Cosh", (0,))
asinh = _float_unary("asinh", "asinh", "Asinh", (0,))
acosh = _float_unary("acosh", "acosh", "Acosh", (0,))
atanh = _float_unary("atanh", "atanh", "Atanh", (0,))
log2 = _float_unary("log2", "log2", "Log2", (0,))
log10 = _float_unary("log10", "log10", "Log10", (0,))
exp2 = _float_unary("exp2", "exp2", "Exp2", ("out",))
erfc = _float_unary("erfc", "erfc", "Erfc", (0,))
erfinv = _float_unary("erfinv", "erfinv", "Erfinv", (0,))
lgamma = _float_unary("lgamma", "lgamma", "Lgamma", (0,))
digamma = _float_unary("digamma", "digamma", "Digamma", (0,))
arcsin, arccos, arctan = asin, acos, atan
arcsinh, arccosh, arctanh = asinh, acosh, atanh
gammaln, psi = lgamma, digamma


@torch_op("Polygamma", saves=(1,))
def _polygamma(n: int, x):
    t = to_tensor(x)
    return apply("polygamma", cast(t, float_dtype(dtype_of(t))), n=n)


def polygamma(n: int, input) -> Tensor:
    """The n-th derivative of digamma (n = 0: digamma itself), torch.polygamma(n, input).
    **differs:** below 0 only n <= 2 are computed (by reflection); larger n give NaN there."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise user_error(TypeError, f"polygamma(): argument 'n' must be int, not "
                                    f"{type(n).__name__}")
    if n < 0:
        raise user_error(RuntimeError, "polygamma(n, x) does not support negative n.")
    return digamma(input) if n == 0 else _polygamma(int(n), input)


polygamma.torch_name = "Polygamma"


@torch_op("Atan2", saves=(0, 1))
def atan2(input, other) -> Tensor:
    """The angle of the point (other, input) in [-pi, pi] (C's atan2 at zeros and infinities);
    the gradient at the origin is 0, as PyTorch's."""
    dtype = float_dtype(result_type(input, other))
    y, x = operands(input, other, dtype=dtype)
    return apply("atan2", y, x)


arctan2 = atan2
