"""Sample rows of the elementwise primitives."""
from __future__ import annotations

import numpy as np

from tests.prim_samples.cases import (ALL, FLOATS, INTS, NUMERIC, Arg, CompiledCase, F, Row,
                                      T, away_from_zero, binary, grad_cases, index, make_fn,
                                      per_shape, shape_label, unary)

ROWS: dict[str, Row] = {}

# A floating-point unary primitive is one line: the domain its compiled code is checked on
# against the interpreter, and the (narrower, away from poles) one of its derivative checks.
FLOAT_UNARY = (
    # name        compiled      derivatives
    ("exp",      (-3, 3),      (-2, 2)),
    ("log",      (0.1, 3),     (0.5, 3)),
    ("log1p",    (-0.9, 3),    (-0.5, 2)),
    ("expm1",    (-3, 3),      (-2, 2)),
    ("sqrt",     (0, 4),       (0.5, 3)),
    ("rsqrt",    (0.1, 4),     (0.5, 3)),
    ("sin",      (-5, 5),      (-3, 3)),
    ("cos",      (-5, 5),      (-3, 3)),
    ("tan",      (-1.2, 1.2),  (-1.2, 1.2)),
    ("tanh",     (-5, 5),      (-2, 2)),
    ("logistic", (-10, 10),    (-4, 4)),
    ("erf",      (-4, 4),      (-2, 2)),
)
for _n, (_lo, _hi), (_glo, _ghi) in FLOAT_UNARY:
    ROWS[_n] = Row(per_shape(_n, lambda b, x, _n=_n: b.emit(_n, x),
                             lambda *s, _lo=_glo, _hi=_ghi: F(*s, low=_lo, high=_hi)),
                   [CompiledCase(unary(_n), FLOATS, _lo, _hi)])

ROWS["neg"] = Row(per_shape("neg", lambda b, x: b.neg(x), F),
                  [CompiledCase(unary("neg"), NUMERIC, quantize=True)])
ROWS["abs"] = Row(per_shape("abs", lambda b, x: b.abs(x), away_from_zero),
                  [CompiledCase(unary("abs"), NUMERIC, quantize=True)])
# sign has no derivative: its case routes the gradient around it
ROWS["sign"] = Row(grad_cases("sign", "times-sin", lambda b, x: b.mul(b.sign(x), b.sin(x)),
                              away_from_zero(2, 3)),
                   [CompiledCase(unary("sign"), NUMERIC, quantize=True)])
# stop_gradient: finite differences see the identity, so the checked case is one where the
# blocked path is flat anyway (sign); tests/ir/autodiff/test_stop_gradient.py checks the blocking
ROWS["stop_gradient"] = Row(
    per_shape("stop_gradient", lambda b, x: b.mul(b.stop_gradient(b.sign(x)), x),
              away_from_zero),
    [CompiledCase(unary("stop_gradient"), NUMERIC, quantize=True)])


def _integer_pow(dt):
    ns = (0, 1, 2, 3, 5, -1, -2) if dt in FLOATS else (0, 1, 2, 3, 5)
    return make_fn("integer_pow", [T(dt, (2, 3)), T(dt, ())],
                   lambda b, x, s: [b.integer_pow(v, n=n) for v in (x, s) for n in ns])


def _int_neg_pow(dt):
    return make_fn("integer_pow", [T(dt, (7,))],
                   lambda b, x: [b.integer_pow(x, n=-1), b.integer_pow(x, n=-2)])


def _int_units(rng, types):
    return [rng.choice([1, -1, 2, -3], t.shape).astype(t.np_dtype) for t in types]


ROWS["integer_pow"] = Row(
    [c for _n in (0, 1, 2, 3, -2) for _s in ((), (2, 3))
     for c in grad_cases("integer_pow", f"n{_n}-{shape_label(_s)}",
                         lambda b, x, _n=_n: b.integer_pow(x, n=_n), away_from_zero(*_s))],
    [CompiledCase(_integer_pow, NUMERIC, 0.5, 2.0),
     CompiledCase(_int_neg_pow, INTS, sample=_int_units)])

ROWS["logical_not"] = Row(
    grad_cases("logical_not", "select",
               lambda b, x, y: b.select(b.logical_not(b.gt(x, y)), b.tanh(x), y), F(2, 2), F(2, 2)),
    [CompiledCase(unary("logical_not"), ("bool",))])


# ---- binary ---------------------------------------------------------------------------------

def _binary_grad(name, shapes=((), (3,), (2, 1, 3))):
    cases = [c for s in shapes for c in grad_cases(
        name, shape_label(s), lambda b, x, y, _n=name: b.emit(_n, x, y), F(*s), F(*s))]
    return cases + grad_cases(name, "same-operand", lambda b, x, _n=name: b.emit(_n, x, x), F(3))


