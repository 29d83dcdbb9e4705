"""Reading a value in a loop (`loss.item()` every step) reuses the program built for it.

`tensor.realize` cuts the pending graph into an ir.Function (expr.build_function) and looks
it up in the compile cache by the Function's structure: both passes copy or hash the whole
program on every read. Here a cheaper structural key of the pending graph itself is taken
first (as tracer/autograd/replay.py does for backward()): the primitives, their frozen
params and types, how Exprs are shared, which leaves hold data, and where the wanted Exprs
sit. Equal keys mean build_function would cut the same program with its captures at the
same positions of this walk, so the Function built the first time is run again, bound to
this read's arrays.

Not keyed (realize builds as before): a symbolic value (inside a functional trace), an op
with regions or with a param that is not a plain value, a graph of over _MAX_EXPRS values.

`read` is the whole of a read (tensor.realize): that one walk also finds the autograd-node
outputs on the way (computed along, see recorded_pending) and bounds the graph's size (a
graph of at most _MAX_EXPRS values holds at most bounded.MAX_OPS ops), so a read walks its
graph once, not three times. A graph the walk does not key takes the separate passes.
"""
from __future__ import annotations

import math
import sys
from collections import Counter
from itertools import chain

from tracer import structure_key
from tracer.errors import TracerError
from tracer.expr import build_function, live_siblings
from tracer.pending_expr import PendingExpr, recipe

_MAX_EXPRS = 4096
_PLANS: dict = {}
_PLANS_LIMIT = 256
# reads that reran a kept program (hits) or built one for a new structure (misses)
STATS = {"hits": 0, "misses": 0}


def read(pending: list, updated, run) -> tuple[list, list] | None:
    """(roots, their arrays) for pending Exprs (without data), with the pending new values
    of tensors updated in place (updated(roots): those not in roots) and the autograd-node
    outputs behind them as further roots; None when the graph is not keyable (the caller
    takes the separate passes, whose results are the same)."""
    roots = pending + updated(pending) if updated is not None else pending
    walk = describe(roots, PENDING)
    if walk is not None and PENDING and any([_product_recipe(e) for e in walk.exprs]):
        walk = describe(roots)       # (a pending product: its size is read from its Ops)
    if walk is None:
        return None
    ids = {id(r) for r in roots}
    candidates = []
    for e in walk.exprs:
        if type(e) is PendingExpr and e.data is None:   # (one result: walk's pending part)
            if id(e) not in ids and (e.recorded or _concatenation(e)):
                candidates.append(e)
            continue
        op = e.op
        if op is None or e.data is not None:
            continue
        if len(op.results) > 1:
            return None             # live siblings (an RNN's final state): the old passes
        name = op.prim.name
        if id(e) not in ids and (e.recorded or (name == "dot_general"
                                                and _macs(e) >= HELD_PRODUCT_MACS)
                                 or (name == "concatenate" and HELD_CONCATENATIONS)):
            candidates.append(e)
    extra = held(walk, candidates) if candidates else []
    if extra:
        roots = roots + extra
        walk.key = (walk.key[0], walk.key[1] + tuple([walk.index[id(e)] for e in extra]))
    _LAST[0] = (roots, walk, len(extra))
    return roots, _run_walk(roots, walk, run)


# a matrix product this large (multiply-adds) whose value a Tensor holds is kept at a read (held)
HELD_PRODUCT_MACS = 1 << 20
# a concatenation whose value a Tensor holds is kept at a read (held): tests switch it off
HELD_CONCATENATIONS = True
# a read's walk keys pending Exprs by their Template without building their Ops (tests:
# off walks the built Ops, as before)
PENDING = True


def _product_recipe(e) -> bool:
    """Whether e is pending, not an autograd node's output, with a matrix product in its
    Template (read() then walks the built Ops: whether it is held depends on the product's
    size; a node's output is a candidate whatever its op)."""
    if type(e) is not PendingExpr or e.recorded or e.data is not None:
        return False
    return any([op[0].name == "dot_general" for op in recipe(e)[0].ops])


def _concatenation(e) -> bool:
    """Whether pending e (not an autograd node's output) is a concatenation."""
    return HELD_CONCATENATIONS and any([op[0].name == "concatenate"
                                        for op in recipe(e)[0].ops])


def held(walk: Walk, candidates: list) -> list:
    """The candidates (pending Exprs of walk, not roots) that something outside the graph
    holds, to be computed and kept along with the read: autograd-node outputs (a node
    holds them: a backward() after `print(loss)` starts from them instead of redoing the
    forward) and results of large matrix products a Tensor the user named holds.

    A read computes its roots only; a value it passed through stays pending and is computed
    again by the next read that needs it. pytorch/tutorials' two_layer_net_tensor.py reads
    the loss after `h = x.mm(w1)` and uses h in its hand-written backward: without keeping
    h the next read redoes that product (3 products a step instead of 2). So are
    concatenations a Tensor holds: an autoregressive loop (`idx = torch.cat((idx, nxt), 1)`,
    reading only `idx[:, -block:]`, minGPT's and nanoGPT's generate) otherwise never computes
    idx, and every read computed the whole chain of cats since the start again (a program
    one cat longer per token: quadratic, and a compile per token that grows). A view nobody
    holds any more (`x.t()` inside `x.t().mm(g)`) is no longer computed and written out. A
    kept product is marked recorded, so settling it keeps its op: it may sit inside an
    autograd graph."""
    uses = Counter(chain.from_iterable([_operands(e) for e in walk.exprs
                                        if e.data is None]))
    _count_capture_refs(uses, candidates)
    # A probe referenced as an unheld candidate is (its name for walk.exprs' list, the
    # loop's list, the loop's name, the call's argument, a key in uses) gives the baseline
    # count, whatever the interpreter adds or borrows; a candidate above it after its uses
    # in the graph and step capture is held from outside.
    probe = _Probe()
    uses[probe] = 0
    kept, base = [], 0
    for e in [probe, *candidates]:
        refs = sys.getrefcount(e) - uses[e]
        if e is probe:
            base = refs + 1                  # candidates also sit in the candidates list
        elif refs > base:
            e.recorded = True
            kept.append(e)
    return kept


