"""The rewriting driver every pass is built on, and the helpers its rules share.

A pass walks a Function's body once, in order, handing each op (operands already renamed)
to a rule. A rule returns None to keep the op, an Op that defines the very same result
Values another way (name hints survive), or the existing Value(s) that replace the op's
results; later uses, the function's results included, are renamed. A rule may also add
helper ops with `ctx.emit` (they land before the op being rewritten). An op rewritten in
place goes back to the rule until it settles. Regions are closed, so each is rewritten on
its own, once per distinct region (Builder.inline shares regions; they stay shared).

Every pass reports whether it changed anything: optimize stops at the first round that
changes nothing, which makes it idempotent without comparing printed text.
"""
from __future__ import annotations

from typing import Callable

from ir.core import Function, Op, Value, freeze
from ir.primitives import PRIMITIVES, having

MAX_REWRITES_PER_OP = 8      # bounds a rule that keeps rewriting its own output
REARRANGES = having(rearranges=True)     # broadcast_in_dim, reshape, transpose

# A region pass maps a region to (new region, whether it changed).
RegionPass = Callable[[Function], tuple[Function, bool]]


class Context:
    """The function being rebuilt: its ops so far, each value's defining op, the renaming,
    and the use counts of the input function's values (for single-use conditions)."""

    def __init__(self, uses: dict[Value, int] | None = None):
        self.ops: list[Op] = []
        self.defs: dict[Value, Op] = {}
        self.env: dict[Value, Value] = {}
        self.uses = uses if uses is not None else {}
        self.changed = False

    def def_of(self, v: Value, prim: str | None = None) -> Op | None:
        """The op defining v (if it is of primitive prim), None for params and others."""
        op = self.defs.get(v)
        return op if op is not None and (prim is None or op.prim.name == prim) else None

    def single_use(self, v: Value) -> bool:
        """Whether the input function reads v at most once (so a rewrite may consume it)."""
        return self.uses.get(v, 0) <= 1

    def emit(self, prim: str, *inputs: Value, loc: str | None = None, **params) -> Value:
        """Appends a helper op with a fresh result and returns that result."""
        p = PRIMITIVES[prim]
        (t,) = p.infer([v.type for v in inputs], params)
        op = Op(p, tuple(inputs), (Value(t),), params, (), loc)
        self.append(op)
        return op.results[0]

    def append(self, op: Op):
        """Adds op to the rebuilt body as it is."""
        self.ops.append(op)
        self.defs.update((r, op) for r in op.results)


Rule = Callable[[Op, Context], object]


def use_counts(fn: Function) -> dict[Value, int]:
    """How many times each value is read by fn's ops and results (regions are closed)."""
    uses: dict[Value, int] = {}
    for op in fn.body:
        for v in op.inputs:
            uses[v] = uses.get(v, 0) + 1
    for v in fn.results:
        uses[v] = uses.get(v, 0) + 1
    return uses


def shared(region_pass: RegionPass) -> Callable[[Function], tuple[Function, bool]]:
    """region_pass, run once per distinct region: shared regions stay shared."""
    done: dict[int, tuple[Function, tuple[Function, bool]]] = {}

    def run(region: Function) -> tuple[Function, bool]:
        if id(region) not in done:
            done[id(region)] = (region, region_pass(region))    # keep region alive: id stable
        return done[id(region)][1]
    return run


def rewrite(fn: Function, rule: Rule, region_pass: RegionPass) -> tuple[Function, bool]:
    """Runs rule over fn's body (see the module docstring); returns (new fn, changed)."""
    ctx = Context(use_counts(fn))
    run_region = shared(region_pass)
    for op in fn.body:
        regions = []
        for r in op.regions:
            new, changed = run_region(r)
            regions.append(new)
            ctx.changed |= changed
        op = Op(op.prim, tuple(ctx.env.get(v, v) for v in op.inputs), op.results,
                dict(op.params), tuple(regions), op.loc)
        _settle(op, rule, ctx)
    results = [ctx.env.get(r, r) for r in fn.results]
    return Function(fn.name, list(fn.params), ctx.ops, results), ctx.changed


def _settle(op: Op, rule: Rule, ctx: Context):
    """Applies rule to op until it keeps the op or replaces its results."""
    for _ in range(MAX_REWRITES_PER_OP):
        out = rule(op, ctx)
        if out is None:
            break
        ctx.changed = True
        if not isinstance(out, Op):
            values = (out,) if isinstance(out, Value) else tuple(out)
            ctx.env.update(zip(op.results, values))
            return
        op = out
    ctx.append(op)


def same_results(op: Op, prim: str, inputs, **params) -> Op:
    """A new op computing op's results another way; it defines the very same Values."""
    new = Op(PRIMITIVES[prim], tuple(inputs), op.results, params, (), op.loc)
    inferred = new.prim.infer([v.type for v in new.inputs], params)
    assert list(inferred) == [r.type for r in op.results], f"rewrite changed the type of {op}"
    return new


def flatten(value) -> list:
    """The scalars of a (nested tuple) constant value, in order."""
    if not isinstance(value, tuple):
        return [value]
    return [e for item in value for e in flatten(item)]


def splat(v: Value, ctx: Context):
    """The scalar every element of v equals, if v is a known constant (None otherwise).
    Looks through broadcast_in_dim, reshape and transpose, which only move elements."""
    op = ctx.def_of(v)
    while op is not None and op.prim.name in REARRANGES:
        op = ctx.def_of(op.inputs[0])
    if op is None or op.prim.name != "constant":
        return None
    value = op.params["value"]
    if not isinstance(value, tuple):
        return value
    flat = flatten(value)
    return flat[0] if flat and len({freeze(e) for e in flat}) == 1 else None


def is_value(v: Value, ctx: Context, scalar) -> bool:
    """Whether v is a known constant whose every element equals scalar (bools excluded)."""
    s = splat(v, ctx)
    return s is not None and not isinstance(s, bool) and s == scalar
