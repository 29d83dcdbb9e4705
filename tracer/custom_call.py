"""Recording calls whose derivatives the user wrote: one custom_vjp_call / custom_jvp_call op.

The user's functions have already run on Exprs (the primal, the forward with residuals, the
backward or the jvp rule); these helpers cut closed regions out of what they recorded and
record the one op (see ir/primitives.py for the regions' signatures and
ir/autodiff/custom.py for how the transforms use them). Values a rule closes over (arrays,
values of an enclosing trace) become extra operands, as for cond/scan; they get a zero
derivative. gradjit.custom_vjp / custom_jvp (tracer/custom_rules.py) and autograd.Function
under the functional transforms (tracer/autograd/function.py) both record through here.
"""
from __future__ import annotations

from ir import TensorType
from tracer import record
from tracer.expr import Expr, apply_op, param_expr, closed_region, region_captures
from tracer.tensor import Tensor


def zeros_expr(t: TensorType) -> Expr:
    return apply_op("constant", (), None, value=0, dtype=t.dtype, shape=t.shape)[0]


def record_custom_vjp(name: str, params, operands, body_outs, fwd_outs, res, res_params,
                      g_params, cts) -> tuple[Tensor, ...]:
    """Records custom_vjp_call(*operands, *captures).

    Args:
        params: the Exprs standing for the operands in the user's functions (fresh params,
            or the operands themselves).
        body_outs / fwd_outs: the primal's and the forward's outputs (over params).
        res / res_params: the forward's residuals, and the params the backward read them as.
        g_params: the backward's cotangent params, one per output.
        cts: the backward's cotangent per operand (None: zero), of the operand's type.
    """
    bwd_caps = region_captures([(res_params + g_params, [c for c in cts if c is not None])])
    residuals = list(res) + bwd_caps
    caps = region_captures([(params, body_outs), (params, fwd_outs + residuals)])
    body = closed_region(name, params + caps, body_outs)
    fwd = closed_region(f"{name}_fwd", params + caps, fwd_outs + residuals)
    filled = [zeros_expr(p.type) if c is None else c for p, c in zip(params, cts)]
    filled += [zeros_expr(c.type) for c in caps]
    bwd = closed_region(f"{name}_bwd", res_params + bwd_caps + g_params, filled)
    args = [Tensor(e) for e in list(operands) + caps]
    return record.apply("custom_vjp_call", *args, regions=(body, fwd, bwd))


def record_custom_jvp(name: str, params, operands, body_outs, t_params, jvp_outs,
                      jvp_touts) -> tuple[Tensor, ...]:
    """Records custom_jvp_call(*operands, *captures); t_params are the jvp rule's tangent
    params (one per operand), jvp_outs / jvp_touts what it returned (one per output)."""
    caps = region_captures([(params, body_outs), (params + t_params, jvp_outs + jvp_touts)])
    t_caps = [param_expr(c.type, "t") for c in caps]
    body = closed_region(name, params + caps, body_outs)
    jvp = closed_region(f"{name}_jvp", params + caps + t_params + t_caps, jvp_outs + jvp_touts)
    args = [Tensor(e) for e in list(operands) + caps]
    return record.apply("custom_jvp_call", *args, regions=(body, jvp))
