"""Whole-step capture: a loop's step between two reads, recognised by its sequence of calls.

A hand-written loop (pytorch/tutorials' polynomial_tensor.py: ~30 ops on plain tensors, then
`loss.item()`) repeats the same user op calls between two reads. A *cycle* is what happens
between two reads (tensor.realize with something pending): a sequence of *events*, one per
memoised user op (record._memoised): the call's op-memo key (op_memo.key_of: the function,
its Tensor types and sharing, its plain Python values) and where each Tensor operand comes
from, as a code:

  - 2*(16*j + r): result r of event j of this cycle;
  - 2*(16*j + r) + 1: result r of event j of the previous cycle;
  - -(2*m + 1): the m-th other Tensor value of this cycle (it must hold data: a leaf);
  - -(2*m + 2): the m-th such value of the previous cycle.

When two consecutive cycles have the same events and end in a read of the same codes (the
read's values plus the pending in-place updates, tensor.updated_pending), and that read was
keyed by realize_plans (one program for the structure, no autograd outputs along), the
cycle is kept as a *tape*: its events with their op templates, the read's root codes, the
read's program, and where that program's inputs come from (codes of Exprs holding data).
Then, while cycles match the tape:

  - a call whose (key, codes) equals the tape's next event replays the tape's template (no
    op-memo dict lookup), skips the autograd hook (no operand requires grad), and notes
    its results;
  - the read at the end runs the tape's program on the arrays found by code, with no walk
    of the pending graph (realize_plans' walk was most of a read).

Why a matching cycle has the read's structure: every pending Expr the learning read's walk
reached was a result of an event of that cycle or the one before (checked then), and every
other operand held data. Events build their results from their operands exactly as the
template says, so the same events over the same codes, after a previous cycle that also
matched (its read settled the same Exprs), give the same graph with the same Exprs holding
data. Every Tensor and Expr is still built as without the tape, so nothing else changes.

Anything else ends the tape (the call or read then takes the general path, with the same
results; `GRADJIT_LOG=1` says why) and learning starts again: a call that is not the next
event (another op, a changed Python scalar, shape or dtype, an operand from elsewhere, a
pending operand not made by the cycle), an op that is not memoised, a primitive recorded
outside a user op (an in-place op on a view), an operand that requires grad or a view op,
an op inside a functional trace, an exception inside an op, a read of other values, a read
before the step's end. `ENABLED = False` (then `reset()`) turns it off.
"""
from __future__ import annotations

import sys
import threading

from ir.core import TensorType
from runtime import log, logging_enabled
from tracer import captures, op_memo, realize_plans, structure_key
from tracer.dtypes import default_float
from tracer.expr import _int_tree
from tracer import tensor as _tensor_module
from tracer.tensor import Tensor

ENABLED = True          # tests and comparisons turn it off (then call reset())
VERIFY = False          # tests: each read from a tape also walks, and checks it agrees
# tapes kept, calls that followed a tape, reads run from a tape, tapes broken
STATS = {"tapes": 0, "calls": 0, "reads": 0, "breaks": 0}
_MAX_RESULTS = 16
MISS = object()
_MAX_PIN_EXPRS = 4096
_MAX_EVENTS = 4096


class Tape:
    """A captured cycle: its events, their templates, and the read at its end."""
    __slots__ = ("events", "templates", "checks", "specs", "roots", "root_checks", "fn",
                 "captures", "pins", "pin_parts", "guards")

    def __init__(self, events, templates, names, roots, fn, captures, pins, pin_parts):
        self.events = events            # (op-memo key, operand codes, positional count)
        self.templates = templates      # op_memo.Template per call
        self.guards = tuple([op_memo.GUARDS.get(n) for n in names])   # checks of data
        self.checks = tuple([tuple([_check(c, t) for c, t in zip(codes, _types(key))])
                             for key, codes, _ in events])
        self.specs = tuple([_specs(key, n) for key, _, n in events])
        self.roots = roots              # codes of the read's roots, in the read's order
        self.root_checks = tuple([_check(c, None) for c in roots])
        self.fn = fn                    # the read's program
        self.captures = captures        # codes of the program's inputs (Exprs holding data)
        self.pins = pins                # m -> the pending Expr made before the step
        self.pin_parts = pin_parts      # the structure behind the pins (structure_key)


# how a call following the tape checks an operand, by the code's kind (see _follow)
_CUR, _PREV, _EXT, _NEW, _PREV_EXT, _PIN = range(6)


def _types(key: tuple) -> list:
    """The types of a call's Tensor arguments, in order, from its op-memo key."""
    return [p[0] for p in key[2:] if type(p) is tuple and type(p[0]) is TensorType]


