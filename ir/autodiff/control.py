"""VJP and JVP rules of the control-flow primitives cond, scan and while.

Their regions are closed Functions, so a rule differentiates a region with the transforms
themselves (vjp_function / jvp_function) and wraps the result in a new control op:
- cond: the adjoint is a cond whose branches are the branch VJPs (each recomputes its
  branch's primal); forward mode is a cond over the branch JVPs.
- scan: the forward scan also stacks what the adjoint reads (the tape); the adjoint is a
  scan in the opposite direction carrying the carries' cotangents and stacking the xs'
  (ir/autodiff/scan_vjp.py). Forward mode scans the body's JVP.
- while: forward mode loops over the body's JVP. Reverse mode needs the trip count, which a
  while does not have, so it is refused (as JAX does).
"""
from __future__ import annotations

from ir.autodiff.common import zeros
from ir.autodiff.jvp_rules import jvp_rules
from ir.autodiff.scan_vjp import scan_adjoint, scan_forward, scan_vjp
from ir.autodiff.transforms import (copy_body, jvp_fused_rules, jvp_function, vjp_function,
                                    vjp_tape_rules)
from ir.autodiff.vjp_rules import vjp_rules
from ir.builder import Builder
from ir.core import Function, Value, is_float

WHILE_VJP_ERROR = ("reverse-mode differentiation of while is not supported; "
                   "use fori_loop with static bounds or scan")


def _floats(values) -> list[int]:
    return [i for i, v in enumerate(values) if is_float(v.dtype)]


def _region(name: str, types, build, hints=()) -> Function:
    """A closed Function with params of the given types; build(b, params) -> results."""
    hints = list(hints) + [None] * (len(types) - len(hints))
    params = [Value(t, h) for t, h in zip(types, hints)]
    b = Builder()
    results = build(b, params)
    return Function(name, params, b.ops, list(results))


def _inline(b: Builder, fn: Function, args) -> list[Value]:
    """Like Builder.inline, but regions are cloned (see transforms.copy_op)."""
    env = copy_body(b, fn, args)
    return [env[r] for r in fn.results]


# ---- cond --------------------------------------------------------------------------------

def _cond_vjp(b, g, out, pred, *operands, regions):
    """A cond over the branches' VJPs; the predicate gets no cotangent."""
    wrt = _floats(operands)
    mask = [gi is not None for gi in g]
    branches = tuple(vjp_function(r, wrt, mask, keep_primal=False, name=f"{r.name}_vjp")
                     for r in regions)
    seeds = [gi for gi in g if gi is not None]
    res = b.emit("cond", pred, *operands, *seeds, regions=branches)
    cts = [None] * len(operands)
    for i, c in zip(wrt, res):
        cts[i] = c
    return (None, *cts)


def _cond_jvp(b, ts, pred, *operands, regions):
    """(primal results, tangents) from one cond over the branches' JVPs."""
    wrt = [i for i, t in enumerate(ts[1:]) if t is not None]
    branches = tuple(jvp_function(r, wrt, name=f"{r.name}_jvp") for r in regions)
    res = b.emit("cond", pred, *operands, *(ts[1 + i] for i in wrt), regions=branches)
    n = len(regions[0].results)
    return res[:n], _spread(res[n:], regions[0].results, n)


def _split(seq, *sizes) -> list[list]:
    """seq cut into consecutive chunks of the given sizes, plus a last chunk with the rest."""
    chunks, start = [], 0
    for size in sizes:
        chunks.append(list(seq[start:start + size]))
        start += size
    return chunks + [list(seq[start:])]


def _spread(tangents, results, n) -> tuple:
    """Tangents of the float results placed at their result positions, None elsewhere."""
    out = [None] * n
    for i, t in zip(_floats(results), tangents):
        out[i] = t
    return tuple(out)


# ---- scan --------------------------------------------------------------------------------

def _scan_jvp(b, ts, *operands, num_carry, length, reverse, regions):
    """(primal results, tangents) from one scan over the body's JVP: every float carry
    carries a tangent (zero at first if it has none), xs with a tangent bring its slices."""
    (body,) = regions
    nc, nx, ny = num_carry, len(operands) - num_carry, len(body.results) - num_carry
    fc = _floats(operands[:nc])
    nfc = len(fc)
    with_t = [j for j in range(nx) if ts[nc + j] is not None]
    body_jvp = jvp_function(body, fc + [nc + j for j in with_t], name=f"{body.name}_jvp")
    carry_types, x_types = _split(body.param_types, nc)
    tc_types, tx_types = _split([p.type for p in body_jvp.params[nc + nx:]], nfc)

    def step(bb, ps):     # scan order (c, tc, x, tx) <-> JVP order (c, x, tc, tx)
        carry, tc, xs, tx = _split(ps, nc, nfc, nx)
        new_carry, ys, t_carry, t_ys = _split(_inline(bb, body_jvp, carry + xs + tc + tx),
                                              nc, ny, nfc)
        return new_carry + t_carry + ys + t_ys

    region = _region(f"{body.name}_jvp_scan", carry_types + tc_types + x_types + tx_types, step)
    init = [zeros(b, operands[i].type) if ts[i] is None else ts[i] for i in fc]
    res = b.emit("scan", *operands[:nc], *init, *operands[nc:], *(ts[nc + j] for j in with_t),
                 num_carry=nc + nfc, length=length, reverse=reverse, regions=(region,))
    carry, t_carry, ys, t_ys = _split(res, nc, nfc, ny)
    return tuple(carry + ys), _spread(t_carry + t_ys, body.results, nc + ny)


# ---- while -------------------------------------------------------------------------------

def _while_vjp(b, g, out, *init, regions):
    raise TypeError(WHILE_VJP_ERROR)


def _while_jvp(b, ts, *init, regions):
    """(primal results, tangents) from a while over the body's JVP; the condition ignores
    the tangents, which every float carry carries (zero at first if it has none)."""
    cond_fn, body_fn = regions
    fc = _floats(init)
    body_jvp = jvp_function(body_fn, fc, name=f"{body_fn.name}_jvp")
    n = len(init)
    cond_types = cond_fn.param_types + [init[i].type for i in fc]
    new_cond = _region(f"{cond_fn.name}_jvp", cond_types,
                       lambda bb, ps: _inline(bb, cond_fn, ps[:n]))
    t_init = [zeros(b, init[i].type) if ts[i] is None else ts[i] for i in fc]
    res = b.emit("while", *init, *t_init, regions=(new_cond, body_jvp))
    return res[:n], _spread(res[n:], init, n)


# ---- registration --------------------------------------------------------------------------

vjp_rules["cond"] = _cond_vjp
vjp_rules["scan"] = scan_vjp
vjp_rules["while"] = _while_vjp
jvp_rules["cond"] = lambda b, ts, out, *inputs, **params: _cond_jvp(b, ts, *inputs, **params)[1]
jvp_rules["scan"] = lambda b, ts, out, *inputs, **params: _scan_jvp(b, ts, *inputs, **params)[1]
jvp_rules["while"] = lambda b, ts, out, *inputs, **params: _while_jvp(b, ts, *inputs, **params)[1]
vjp_tape_rules["scan"] = (scan_forward, scan_adjoint)
for _name, _rule in (("cond", _cond_jvp), ("scan", _scan_jvp), ("while", _while_jvp)):
    jvp_fused_rules[_name] = _rule
