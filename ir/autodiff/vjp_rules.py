"""Reverse-mode rules: vjp_rules[name](b, g, out, *inputs, **params) -> one cotangent per input.

A rule builds the cotangents of an op's inputs from the cotangent g of its result, in IR
primitives through the Builder b. None means a zero (or non-differentiable) cotangent: it is
never materialised. out is the op's primal result, already computed by the forward pass, so
rules reuse it (exp, tanh, logistic, sqrt). For the multi-result control ops g and out are
tuples; their rules live in ir/autodiff/control.py. Integer and bool values never receive a
cotangent: the transform only asks for cotangents of floating-point values.
"""
from __future__ import annotations

import math

from ir.autodiff.common import (dot_axes, dot_transpose, extremum_mask, extremum_weight,
                                inverse_perm, kept_axes, pow_dx, pow_dy, zeros)
from ir.primitives import having
from ir.linalg.vjp import VJP_RULES as LINALG_RULES
from ir.cumulative.rules import VJP_RULES as CUMULATIVE_RULES

vjp_rules: dict = {}

# Not differentiable (piecewise constant, integer/bool valued, stop_gradient): zero cotangents.
for _name in having(differentiable=False):
    vjp_rules[_name] = lambda b, g, out, *inputs, **params: (None,) * len(inputs)

# ---- elementwise -------------------------------------------------------------------------

vjp_rules["neg"] = lambda b, g, out, x: (b.neg(g),)
vjp_rules["exp"] = lambda b, g, out, x: (b.mul(g, out),)
vjp_rules["log"] = lambda b, g, out, x: (b.div(g, x),)
vjp_rules["log1p"] = lambda b, g, out, x: (b.div(g, b.add(x, b.full_like(1, x))),)
vjp_rules["expm1"] = lambda b, g, out, x: (b.mul(g, b.add(out, b.full_like(1, x))),)
vjp_rules["sqrt"] = lambda b, g, out, x: (b.div(g, b.mul(out, b.full_like(2, x))),)
vjp_rules["rsqrt"] = lambda b, g, out, x: (
    b.mul(g, b.div(b.mul(out, b.full_like(-0.5, x)), x)),)
vjp_rules["sin"] = lambda b, g, out, x: (b.mul(g, b.cos(x)),)
vjp_rules["cos"] = lambda b, g, out, x: (b.neg(b.mul(g, b.sin(x))),)
vjp_rules["tan"] = lambda b, g, out, x: (
    b.mul(g, b.add(b.full_like(1, x), b.mul(out, out))),)
vjp_rules["tanh"] = lambda b, g, out, x: (
    b.mul(g, b.sub(b.full_like(1, x), b.mul(out, out))),)
vjp_rules["logistic"] = lambda b, g, out, x: (
    b.mul(g, b.mul(out, b.sub(b.full_like(1, x), out))),)
# d erf(x)/dx = 2/sqrt(pi) e^(-x^2)
vjp_rules["erf"] = lambda b, g, out, x: (
    b.mul(g, b.mul(b.full_like(2 / math.sqrt(math.pi), x), b.exp(b.neg(b.mul(x, x))))),)
# NOTE: sign(0) = 0 makes 0 the subgradient of abs at 0, as in PyTorch
vjp_rules["abs"] = lambda b, g, out, x: (b.mul(g, b.sign(x)),)


def _integer_pow(b, g, out, x, *, n):
    """d(x**n)/dx = n * x**(n-1); zero for n == 0."""
    if n == 0:
        return (None,)
    if n == 1:
        return (g,)
    power = x if n == 2 else b.integer_pow(x, n=n - 1)
    return (b.mul(g, b.mul(b.full_like(n, x), power)),)


vjp_rules["integer_pow"] = _integer_pow

vjp_rules["add"] = lambda b, g, out, x, y: (g, g)
vjp_rules["sub"] = lambda b, g, out, x, y: (g, b.neg(g))
vjp_rules["mul"] = lambda b, g, out, x, y: (b.mul(g, y), b.mul(g, x))
vjp_rules["div"] = lambda b, g, out, x, y: (b.div(g, y), b.neg(b.div(b.mul(g, out), y)))
vjp_rules["pow"] = lambda b, g, out, x, y: (
    b.mul(g, pow_dx(b, out, x, y)), b.mul(g, pow_dy(b, out, x, y)))


def _extremum(wins):
    def rule(b, g, out, x, y):
        share = b.mul(g, extremum_weight(b, x, y, wins))
        return share, b.sub(g, share)
    return rule


vjp_rules["max"] = _extremum("gt")
vjp_rules["min"] = _extremum("lt")