def _check(code, type_) -> tuple:
    if type(code) is tuple:             # an operand's first use in the cycle
        if code[0] == "new":            # (the only kind not checked by identity)
            return _NEW, type_
        return {"x": _PREV_EXT, "pin": _PIN}[code[0]], code[1]
    if code >= 0:
        j, r = divmod(code >> 1, 16)
        return (_PREV if code & 1 else _CUR, j, r)
    return (_EXT, (-code - 1) // 2)     # (only odd negative codes: this cycle's)


# how a call following the tape checks a plain argument (see follow)
_TENSOR, _FLOAT, _PLAIN, _TUPLE = range(4)


def _specs(key: tuple, nargs: int):
    """Per positional argument, what follow() checks (the key's parts, one per argument:
    op_memo.key_of); None for a call with keywords (follow() compares its key instead)."""
    parts = key[2:]
    if len(parts) != nargs:
        return None
    out = []
    for p in parts:
        if type(p) is str:
            out.append((_FLOAT, p))
        elif p[0] == "tuple":
            out.append((_TUPLE, p[1]))
        elif isinstance(p[0], type):
            out.append((_PLAIN, p[0], p[1]))
        else:
            out.append((_TENSOR,))
    return tuple(out)


class _State:
    __slots__ = ("events", "templates", "names", "outs", "ext", "ids", "inner", "clean", "pending",
                 "prev_outs", "prev_ext", "prev_sig", "prev_inner", "tape", "pos")

    def __init__(self):
        # the cycle under way: events/templates while learning (None while following the
        # tape); per event its result Exprs; operands not made by events (first use
        # order); id(Expr) -> code (learning only); ids of pending values inside templates
        self.events, self.templates, self.names, self.outs, self.ext = [], [], [], [], []
        self.ids, self.inner = {}, set()
        self.clean = True               # nothing outside the events happened in this cycle
        self.pending = None             # (key, codes, template) of the call under way
        self.prev_outs, self.prev_ext, self.prev_inner = (), (), frozenset()
        self.prev_sig = None            # (events, root codes): it was clean, its read keyed
        self.tape = None                # the tape being followed, and the position in it
        self.pos = 0


_tls = threading.local()


def _state() -> _State:
    s = getattr(_tls, "s", None)
    if s is None:
        s = _tls.s = _State()
    return s


def before(name: str, key, tensors: list, nargs: int):
    """A memoised call (no operand requiring grad, not a view op; positional arguments:
    nargs) with op-memo key `key` is about to run, not following a tape: noted for
    learning (after() adds its results)."""
    s = _state()
    if s.events is None:
        return
    if not s.clean:                      # a spoiled cycle: nothing is noted (or kept alive)
        return
    ids = s.ids
    codes = []
    for t in tensors:
        e = t._expr
        c = ids.get(id(e))
        if c is None or (type(c) is int and c < 0 and not c & 1):
            # an operand no event made, first used here: new, the last cycle's, or pending
            # (made before the step: y = sin(x) above the loop); later uses: -(2m + 1)
            m = len(s.ext)
            if c is not None:
                c = ("x", -c // 2 - 1, m)
            elif e.symbolic:
                spoil("a symbolic operand")
                return
            else:
                c = ("new", m) if e.data is not None else ("pin", m)
            ids[id(e)] = -(2 * m + 1)
            s.ext.append(e)
        codes.append(c)
    s.pending = (key, tuple(codes), nargs, name)


def follow(name: str, fn, args: tuple, kwargs: dict, loc):
    """The result of a memoised user op call that is the tape's next event (its template
    replayed; the caller skips the hooks: no operand requires grad), else MISS (the call
    takes the general path; a call that does not match ends the tape)."""
    s = _state()
    if s.events is not None:
        return MISS
    tape, pos = s.tape, s.pos
    if pos >= len(tape.events):
        return _drop("more calls than the captured step")
    key = tape.events[pos][0]
    specs = tape.specs[pos]
    if key[0] is not fn or key[1] != default_float() or captures.active():
        return _drop(f"call {pos + 1} of the step is another op than the captured one")
    if specs is None or kwargs or len(args) != len(specs):
        keyed = op_memo.key_of(fn, args, kwargs)
        if keyed is None or keyed[0] != key:
            return _drop(f"call {pos + 1} of the step has other arguments than captured")
        tensors = keyed[1]
    else:
        tensors = []
        for a, spec in zip(args, specs):
            kind = spec[0]
            if kind == _TENSOR:
                if not isinstance(a, Tensor):
                    return _drop(f"call {pos + 1}: an argument is not a Tensor any more")
                tensors.append(a)
            elif kind == _FLOAT:
                if type(a) is not float or a.hex() != spec[1]:
                    return _drop(f"call {pos + 1}: a Python float changed")
            elif kind == _PLAIN:
                if type(a) is not spec[1] or a != spec[2]:
                    return _drop(f"call {pos + 1}: a plain Python argument changed")
            elif type(a) is not tuple or a != spec[1] or not _int_tree(a):
                return _drop(f"call {pos + 1}: a tuple argument changed")
    if not _operands_ok(s, tape, pos, tensors):
        return _drop(f"call {pos + 1}: an operand comes from elsewhere than in the captured "
                     "step, or requires grad")
    guard = tape.guards[pos]
    if guard is not None:
        try:
            guard(args, kwargs)
        except BaseException:
            _drop(f"{name} raised")
            raise
    result = tape.templates[pos].replay(tensors, loc)
    s.outs.append((result._expr,) if type(result) is not tuple else
                  tuple([t._expr for t in result]))
    s.pos = pos + 1
    STATS["calls"] += 1
    return result


def _operands_ok(s: _State, tape: Tape, pos: int, tensors: list) -> bool:
    ext = s.ext
    for t, check in zip(tensors, tape.checks[pos]):
        if t._requires_grad or t._grad_fn is not None:
            return False                 # (requires_grad set on a result that holds data)
        e = t._expr
        kind = check[0]
        if kind == _CUR:
            if e is not s.outs[check[1]][check[2]]:
                return False
            continue
        if kind == _PREV:
            if e is not s.prev_outs[check[1]][check[2]]:
                return False
            continue
        if kind == _EXT:
            if e is not ext[check[1]]:
                return False
            continue
        if kind == _NEW:
            ok = e.data is not None and e.value.type == check[1]
        elif kind == _PREV_EXT:
            ok = e is s.prev_ext[check[1]]
        else:
            ok = e is tape.pins[check[1]]
        if not ok:
            return False
        ext.append(e)
    return True


def after(template, result):
    """The call announced by before() returned result, built from template (None: the call
    was not replayed from a template: the cycle cannot be captured)."""
    s = _state()
    pending = s.pending
    if pending is None:
        return
    s.pending = None
    made = result if type(result) is tuple else (result,)
    if len(made) > _MAX_RESULTS:
        spoil("an op with too many results")
        return
    exprs = tuple([t._expr for t in made])
    j = len(s.outs)
    if j >= _MAX_EVENTS:                 # a loop that never reads: keep nothing alive
        spoil("more calls than a step may hold without a read")
        s.outs = []
        return
    s.outs.append(exprs)
    if template is None:
        spoil("an op ran its body (no template)")
        return
    ids = s.ids
    for r, e in enumerate(exprs):
        ids.setdefault(id(e), 2 * (16 * j + r))
    s.events.append(pending[:3])
    s.templates.append(template)
    s.names.append(pending[3])
    inner = s.inner                      # the template's own pending values, for _learn
    stack = list(exprs)
    while stack:
        for a in stack.pop().args:
            if a.data is None and id(a) not in ids and id(a) not in inner:
                inner.add(id(a))
                stack.append(a)


def spoil(reason: str):
    """Something outside the events happened: this cycle is not a step of the tape."""
    s = _state()
    s.pending = None
    if s.tape is not None:
        _drop(reason)
    if s.clean:
        s.clean = False
        s.outs, s.ext = [], []           # (a step with a backward: its results may hold data)
    return None


def _drop(reason: str):
    s = _state()
    s.tape = None
    s.pending = None
    STATS["breaks"] += 1
    if s.events is None:                 # following the tape: this cycle is not learnable
        s.events, s.templates, s.names = [], [], []
        s.clean = False
        s.outs, s.ext = [], []
    if logging_enabled():
        log.info(f"step capture off (back to per-op recording and a keyed read): {reason}")
    return MISS


def fast_read(pending: list, updated):
    """(roots, the tape's program, its input arrays found by code) when this read ends a
    cycle that followed the tape, else None (the caller reads as usual, then end_read)."""
    s = _state()
    tape = s.tape
    if tape is None or s.events is None and s.pos != len(tape.events):
        if tape is not None:
            _drop("a read before the end of the captured step")
        return None
    roots = pending + updated(pending) if updated is not None else pending
    if len(roots) != len(tape.roots) or not all(
            _is(s, e, check) for e, check in zip(roots, tape.root_checks)):
        _drop("the read is of other values than the captured step's")
        return None
    pin_exprs = ()
    if tape.pins:
        pin_exprs, parts = _pin_walk(tape.pins)
        if parts != tape.pin_parts:
            _drop("a value computed before the step changed (read, or computed along)")
            return None
    arrays = [_data(s, c, pin_exprs) for c in tape.captures]
    if any(a is None for a in arrays):
        _drop("an input of the captured read holds no data")
        return None
    if VERIFY:
        _verify(tape, roots, arrays)
    STATS["reads"] += 1
    return roots, tape.fn, arrays


def _verify(tape: Tape, roots: list, arrays: list):
    """Tests: the general path's walk would run the same program on the same arrays."""
    walk = realize_plans.describe(roots)
    plan = realize_plans.plans().get(walk.key) if walk is not None else None
    assert plan is not None and plan[0] is tape.fn, "the read's structure differs"
    assert all(walk.exprs[i].data is a for i, a in zip(plan[1], arrays)), "other inputs"


def _is(s: _State, e, check) -> bool:
    """Whether e is the result a read root's check names (a root is an event's result)."""
    kind, j, r = check
    outs = s.outs if kind == _CUR else s.prev_outs
    return j < len(outs) and r < len(outs[j]) and outs[j][r] is e


def _pin_walk(pins: dict):
    """(Exprs, parts) of structure_key.walk behind the pinned Exprs (None: not keyable)."""
    try:
        exprs, _, parts = structure_key.walk(list(pins.values()), False, _MAX_PIN_EXPRS)
    except structure_key.Unkeyable:
        return (), None
    return exprs, parts


def _data(s: _State, code, pin_exprs):
    if type(code) is tuple:              # ("walk", i): a leaf behind the pinned Exprs
        return pin_exprs[code[1]].data
    if code >= 0:
        j, r = divmod(code >> 1, 16)
        outs = s.prev_outs if code & 1 else s.outs
        return outs[j][r].data if j < len(outs) and r < len(outs[j]) else None
    m, prev = divmod(-code - 1, 2)
    ext = s.prev_ext if prev else s.ext
    return ext[m].data if m < len(ext) else None


def end_read(walked, plans):
    """A read ended the cycle (before its results are stored). walked: (roots, realize_plans
    Walk) of a keyed read with nothing along, or None; plans: realize_plans' programs."""
    s = _state()
    sig = None
    if s.events is None:
        sig = s.prev_sig                 # followed the tape: the same cycle again
    elif s.clean and walked is not None:
        sig = _learn(s, walked, plans)
    _next_cycle(s, sig)


def _learn(s: _State, walked, plans: dict):
    """The cycle's signature, keeping it as the tape when the previous cycle's was equal."""
    roots, walk = walked
    ids = s.ids
    root_codes = tuple([ids.get(id(e)) for e in roots])
    if None in root_codes or any(type(c) is not int or c < 0 for c in root_codes):
        return None
    pins = {c[1]: s.ext[c[1]] for codes in [c for _, c, _ in s.events] for c in codes
            if type(c) is tuple and c[0] == "pin"}
    pin_exprs, pin_parts = _pin_walk(pins) if pins else ((), ())
    if pin_parts is None:
        return None
    pin_index = {id(e): i for i, e in enumerate(pin_exprs)}
    for e in walk.exprs:
        i = id(e)
        if e.data is None and i not in ids and i not in pin_index and i not in s.inner \
                and i not in s.prev_inner:
            return None                  # a pending value not made by this cycle or the last
    plan = plans.get(walk.key)
    if plan is None:
        return None
    fn, positions = plan
    captures = []
    for i in positions:
        e = walk.exprs[i]
        c = ids.get(id(e))
        if c is None or e.data is None:
            if id(e) not in pin_index:
                return None
            c = ("walk", pin_index[id(e)])
        captures.append(c)
    sig = (tuple(s.events), root_codes)
    if sig == s.prev_sig:
        s.tape = Tape(sig[0], tuple(s.templates), tuple(s.names), root_codes, fn,
                      tuple(captures), pins, pin_parts)
        STATS["tapes"] += 1
        if logging_enabled():
            log.info(f"step capture: a step of {len(sig[0])} calls repeats; its calls follow "
                     "the captured step and its read runs one kept program")
    return sig


def _next_cycle(s: _State, sig):
    s.prev_outs, s.prev_ext, s.prev_sig = s.outs, s.ext, sig
    s.prev_inner = s.inner
    s.outs, s.ext, s.pending, s.inner = [], [], None, set()
    s.clean = True
    s.pos = 0
    if s.tape is not None:
        s.events = s.templates = s.names = None
        return
    s.events, s.templates, s.names = [], [], []
    ids = s.ids = {}
    for m, e in enumerate(s.prev_ext):
        if e.data is not None:           # (a pending one is pinned again when used)
            ids[id(e)] = -(2 * m + 2)
    for j, exprs in enumerate(s.prev_outs):
        for r, e in enumerate(exprs):
            ids[id(e)] = 2 * (16 * j + r) + 1


def reset():
    """Forgets the tape and the cycles seen (tests)."""
    _tls.s = _State()


_tensor_module.step_capture = sys.modules[__name__]     # tensor.realize's reads
