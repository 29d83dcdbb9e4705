"""Op table: elementwise math, reductions and neural-network functions."""
from __future__ import annotations

import math

import numpy as np

import tracer.ops as gj
from tests.tracer.specs import BINARY_SHAPES, MATRIX_SHAPES, UNARY_SHAPES, OpSpec
from tests.tracer.specs_special import SPECIAL

S = OpSpec


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _lse(x, axis, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


def ce_ref(x, target, reduction="mean", weight=None, ignore_index=-100, smoothing=0.0):
    """Cross entropy of logits x (class axis 1, or 0 for 1-d) against class indices."""
    axis = 1 if x.ndim > 1 else 0
    logp = _log_softmax(x, axis)
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    nll = -np.take_along_axis(logp, np.expand_dims(safe, axis), axis).squeeze(axis)
    if smoothing:
        nll = (1 - smoothing) * nll - smoothing * logp.mean(axis=axis)
    w = valid * (1.0 if weight is None else weight[safe])
    loss = nll * w
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / w.sum()


T3 = np.array([0, 3, 1])                        # targets for (3, 4) logits
T23 = np.array([[0, 3, 1], [2, 2, 0]])          # targets for (2, 4, 3) logits
W4 = np.array([0.5, 1.0, 2.0, 1.5])

ELEMENTWISE = [
    S("exp", gj.exp, np.exp, node="Exp", public=gj.exp),
    S("log", gj.log, np.log, low=0.1, high=3, node="Log", public=gj.log),
    S("log1p", gj.log1p, np.log1p, low=-0.5, high=3, node="Log1P", public=gj.log1p),
    S("expm1", gj.expm1, np.expm1, node="Expm1", public=gj.expm1),
    S("sqrt", gj.sqrt, np.sqrt, low=0.1, high=3, node="Sqrt", public=gj.sqrt),
    S("rsqrt", gj.rsqrt, lambda x: 1 / np.sqrt(x), low=0.1, high=3, node="Rsqrt",
      public=gj.rsqrt),
    S("abs", gj.abs, np.abs, node="Abs", public=gj.abs),
    S("sign", gj.sign, np.sign, node="Sign", public=gj.sign),
    S("neg", gj.neg, np.negative, node="Neg", public=gj.neg),
    S("sin", gj.sin, np.sin, node="Sin", public=gj.sin),
    S("cos", gj.cos, np.cos, node="Cos", public=gj.cos),
    S("tan", gj.tan, np.tan, low=-1.2, high=1.2, node="Tan", public=gj.tan),
    S("tanh", gj.tanh, np.tanh, node="Tanh", public=gj.tanh),
    S("erf", gj.erf, np.vectorize(math.erf), node="Erf", public=gj.erf),
    S("sigmoid", gj.sigmoid, _sigmoid, low=-6, high=6, node="Sigmoid", public=gj.sigmoid),
    S("relu", gj.relu, lambda x: np.maximum(x, 0), node="Relu", public=gj.relu),
    S("square", gj.square, np.square, node="Pow", public=gj.square),
    S("reciprocal", gj.reciprocal, np.reciprocal, low=0.5, high=3, node="Reciprocal",
      public=gj.reciprocal),
    S("pow_int", lambda x: x ** 3, lambda x: x ** 3, node="Pow", public=gj.pow),
    S("pow_neg_int", lambda x: gj.pow(x, -2), lambda x: x ** -2.0, low=0.5, high=2),
    S("pow_float", lambda x: x ** 2.5, lambda x: x ** 2.5, low=0.1, high=3),
    S("rpow", lambda x: 2 ** x, lambda x: 2 ** x),
    S("pow_tensor", gj.pow, np.power, BINARY_SHAPES, lows=((0.5, 2), (-2, 2))),
    S("add", gj.add, np.add, BINARY_SHAPES, node="Add", public=gj.add),
    S("add_alpha", lambda x, y: gj.add(x, y, alpha=2.5), lambda x, y: x + 2.5 * y,
      BINARY_SHAPES),
    S("sub", gj.sub, np.subtract, BINARY_SHAPES, node="Sub", public=gj.sub),
    S("rsub", lambda x: 2 - x, lambda x: 2 - x),
    S("mul", gj.mul, np.multiply, BINARY_SHAPES, node="Mul", public=gj.mul),
    S("div", gj.div, np.divide, BINARY_SHAPES, lows=((-2, 2), (0.5, 2)), node="Div",
      public=gj.div),
    S("rdiv", lambda x: 3 / x, lambda x: 3 / x, low=0.5, high=2),
    S("maximum", gj.maximum, np.maximum, BINARY_SHAPES, node="Maximum", public=gj.maximum),
    S("minimum", gj.minimum, np.minimum, BINARY_SHAPES, node="Minimum", public=gj.minimum),
    S("where", lambda x, y: gj.where(x > 0, x, y), lambda x, y: np.where(x > 0, x, y),
      BINARY_SHAPES, node="Where", public=gj.where),
    S("where_scalar", lambda x: gj.where(x > 0, x, 0.5), lambda x: np.where(x > 0, x, 0.5)),
    S("clamp", lambda x: gj.clamp(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7),
      node="Clamp", public=gj.clamp),
    S("clamp_min", lambda x: x.clamp(min=0.2), lambda x: np.maximum(x, 0.2)),
    S("clamp_max", lambda x: gj.clamp(x, max=0.2), lambda x: np.minimum(x, 0.2)),
    S("clamp_tensor", lambda x, lo: gj.clamp(x, lo, 1.0), lambda x, lo: np.minimum(
        np.maximum(x, lo), 1.0), BINARY_SHAPES[:3]),
    S("masked_fill", lambda x: x.masked_fill(x < 0, 0.25), lambda x: np.where(x < 0, 0.25, x)),
    S("silu", gj.silu, lambda x: x * _sigmoid(x), node="Silu", public=gj.silu),
    S("softplus", gj.softplus, lambda x: np.logaddexp(0, x), low=-30, high=30,
      node="Softplus", public=gj.softplus),
    S("softplus_beta", lambda x: gj.softplus(x, beta=2.0), lambda x: np.logaddexp(0, 2 * x) / 2),
    S("leaky_relu", gj.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x), node="LeakyRelu",
      public=gj.leaky_relu),
    # rounding: derivative zero (frac, remainder, fmod: one w.r.t. x), domains away from 0
    S("floor", gj.floor, np.floor, low=-5, high=5, node="Floor", public=gj.floor),
    S("ceil", gj.ceil, np.ceil, low=-5, high=5, node="Ceil", public=gj.ceil),
    S("trunc", gj.trunc, np.trunc, low=-5, high=5, node="Trunc", public=gj.trunc),
    S("round", gj.round, np.round, low=-5, high=5, node="Round", public=gj.round),
    S("frac", gj.frac, lambda x: x - np.trunc(x), low=-5, high=5, node="Frac", public=gj.frac),
    S("remainder", gj.remainder, np.remainder, BINARY_SHAPES, lows=((-5, 5), (0.5, 2)),
      node="Remainder", public=gj.remainder),
    S("remainder_negative", lambda x, y: x % y, np.remainder, BINARY_SHAPES,
      lows=((-5, 5), (-2, -0.5))),
    S("fmod", gj.fmod, np.fmod, BINARY_SHAPES, lows=((-5, 5), (-2, -0.5)), node="Fmod",
      public=gj.fmod),
    S("floor_divide", lambda x, y: x // y, np.floor_divide, BINARY_SHAPES,
      lows=((-5, 5), (0.5, 2)), grad=False, node="FloorDivide", public=gj.floor_divide),
]

