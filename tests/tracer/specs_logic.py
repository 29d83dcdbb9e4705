"""Op table: comparisons, logical ops, predicates, any/all and the identity-like ops.

Results are bool (or the input unchanged), so no row is differentiated. Uniform samples are
almost never equal, zero, nan or inf, so the rows round their inputs (ties and zeros become
common) or take a log or a reciprocal first (nan and inf appear).
"""
from __future__ import annotations

import numpy as np

import tracer.ops as gj
from tests.tracer.specs import BINARY_SHAPES, UNARY_SHAPES, OpSpec


def _row(name, fn, ref, shapes=UNARY_SHAPES, **kw) -> OpSpec:
    return OpSpec(name, fn, ref, shapes, grad=False, **kw)


def _compare(name: str, ref) -> OpSpec:
    """gj.<name> on rounded operands: equal pairs occur, so == and <= are tested at ties."""
    op = getattr(gj, name)
    return _row(name, lambda x, y: op(gj.round(x), gj.round(y)),
                lambda x, y: ref(np.round(x), np.round(y)), BINARY_SHAPES)


def _logical(name: str, ref) -> OpSpec:
    """gj.<name> on rounded floats: zero (false) and nonzero (true) both occur."""
    op = getattr(gj, name)
    return _row(name, lambda x, y: op(gj.round(x), gj.round(y)),
                lambda x, y: ref(np.round(x), np.round(y)), BINARY_SHAPES)


def _log_ref(x):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(x)


def _reciprocal_ref(x):
    with np.errstate(divide="ignore"):
        return 1 / x


def _ints(x):
    return gj.round(x * 500).int()


def _ints_ref(x):
    return np.round(x * 500).astype(np.int32)


def _amounts(x):
    return gj.round(x * 10 + 20).int()


def _amounts_ref(x):
    return np.round(x * 10 + 20).astype(np.int32)


def _shift_ref(shift, x, s):
    """NumPy's shift, with PyTorch's result for amounts of 32 or more (0, or -1 for >>)."""
    big = s >= 32
    fill = np.where(x < 0, -1, 0) if shift is np.right_shift else 0
    return np.where(big, fill, shift(x, np.where(big, 0, s))).astype(np.int32)


LOGIC = [
    _compare("eq", np.equal),
    _compare("ne", np.not_equal),
    _compare("lt", np.less),
    _compare("le", np.less_equal),
    _compare("gt", np.greater),
    _compare("ge", np.greater_equal),
    _logical("logical_and", np.logical_and),
    _logical("logical_or", np.logical_or),
    _logical("logical_xor", np.logical_xor),
    _row("logical_not", lambda x: gj.logical_not(gj.round(x)),
         lambda x: np.logical_not(np.round(x))),
    _row("isnan", lambda x: gj.isnan(gj.log(x)), lambda x: np.isnan(_log_ref(x))),
    _row("isinf", lambda x: gj.isinf(gj.reciprocal(gj.round(x))),
         lambda x: np.isinf(_reciprocal_ref(np.round(x)))),
    _row("isfinite", lambda x: gj.isfinite(gj.log(gj.round(x))),
         lambda x: np.isfinite(_log_ref(np.round(x)))),
    _row("any", lambda x: gj.any(gj.round(x)), lambda x: np.any(np.round(x))),
    _row("any_dim", lambda x: gj.any(gj.round(x), -1, keepdim=True),
         lambda x: np.any(np.round(x), -1, keepdims=True), UNARY_SHAPES[1:]),
    _row("all", lambda x: gj.all(gj.round(x)), lambda x: np.all(np.round(x))),
    _row("all_dim", lambda x: gj.all(gj.round(x), 0), lambda x: np.all(np.round(x), 0),
         UNARY_SHAPES[1:]),
    _row("positive", gj.positive, np.positive),
    # the value is x; its derivative is zero, as test_stop_gradient.py checks
    _row("stop_gradient", gj.stop_gradient, lambda x: x),
    # integer bit ops on x scaled to ints in [-1000, 1000]; shift amounts cover 0..40
    *[_row(op.__name__, lambda x, y, _f=op: _f(_ints(x), _ints(y)),
           lambda x, y, _f=ref: _f(_ints_ref(x), _ints_ref(y)), BINARY_SHAPES)
      for op, ref in ((gj.bitwise_and, np.bitwise_and), (gj.bitwise_or, np.bitwise_or),
                      (gj.bitwise_xor, np.bitwise_xor))],
    _row("bitwise_not", lambda x: gj.bitwise_not(_ints(x)), lambda x: ~_ints_ref(x)),
    _row("bitwise_left_shift", lambda x, y: gj.bitwise_left_shift(_ints(x), _amounts(y)),
         lambda x, y: _shift_ref(np.left_shift, _ints_ref(x), _amounts_ref(y)), BINARY_SHAPES),
    _row("bitwise_right_shift", lambda x, y: gj.bitwise_right_shift(_ints(x), _amounts(y)),
         lambda x, y: _shift_ref(np.right_shift, _ints_ref(x), _amounts_ref(y)),
         BINARY_SHAPES),
]
