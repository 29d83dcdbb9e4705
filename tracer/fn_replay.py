"""Recording a whole traced Function onto the lazy graph, with its per-op work done once.

`expr.apply_function` records a Function's ops one at a time through `apply_op`, which per
op freezes the params, looks up the shape-rule cache and copies the params. For a Function
recorded on every step (the forward of `compile(model)`: ~100 ops for a transformer block,
~3 ms CPU per step) all of that is the same every time. `FunctionReplay` works it out once
per Function: per op its Primitive, where its operands sit (a param of the Function or an
earlier op's result), its canonical params and their frozen form, its result types. A replay
then only creates the Ops and Exprs, the same ones (primitive, params, types, wiring, source
location) apply_function would have created, so everything downstream (the backward's
structural key, the compiled programs) sees the same graph.

An op with regions (control flow) is recorded through apply_op as before.
"""
from __future__ import annotations

import weakref

from ir import Function, Op, Value
from tracer.expr import Expr, _frozen_params, apply_op


def fresh_results(fn: Function) -> bool:
    """Every result of fn a distinct value made by an op (none a param passed through)."""
    params = set(fn.params)
    return len(set(fn.results)) == len(fn.results) and not any(
        [r in params for r in fn.results])


class FunctionReplay:
    """fn, prepared to be recorded on Exprs many times (see the module docstring)."""
    __slots__ = ("steps", "results", "n_params", "fresh_results")

    def __init__(self, fn: Function):
        slot: dict[Value, int] = {v: i for i, v in enumerate(fn.params)}
        steps = []
        for op in fn.body:
            refs = tuple([slot[v] for v in op.inputs])
            types = tuple([r.type for r in op.results])
            frozen = None if op.regions else _frozen_params(op.params)
            steps.append((op, refs, types, frozen))
            for r in op.results:
                slot[r] = len(slot)
        self.steps = steps
        self.results = [slot[r] for r in fn.results]
        self.n_params = len(fn.params)
        self.fresh_results = fresh_results(fn)

    def __call__(self, args: list[Expr]) -> list[Expr]:
        """fn's results recorded on args (one Expr per param of fn)."""
        if len(args) != self.n_params:
            raise ValueError(f"expected {self.n_params} arguments, got {len(args)}")
        slots = list(args)
        append = slots.append
        # an op's results are symbolic when an operand is: with no symbolic argument, none
        any_symbolic = any([a.symbolic for a in args])
        symbolic = False
        for op, refs, types, frozen in self.steps:
            ins = tuple([slots[r] for r in refs])
            if any_symbolic:
                symbolic = any([a.symbolic for a in ins])
            if op.regions:
                slots.extend(apply_op(op.prim.name, ins, op.loc, regions=op.regions,
                                      **op.params))
                continue
            values = tuple([a.value for a in ins])
            if len(types) == 1:
                v = Value(types[0])
                new = Op(op.prim, values, (v,), dict(op.params), (), op.loc)
                new.frozen = frozen
                append(Expr(v, new, ins, symbolic=symbolic))
                continue
            new = Op(op.prim, values, tuple([Value(t) for t in types]), dict(op.params), (),
                     op.loc)
            new.frozen = frozen
            outs = [Expr(r, new, ins, symbolic=symbolic) for r in new.results]
            if len(outs) > 1:        # realize() computes live siblings along (expr._results)
                new.exprs = [weakref.ref(e) for e in outs]
            slots.extend(outs)
        return [slots[i] for i in self.results]
