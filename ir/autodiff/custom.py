"""Derivative rules of the calls whose derivatives the user wrote (jax.custom_vjp/custom_jvp).

custom_vjp_call(*operands) {body, fwd, bwd}: reverse mode replaces the call by its `fwd`
(which also returns residuals) inlined into the forward pass, and inlines `bwd(residuals,
cotangents)` into the adjoint: the user's rule, as ordinary IR, so a second derivative
differentiates it (and fwd's residuals) normally, as JAX does. Forward mode needs the
transpose of bwd in its cotangents, which exists when bwd is linear in them (checked);
JAX refuses forward mode of a custom_vjp function altogether.

custom_jvp_call(*operands) {body, jvp}: forward mode inlines `jvp(primals, tangents)`;
reverse mode transposes the jvp rule's tangent part (its VJP in the tangents at zero
tangents), which needs the rule to be linear in the tangents (checked), as JAX requires.
Integer operands and results get zero derivatives.
"""
from __future__ import annotations

from ir.autodiff.common import zeros
from ir.autodiff.jvp_rules import jvp_rules
from ir.autodiff.transforms import copy_body, jvp_fused_rules, vjp_function, vjp_tape_rules
from ir.autodiff.vjp_rules import vjp_rules
from ir.builder import Builder
from ir.core import Function, Value, is_float
from ir.primitives import PRIMITIVES

# linear in all their operands jointly (besides the primitives with the `linear` trait);
# mul and dot_general are linear in one operand, div in its numerator, select in its branches
_LINEAR_JOINTLY = {"add", "sub", "neg", "convert", "concatenate"}

JVP_OF_VJP_ERROR = ("can't apply forward-mode autodiff (jvp) to a custom_vjp function whose "
                    "bwd is not linear in its cotangents (JAX refuses jvp of any custom_vjp "
                    "function; define a custom_jvp instead)")
VJP_OF_JVP_ERROR = ("reverse-mode differentiation of a custom_jvp function needs its jvp rule "
                    "to be linear in the tangents (as JAX requires); this rule is not")


def linear_in(fn: Function, indices) -> bool:
    """Every result of fn that depends on the params at `indices` is a linear function of
    them (a structural check over the ops, conservative: False may be a false alarm)."""
    dep = {fn.params[i] for i in indices}
    for op in fn.body:
        hits = [i for i, v in enumerate(op.inputs) if v in dep]
        if not hits:
            continue
        name = op.prim.name
        if PRIMITIVES[name].linear or name in _LINEAR_JOINTLY:
            ok = True
        elif name == "select":
            ok = 0 not in hits
        elif name in ("mul", "dot_general"):
            ok = len(hits) == 1
        elif name in ("custom_vjp_call", "custom_jvp_call", "cond"):
            ok = False
        else:
            ok = name == "div" and hits == [0]
        if not ok:
            return False
        dep.update(op.results)
    return True


def _inline(b: Builder, fn: Function, args) -> list[Value]:
    env = copy_body(b, fn, list(args))
    return [env[r] for r in fn.results]


def _or_zeros(b: Builder, values, types) -> list[Value]:
    return [zeros(b, t) if v is None else v for v, t in zip(values, types)]


def _float_only(values, like) -> tuple:
    return tuple(v if is_float(x.dtype) else None for v, x in zip(values, like))


# ---- custom_vjp_call -----------------------------------------------------------------------

def _vjp_forward(b, *operands, regions):
    """The taped forward: fwd inlined; its residuals are the tape."""
    body, fwd, _ = regions
    res = _inline(b, fwd, operands)
    n = len(body.results)
    return tuple(res[:n]), res[n:]


def _vjp_adjoint(b, gs, outs, tape, *operands, regions):
    bwd = regions[2]
    cts = _inline(b, bwd, list(tape) + _or_zeros(b, gs, [o.type for o in outs]))
    return _float_only(cts, operands)


