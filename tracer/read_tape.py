"""A read keyed by the sequence of op calls since the last read (no walk of the graph).

A loop of hand-written updates (pytorch/tutorials' polynomial_tensor.py: ~30 ops, then
`loss.item()`) makes the same calls between two reads at every step. The op memo
(tracer/op_memo.py) already replays each call from its template; here the calls between
two reads are noted as a tape: per call, its template and where each Tensor argument comes
from (a value an earlier call of this tape made, or an *outside* value that holds data).
The tape's state (one int, interned per (state, template, sources)) then fixes the
structure of every value the tape made: a read of such values (and of the pending in-place
updates) is keyed by the state and the positions read, and reruns the program kept for
that key, bound to the outside values' arrays, without walking the graph
(tracer/realize_plans.py's structural key, which it replaces here).

The tape is *broken* (the read walks the graph as before, with the same results) by:
  - an op that is not replayed from a template (its body runs: an op outside
    op_memo.OPS, a refused key, inside a functional trace), or any primitive recorded
    outside a template (views' in-place propagation, creation ops on pending values);
  - an argument that is pending but not made by this tape (made before the last read, or
    by an autograd function): see `wanted`, below;
  - a value of the tape that holds data or is an autograd-node output at the read;
  - a read of a pending value that the tape did not make; over MAX_CALLS calls.
The next read after a broken tape starts a new one.

A value made before the last read and used after it (polynomial_tensor.py's `y_pred`:
read through `loss`, used again by the gradient after the read) would break every tape.
So a broken tape notes which values of the previous tape it needed (`wanted`); the next
read with the previous tape's key computes them too (a few more outputs of its program),
so from then on they hold data and the tape after it stays whole.

GRADJIT_LOG=1 logs why a tape broke (`read tape off for this read: <reason>`) and each
new key (`read tape: new sequence`). STATS counts hits, misses and fallbacks.
"""
from __future__ import annotations

import threading

from runtime import log, logging_enabled
from tracer import realize_plans
from tracer.expr import build_function

MAX_CALLS = 512
_LIMIT = 65536
# (state, template, sources) -> next state; state 0 is the empty tape
_NEXT: dict = {}
# (state, roots) -> (Function, outside positions of its captures)
_PLANS: dict = {}
# (state, roots) -> positions of values the next tape needed (computed along from now on)
_WANTED: dict = {}
STATS = {"hits": 0, "misses": 0, "fallbacks": 0}
# bumped by clear(): a tape begun before (another thread's) holds states that mean nothing
_GENERATION = [0]
# why the last read did not use the tape (None: it did)
LAST = {"reason": None}


class _Tape:
    __slots__ = ("state", "made", "where", "outside", "broken", "previous", "generation")

    def __init__(self, previous=None):
        self.generation = _GENERATION[0]    # states of an older generation mean nothing
        self.state = 0
        self.made = []              # Exprs the tape's calls made, by position
        self.where = {}             # id(Expr) -> position in made, or -1 - index in outside
        self.outside = []           # outside values (hold data), by first use
        self.broken = None          # why the tape broke, or None
        self.previous = previous    # (key, where, made) of the tape read last


_local = threading.local()


def _tape() -> _Tape:
    tape = getattr(_local, "tape", None)
    if tape is None:
        tape = _local.tape = _Tape()
    return tape


def whole() -> bool:
    """Whether the tape since the last read is still usable."""
    return _tape().broken is None


def brk(reason: str):
    """The tape since the last read is not used for the next read. What it noted is let go
    at once: holding the values of a training step (activations given data by backward)
    until the next read kept their arrays alive (two_layer_net's step 1.3 -> 1.8 ms)."""
    tape = _tape()
    if tape.broken is None:
        tape.broken = reason
        tape.made, tape.where, tape.outside, tape.previous = [], {}, [], None


def note(template, tensors: list, result):
    """A call replayed from template on tensors, which gave result (a Tensor or tuple)."""
    tape = getattr(_local, "tape", None) or _tape()
    if tape.broken is not None:
        return
    where, made = tape.where, tape.made
    if len(tensors) == 2:                     # binary arithmetic: no list to build
        a, b = tensors[0]._expr, tensors[1]._expr
        i, j = where.get(id(a)), where.get(id(b))
        if i is None:
            i = _outside(tape, a)
        if j is None:
            j = where.get(id(b))              # (the same value as a, now outside)
            j = j if j is not None else _outside(tape, b)
        step = (tape.state, template, i, j)
    else:
        step = [tape.state, template]         # flat: (state, template, *sources)
        for t in tensors:
            e = t._expr
            i = where.get(id(e))
            step.append(i if i is not None else _outside(tape, e))
        step = tuple(step)
    state = _NEXT.get(step)
    if state is None:
        state = _new_state(step)
    tape.state = state
    if type(result) is not tuple:
        e = result._expr
        if id(e) not in where:
            where[id(e)] = len(made)
            made.append(e)
    else:
        for out in result:
            e = out._expr
            if id(e) not in where:
                where[id(e)] = len(made)
                made.append(e)
    if len(made) > MAX_CALLS:
        brk(f"over {MAX_CALLS} values made since the last read")


