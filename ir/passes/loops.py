"""Scan rewrites: accumulators hoisted out of the loop, invariant carries forwarded.

Reverse mode turns every weight a loop reads into a carry that sums the weight's cotangent
over the iterations: `dw' = dw + dot_general(x_t, g_t)`. Run as written, that is one small
matrix product per iteration plus a copy of the whole accumulator per iteration. When the
product's operands are smaller than the accumulator, the loop instead stacks them as ys,
and one dot_general after the loop contracts over the iteration axis too:
`dw = dw0 + dot_general(xs, gs)` with the stacked axis 0 contracted, one large GEMM.
A carry summing a reduce_sum of a value that is stacked anyway becomes a reduce_sum of the
stack. (Floating-point sums are reassociated by this, like every blocked GEMM.)

A carry is an accumulator when its body result is `add(carry, v)`, the carry is read by
nothing else and the sum is used for nothing else. When one operand of the product is a
loop-invariant carry w, the sum is `(sum_t x_t) @ w` instead.

A loop-invariant carry (the body returns it unchanged) also ends the loop as it began, so
uses of that result read the scan's operand.
"""
from __future__ import annotations

from ir.core import Function, Op, Value, is_float
from ir.passes.dce import dce_function
from ir.passes.rewrite import Context, use_counts
from ir.primitives import PRIMITIVES


def _accumulators(body: Function, nc: int) -> dict[int, Value]:
    """carry index -> the value v its body result adds to it, for every accumulator."""
    uses = use_counts(body)
    defs = {r: op for op in body.body for r in op.results}
    found = {}
    for i in range(nc):
        p, r = body.params[i], body.results[i]
        add = defs.get(r)
        if not is_float(p.dtype) or uses.get(p, 0) != 1 or uses.get(r, 0) != 1:
            continue
        if add is not None and add.prim.name == "add" and p in add.inputs:
            found[i] = add.inputs[1] if add.inputs[0] is p else add.inputs[0]
    return found


def _plan(body: Function, nc: int, accumulators: dict[int, Value]):
    """(carry index -> (how, op)) and the body values to stack as new ys. how is 'dot'
    (stack both operands of a dot_general), 'dot_fixed' (one operand is a loop-invariant
    carry: stack and sum the other), 'sum' (a reduce_sum of a stacked value) or 'stack'
    (v itself is stacked anyway)."""
    defs = {r: op for op in body.body for r in op.results}
    xs_params = set(body.params[nc:])
    invariant = {body.params[i] for i in range(nc) if body.results[i] is body.params[i]}
    stacked: list[Value] = []

    def free(v):
        return v in xs_params or v in stacked
    plan = {}
    for i, v in accumulators.items():
        op = defs.get(v)
        if op is None or op.prim.name != "dot_general":
            continue
        fixed = [o in invariant for o in op.inputs]
        if all(fixed):
            continue
        new = [o for k, o in enumerate(op.inputs)
               if not free(o) and not fixed[k] and o not in op.inputs[:k]]
        if sum(o.type.size for o in new) <= v.type.size:
            plan[i] = ("dot_fixed" if any(fixed) else "dot", op)
            stacked += new
    for i, v in accumulators.items():
        op = defs.get(v)
        if i in plan:
            continue
        if free(v):
            plan[i] = ("stack", None)
        elif op is not None and op.prim.name == "reduce_sum" and free(op.inputs[0]):
            plan[i] = ("sum", op)
    return plan, stacked


def _stacked_sum(ctx: Context, how: str, op: Op | None, stack, fixed, v: Value, loc):
    """The sum over the iterations of v, from the stacks of what computes v (stack(x):
    the stack of body value x, or the scan's operand for a loop-invariant carry x)."""
    if how == "stack":
        return ctx.emit("reduce_sum", stack(v), axes=(0,), loc=loc)
    if how == "sum":
        axes = (0,) + tuple(a + 1 for a in op.params["axes"])
        return ctx.emit("reduce_sum", stack(op.inputs[0]), axes=axes, loc=loc)
    if how == "dot_fixed":        # sum_t x_t @ w = (sum_t x_t) @ w for a loop-invariant w
        operands = [stack(x) if x in fixed else
                    ctx.emit("reduce_sum", stack(x), axes=(0,), loc=loc) for x in op.inputs]
        return ctx.emit("dot_general", *operands, contract=op.params["contract"],
                        batch=op.params["batch"], loc=loc)
    (ac, bc), (ab, bb) = op.params["contract"], op.params["batch"]
    shift = lambda axes: tuple(a + 1 for a in axes)         # noqa: E731
    return ctx.emit("dot_general", stack(op.inputs[0]), stack(op.inputs[1]),
                    contract=((0,) + shift(ac), (0,) + shift(bc)),
                    batch=(shift(ab), shift(bb)), loc=loc)


def scan_rule(op: Op, ctx: Context):
    """The simplify rule for scan: invariant carries forwarded, accumulators hoisted."""
    return _forward_invariants(op, ctx) or hoist_accumulators(op, ctx)


def _forward_invariants(op: Op, ctx: Context):
    """A carry the body returns unchanged ends the loop as it began: later uses of that
    result read the scan's operand instead (then the result is unused, and this no-op)."""
    (body,) = op.regions
    nc = op.params["num_carry"]
    fixed = [i for i in range(nc) if body.results[i] is body.params[i]]
    if not any(ctx.uses.get(op.results[i], 0) for i in fixed):
        return None
    ctx.append(op)
    return tuple(op.inputs[i] if i in fixed else r for i, r in enumerate(op.results))


def hoist_accumulators(op: Op, ctx: Context):
    """The simplify rule for scan (see the module docstring); None when nothing hoists."""
    (body,) = op.regions
    nc, length = op.params["num_carry"], op.params["length"]
    accumulators = _accumulators(body, nc)
    plan, stacked = _plan(body, nc, accumulators) if accumulators else ({}, [])
    if not plan:
        return None
    kept = [i for i in range(nc) if i not in plan]
    params = [body.params[i] for i in kept] + body.params[nc:]
    results = [body.results[i] for i in kept] + body.results[nc:] + stacked
    region = dce_function(Function(body.name, params, body.body, results))
    new_ys = [Value(v.type.with_shape((length,) + v.shape)) for v in stacked]
    scan = Op(op.prim, tuple(op.inputs[i] for i in kept) + op.inputs[nc:],
              tuple(op.results[i] for i in kept) + op.results[nc:] + tuple(new_ys),
              {**op.params, "num_carry": len(kept)}, (region,), op.loc)
    ctx.append(scan)
    stacks = dict(zip(stacked, new_ys))
    stacks.update(zip(body.params[nc:], op.inputs[nc:]))
    fixed = {body.params[i]: op.inputs[i] for i in range(nc) if body.results[i] is body.params[i]}
    stacks.update(fixed)
    for i, (how, inner) in plan.items():
        total = _stacked_sum(ctx, how, inner, stacks.__getitem__, fixed, accumulators[i],
                             op.loc)
        ctx.append(Op(PRIMITIVES["add"], (op.inputs[i], total), (op.results[i],), {}, (),
                      op.loc))
    return op.results