def _vjp_untaped(b, gs, outs, *operands, regions):
    _, tape = _vjp_forward(b, *operands, regions=regions)
    return _vjp_adjoint(b, gs, outs, tape, *operands, regions=regions)


def _vjp_call_jvp(b, ts, *operands, regions):
    """(outs, tangents): fwd inlined, the tangents pushed through bwd's transpose."""
    body, fwd, bwd = regions
    n, nres = len(body.results), len(fwd.results) - len(body.results)
    g_ix = [nres + j for j in range(n) if is_float(body.results[j].dtype)]
    if not linear_in(bwd, g_ix):
        raise TypeError(JVP_OF_VJP_ERROR)
    res = _inline(b, fwd, operands)
    outs, resid = res[:n], res[n:]
    mask = [is_float(x.dtype) for x in operands]
    transpose = vjp_function(bwd, g_ix, mask, keep_primal=False, name=f"{bwd.name}_transpose")
    seeds = [t if t is not None else zeros(b, x.type)
             for t, x, m in zip(ts, operands, mask) if m]
    g0 = [zeros(b, p.type) for p in bwd.params[nres:]]
    touts = iter(_inline(b, transpose, resid + g0 + seeds))
    return tuple(outs), tuple(next(touts) if j + nres in g_ix else None for j in range(n))


# ---- custom_jvp_call -----------------------------------------------------------------------

def _jvp_call_jvp(b, ts, *operands, regions):
    """(outs, tangents): the user's jvp rule inlined (zero tangents where there are none)."""
    body, jvp = regions
    n = len(body.results)
    res = _inline(b, jvp, list(operands) + _or_zeros(b, ts, [x.type for x in operands]))
    return tuple(res[:n]), _float_only(res[n:], body.results)


def _jvp_call_vjp(b, gs, outs, *operands, regions):
    """The transpose of the jvp rule's tangent part (its VJP in the tangents)."""
    jvp = regions[1]
    m, n = len(operands), len(outs)
    wrt = [m + i for i, x in enumerate(operands) if is_float(x.dtype)]
    if not linear_in(jvp, wrt):
        raise TypeError(VJP_OF_JVP_ERROR)
    mask = [False] * n + [is_float(o.dtype) for o in outs]
    transpose = vjp_function(jvp, wrt, mask, keep_primal=False, name=f"{jvp.name}_transpose")
    seeds = [g if g is not None else zeros(b, o.type)
             for g, o in zip(gs, outs) if is_float(o.dtype)]
    t0 = [zeros(b, x.type) for x in operands]
    cts = iter(_inline(b, transpose, list(operands) + t0 + seeds))
    return tuple(next(cts) if m + i in wrt else None for i in range(m))


# ---- debug_print: the identity in both modes (it prints the primal values) ------------------

def _identity_vjp(b, g, out, *xs, **params):
    return tuple(g) if isinstance(g, tuple) else (g,)


def _identity_jvp(b, ts, out, *xs, **params):
    return tuple(ts) if isinstance(out, tuple) else ts[0]


vjp_rules["debug_print"] = _identity_vjp
jvp_rules["debug_print"] = _identity_jvp


# ---- registration --------------------------------------------------------------------------

vjp_rules["custom_vjp_call"] = _vjp_untaped
vjp_tape_rules["custom_vjp_call"] = (_vjp_forward, _vjp_adjoint)
jvp_fused_rules["custom_vjp_call"] = _vjp_call_jvp
jvp_rules["custom_vjp_call"] = lambda b, ts, out, *xs, **p: _vjp_call_jvp(b, ts, *xs, **p)[1]
vjp_rules["custom_jvp_call"] = _jvp_call_vjp
jvp_fused_rules["custom_jvp_call"] = _jvp_call_jvp
jvp_rules["custom_jvp_call"] = lambda b, ts, out, *xs, **p: _jvp_call_jvp(b, ts, *xs, **p)[1]