R = MATRIX_SHAPES
REDUCTIONS = [
    S("sum", gj.sum, np.sum, UNARY_SHAPES, node="Sum", public=gj.sum),
    S("sum_dim", lambda x: x.sum(1), lambda x: x.sum(1), R),
    S("sum_dims_keep", lambda x: gj.sum(x, dim=(0, -1), keepdim=True),
      lambda x: x.sum(axis=(0, -1), keepdims=True), R),
    S("sum_axis_keepdims", lambda x: gj.sum(x, axis=-1, keepdims=True),
      lambda x: x.sum(axis=-1, keepdims=True), R),
    S("mean", gj.mean, np.mean, UNARY_SHAPES, node="Mean", public=gj.mean),
    S("mean_dim", lambda x: x.mean(-1, keepdim=True), lambda x: x.mean(-1, keepdims=True), R),
    S("max", gj.max, np.max, UNARY_SHAPES, node="Max", public=gj.max),
    S("max_dim", lambda x: gj.max(x, 1), lambda x: (x.max(1), x.argmax(1)), R),
    S("max_dim_keep", lambda x: x.max(dim=0, keepdim=True),
      lambda x: (x.max(0, keepdims=True), x.argmax(0)[None]), R),
    S("min", gj.min, np.min, UNARY_SHAPES, node="Min", public=gj.min),
    S("min_dim", lambda x: x.min(-1), lambda x: (x.min(-1), x.argmin(-1)), R),
    S("amax", lambda x: gj.amax(x, 1), lambda x: x.max(1), R, node="Amax", public=gj.amax),
    S("amin", lambda x: gj.amin(x, (0, 1)), lambda x: x.min((0, 1)), R, node="Amin",
      public=gj.amin),
    S("prod", gj.prod, np.prod, UNARY_SHAPES, node="Prod", public=gj.prod),
    S("prod_dim", lambda x: x.prod(1), lambda x: x.prod(1), R + (((3, 7),),)),
    S("var", gj.var, lambda x: np.var(x, ddof=1), R, node="Var", public=gj.var),
    S("var_dim_biased", lambda x: gj.var(x, 0, unbiased=False), lambda x: np.var(x, 0), R),
    S("std", lambda x: x.std(1, keepdim=True), lambda x: np.std(x, 1, ddof=1, keepdims=True),
      R, node="Std", public=gj.std),
    S("std_correction0", lambda x: gj.std(x, correction=0), lambda x: np.std(x), R),
    S("logsumexp", lambda x: gj.logsumexp(x, 1), lambda x: _lse(x, 1), R, node="Logsumexp",
      public=gj.logsumexp),
    S("logsumexp_all_keep", lambda x: x.logsumexp((0, -1), keepdim=True),
      lambda x: _lse(x, (0, -1), True), R),
    S("logsumexp_0d", lambda x: gj.logsumexp(x, 0), lambda x: x, (((),),)),
    S("argmax", lambda x: gj.argmax(x, 1), lambda x: x.argmax(1), R, grad=False),
    S("argmax_flat", gj.argmax, np.argmax, R, grad=False),
    S("argmin_keep", lambda x: x.argmin(0, keepdim=True), lambda x: x.argmin(0)[None], R,
      grad=False),
]

