"""Whole-step capture's shared parts: the captured step (Tape), the per-thread state, and
ending a tape. tracer/step_capture.py learns tapes and reads from them; step_follow.py checks
a call against the tape's next event."""
from __future__ import annotations

import threading

from ir.core import TensorType
from runtime import log, logging_enabled
from tracer import op_memo, pending_expr

# tapes kept, calls that followed a tape, reads run from a tape, tapes broken
# (pinned: reads whose program took the values pinned before the loop as inputs)
STATS = {"tapes": 0, "calls": 0, "reads": 0, "breaks": 0, "pinned": 0}
MISS = object()

# how a call following the tape checks an operand, by its code's kind (step_capture's doc)
CUR, PREV, EXT, NEW, PREV_EXT, PIN = range(6)
# how it checks a plain positional argument
TENSOR, FLOAT, PLAIN, TUPLE = range(4)
# set when tracer/autograd/views.py is imported (it imports modules that import this one):
# the view ops, whose results join their base's storage (mark_views, run by a followed call
# as the autograd hook runs it on the general path)
VIEW_OPS: frozenset = frozenset()
mark_views = None
# set when tracer/step_follow_code.py is imported (it imports this module); WRITE: tests
# compare with the generic check alone
write_follow = None
WRITE = True
# reads from a tape before its events' Python is written (Tape.count_read): a tape that
# ends soon costs no writing (the first time a loop's events are compiled: ~4-8 ms CPU for
# polynomial_tensor's 30, which save ~10-12 us a step; a tape formed again: ~0.2 ms).
# Tests set 0
WRITE_AFTER = 8


class Tape:
    """A captured cycle: its events, their templates, and the read at its end."""
    __slots__ = ("events", "templates", "steps", "roots", "held", "root_checks", "fn",
                 "captures", "pins", "pin_exprs", "pin_pending", "sites", "exe",
                 "pinned", "fast", "unwritten", "read_code", "read_key")

    def __init__(self, events, templates, names, roots, held, fn, captures, pins, pin_exprs):
        self.events = events            # (op-memo key, operand codes, positional count)
        self.templates = templates      # op_memo.Template per call
        # per event, what step_follow.follow checks and replays (one tuple: one index)
        self.steps = tuple([_step(ev, t, n) for ev, t, n in zip(events, templates, names)])
        self.roots = roots              # codes of the read's roots, in the read's order
        self.held = held                # how many of them (at the end) were held values
        self.root_checks = tuple([_check(c, None) for c in roots])
        self.fn = fn                    # the read's program
        self.captures = captures        # codes of the program's inputs (Exprs holding data)
        self.pins = pins                # m -> the pending Expr made before the step
        # the Exprs of structure_key.walk behind the pins, and which of them were pending
        self.pin_exprs = tuple(pin_exprs)
        self.pin_pending = tuple([e.data is None for e in pin_exprs])
        # per event, the user's call site last seen (errors.user_site), for step_follow
        self.sites = [None] * len(events)
        self.exe = None                 # the read's step_read.KeptRead, once run
        # the read with the pinned values as inputs (step_capture._pin_program), or None
        self.pinned = None
        # per event, Python written for it (step_follow_code.write) or None: follow's first
        # try; written after WRITE_AFTER reads from the tape (count_read)
        self.fast = (None,) * len(events)
        self.unwritten = WRITE_AFTER if WRITE else -1
        # the read's Python (step_read_code.consider) and the state it was written for
        # ((tape.pinned, whether its values wait), or None: not written)
        self.read_code = None
        self.read_key = None
        if self.unwritten == 0:
            self.write()

    def count_read(self):
        """A read from the tape ended a followed cycle (step_capture.end_read)."""
        if self.unwritten > 0:
            self.unwritten -= 1
            if self.unwritten == 0:
                self.write()

    def write(self):
        """Each event's Python (step_follow_code.write), from now on follow's first try."""
        counts = self.counts()
        self.fast = tuple([write_follow(i, step, self.sites, self.pins, counts)
                           for i, step in enumerate(self.steps)])
        self.unwritten = -1


    def counts(self) -> tuple:
        """Per event, how many results it has (State.outs keeps one bare: entry)."""
        return tuple([len(step[7]) for step in self.steps])


