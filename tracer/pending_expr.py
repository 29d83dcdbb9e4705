"""Pending Exprs: a followed step's results, whose Ops are built only when something reads them.

A call that follows a captured step (tracer/step_follow.py) knows its op template and its
operands; the read at the step's end runs the kept program on the arrays and never looks at
the Ops in between. So the call returns Tensors on *pending* Exprs: the Expr's value (its
type) is real, its `op` and `args` are filled in from the template on first use. Any reader
of `op` or `args` (build_function, the structural walks, views, autograd, alias_expr,
captures, printing, a mismatch that drops the tape and walks the graph) gets exactly the
Ops and Exprs Template.replay would have built, made then by `materialise`: PendingExpr's
`op`/`args` are properties that call it, and it turns the Expr into a plain Expr (its class
changes: same slots), so a materialised Expr costs nothing more to read than any other.

Storing a value (expr.settle: `e.op = None`) drops the recipe without building it: the
read at the end of a followed step settles its results that way.
"""
from __future__ import annotations

import threading
import weakref

from ir import Op, Value
from tracer.expr import Expr, settle as settle_expr

# the slots' own descriptors: the recipe lives in the `args` slot until materialised
_OP = Expr.__dict__["op"]
_ARGS = Expr.__dict__["args"]
_new = object.__new__
# calls materialised (tests: a followed step materialises nothing)
STATS = {"materialised": 0}
# Pending values are built (here) and computed (tensor.realize) by one thread at a time: a
# second thread reading the same value (or a sibling) meanwhile waits, then finds it built
# or computed, never half set. Re-entrant: a realisation materialises what it walks. Only
# pending values take it: a plain Expr's read is one type check, a computed one's a test.
LOCK = threading.RLock()
# A pending Expr's recipe, in its `args` slot: (template, slot, location, *operand Exprs)
# for a call's one new result (slot: its template slot), else (template, operand Exprs,
# location, ((slot, weakref to the Expr), ...)). NOTE: a tuple, not a class: no __init__
# call per followed op; the operands inline: one tuple made and freed per result, not two


def _get_op(e):
    materialise(e)
    return _OP.__get__(e)


def _set_op(e, op):
    if op is None:                           # settle: the value is known, forget the recipe
        _OP.__set__(e, None)
        _ARGS.__set__(e, ())
        e.__class__ = Expr
    else:
        materialise(e)
        _OP.__set__(e, op)


def _get_args(e):
    materialise(e)
    return _ARGS.__get__(e)


def _set_args(e, args):
    materialise(e)
    _ARGS.__set__(e, args)


class PendingExpr(Expr):
    """An Expr whose op and args are built from its Call when first read (see module doc)."""
    __slots__ = ()
    op = property(_get_op, _set_op)
    args = property(_get_args, _set_args)

    def __init__(self, value: Value, recipe: tuple):
        self.value = value
        _ARGS.__set__(self, recipe)
        self.data = None
        self.symbolic = False
        self.recorded = False

    def __reduce_ex__(self, protocol):
        materialise(self)                    # (copy/pickle: a plain Expr from here on)
        return self.__reduce_ex__(protocol)


def recipe(e: PendingExpr) -> tuple:
    """e's (Template, operand Exprs, location, outs), read without building its Ops; outs
    is e's slot (an int) for a call's one new result, stored as (Template, slot, location,
    *operands)."""
    r = _ARGS.__get__(e)
    if type(r[1]) is int:
        return r[0], r[3:], r[2], r[1]
    return r


def still_pending(outs) -> dict:
    """slot -> result for the results of ((slot, weakref), ...) that are alive and pending."""
    wanted = {}
    for slot, ref in outs:
        x = ref()
        if type(x) is PendingExpr:
            wanted[slot] = x
    return wanted


def materialise(e: Expr):
    """Builds the Ops and Exprs of e's call, as Template.replay does, giving the call's live
    pending results their op and args (each becomes a plain Expr)."""
    if type(e) is not PendingExpr:
        return
    with LOCK:
        if type(e) is PendingExpr:          # (not built by another thread meanwhile)
            _build(e)


