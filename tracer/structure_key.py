"""The structural key of a lazy Expr graph: what two graphs must share to run one program.

Used by the backward replay (tracer/autograd/replay.py) and by reads of pending values
(tracer/realize_plans.py): both reuse a program built for an earlier graph of the same
structure, bound to the new graph's arrays found again by their position in the walk.

One depth-first pass: an Expr gets its walk position when first seen and is described when
popped, so its args are numbered by then; each Expr is described once, in an order fixed
by the structure, so equal parts mean equal graphs. A part says: for a leaf, its type and
whether it holds data; for an op's result, the primitive, its frozen params, the type,
whether it holds data and the positions of its args (plus, for an op with several results,
which op by number and which of its results).
"""
from __future__ import annotations

from tracer.expr import _frozen_params
from tracer.pending_expr import PendingExpr, recipe

_UNSET = object()


class Unkeyable(Exception):
    """The graph is outside what a structural key covers (the message says why)."""


def walk(roots: list, through_data: bool, limit: int,
         stops: dict | None = None, pending: bool = False) -> tuple[list, dict, tuple]:
    """(Exprs in walk order, id -> position, the parts) of the graph behind roots.

    through_data: walk on through Exprs that hold data (a backward program reads the
    forward ops behind them); else they are leaves (a read computes nothing behind them).
    stops: id(Expr) -> (Template, node position, result number, the node's input Exprs)
    for outputs of autograd nodes replayed from a template (tracer/autograd/node_walk.py):
    such an Expr is one part naming its Template, and the walk goes on from the inputs.
    pending: a pending Expr with one result (tracer/pending_expr.py: a replayed op whose Ops
    are not built) is one part naming its Template and the result's slot, and the walk goes
    on from its operands, without building its Ops (a read of a recorded forward: ~12 us a
    recorded op cold); the same Template on operands at the same positions builds the same
    Ops, so equal parts still mean equal graphs.
    Raises Unkeyable for a symbolic value, an op with regions or with a param that is not a
    plain value, or more than `limit` Exprs."""
    exprs, index, parts, ops = [], {}, [], {}
    stack = []
    # NOTE: _enter inlined in the loop over args (a backward step walks every Expr of the
    # forward: one call less per Expr)
    for root in roots:
        if root is None or id(root) in index:
            continue
        _enter(root, exprs, index, stack, limit)
        while stack:
            e = stack.pop()
            if stops:
                stop = stops.get(id(e))
                if stop is not None:
                    template, node, k, ins = stop
                    # NOTE: a loop, not a comprehension (a frame per stop on Python 3.11)
                    args = []
                    for a in ins:
                        i = index.get(id(a))
                        args.append(i if i is not None
                                    else _enter(a, exprs, index, stack, limit))
                    parts.append((template, node, k, e.data is not None, tuple(args)))
                    continue
            if pending and type(e) is PendingExpr and (through_data or e.data is None):
                part = _pending_part(e, exprs, index, stack, limit)
                if part is not None:
                    parts.append(part)
                    continue
            has_data = e.data is not None
            if has_data and not through_data:    # (before `op`: a pending e stays so)
                parts.append((e.value.type, True))
                continue
            op = e.op
            if op is None:
                parts.append((e.value.type, has_data))
                continue
            if op.regions:
                raise Unkeyable(f"{op.prim.name} has regions (control flow)")
            frozen = getattr(op, "frozen", _UNSET)
            if frozen is _UNSET:
                frozen = _frozen_params(op.params)
            if frozen is None:
                raise Unkeyable(f"{op.prim.name} has a param that is not a plain value")
            args = []
            for a in e.args:
                i = index.get(id(a))
                if i is None:
                    if a.symbolic:
                        raise Unkeyable("the graph holds a symbolic value (inside a "
                                        "functional trace)")
                    i = len(exprs)
                    if i >= limit:
                        raise Unkeyable(f"the graph holds over {limit} values")
                    index[id(a)] = i
                    exprs.append(a)
                    stack.append(a)
                args.append(i)
            results = op.results
            if len(results) == 1:            # the Expr is its op's: nothing to tell apart
                parts.append((op.prim, frozen, e.value.type, has_data, tuple(args)))
            else:                            # which op, and which of its results
                parts.append((op.prim, frozen, ops.setdefault(id(op), len(ops)),
                              results.index(e.value), e.value.type, has_data,
                              tuple(args)))
    return exprs, index, tuple(parts)


def _enter(e, exprs: list, index: dict, stack: list, limit: int) -> int:
    """Gives e the next walk position and queues it to be described."""
    if e.symbolic:
        raise Unkeyable("the graph holds a symbolic value (inside a functional trace)")
    i = len(exprs)
    if i >= limit:
        raise Unkeyable(f"the graph holds over {limit} values")
    index[id(e)] = i
    exprs.append(e)
    stack.append(e)
    return i


def _pending_part(e, exprs: list, index: dict, stack: list, limit: int) -> tuple | None:
    """The part of a pending e with one result (its operands entered), or None: a whole
    Function's results or an op's several results (then e's Ops are built and walked)."""
    template, ins, loc, slot = recipe(e)
    if loc is False or type(slot) is not int:
        return None
    args = []
    for a in ins:
        i = index.get(id(a))
        args.append(i if i is not None else _enter(a, exprs, index, stack, limit))
    return (template, slot, e.data is not None, tuple(args))
