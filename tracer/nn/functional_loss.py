"""Losses of nn.functional beyond the op surface's: binary_cross_entropy (+ with_logits and
pos_weight), smooth_l1_loss, huber_loss, kl_div, soft_margin, cosine_similarity; each with
the reductions 'mean', 'sum' and 'none'."""
from __future__ import annotations

import warnings

import tracer.ops as ops
from ir.core import is_float
from tracer import op_memo
from tracer.nn.checks import SCALAR_NAMES
from tracer.nn.functional_act import as_float
from tracer.ops.operands import to_tensor, user_error
from tracer.record import torch_op
from tracer.tensor import Tensor

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "smooth_l1_loss",
           "huber_loss", "kl_div", "soft_margin_loss", "cosine_similarity",
           "margin_ranking_loss"]


def reduce_loss(loss, reduction: str):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise user_error(ValueError, f"{reduction} is not a valid value for reduction")


def _legacy(size_average, reduce, reduction: str) -> str:
    """PyTorch's mapping of the deprecated size_average/reduce flags."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return ("mean" if size_average else "sum") if reduce else "none"


def _same_size(x, t, what: str):
    if tuple(x.shape) != tuple(t.shape):
        raise user_error(ValueError, f"Using a target size ({_size(t)}) that is different "
                                     f"to the input size ({_size(x)}) is deprecated. Please "
                                     "ensure they have the same size.")


def _check_broadcast(a, b):
    """PyTorch's RuntimeError for operands that do not broadcast (a, b in its order)."""
    sa, sb = tuple(a.shape), tuple(b.shape)
    for k in range(1, min(len(sa), len(sb)) + 1):
        if sa[-k] != sb[-k] and 1 not in (sa[-k], sb[-k]):
            dim = max(len(sa), len(sb)) - k
            raise user_error(RuntimeError, f"The size of tensor a ({sa[-k]}) must match the "
                                           f"size of tensor b ({sb[-k]}) at non-singleton "
                                           f"dimension {dim}")


def _size(t) -> str:
    return "torch.Size([" + ", ".join(map(str, t.shape)) + "])"


# one backward node each, under PyTorch's name (tutorials print `loss.grad_fn`)
@torch_op("BinaryCrossEntropy", saves=(0, 1, 2))
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean"):
    """-(t log x + (1 - t) log(1 - x)), each log clamped at -100 as in PyTorch."""
    reduction = _legacy(size_average, reduce, reduction)
    x, t = to_tensor(input), to_tensor(target)
    _same_size(x, t, "binary_cross_entropy")
    _check_bce(x, t)
    log_x = ops.clamp_min(ops.log(x), -100.0)
    log_1mx = ops.clamp_min(ops.log1p(-x), -100.0)
    loss = -(t * log_x + (1.0 - t) * log_1mx)
    if weight is not None:
        loss = loss * weight
    return reduce_loss(loss, reduction)


def _check_bce(x, t):
    """PyTorch's dtype checks, and its value checks where the values are already known (a
    lazy input is not computed early for them: its log is clamped, as in PyTorch)."""
    xd, td = x._expr.type.dtype, t._expr.type.dtype
    if not is_float(xd):
        raise user_error(NotImplementedError, '"binary_cross_entropy" not implemented for '
                                              f"'{SCALAR_NAMES.get(xd, xd)}'")
    if td != xd:
        raise user_error(RuntimeError, f"Found dtype {SCALAR_NAMES.get(td, td)} but expected "
                                       f"{SCALAR_NAMES.get(xd, xd)}")
    for name, v in (("input", x), ("target", t)):
        data = v._expr.data
        if data is not None and data.size and not ((data >= 0) & (data <= 1)).all():
            raise user_error(RuntimeError, f"all elements of {name} should be between 0 and 1")


def _bce_guard(args, kwargs):
    """_check_bce before a replay of binary_cross_entropy (step tapes skip its body)."""
    x, t = args[0], args[1] if len(args) > 1 else kwargs.get("target")
    if isinstance(x, Tensor) and isinstance(t, Tensor):
        _check_bce(x, t)


op_memo.GUARDS["BinaryCrossEntropy"] = _bce_guard


