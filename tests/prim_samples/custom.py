"""Sample rows of the calls to user code: custom_vjp_call, custom_jvp_call, debug_print.

The rules here are the true derivatives, so the finite-difference checks hold; the rules'
being used (rather than the body's derivative) is tested in tests/api/test_custom_rules.py.
"""
from __future__ import annotations

from tests.gradcheck import make_fn as grad_fn
from tests.prim_samples.cases import NUMERIC, CompiledCase, F, Row, T, grad_cases, index, make_fn

ROWS: dict[str, Row] = {}


def _sin_times(b, x, y, k):
    """sin(x) * y (residuals cos x, sin x, y) and an integer operand passed through."""
    body = grad_fn(lambda b, x, y, k: (b.mul(b.sin(x), y), b.add(k, k)),
                   x.type, y.type, k.type, name="sin_times")
    fwd = grad_fn(lambda b, x, y, k: (b.mul(b.sin(x), y), b.add(k, k), b.cos(x), b.sin(x), y),
                  x.type, y.type, k.type, name="sin_times_fwd")

    def bwd(b, cos_x, sin_x, y, g, gk):
        return b.mul(b.mul(cos_x, g), y), b.mul(sin_x, g), b.full_like(0, k)
    bwd_fn = grad_fn(bwd, x.type, x.type, y.type, x.type, k.type, name="sin_times_bwd")
    return b.emit("custom_vjp_call", x, y, k, regions=(body, fwd, bwd_fn))


def _softplus(b, x):
    """log1p(exp(x)) with the jvp rule t * logistic(x)."""
    body = grad_fn(lambda b, x: b.log1p(b.exp(x)), x.type, name="softplus")
    jvp = grad_fn(lambda b, x, t: (b.log1p(b.exp(x)), b.mul(t, b.logistic(x))),
                  x.type, x.type, name="softplus_jvp")
    return b.emit("custom_jvp_call", x, regions=(body, jvp))


def _vjp_regions(v):
    """x * y + x, with residuals (y, x), on operands of type v."""
    body = make_fn("body", [v, v], lambda b, x, y: [b.add(b.mul(x, y), x)])
    fwd = make_fn("fwd", [v, v], lambda b, x, y: [b.add(b.mul(x, y), x), y, x])
    bwd = make_fn("bwd", [v, v, v], lambda b, y, x, g: [b.add(b.mul(g, y), g), b.mul(g, x)])
    return body, fwd, bwd


def _compiled_vjp(dt):
    v, s = T(dt, (3,)), T(dt, ())
    return make_fn("custom_vjp", [v, v, s], lambda b, x, y, z: [
        *b.emit("custom_vjp_call", x, y, regions=_vjp_regions(v)),
        *b.emit("custom_vjp_call", z, z, regions=_vjp_regions(s))])


def _compiled_jvp(dt):
    v = T(dt, (2, 3))
    body = make_fn("body", [v], lambda b, x: [b.mul(x, x), b.neg(x)])
    jvp = make_fn("jvp", [v, v], lambda b, x, t: [b.mul(x, x), b.neg(x),
                                                  b.add(b.mul(x, t), b.mul(x, t)), b.neg(t)])
    return make_fn("custom_jvp", [v], lambda b, x: list(
        b.emit("custom_jvp_call", x, regions=(body, jvp))))


ROWS["custom_vjp_call"] = Row(
    grad_cases("custom_vjp_call", "sin-times", _sin_times, F(3), F(3), index(3, bound=4)),
    [CompiledCase(_compiled_vjp, NUMERIC)])
ROWS["custom_jvp_call"] = Row(
    grad_cases("custom_jvp_call", "softplus", _softplus, F(2, 3)),
    [CompiledCase(_compiled_jvp, NUMERIC)])


def _printed(b, x, y):
    """debug_print passes its operands through: the derivatives are the identity's."""
    px, py = b.emit("debug_print", x, y, fmt="x={} y={y}", names=("y",), batch_dims=0)
    return b.mul(b.sin(px), py)


def _compiled_print(dt):
    types = [T(dt, ()), T(dt, (2, 3)), T(dt, (0,))]
    def body(b, s, m, e):
        outs = list(b.emit("debug_print", s, m, e, fmt="{} {} {}", names=(), batch_dims=0))
        return outs + [b.add(outs[1], m)]        # a loop nest reading the printed buffer
    return make_fn("debug_print", types, body)


ROWS["debug_print"] = Row(grad_cases("debug_print", "two", _printed, F(3), F(3)),
                          [CompiledCase(_compiled_print, NUMERIC)])
