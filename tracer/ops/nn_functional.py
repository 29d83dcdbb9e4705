"""Neural-network functions: softmax, log_softmax, cross_entropy, nll_loss, mse_loss, l1_loss,
and a few activations. All shift by the max before exponentiating, so logits of magnitude
1e3 give finite values and gradients (softmax = exp(x - max) / sum, log_softmax =
(x - max) - log(sum(exp(x - max)))).
"""
from __future__ import annotations

import warnings

from ir.core import is_float
from tracer.ops.operands import (cast, constant, dtype_of, float_dtype, norm_axis, operands,
                                 to_tensor, user_error)
from tracer.ops.elementwise import relu, sigmoid, tanh
from tracer.ops.indexing import take_along
from tracer.ops.reduce import broadcast_back, kept_shape, logsumexp
from tracer import op_memo
from tracer.errors import warn_at_user
from tracer.record import apply, torch_op
from tracer.tensor import Tensor

__all__ = ["softmax", "log_softmax", "cross_entropy", "nll_loss", "mse_loss", "l1_loss",
           "relu", "sigmoid", "tanh", "silu", "softplus", "leaky_relu", "logsumexp"]

_REDUCTIONS = ("mean", "sum", "none")


def _warn_implicit_dim(stacklevel: int):
    # PyTorch's implicit choice is deprecated there, with the same warning
    warnings.warn("Implicit dimension choice for softmax has been deprecated. Change the "
                  "call to include dim=X as an argument.", stacklevel=stacklevel + 1)


def _softmax_dim(t, dim):
    if dim is None:
        _warn_implicit_dim(stacklevel=3)
        dim = 0 if t.ndim in (0, 1, 3) else 1
    return norm_axis(dim, t.ndim)


def _implicit_dim_guard(args, kwargs):
    """A replayed softmax/log_softmax with an implicit dim warns as its body does."""
    if (args[1] if len(args) > 1 else kwargs.get("dim")) is None and kwargs.get("axis") is None:
        _warn_implicit_dim(stacklevel=4)


op_memo.GUARDS["Softmax"] = op_memo.GUARDS["LogSoftmax"] = _implicit_dim_guard


def _shifted(x, dim, dtype):
    """(x - max(x, dim), reduced axes) in a floating dtype."""
    t = to_tensor(x)
    t = cast(t, dtype if dtype is not None else float_dtype(dtype_of(t)))
    d = _softmax_dim(t, dim)
    axes = (d,) if t.ndim else ()
    # the shift cancels in the result, so its gradient is exactly zero: do not compute it
    m = apply("stop_gradient", apply("reduce_max", t, axes=axes))
    return apply("sub", t, broadcast_back(m, t.shape, axes)), axes


def _sum_back(z, axes):
    """sum(z, axes) broadcast back over z's shape."""
    return broadcast_back(apply("reduce_sum", z, axes=axes), z.shape, axes)


@torch_op("Softmax", saves=("out",))
def softmax(input, dim=None, _stacklevel=3, dtype=None, *, axis=None):
    """exp(x) / sum(exp(x)) along dim, computed as exp(x - max) / sum."""
    z, axes = _shifted(input, axis if dim is None else dim, dtype)
    e = apply("exp", z)
    return apply("div", e, _sum_back(e, axes))


@torch_op("LogSoftmax", saves=("out",))
def log_softmax(input, dim=None, _stacklevel=3, dtype=None, *, axis=None):
    """x - logsumexp(x) along dim, computed as (x - max) - log(sum(exp(x - max)))."""
    z, axes = _shifted(input, axis if dim is None else dim, dtype)
    lse = apply("log", apply("reduce_sum", apply("exp", z), axes=axes))
    return apply("sub", z, broadcast_back(lse, z.shape, axes))


def _reduce(loss, reduction: str, denominator=None):
    """mean (over elements, or sum / denominator), sum, or none."""
    if reduction not in _REDUCTIONS:
        raise user_error(ValueError, f"{reduction} is not a valid value for reduction")
    if reduction == "none":
        return loss
    total = apply("reduce_sum", loss, axes=tuple(range(loss.ndim)))
    if reduction == "sum":
        return total
    if denominator is None:
        denominator = constant(loss.numel(), dtype_of(loss), ())
    return apply("div", total, denominator)


