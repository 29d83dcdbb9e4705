"""Op table: the special functions (tracer/ops/special.py, special_math.py); joined to
specs_math.ELEMENTWISE, so every op-table test runs them."""
from __future__ import annotations

import math

import numpy as np

import tracer.ops as gj
from ir.special_impl import IMPL_RULES
from tests.tracer.specs import BINARY_SHAPES, OpSpec

S = OpSpec
_vec = np.vectorize
TERNARY_SHAPES = (((3, 4), (3, 4), (3, 4)), ((3, 4), (4,), (3, 1)), ((), (3,), ()))


def _lerp(a, b, w):
    return np.where(w < 0.5, a + w * (b - a), b - (b - a) * (1 - w))


def _sinc(x):
    return np.sinc(x)


def _xlogy(x, y):
    return np.where(x == 0, 0.0, x * np.log(np.where(x == 0, 1.0, y)))


SPECIAL = [
    S("asin", gj.asin, np.arcsin, low=-0.9, high=0.9, node="Asin", public=gj.asin),
    S("acos", gj.acos, np.arccos, low=-0.9, high=0.9, node="Acos", public=gj.acos),
    S("atan", gj.atan, np.arctan, low=-3, high=3, node="Atan", public=gj.atan),
    S("sinh", gj.sinh, np.sinh, low=-3, high=3, node="Sinh", public=gj.sinh),
    S("cosh", gj.cosh, np.cosh, low=-3, high=3, node="Cosh", public=gj.cosh),
    S("asinh", gj.asinh, np.arcsinh, low=-3, high=3, node="Asinh", public=gj.asinh),
    S("acosh", gj.acosh, np.arccosh, low=1.1, high=4, node="Acosh", public=gj.acosh),
    S("atanh", gj.atanh, np.arctanh, low=-0.9, high=0.9, node="Atanh", public=gj.atanh),
    S("arcsin", gj.arcsin, np.arcsin, low=-0.9, high=0.9),
    S("log2", gj.log2, np.log2, low=0.1, high=3, node="Log2", public=gj.log2),
    S("log10", gj.log10, np.log10, low=0.1, high=3, node="Log10", public=gj.log10),
    S("exp2", gj.exp2, np.exp2, low=-3, high=3, node="Exp2", public=gj.exp2),
    S("erfc", gj.erfc, _vec(math.erfc), node="Erfc", public=gj.erfc),
    S("erfinv", gj.erfinv, IMPL_RULES["erfinv"], low=-0.9, high=0.9, node="Erfinv",
      public=gj.erfinv),
    S("lgamma", gj.lgamma, _vec(math.lgamma), low=0.2, high=5, node="Lgamma", public=gj.lgamma),
    S("digamma", gj.digamma, IMPL_RULES["digamma"], low=0.2, high=5, node="Digamma",
      public=gj.digamma),
    S("polygamma", lambda x: gj.polygamma(1, x), lambda x: IMPL_RULES["polygamma"](x, n=1),
      low=0.2, high=5, node="Polygamma", public=gj.polygamma),
    S("polygamma_2", lambda x: x.polygamma(2), lambda x: IMPL_RULES["polygamma"](x, n=2),
      low=0.2, high=5),
    S("atan2", gj.atan2, np.arctan2, BINARY_SHAPES, lows=((-2, 2), (0.3, 2)), node="Atan2",
      public=gj.atan2),
    S("arctan2_left", gj.arctan2, np.arctan2, BINARY_SHAPES, lows=((0.3, 2), (-2, -0.3))),
    S("logaddexp", gj.logaddexp, np.logaddexp, BINARY_SHAPES, lows=((-30, 30), (-30, 30)),
      node="Logaddexp", public=gj.logaddexp),
    S("logaddexp2", gj.logaddexp2, np.logaddexp2, BINARY_SHAPES, node="Logaddexp2",
      public=gj.logaddexp2),
    S("hypot", gj.hypot, np.hypot, BINARY_SHAPES, node="Hypot", public=gj.hypot),
    S("lerp", gj.lerp, _lerp, TERNARY_SHAPES, lows=((-2, 2), (-2, 2), (-0.5, 1.5)),
      node="Lerp", public=gj.lerp),
    S("lerp_scalar", lambda a, b: gj.lerp(a, b, 0.75), lambda a, b: _lerp(a, b, 0.75),
      BINARY_SHAPES),
    S("heaviside", gj.heaviside, np.heaviside, BINARY_SHAPES, grad=False, node="Heaviside",
      public=gj.heaviside),
    S("sinc", gj.sinc, _sinc, low=-3, high=3, node="Sinc", public=gj.sinc),
    S("xlogy", gj.xlogy, _xlogy, BINARY_SHAPES, lows=((-2, 2), (0.1, 3)), node="Xlogy",
      public=gj.xlogy),
    S("logit", gj.logit, lambda x: np.log(x / (1 - x)), low=0.05, high=0.95, node="Logit",
      public=gj.logit),
    S("logit_eps", lambda x: gj.logit(x, eps=0.2),
      lambda x: np.log(np.clip(x, 0.2, 0.8) / (1 - np.clip(x, 0.2, 0.8))), low=0.05, high=0.95),
    S("expit", gj.expit, lambda x: 1 / (1 + np.exp(-x))),
    S("nan_to_num", gj.nan_to_num, np.nan_to_num, node="NanToNum", public=gj.nan_to_num),
    # one operand (a bool result has no gradient for the random-shape binary gradient test)
    S("isclose", lambda x: gj.isclose(x, x * (1 + 2e-5)), lambda x: np.isclose(x, x * (1 + 2e-5)),
      grad=False, public=gj.isclose),
    S("clip", lambda x: gj.clip(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7), node="Clamp",
      public=gj.clip),
    S("clip_numpy_keywords", lambda x: gj.clip(x, a_min=-0.5), lambda x: np.maximum(x, -0.5)),
]