NEURAL = [
    S("softmax", lambda x: gj.softmax(x, 1), lambda x: _softmax(x, 1), R, node="Softmax",
      public=gj.softmax),
    S("softmax_last", lambda x: x.softmax(-1), lambda x: _softmax(x, -1), R + (((5,),),)),
    S("log_softmax", lambda x: gj.log_softmax(x, 1), lambda x: _log_softmax(x, 1), R,
      node="LogSoftmax", public=gj.log_softmax),
    S("log_softmax_0", lambda x: x.log_softmax(0), lambda x: _log_softmax(x, 0), R),
    S("cross_entropy", lambda x: gj.cross_entropy(x, T3), lambda x: ce_ref(x, T3),
      (((3, 4),),), node="NllLoss", public=gj.cross_entropy),
    S("cross_entropy_sum", lambda x: gj.cross_entropy(x, T3, reduction="sum"),
      lambda x: ce_ref(x, T3, "sum"), (((3, 4),),)),
    S("cross_entropy_none", lambda x: gj.cross_entropy(x, T3, reduction="none"),
      lambda x: ce_ref(x, T3, "none"), (((3, 4),),)),
    S("cross_entropy_weight_ignore", lambda x: gj.cross_entropy(
        x, np.array([0, -100, 2]), weight=W4), lambda x: ce_ref(
        x, np.array([0, -100, 2]), weight=W4), (((3, 4),),)),
    S("cross_entropy_spatial", lambda x: gj.cross_entropy(x, T23), lambda x: ce_ref(x, T23),
      (((2, 4, 3),),)),
    S("cross_entropy_1d", lambda x: gj.cross_entropy(x, np.array(2)),
      lambda x: ce_ref(x, np.array(2)), (((5,),),)),
    S("cross_entropy_smoothing", lambda x: gj.cross_entropy(x, T3, label_smoothing=0.1),
      lambda x: ce_ref(x, T3, smoothing=0.1), (((3, 4),),)),
    S("cross_entropy_probs", lambda x, p: gj.cross_entropy(x, gj.softmax(p, 1)),
      lambda x, p: -(_softmax(p, 1) * _log_softmax(x, 1)).sum(1).mean(), (((3, 4), (3, 4)),)),
    S("nll_loss", lambda x: gj.nll_loss(gj.log_softmax(x, 1), T3), lambda x: ce_ref(x, T3),
      (((3, 4),),), node="NllLoss", public=gj.nll_loss),
    S("mse_loss", gj.mse_loss, lambda x, y: np.mean((x - y) ** 2), BINARY_SHAPES[:2],
      node="MseLoss", public=gj.mse_loss),
    S("mse_loss_sum", lambda x, y: gj.mse_loss(x, y, reduction="sum"),
      lambda x, y: np.sum((x - y) ** 2), BINARY_SHAPES[:1]),
    S("mse_loss_none", lambda x, y: gj.mse_loss(x, y, reduction="none"),
      lambda x, y: (x - y) ** 2, BINARY_SHAPES[:1]),
    S("l1_loss", gj.l1_loss, lambda x, y: np.mean(np.abs(x - y)), BINARY_SHAPES[:1]),
]

ELEMENTWISE = ELEMENTWISE + SPECIAL          # the special functions: specs_special.py