def _class_targets(logp, target, ignore_index: int):
    """(-log p[target], valid mask) for class-index targets (N,) / (N, d...) or ()."""
    t = to_tensor(target)
    want = tuple(logp.shape[:1] + logp.shape[2:]) if logp.ndim > 1 else ()
    if tuple(t.shape) != want:
        if logp.ndim == 1 and tuple(t.shape) == (1,):       # PyTorch takes a (1,) target too
            t = apply("reshape", t, shape=())
        else:
            _refuse_target_shape(logp, t, want)
    if dtype_of(t) != "i64":
        raise user_error(RuntimeError, "expected target dtype to be Long or Byte, but got "
                                       f"{_SCALAR_NAMES.get(dtype_of(t), dtype_of(t))}")
    if not is_float(dtype_of(logp)):
        raise user_error(NotImplementedError, f'"nll_loss_out_frame" not implemented for '
                                              f"'{_SCALAR_NAMES[dtype_of(logp)]}'")
    c = logp.shape[1] if logp.ndim > 1 else logp.shape[0]
    t = cast(t, "i64")
    valid = apply("ne", t, constant(ignore_index, "i64", t.shape))
    _check_target_values(t, c, ignore_index)
    safe = apply("select", valid, t, constant(0, "i64", t.shape))
    cls = 1 if logp.ndim > 1 else 0
    picked = take_along(logp, apply("reshape", safe, shape=kept_shape(logp.shape, (cls,))
                                    if logp.ndim > 1 else (1,)), cls)
    nll = apply("neg", apply("reshape", picked, shape=want))
    return nll, valid, safe


_SCALAR_NAMES = {"f32": "Float", "f64": "Double", "i32": "Int", "i64": "Long", "bool": "Bool"}


def _refuse_target_shape(logp, t, want):
    """PyTorch's error for class-index targets of the wrong shape (its order of checks)."""
    if logp.ndim == 1:
        raise user_error(ValueError, "For 1D input, 1D target must have size 1, but got target "
                                     f"size: {t.shape[0] if t.ndim == 1 else list(t.shape)}")
    if logp.ndim == 2 and t.ndim != 1:
        raise user_error(RuntimeError, "0D or 1D target tensor expected, multi-target not "
                                       "supported")
    if t.ndim == 0 or t.shape[0] != logp.shape[0]:
        raise user_error(ValueError, f"Expected input batch_size ({logp.shape[0]}) to match "
                                     f"target batch_size ({t.shape[0] if t.ndim else 0}).")
    raise user_error(RuntimeError, f"Expected target size {list(want)}, got {list(t.shape)}")


def _check_target_values(t, c: int, ignore_index: int):
    data = t._expr.data
    if data is not None and data.size and not (0 <= data.min() and data.max() < c):
        bad = data[(data != ignore_index) & ((data < 0) | (data >= c))]
        if bad.size:
            raise user_error(IndexError, f"Target {int(bad.flat[0])} is out of bounds.")


def _memo_guard(args, kwargs):
    """The data check of _class_targets, before a replay of cross_entropy / nll_loss
    (tracer/op_memo.py): both take (input, target, weight, size_average, ignore_index)."""
    x, t = args[0], args[1] if len(args) > 1 else kwargs.get("target")
    ignore = kwargs.get("ignore_index", args[4] if len(args) > 4 else -100)
    if isinstance(x, Tensor) and isinstance(t, Tensor) and t._expr.type.dtype == "i64" \
            and x.ndim > 0:
        _check_target_values(t, x.shape[1] if x.ndim > 1 else x.shape[0], ignore)


op_memo.GUARDS["NllLoss"] = _memo_guard


def _nll(logp, target, weight, ignore_index, reduction, label_smoothing=0.0):
    nll, valid, safe = _class_targets(logp, target, ignore_index)
    dtype = dtype_of(logp)
    w = cast(valid, dtype)
    if weight is not None:
        wt = cast(to_tensor(weight), dtype)
        w = apply("mul", w, apply("gather", wt, safe, axis=0))
    if label_smoothing:
        cls = 1 if logp.ndim > 1 else 0
        c = logp.shape[cls]
        smooth = apply("neg", apply("reduce_sum", logp, axes=(cls,)))
        nll = apply("add", apply("mul", nll, constant(1 - label_smoothing, dtype, nll.shape)),
                    apply("mul", smooth, constant(label_smoothing / c, dtype, nll.shape)))
    loss = apply("mul", nll, w)
    denom = apply("reduce_sum", w, axes=tuple(range(w.ndim)))
    return _reduce(loss, reduction, denom)


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise user_error(ValueError, f"{reduction} is not a valid value for reduction")


@torch_op("NllLoss", saves=(1,))
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross entropy of logits (N, C) / (C,) / (N, C, d...) against class indices, or against
    class probabilities of the input's shape; reductions mean (weighted), sum and none."""
    _check_reduction(reduction)
    if label_smoothing > 1.0:
        raise user_error(RuntimeError, "label_smoothing must be between 0.0 and 1.0. Got: "
                                       f"{label_smoothing}")
    label_smoothing = max(label_smoothing, 0.0)         # PyTorch 2.13 ignores a negative one
    x = to_tensor(input)
    if not is_float(dtype_of(x)):
        kernel = "log_softmax_lastdim_kernel_impl" if x.ndim <= 2 else "log_softmax_kernel_impl"
        raise user_error(NotImplementedError, f'"{kernel}" not implemented for '
                                              f"'{_SCALAR_NAMES[dtype_of(x)]}'")
    if x.ndim == 0:
        raise user_error(ValueError, "cross_entropy: input must have at least one dimension")
    logp = log_softmax(x, 1 if x.ndim > 1 else 0)
    t = to_tensor(target)
    if tuple(t.shape) == tuple(x.shape):
        if not is_float(dtype_of(t)):
            raise user_error(RuntimeError, "Expected floating point type for target with class "
                                           f"probabilities, got {_SCALAR_NAMES[dtype_of(t)]}")
        return _soft_targets(logp, cast(t, dtype_of(x)), weight, reduction, label_smoothing)
    return _nll(logp, t, weight, ignore_index, reduction, label_smoothing)


