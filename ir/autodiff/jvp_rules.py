"""Forward-mode rules: jvp_rules[name](b, ts, out, *inputs, **params) -> the output tangent.

ts is a tuple of tangents aligned with the inputs, None where the tangent is zero (at least
one is not None when a rule is called). A rule returns the tangent of the result, None for
zero, or a tuple for the multi-result control ops (whose rules live in ir/autodiff/control.py).
out is the primal result, which rules reuse. The rules are written independently of the VJP
rules, so tests comparing <u, J v> with <J^T u, v> cross-check the two tables.
"""
from __future__ import annotations

import math

from ir.autodiff.common import (extremum_mask, extremum_weight, plus, pow_dx, pow_dy, times,
                                zeros)
from ir.primitives import having
from ir.linalg.jvp import JVP_RULES as LINALG_RULES
from ir.cumulative.rules import JVP_RULES as CUMULATIVE_RULES

jvp_rules: dict = {}

# Not differentiable (piecewise constant, integer/bool valued, stop_gradient): zero tangents.
for _name in having(differentiable=False):
    jvp_rules[_name] = lambda b, ts, out, *inputs, **params: None

# Linear in their one operand: the tangent goes through the same op.
for _name in having(linear=True):
    jvp_rules[_name] = lambda b, ts, out, x, _name=_name, **params: b.emit(
        _name, ts[0], **params)

# ---- elementwise -------------------------------------------------------------------------

jvp_rules["exp"] = lambda b, ts, out, x: b.mul(ts[0], out)
jvp_rules["log"] = lambda b, ts, out, x: b.div(ts[0], x)
jvp_rules["log1p"] = lambda b, ts, out, x: b.div(ts[0], b.add(b.full_like(1, x), x))
jvp_rules["expm1"] = lambda b, ts, out, x: b.mul(ts[0], b.add(b.full_like(1, x), out))
jvp_rules["sqrt"] = lambda b, ts, out, x: b.div(b.mul(ts[0], b.full_like(0.5, x)), out)
jvp_rules["rsqrt"] = lambda b, ts, out, x: b.mul(
    b.mul(ts[0], b.full_like(-0.5, x)), b.div(out, x))
jvp_rules["sin"] = lambda b, ts, out, x: b.mul(ts[0], b.cos(x))
jvp_rules["cos"] = lambda b, ts, out, x: b.mul(ts[0], b.neg(b.sin(x)))
jvp_rules["tan"] = lambda b, ts, out, x: b.add(ts[0], b.mul(ts[0], b.mul(out, out)))
jvp_rules["tanh"] = lambda b, ts, out, x: b.sub(ts[0], b.mul(ts[0], b.mul(out, out)))
jvp_rules["logistic"] = lambda b, ts, out, x: b.mul(
    ts[0], b.sub(out, b.mul(out, out)))
jvp_rules["erf"] = lambda b, ts, out, x: b.mul(
    b.mul(ts[0], b.exp(b.neg(b.mul(x, x)))), b.full_like(2 / math.sqrt(math.pi), x))
jvp_rules["abs"] = lambda b, ts, out, x: b.mul(ts[0], b.sign(x))


def _integer_pow(b, ts, out, x, *, n):
    """n * x**(n-1) * t; zero for n == 0."""
    if n == 0:
        return None
    if n == 1:
        return ts[0]
    power = x if n == 2 else b.integer_pow(x, n=n - 1)
    return b.mul(b.mul(ts[0], power), b.full_like(n, x))


jvp_rules["integer_pow"] = _integer_pow

jvp_rules["add"] = lambda b, ts, out, x, y: plus(b, ts[0], ts[1])
jvp_rules["sub"] = lambda b, ts, out, x, y: plus(
    b, ts[0], None if ts[1] is None else b.neg(ts[1]))
jvp_rules["mul"] = lambda b, ts, out, x, y: plus(b, times(b, ts[0], y), times(b, ts[1], x))


def _div(b, ts, out, x, y):
    """(tx - ty * out) / y."""
    tx, ty = ts
    if ty is None:
        return b.div(tx, y)
    minus = b.mul(ty, out)
    return b.div(b.neg(minus) if tx is None else b.sub(tx, minus), y)


def _pow(b, ts, out, x, y):
    tx, ty = ts
    dx = None if tx is None else b.mul(tx, pow_dx(b, out, x, y))
    return plus(b, dx, None if ty is None else b.mul(ty, pow_dy(b, out, x, y)))


def _extremum(wins):
    def rule(b, ts, out, x, y):
        w = extremum_weight(b, x, y, wins)
        tx, ty = ts
        return plus(b, times(b, tx, w), times(b, ty, b.sub(b.full_like(1, x), w)))
    return rule


jvp_rules["div"] = _div
jvp_rules["pow"] = _pow
jvp_rules["max"] = _extremum("gt")
jvp_rules["min"] = _extremum("lt")


def _select(b, ts, out, pred, x, y):
    """The tangent of the branch taken; a zero tangent is materialised only next to a
    non-zero one, since the two are interleaved elementwise."""
    _, tx, ty = ts
    if tx is None and ty is None:
        return None
    tx = zeros(b, out.type) if tx is None else tx
    ty = zeros(b, out.type) if ty is None else ty
    return b.select(pred, tx, ty)


def _convert(b, ts, out, x, *, dtype):
    return b.convert(ts[0], dtype=dtype) if dtype in ("f32", "f64") else None


jvp_rules["select"] = _select
jvp_rules["convert"] = _convert

# ---- shape ops (the single-operand ones are linear: above) ------------------------------------

def _concatenate(b, ts, out, *xs, axis):
    parts = [zeros(b, x.type) if t is None else t for x, t in zip(xs, ts)]
    return b.concatenate(*parts, axis=axis)


jvp_rules["concatenate"] = _concatenate

# ---- reductions --------------------------------------------------------------------------


def _reduce_extremum(b, ts, out, x, *, axes):
    """The mean of the tangents at the positions holding the extremum. Over an empty axis
    the extremum is the constant -inf or +inf: its tangent is zero (not 0 / 0)."""
    if any(x.shape[a] == 0 for a in axes):
        return None
    mask, count = extremum_mask(b, out, x, axes)
    return b.div(b.reduce_sum(b.mul(ts[0], mask), axes=tuple(axes)), count)


jvp_rules["reduce_max"] = _reduce_extremum
jvp_rules["reduce_min"] = _reduce_extremum

# ---- linear algebra and indexing -----------------------------------------------------------


def _dot_general(b, ts, out, x, y, *, contract, batch):
    """Bilinear: tx . y + x . ty."""
    tx, ty = ts
    dot = lambda u, v: b.dot_general(u, v, contract=contract, batch=batch)  # noqa: E731
    return plus(b, None if tx is None else dot(tx, y), None if ty is None else dot(x, ty))


def _scatter_add(b, ts, out, x, idx, upd, *, axis):
    """Linear in (x, upd): scatter the updates' tangent into the operand's tangent."""
    tx, _, tu = ts
    if tu is None:
        return tx
    return b.scatter_add(zeros(b, x.type) if tx is None else tx, idx, tu, axis=axis)


jvp_rules["dot_general"] = _dot_general
jvp_rules["gather"] = lambda b, ts, out, x, idx, *, axis: b.gather(ts[0], idx, axis=axis)
jvp_rules["scatter_add"] = _scatter_add


jvp_rules.update(LINALG_RULES)     # the linear-algebra primitives' rules (ir/linalg)
jvp_rules.update(CUMULATIVE_RULES)     # cumsum, cumprod, ... (ir/cumulative)