def _select(b, g, out, pred, x, y):
    """The cotangent goes to the branch that was taken; the predicate has none."""
    zero = zeros(b, g.type)
    return None, b.select(pred, g, zero), b.select(pred, zero, g)


vjp_rules["select"] = _select


def _convert(b, g, out, x, *, dtype):
    """Converts the cotangent back; a value converted from an integer or bool has none."""
    return (b.convert(g, dtype=x.dtype) if x.dtype in ("f32", "f64") else None,)


vjp_rules["convert"] = _convert

# ---- shape ops ---------------------------------------------------------------------------


def _broadcast_in_dim(b, g, out, x, *, shape, dims):
    """Sums g over the added axes and the size-1 axes that were stretched."""
    stretched = {d for i, d in enumerate(dims) if x.shape[i] == 1 and shape[d] != 1}
    axes = tuple(a for a in range(len(shape)) if a not in dims or a in stretched)
    if axes:
        g = b.reduce_sum(g, axes=axes)
    return (g if g.shape == x.shape else b.reshape(g, shape=x.shape),)


def _slice(b, g, out, x, *, start, limit, stride):
    """Pads g back to x's shape: lo = start, interior = stride - 1, hi = what is left."""
    interior = tuple(s - 1 for s in stride)
    hi = tuple(d - lo - n - max(n - 1, 0) * i
               for d, lo, n, i in zip(x.shape, start, g.shape, interior))
    return (b.pad(g, lo=tuple(start), hi=hi, interior=interior),)


def _pad(b, g, out, x, *, lo, hi, interior):
    """Slices the original elements back out of g."""
    limit = tuple(a + d + max(d - 1, 0) * i for a, d, i in zip(lo, x.shape, interior))
    return (b.slice(g, start=tuple(lo), limit=limit, stride=tuple(i + 1 for i in interior)),)


def _concatenate(b, g, out, *xs, axis):
    """Each operand's cotangent is its slice of g along axis."""
    cts, offset = [], 0
    for x in xs:
        start = tuple(offset if a == axis else 0 for a in range(x.ndim))
        limit = tuple(offset + x.shape[a] if a == axis else x.shape[a] for a in range(x.ndim))
        cts.append(b.slice(g, start=start, limit=limit, stride=(1,) * x.ndim))
        offset += x.shape[axis]
    return tuple(cts)


vjp_rules["broadcast_in_dim"] = _broadcast_in_dim
vjp_rules["reshape"] = lambda b, g, out, x, *, shape: (b.reshape(g, shape=x.shape),)
vjp_rules["transpose"] = lambda b, g, out, x, *, perm: (
    b.transpose(g, perm=inverse_perm(perm)),)
vjp_rules["slice"] = _slice
vjp_rules["pad"] = _pad
vjp_rules["concatenate"] = _concatenate

# ---- reductions --------------------------------------------------------------------------

vjp_rules["reduce_sum"] = lambda b, g, out, x, *, axes: (
    b.broadcast_in_dim(g, shape=x.shape, dims=kept_axes(x, axes)),)


def _reduce_extremum(b, g, out, x, *, axes):
    """g goes to the positions holding the extremum, split evenly between ties."""
    mask, count = extremum_mask(b, out, x, axes)
    share = b.broadcast_in_dim(b.div(g, count), shape=x.shape, dims=kept_axes(x, axes))
    return (b.mul(share, mask),)


vjp_rules["reduce_max"] = _reduce_extremum
vjp_rules["reduce_min"] = _reduce_extremum

# ---- linear algebra and indexing -----------------------------------------------------------


def _dot_general(b, g, out, x, y, *, contract, batch):
    """Each operand's cotangent contracts g with the other operand over the other's free axes."""
    xa, ya = dot_axes(x, contract[0], batch[0]), dot_axes(y, contract[1], batch[1])
    nb, nxf, nyf = len(xa["batch"]), len(xa["free"]), len(ya["free"])
    x_free_in_g = tuple(range(nb, nb + nxf))
    y_free_in_g = tuple(range(nb + nxf, nb + nxf + nyf))
    return (dot_transpose(b, g, y, xa, ya, y_free_in_g),
            dot_transpose(b, g, x, ya, xa, x_free_in_g))


vjp_rules["dot_general"] = _dot_general
vjp_rules["gather"] = lambda b, g, out, x, idx, *, axis: (
    b.scatter_add(zeros(b, x.type), idx, g, axis=axis), None)
vjp_rules["scatter_add"] = lambda b, g, out, x, idx, upd, *, axis: (
    g, None, b.gather(g, idx, axis=axis))


vjp_rules.update(LINALG_RULES)     # the linear-algebra primitives' rules (ir/linalg)
vjp_rules.update(CUMULATIVE_RULES)     # cumsum, cumprod, ... (ir/cumulative)