def _step(event, template, name: str) -> tuple:
    """(fn, default float, key, per-argument specs or None, operand checks, guard, template,
    its results' types for pending_expr.replay, (type, slot) of its one new result or None,
    name, whether it is a view op) of one event."""
    key, codes, nargs = event
    types = _types(key)
    checks = tuple([_check(c, t) for c, t in zip(codes, types)])
    outs = pending_expr.out_types(template, len(types))
    view = name in VIEW_OPS
    one = (outs[0][2], outs[0][1]) if template.single and outs[0][0] == "new" else None
    return (key[0], key[1], key, _specs(key, nargs, checks), checks, op_memo.GUARDS.get(name),
            template, outs, one, name, view)


def _types(key: tuple) -> list:
    """The types of a call's Tensor arguments, in order, from its op-memo key."""
    return [p[0] for p in key[2:] if type(p) is tuple and type(p[0]) is TensorType]


def _check(code, type_) -> tuple:
    if type(code) is tuple:             # an operand's first use in the cycle
        if code[0] == "new":            # (the only kind not checked by identity)
            return NEW, type_
        return {"x": PREV_EXT, "pin": PIN}[code[0]], code[1]
    if code >= 0:
        j, r = divmod(code >> 1, 16)
        return (PREV if code & 1 else CUR, j, r)
    return (EXT, (-code - 1) // 2)      # (only odd negative codes: this cycle's)


def _specs(key: tuple, nargs: int, checks: tuple):
    """Per positional argument, what follow() checks (the key's parts, one per argument:
    op_memo.key_of; a Tensor's with its operand check); None for a call with keywords
    (follow() compares its key instead)."""
    parts = key[2:]
    if len(parts) != nargs:
        return None
    out = []
    tensor = 0
    for p in parts:
        if type(p) is str:
            out.append((FLOAT, p, float.fromhex(p)))
        elif p[0] == "tuple":
            out.append((TUPLE, p[1]))
        elif isinstance(p[0], type):
            out.append((PLAIN, p[0], p[1]))
        else:
            out.append((TENSOR, checks[tensor]))
            tensor += 1
    return tuple(out)


def result_at(outs, j: int, r: int):
    """Result r of event j in a cycle's outs (State.outs): an event's one result is kept
    bare, several in a tuple (one tuple less made and freed per followed call). IndexError
    when there is no such result."""
    x = outs[j]
    if type(x) is tuple:
        return x[r]
    if r:
        raise IndexError(r)
    return x


def entry(exprs: tuple):
    """What State.outs keeps for an event with these result Exprs (result_at reads it)."""
    return exprs[0] if len(exprs) == 1 else exprs


def entry_exprs(x) -> tuple:
    """The result Exprs of one State.outs entry."""
    return x if type(x) is tuple else (x,)


class State:
    __slots__ = ("events", "templates", "names", "outs", "ext", "ids", "inner", "clean", "pending",
                 "prev_outs", "prev_ext", "prev_sig", "prev_inner", "tape", "pos", "spoiled")

    def __init__(self):
        # the cycle under way: events/templates while learning (None while following the
        # tape); per event its result Exprs (entry(): one bare, several in a tuple);
        # operands not made by events (first use order); id(Expr) -> code (learning
        # only); ids of pending values inside templates
        self.events, self.templates, self.names, self.outs, self.ext = [], [], [], [], []
        self.ids, self.inner = {}, set()
        self.clean = True               # nothing outside the events happened in this cycle
        self.pending = None             # (key, codes, template) of the call under way
        self.prev_outs, self.prev_ext, self.prev_inner = (), (), frozenset()
        self.prev_sig = None            # (events, root codes): it was clean, its read keyed
        self.tape = None                # the tape being followed, and the position in it
        self.pos = 0
        self.spoiled = None             # the last reason a cycle could not be learnt (logged)


class _Local(threading.local):
    s = None                            # (a class default: no AttributeError per call)


tls = _Local()


def state() -> State:
    s = tls.s
    if s is None:
        s = tls.s = State()
    return s


def drop(reason: str):
    """Ends the tape being followed (the call or read takes the general path)."""
    s = state()
    s.tape = None
    s.pending = None
    STATS["breaks"] += 1
    if s.events is None:                 # following the tape: this cycle is not learnable
        STATS["calls"] += s.pos
        s.events, s.templates, s.names = [], [], []
        s.clean = False
        s.outs, s.ext = [], []
    if logging_enabled():
        log.info(f"step capture off (back to per-op recording and a keyed read): {reason}")
    return MISS
