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

An op with regions (control flow) is recorded through apply_op as before. For concrete
arguments and a Function without regions, the replay runs as generated straight-line code
(`_straight_line`), made on its first use.
"""
from __future__ import annotations

import weakref

from ir import Function, Op, Value
from tracer import pending_expr
from tracer.expr import Expr, _frozen_params, apply_op
from tracer.pending_expr import PendingExpr

_new = object.__new__
_set_recipe = pending_expr._ARGS.__set__
# results returned pending, and replays materialised later (tests)
STATS = {"pending_calls": 0, "materialised": 0}


def fresh_results(fn: Function) -> bool:
    """Every result of fn a distinct value made by an op (none a param passed through)."""
    params = set(fn.params)
    return len(set(fn.results)) == len(fn.results) and not any(
        [r in params for r in fn.results])


class FunctionReplay:
    """fn, prepared to be recorded on Exprs many times (see the module docstring)."""
    __slots__ = ("steps", "results", "n_params", "fresh_results", "straight", "types")

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
        self.types = {i: r.type for r, i in slot.items()}        # slot -> type
        self.results = [slot[r] for r in fn.results]
        self.n_params = len(fn.params)
        self.fresh_results = fresh_results(fn)
        # the replay of concrete arguments as straight-line code (made on first use)
        self.straight = None if any([op.regions for op in fn.body]) else False

    def __call__(self, args: list[Expr]) -> list[Expr]:
        """fn's results recorded on args (one Expr per param of fn)."""
        if len(args) != self.n_params:
            raise ValueError(f"expected {self.n_params} arguments, got {len(args)}")
        # an op's results are symbolic when an operand is: with no symbolic argument, none
        any_symbolic = any([a.symbolic for a in args])
        if not any_symbolic and self.straight is not None:
            if self.straight is False:
                self.straight = _straight_line(self.steps, self.results, self.n_params)
            return self.straight(args)
        slots = list(args)
        append = slots.append
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


    def pending(self, args: list[Expr]) -> list[Expr] | None:
        """fn's results on args as pending Exprs (tracer/pending_expr.py): their values and
        types are real, the Ops and interior Exprs are built (by `materialise_pending`) only
        when something reads a result's op or args; None when that does not apply (symbolic
        arguments, control flow, a result that is not a new value).
        NOTE: a training step whose backward replays never reads them: the transformer
        block's forward then makes 15 objects instead of ~270."""
        if self.straight is None or not self.fresh_results or len(args) != self.n_params \
                or any([a.symbolic for a in args]):
            return None
        STATS["pending_calls"] += 1
        made, refs = [], []
        recipe = (self, tuple(args), False, refs)     # (False: pending_expr calls us)
        for slot in self.results:
            e = _new(PendingExpr)
            e.value = Value(self.types[slot])
            _set_recipe(e, recipe)
            e.data = None
            e.symbolic = e.recorded = False
            refs.append((slot, weakref.ref(e)))
            made.append(e)
        return made

    def materialise_pending(self, args: tuple, outs: list) -> None:
        """Builds the Ops and Exprs the replay would have built for args, giving the still
        pending results among outs ((slot, weakref), ...) their op and args (they become
        plain Exprs, as pending_expr.materialise does for an op template)."""
        STATS["materialised"] += 1
        wanted = pending_expr.still_pending(outs)
        slots = list(args)
        for op, refs, types, frozen in self.steps:
            n = len(slots)
            slots.extend(pending_expr.build_op(
                op.prim, tuple([slots[r] for r in refs]), op.params, types, frozen, op.loc,
                [wanted.get(n + k) for k in range(len(types))]))


def _straight_line(steps: list, results: list, n_params: int):
    """The replay of concrete arguments (no regions) as one generated Python function: per
    op, its Value, Op and Expr made with the op's constants bound by name, so no per-op
    loop, operand lists or branches. The same constructor calls with the same arguments as
    the loop in FunctionReplay.__call__ (dataclasses generate their __init__ the same way).
    NOTE: the transformer block's forward (89 ops), CPU, timeit, alternating with the loop
    in one process (loaded machine): 304 -> 150 us per replay."""
    env = {"Value": Value, "Op": Op, "Expr": Expr, "ref": weakref.ref}
    names = [f"a{i}" for i in range(n_params)]
    lines = ["def replay(args):", f"    {', '.join(names)}, = args" if names else ""]
    slot = n_params
    for k, (op, refs, types, frozen) in enumerate(steps):
        env[f"P{k}"], env[f"M{k}"], env[f"L{k}"], env[f"F{k}"] = \
            op.prim, op.params, op.loc, frozen
        ins = "".join([f"a{r}, " for r in refs])
        values = "".join([f"a{r}.value, " for r in refs])
        for j, t in enumerate(types):
            env[f"T{k}_{j}"] = t
        results_code = "".join([f"Value(T{k}_{j}), " for j in range(len(types))])
        lines.append(f"    o = Op(P{k}, ({values}), ({results_code}), dict(M{k}), (), L{k})")
        lines.append(f"    o.frozen = F{k}")
        outs = [f"a{slot + j}" for j in range(len(types))]
        for j, name in enumerate(outs):
            lines.append(f"    {name} = Expr(o.results[{j}], o, ({ins}), None, False)")
        if len(outs) > 1:        # realize() computes live siblings along (expr._results)
            lines.append(f"    o.exprs = [{', '.join([f'ref({n})' for n in outs])}]")
        slot += len(types)
    lines.append(f"    return [{', '.join([f'a{i}' for i in results])}]")
    code = compile("\n".join(lines), "<gradjit FunctionReplay>", "exec")
    exec(code, env)                                                   # noqa: S102
    return env["replay"]