def _build(e: PendingExpr):
    recipe = _ARGS.__get__(e)
    template, slots, loc = recipe[0], recipe[1], recipe[2]
    STATS["materialised"] += 1
    if type(slots) is int:                   # one new result (slots: its slot)
        wanted = {slots: e}
        slots = list(recipe[3:])
    elif loc is False:  # a whole Function's results (fn_replay.FunctionReplay.pending)
        template.materialise_pending(slots, recipe[3])
        return
    else:
        wanted = still_pending(recipe[3])
        slots = list(slots)
    for prim, refs, params, types, frozen in template.ops:
        n = len(slots)
        slots.extend(build_op(prim, tuple([slots[r] for r in refs]), params, types, frozen,
                              loc, [wanted.get(n + k) for k in range(len(types))]))


def build_op(prim, args: tuple, params: dict, types, frozen, loc, mine: list) -> list:
    """One op of a recipe built on args: its result Exprs, where mine (per result: a
    pending Expr waiting for this op, or None) gives the pending ones their op and args
    (they become plain Exprs); the others are new."""
    values = tuple([Value(t) if p is None else p.value for p, t in zip(mine, types)])
    op = Op(prim, tuple([a.value for a in args]), values, dict(params), (), loc)
    op.frozen = frozen
    made = []
    for p, v in zip(mine, values):
        if p is None:
            p = Expr(v, op, args)
        else:
            _OP.__set__(p, op)
            _ARGS.__set__(p, args)
            p.__class__ = Expr
        made.append(p)
    if len(types) > 1:                       # as expr.apply_op: live siblings
        op.exprs = [weakref.ref(x) for x in made]
    return made


def out_types(template, nargs: int) -> tuple:
    """Per result of template (called with nargs Tensors): ("arg", i) or ("new", slot,
    TensorType), what replay() needs to make a pending result without building the Ops."""
    types = []
    for _, _, _, ts, _ in template.ops:
        types.extend(ts)
    return tuple([("arg", i) if kind == "arg" else ("new", i, types[i - nargs])
                  for kind, i in template.outputs])


def replay(template, outs: tuple, ins: list, tensors: list, loc, tensor_cls):
    """Template.replay's results, on pending Exprs (outs: out_types of the template; ins:
    the Exprs of the Tensor arguments `tensors`)."""
    if template.single:
        spec = outs[0]
        if spec[0] == "arg":
            return tensors[spec[1]]
        # NOTE: PendingExpr.__init__ inline (one Python call less per recorded op)
        e = _new(PendingExpr)
        e.value = v = _new(Value)            # (Value.__init__ without the call: name_hint
        v.type = spec[2]                     # is the class default, None)
        _ARGS.__set__(e, (template, spec[1], loc, *ins))
        e.data = None
        e.symbolic = e.recorded = False
        return tensor_cls(e)
    made, refs, by_slot = [], [], {}
    recipe = (template, ins, loc, refs)
    for spec in outs:
        if spec[0] == "arg":
            made.append(tensors[spec[1]])
            continue
        e = by_slot.get(spec[1])
        if e is None:                        # (a result returned twice: one Expr)
            e = by_slot[spec[1]] = PendingExpr(Value(spec[2]), recipe)
            refs.append((spec[1], weakref.ref(e)))
        made.append(tensor_cls(e))
    return tuple(made)


def settle(e: Expr, array):
    """expr.settle(e, array); a pending e that is not recorded (a followed step's result)
    becomes a plain data leaf at once, without the `op` property's setter (~0.5 us less per
    value a read stores: the read of polynomial_tensor.py's step stores five)."""
    if type(e) is PendingExpr and not e.recorded:
        e.__class__ = Expr
        _OP.__set__(e, None)
        _ARGS.__set__(e, ())
        e.data = array
    else:
        settle_expr(e, array)


def bare_constant(e: Expr) -> bool:
    """Whether e is a pending constant with no operands (`zero_()`'s result), read without
    materialising a pending e: such a value costs nothing to leave pending (it has no
    history to cut), and a program that reads it folds it, where an array of it would be
    written out and read back (tensor.updated_pending)."""
    if type(e) is PendingExpr:
        template = _ARGS.__get__(e)[0]
        ops = template.ops
        return len(ops) == 1 and not ops[0][1] and _name(ops[0][0]) == "constant"
    if e.args:                               # (the common case: one slot read)
        return False
    op = e.op
    return op is not None and op.prim.name == "constant"


def _name(prim) -> str:
    return prim if type(prim) is str else prim.name