def _nonzero(rng, types):
    out = []
    for t in types:
        mag = rng.uniform(0.5, 3.0, t.shape) * rng.choice([-1.0, 1.0], t.shape)
        out.append(np.asarray(mag, t.np_dtype))
    return out


for _n in ("add", "sub", "mul", "max", "min"):
    ROWS[_n] = Row(_binary_grad(_n), [CompiledCase(binary(_n), NUMERIC, quantize=True)])
ROWS["div"] = Row([c for _s in ((), (3,), (2, 1, 3)) for c in grad_cases(
                      "div", shape_label(_s), lambda b, x, y: b.div(x, y), F(*_s),
                      away_from_zero(*_s))],
                  [CompiledCase(binary("div"), FLOATS, sample=_nonzero),
                   CompiledCase(binary("div"), INTS)])
ROWS["pow"] = Row([c for _s in ((), (3,), (2, 1, 3)) for c in grad_cases(
                      "pow", shape_label(_s), lambda b, x, y: b.pow(x, y),
                      F(*_s, low=0.5, high=2), F(*_s, low=-2, high=2))]
                  + grad_cases("pow", "constant-exponent",
                               lambda b, x: b.pow(x, b.full_like(2.5, x)), F(3, low=0.5)),
                  [CompiledCase(binary("pow"), FLOATS, 0.1, 3.0)])
# rem: quotients kept within (1, 2), away from the jumps of trunc(x / y)
ROWS["rem"] = Row([c for _s in ((), (3,), (2, 1, 3)) for c in grad_cases(
                      "rem", shape_label(_s), lambda b, x, y: b.emit("rem", x, y),
                      F(*_s, low=1.3, high=1.9), F(*_s, low=1.0, high=1.2))],
                  [CompiledCase(binary("rem"), FLOATS, sample=_nonzero)])

# comparisons and logical ops have no derivative: their cases route the gradient around
# them, checking that they contribute zeros and do not break the transforms
for _n in ("lt", "le", "gt", "ge", "eq", "ne"):
    ROWS[_n] = Row(
        grad_cases(_n, "select", lambda b, x, y, _n=_n: b.select(
            b.emit(_n, x, y), b.sin(x), b.mul(x, y)), F(2, 3), F(2, 3))
        + grad_cases(_n, "int-operands", lambda b, x, k, _n=_n: b.mul(x, b.convert(
            b.emit(_n, k, b.full_like(2, k)), dtype=x.dtype)), F(4), index(4, bound=4)),
        [CompiledCase(binary(_n), ALL, quantize=True)])
for _n in ("logical_and", "logical_or"):
    ROWS[_n] = Row(
        grad_cases(_n, "select", lambda b, x, y, _n=_n: b.select(b.emit(
            _n, b.gt(x, b.full_like(0, x)), b.lt(y, b.full_like(0, y))), x, b.exp(y)),
            F(5), F(5)),
        [CompiledCase(binary(_n), ("bool",))])


# ---- select, convert --------------------------------------------------------------------------

def _select(dt):
    types = [T(d, s) for s in ((), (1,), (5,), (2, 1, 3), (3, 4)) for d in ("bool", dt, dt)]
    return make_fn("select", types, lambda b, *xs: [b.select(*xs[k:k + 3])
                                                    for k in range(0, len(xs), 3)])


def _convert(dt):
    return make_fn("convert", [T(dt, (2, 3)), T(dt, ())],
                   lambda b, x, s: [b.convert(v, dtype=d) for v in (x, s) for d in ALL])


ROWS["select"] = Row(
    [c for _s in ((), (3,), (2, 1, 3)) for c in grad_cases(
        "select", shape_label(_s), lambda b, p, x, y: b.select(p, x, y),
        Arg(_s, "bool"), F(*_s), F(*_s))]
    + grad_cases("select", "shared-operand", lambda b, p, x: b.select(p, x, b.mul(x, x)),
                 Arg((4,), "bool"), F(4)),
    [CompiledCase(_select, ALL)])
ROWS["convert"] = Row(
    grad_cases("convert", "same-dtype", lambda b, x: b.convert(x, dtype=x.dtype), F(2, 3))
    + grad_cases("convert", "through-int", lambda b, x: b.mul(x, b.convert(
        b.convert(x, dtype="i64"), dtype=x.dtype)), F(5, low=-3, high=3))
    + grad_cases("convert", "from-int", lambda b, x, k: b.mul(x, b.convert(k, dtype=x.dtype)),
                 F(3), index(3, bound=5)),
    [CompiledCase(_convert, ALL, -100, 100, quantize=True)])