def _soft_targets(logp, probs, weight, reduction, label_smoothing):
    cls = 1 if logp.ndim > 1 else 0
    dtype = dtype_of(logp)
    if label_smoothing:
        c = logp.shape[cls]
        probs = apply("add", apply("mul", probs, constant(1 - label_smoothing, dtype, probs.shape)),
                      constant(label_smoothing / c, dtype, probs.shape))
    prod = apply("mul", logp, probs)
    if weight is not None:
        w = cast(to_tensor(weight), dtype)
        prod = apply("mul", prod, apply("broadcast_in_dim", w, shape=tuple(prod.shape),
                                        dims=(cls,)))
    loss = apply("neg", apply("reduce_sum", prod, axes=(cls,)))
    return _reduce(loss, reduction)


@torch_op("NllLoss", saves=(1,))
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log likelihood of log-probabilities (N, C) against class indices."""
    _check_reduction(reduction)
    return _nll(to_tensor(input), target, weight, ignore_index, reduction)


def _warn_broadcast(input_shape, target_shape):
    warn_at_user(f"Using a target size (torch.Size({list(target_shape)})) that is different "
                 f"to the input size (torch.Size({list(input_shape)})). This will likely lead "
                 "to incorrect results due to broadcasting. Please ensure they have the same "
                 "size.")


def _mse_guard(args, kwargs):
    """A replayed mse_loss of operands of two shapes warns as its body does."""
    x, t = args[0], args[1] if len(args) > 1 else kwargs.get("target")
    if isinstance(x, Tensor) and isinstance(t, Tensor) and x.shape != t.shape:
        _warn_broadcast(x.shape, t.shape)


op_memo.GUARDS["MseLoss"] = _mse_guard


@torch_op("MseLoss", saves=(0, 1))
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Mean (or sum, or none) of (input - target)^2 (broadcast, as PyTorch does with a warning)."""
    _check_reduction(reduction)
    if isinstance(input, Tensor) and isinstance(target, Tensor) and input.shape != target.shape:
        _warn_broadcast(input.shape, target.shape)
    a, b = operands(input, target)
    if not is_float(dtype_of(a)):
        a, b = cast(a, "f32"), cast(b, "f32")
    d = apply("sub", a, b)
    return _reduce(apply("integer_pow", d, n=2), reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Mean (or sum, or none) of |input - target|; PyTorch's last node names the grad_fn
    (MeanBackward0, SumBackward0 or AbsBackward0)."""
    _check_reduction(reduction)
    return _L1_BY_REDUCTION.get(reduction, _l1_mean)(input, target, reduction)


def _l1(input, target, reduction):
    a, b = operands(input, target)
    return _reduce(apply("abs", apply("sub", a, b)), reduction)


_l1_mean = torch_op("Mean", saves=(0, 1))(_l1)
_L1_BY_REDUCTION = {"mean": _l1_mean, "sum": torch_op("Sum", saves=(0, 1))(_l1),
                    "none": torch_op("Abs", saves=(0, 1))(_l1)}


@torch_op("Silu", saves=(0,))
def silu(input, inplace=False):
    """x * sigmoid(x)."""
    t = to_tensor(input)
    t = cast(t, float_dtype(dtype_of(t)))
    return apply("mul", t, apply("logistic", t))


@torch_op("Softplus", saves=(0,))
def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, as max(z, 0) + log1p(exp(-|z|)) (no overflow); linear
    above threshold, as PyTorch."""
    t = to_tensor(input)
    t = cast(t, float_dtype(dtype_of(t)))
    dtype = dtype_of(t)
    z = apply("mul", t, constant(beta, dtype, t.shape)) if beta != 1 else t
    zero = constant(0, dtype, t.shape)
    tail = apply("log1p", apply("exp", apply("neg", apply("abs", z))))
    soft = apply("add", apply("max", z, zero), tail)
    if beta != 1:
        soft = apply("div", soft, constant(beta, dtype, t.shape))
    return apply("select", apply("gt", z, constant(threshold, dtype, t.shape)), t, soft)


@torch_op("LeakyRelu", saves=(0,))
def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x where x > 0, negative_slope * x elsewhere."""
    t = to_tensor(input)
    dtype = dtype_of(t)
    scaled = apply("mul", t, constant(negative_slope, dtype, t.shape))
    return apply("select", apply("gt", t, constant(0, dtype, t.shape)), t, scaled)