@torch_op("BinaryCrossEntropyWithLogits", saves=(0, 1, 2, 6))
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction: str = "mean", pos_weight=None):
    """BCE of sigmoid(x), computed stably: (1 - t) x + (1 + (pw - 1) t) log(1 + e^-x)."""
    reduction = _legacy(size_average, reduce, reduction)
    x, t = as_float(input), to_tensor(target)
    if tuple(x.shape) != tuple(t.shape):
        raise user_error(ValueError, f"Target size ({_size(t)}) must be the same as input size "
                                     f"({_size(x)})")
    # log(1 + e^-x) = softplus(-x) without overflow
    log_sig_neg = ops.softplus(-x)
    if pos_weight is not None:
        pos_weight = to_tensor(pos_weight)
        _check_broadcast(pos_weight, t)
        coeff = 1.0 + (pos_weight - 1.0) * t
        loss = (1.0 - t) * x + coeff * log_sig_neg
    else:
        loss = (1.0 - t) * x + log_sig_neg
    if weight is not None:
        weight = to_tensor(weight)
        _check_broadcast(loss, weight)
        loss = loss * weight
    return reduce_loss(loss, reduction)


def _broadcast_warning(x, t):
    if tuple(x.shape) != tuple(t.shape):
        warnings.warn(f"Using a target size ({_size(t)}) that is different to the input size "
                      f"({_size(x)}). This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", stacklevel=4)


@torch_op("SmoothL1Loss", saves=(0, 1))
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0):
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (beta = 0: L1)."""
    reduction = _legacy(size_average, reduce, reduction)
    if beta < 0:
        raise user_error(RuntimeError, "smooth_l1_loss does not support negative values for "
                                       "beta.")
    x, t = as_float(input), to_tensor(target)
    _broadcast_warning(x, t)
    ad = ops.abs(x - t)
    if beta == 0:
        return reduce_loss(ad, reduction)
    loss = ops.where(ad < beta, 0.5 * ad * ad / beta, ad - 0.5 * beta)
    return reduce_loss(loss, reduction)


@torch_op("HuberLoss", saves=(0, 1, 4))
def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None):
    """0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere."""
    if delta <= 0:
        raise user_error(RuntimeError, "huber_loss does not support non-positive values for "
                                       "delta.")
    x, t = as_float(input), to_tensor(target)
    _broadcast_warning(x, t)
    ad = ops.abs(x - t)
    loss = ops.where(ad < delta, 0.5 * ad * ad, delta * (ad - 0.5 * delta))
    if weight is not None:
        loss = loss * weight
    return reduce_loss(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False):
    """target * (log target - input) (0 where target is 0); input holds log-probabilities.
    'batchmean' divides the sum by the batch size (the true KL divergence)."""
    reduction = _legacy(size_average, reduce, reduction)
    x, t = as_float(input), to_tensor(target)
    if log_target:
        loss = ops.exp(t) * (t - x)
    else:
        positive = t > 0
        # xlogy: 0 log 0 = 0, and the gradient there is 0 too
        safe = ops.where(positive, t, 1.0)
        loss = ops.where(positive, t * (ops.log(safe) - x), 0.0 * x)
    if reduction == "batchmean":
        return loss.sum() / (x.shape[0] if x.ndim else 1)
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.'mean' will be changed to behave the same as "
                      "'batchmean' in the next major release.", stacklevel=2)
    return reduce_loss(loss, reduction)


@torch_op("SoftMarginLoss", saves=(0, 1))
def soft_margin_loss(input, target, size_average=None, reduce=None, reduction: str = "mean"):
    """log(1 + exp(-t x))."""
    reduction = _legacy(size_average, reduce, reduction)
    x = as_float(input)
    return reduce_loss(ops.softplus(-to_tensor(target) * x), reduction)


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    """x1 . x2 / max(|x1| |x2|, eps) along dim (PyTorch 2.x clamps the product of norms)."""
    a, b = as_float(x1), as_float(x2)
    dot = (a * b).sum(dim)
    norms = ops.sqrt((a * a).sum(dim) * (b * b).sum(dim))
    return dot / ops.clamp_min(norms, eps)


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, size_average=None,
                        reduce=None, reduction: str = "mean"):
    reduction = _legacy(size_average, reduce, reduction)
    loss = ops.relu(-to_tensor(target) * (as_float(input1) - input2) + margin)
    return reduce_loss(loss, reduction)