def _new_state(step: tuple) -> int:
    if len(_NEXT) >= _LIMIT:
        clear()
    state = _NEXT[step] = len(_NEXT) + 1
    return state


def _outside(tape, e) -> int:
    """The source number (negative) of a value the tape did not make. One that is pending
    holds no data at the read either (nothing computes in between), so that read falls
    back; if the previous tape made it, it is noted as wanted there, and later reads with
    that tape's key compute it along (then it holds data here)."""
    if e.data is None and tape.previous is not None:
        key, where, made = tape.previous
        j = where.get(id(e))
        if j is not None and j >= 0 and made[j] is e:
            _WANTED.setdefault(key, set()).add(j)
    k = -1 - len(tape.outside)
    tape.where[id(e)] = k
    tape.outside.append(e)
    return k


def read(pending: list, updated, run):
    """(roots, arrays) for a read of pending Exprs (no data), keyed by the tape when it can
    be (else by realize_plans.read's walk); None when neither keys it (the caller reads
    as before). Either way a new tape starts."""
    tape = _tape()
    try:
        roots, done = _read(tape, pending, updated, run)
        return done if done is not None else realize_plans.read(roots, None, run)
    finally:
        LAST["reason"] = tape.broken
        if tape.broken is not None:
            STATS["fallbacks"] += 1
            if logging_enabled():
                log.info("read tape off for this read: %s", tape.broken)
        _local.tape = _Tape(tape.previous)


def _read(tape, pending: list, updated, run) -> tuple[list, tuple | None]:
    """(roots, (roots, arrays)) from a kept program, or (roots, None) to walk them."""
    roots = pending + updated(pending) if updated is not None else pending
    where, made = tape.where, tape.made
    tape.previous = None
    if tape.broken is None and tape.generation != _GENERATION[0]:
        tape.broken = "the tape's states were cleared"
    if tape.broken is not None:
        return roots, None
    positions = []
    for e in roots:
        i = where.get(id(e))
        if i is None or i < 0:
            tape.broken = "the read asks for a pending value the tape did not make"
            return roots, None
        positions.append(i)
    base = (tape.state, tuple(positions))
    extra = [j for j in sorted(_WANTED.get(base, ())) if j not in positions]
    roots = roots + [made[j] for j in extra]
    tape.previous = (base, where, made)
    for e in made:
        if e.data is not None or e.recorded:
            tape.broken = "a value of the tape holds data or is an autograd output"
            return roots, None
    late = [e for e in tape.outside if e.data is None]
    if late:
        # computed along now, so the next tape finds them holding data (one made by the
        # previous tape is wanted there from now on: see _outside)
        tape.broken = "a pending value made before the last read is used (computed along)"
        return roots + late, None
    key = (base, tuple(extra))
    plan = _PLANS.get(key)
    if plan is None:
        plan = _build(key, roots, tape)
        if plan is None:
            return roots, None
        STATS["misses"] += 1
    else:
        STATS["hits"] += 1
    fn, sources = plan
    outside = tape.outside
    return roots, (roots, run(fn, [outside[k].data for k in sources]))


def _build(key, roots: list, tape):
    """The program for key, cut from the graph (once per key), or None."""
    walk = realize_plans.describe(roots)
    if walk is None:
        tape.broken = "the graph is not keyable"
        return None
    fn, captures = build_function("realize", [], roots)
    where = tape.where
    sources = [-1 - where.get(id(c), 0) for c in captures]
    if any(s < 0 for s in sources) or any(len(op.results) > 1 for op in fn.body):
        tape.broken = "the program reads a value outside the tape"
        return None
    if len(_PLANS) >= 256:
        _PLANS.clear()
    _PLANS[key] = plan = (fn, sources)
    if logging_enabled():
        log.info("read tape: new sequence (%d values made, %d read)", len(tape.made),
                 len(roots))
    return plan


def clear():
    """Forgets every state (their ints are reused): tapes begun before fall back."""
    _GENERATION[0] += 1
    _NEXT.clear()
    _PLANS.clear()
    _WANTED.clear()