def _operands(e) -> tuple | list:
    """The Exprs e's op (or its pending recipe) holds references to."""
    if type(e) is PendingExpr:
        return recipe(e)[1]
    return e.args if e.op is not None else ()


class _Probe:
    __slots__ = ()


def _count_capture_refs(uses: Counter, candidates: list):
    """Adds to uses the references step capture keeps to the candidates among the results
    and operands of this cycle's and the last cycle's calls (tracer/step_tape.py State)."""
    # looked up, not imported: step_tape imports modules that import this one
    step_tape = sys.modules.get("tracer.step_tape")
    if step_tape is None:
        return
    s = step_tape.state()
    wanted = {id(e) for e in candidates}
    for exprs in (*map(step_tape.entry_exprs, s.outs), *map(step_tape.entry_exprs, s.prev_outs),
                  s.ext, s.prev_ext):
        for e in exprs:
            if id(e) in wanted:
                uses[e] += 1


def _macs(e) -> int:
    contract = e.op.params["contract"][0]
    shape = e.args[0].value.type.shape
    return e.value.type.size * math.prod(shape[a] for a in contract)


# the (roots, Walk, number of held values at the end of roots) of the last keyed read
# (step_capture)
_LAST = [None]


def last_walk(done) -> tuple | None:
    """(roots, Walk, n) of the read that returned done, when it was keyed: its roots are the
    values read, the pending in-place updates, then n held values computed along (held)."""
    last, _LAST[0] = _LAST[0], None
    return last if done is not None and last is not None and last[0] is done[0] else None


def plans() -> dict:
    """The kept programs, by walk key: (fn, positions of its inputs in the walk)."""
    return _PLANS


def recorded_pending(pending: list) -> list:
    """Outputs of autograd nodes (Expr.recorded) that computing `pending` goes through."""
    seen = {id(e) for e in pending}
    stack = [a for e in pending for a in e.args]
    out = []
    while stack:
        e = stack.pop()
        if id(e) in seen or e.data is not None or e.op is None:
            continue
        seen.add(id(e))
        if e.recorded and not e.symbolic:
            out.append(e)
        stack.extend(e.args)
        out += live_siblings(e, seen)            # an RNN scan's final state, say
    return out


def compute(pending: list, run) -> list:
    """The arrays of the pending Exprs: run(fn, arrays) of the program kept for their
    structure, or of the one cut now (and kept)."""
    return _run_walk(pending, describe(pending), run)


def _run_walk(pending: list, walk, run) -> list:
    plan = lookup(walk) if walk is not None else None
    if plan is not None:
        return run(*plan)
    fn, captures = build_function("realize", [], pending)
    for c in captures:
        if c.symbolic:
            raise TracerError("cannot compute a value that depends on a traced parameter")
    outs = run(fn, [c.data for c in captures])
    if walk is not None:
        store(walk, fn, captures)
    return outs


class Walk:
    __slots__ = ("key", "exprs", "index")

    def __init__(self, key, exprs, index):
        self.key = key
        self.exprs = exprs
        self.index = index


def describe(roots: list, pending: bool = False) -> Walk | None:
    """The structural key of computing roots (pending Exprs), or None if not keyable;
    pending: structure_key.walk's (a pending Expr's Ops are not built)."""
    try:
        exprs, index, parts = structure_key.walk(roots, False, _MAX_EXPRS, None, pending)
    except structure_key.Unkeyable:
        return None
    return Walk((parts, tuple([index[id(r)] for r in roots])), exprs, index)


def lookup(walk: Walk):
    """(fn, capture arrays) of a kept program for walk's structure, or None."""
    plan = _PLANS.get(walk.key)
    if plan is None:
        return None
    fn, positions = plan
    arrays = [walk.exprs[i].data for i in positions]
    if any(a is None for a in arrays):
        return None
    STATS["hits"] += 1
    return fn, arrays


def store(walk: Walk, fn, captures: list):
    if any(len(op.results) > 1 for op in fn.body):
        return          # which results of one op the walk reached is not in the key
    positions = [walk.index.get(id(c)) for c in captures]
    if any(p is None for p in positions):
        return
    if len(_PLANS) >= _PLANS_LIMIT:
        _PLANS.clear()
    _PLANS[walk.key] = (fn, positions)
    STATS["misses"] += 1


def clear():
    _PLANS.clear()
