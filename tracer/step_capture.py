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
outside a user op (an in-place op on a view, a live view refreshed after its base's update),
an operand that requires grad, a view op while another op hook is installed (view_event),
an op inside a functional trace, an exception inside an op, a read of other values, a read
before the step's end. `ENABLED = False` (then `reset()`) turns it off.
"""
from __future__ import annotations

import sys

from runtime import log, logging_enabled
from tracer import realize_plans, run_programs, structure_key
from tracer.expr import build_function
from tracer import tensor as _tensor_module
from tracer import step_follow, step_read_code, step_tape
from tracer.step_read import KeptRead, read_only, tape_roots
from tracer.step_tape import (CUR, MISS, STATS, State, Tape, drop,  # noqa: F401  (API)
                              entry, entry_exprs, result_at, state as _state, tls)

ENABLED = True          # tests and comparisons turn it off (then call reset())
VERIFY = False          # tests: each read from a tape also walks, and checks it agrees
PIN_ONCE = True         # values pinned before the loop computed once (_pin_program)
# reads from a tape before that (two more programs compiled: worth it for a long loop only;
# tests set 0)
PIN_AFTER = 256
_MAX_RESULTS = 16
_MAX_PIN_EXPRS = 4096
_MAX_PIN_BYTES = 16 << 20     # leaves' bytes behind pinned values (_pinned_read compares them)
_MAX_EVENTS = 4096


def view_event(name: str, tensors: list) -> bool:
    """Whether a call of view op `name` (memoised) can be a step event: no operand requires
    grad and the only hook is the one that wants view ops without grad (the autograd hook,
    record.GRAD_HOOKS), which then only joins the view to its base's storage
    (views.mark_views): a followed call does that itself (step_follow.follow)."""
    if name not in step_tape.VIEW_OPS:
        return False
    for t in tensors:
        if t._requires_grad or t._grad_fn is not None:
            return False
    record = sys.modules["tracer.record"]
    hooks = record.op_hooks
    return len(hooks) == 1 and record.GRAD_HOOKS.get(hooks[0]) is step_tape.VIEW_OPS


def before(name: str, key, tensors: list, nargs: int):
    """A memoised call (no operand requiring grad; a view op only as view_event allows;
    positional arguments: nargs) with op-memo key `key` is about to run, not following a
    tape: noted for learning (after() adds its results)."""
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
    s.outs.append(entry(exprs))
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
        drop(reason)
    if s.clean:
        s.clean = False
        s.outs, s.ext = [], []           # (a step with a backward: its results may hold data)
        if reason != s.spoiled and logging_enabled():   # (once, not every step of a loop)
            s.spoiled = reason
            log.info(f"step capture: this step is not captured: {reason}")
    return None


def fast_read(pending: list, updated):
    """(roots, their values: the tape's program run on its input arrays found by code) when
    this read ends a cycle that followed the tape, else None (the caller reads as usual,
    then end_read)."""
    s = tls.s
    tape = s.tape if s is not None else None
    if tape is None or s.events is None and s.pos != len(tape.events):
        if tape is not None:
            drop("a read before the end of the captured step")
        return None
    code = tape.read_code                # the read's own Python (step_read_code) first
    if code is not None:
        done = code(s, pending)
        if done is not None:
            return done
    checks = tape.root_checks
    outs, prev = s.outs, s.prev_outs
    # the in-place roots from the tape, checked on the way (no updated_pending), when they
    # are the ones it names; else listed as the general path does, then checked
    roots = tape_roots(pending, checks, len(checks) - tape.held, outs, prev)
    if roots is None:
        roots = pending + updated(pending) if updated is not None else pending
        if len(roots) + tape.held != len(checks):
            return _other_roots()
        # NOTE: the roots' check inline (one loop, no call per root)
        try:
            for e, (kind, j, r) in zip(roots, checks):
                if result_at(outs if kind == CUR else prev, j, r) is not e:
                    return _other_roots()
        except IndexError:
            return _other_roots()
    if tape.held:
        try:
            roots = roots + _held(s, checks[len(roots):])
        except IndexError:
            return _other_roots()
    pin_exprs = tape.pin_exprs
    if pin_exprs:
        # NOTE: instead of walking the pins again (structure_key.walk, ~10 us a read): Exprs
        # change only by getting data (a pending one settled, or computed along by
        # bounded.py), which changes the walk's parts, so the walk's Exprs with the same
        # pending ones mean the same parts
        for e, was_pending in zip(pin_exprs, tape.pin_pending):
            if (e.data is None) is not was_pending:
                drop("a value computed before the step changed (read, or computed along)")
                return None
        pinned = tape.pinned
        if pinned:
            outs = _pinned_read(s, tape, pinned, roots)
            if outs is MISS:                 # (an input holds no data: the tape ended)
                return None
            if outs is not None:
                return roots, outs
    arrays = _arrays(s, tape.captures, pin_exprs)
    if arrays is None:
        return None
    if VERIFY:
        _verify(tape, roots, arrays)
    STATS["reads"] += 1
    STATS["calls"] += s.pos              # (counted here, not per call: the hot path)
    kept = tape.exe
    if kept is not None and kept.usable():
        outs = kept(arrays)
        step_read_code.consider(tape, _module)
        return roots, outs
    return roots, _run(tape, tape.fn, arrays)


def _arrays(s: State, codes: tuple, pin_exprs: tuple) -> list | None:
    """The read's input arrays found by code (None: one holds no data; the tape ends)."""
    # NOTE: _data inline for the codes of the cycles' results (one call less per input)
    arrays = []
    outs, prev = s.outs, s.prev_outs
    for c in codes:
        if type(c) is int and c >= 0:
            j, r = (c >> 1) >> 4, (c >> 1) & 15
            try:
                a = result_at(prev if c & 1 else outs, j, r).data
            except IndexError:
                a = None
        else:
            a = _data(s, c, pin_exprs)
        if a is None:
            drop("an input of the captured read holds no data")
            return None
        arrays.append(a)
    return arrays


def _pin_program(ids: dict, roots: list, pins: dict, pin_exprs: tuple):
    """[program, the pinned values (None until computed), codes of the program's other
    inputs, the pinned values' leaf arrays, its step_read.KeptRead or None,
    reads from the tape left before they are computed] of the learning read with the values
    pinned before the loop as inputs, or False. Called when the tape is kept (ids: the
    learning cycle's codes; roots: its read's); its two programs (the pinned values', the
    read's) are compiled after PIN_AFTER reads from the tape, so a short loop does not pay
    for them.

    Pinned values (polynomial_tensor.py's `y = sin(x)`) are pending: the learnt program
    recomputes them at every read. Here they are computed once (as a read of them alone
    would: realize_plans.compute; their Exprs stay pending, recipe and all, so whatever is
    built over them later shows their ops) and the read's program takes them as inputs: the
    same events over the same codes give the same graph (module doc), so the program cut
    from the learning read's graph at the pins is the followed reads' too. The learning
    read's walk built every Op on the way, so cutting it builds none. Refused (False) when a
    leaf behind a pinned value is memory NumPy can write (numpy(), from_numpy: a write
    there changes the value; or an array over memory it does not own), or an input is not a
    value of the cycles by code."""
    leaves = [e.data for e in pin_exprs if e.data is not None]
    if any(a.flags.writeable or a.base is not None for a in leaves):
        # (an array over memory it does not own: a write through its owner changes it)
        return _no_pin("a value behind it shares memory with NumPy")
    if sum([a.nbytes for a in leaves]) > _MAX_PIN_BYTES:
        return _no_pin("the arrays behind it are too large to compare at every read")
    pinned = list(pins.values())
    fn, captures = build_function("realize", pinned, roots)
    codes = tuple([ids.get(id(c)) for c in captures])
    if None in codes:
        return _no_pin("an input of the read is not a value of the step")
    return [fn, None, codes, leaves, None, PIN_AFTER, None]


def _no_pin(reason: str):
    if logging_enabled():
        log.info(f"step capture: values pinned before the loop are computed by each read: "
                 f"{reason}")
    return False


def _pinned_read(s: State, tape: Tape, pinned: list, roots: list):
    """The outputs of the read's program with the pinned values as inputs (_pin_program),
    None (the learnt program runs: not yet pinning, or a leaf behind a pinned value
    changed) or MISS (an input holds no data: the tape ended)."""
    fn, values, codes, leaves, kept, wait, seen = pinned
    if values is None:
        if wait > 0:
            pinned[5] = wait - 1
            return None
        # the leaves' bytes the pinned values are computed from: NumPy memory the user can
        # make writable, write and make read-only again between two reads (from_numpy's
        # array, numpy()'s) is caught by comparing them, not by its flags
        pinned[6] = [a.tobytes() for a in leaves]
        values = pinned[1] = realize_plans.compute(list(tape.pins.values()),
                                                   _tensor_module.run_function)
        for a in values:
            a.flags.writeable = False
    else:
        for a, b in zip(leaves, seen):
            if a.tobytes() != b:             # (~0.4 us for 8 KB: x of polynomial_tensor)
                tape.pinned = None           # stale: the learnt program from now on
                _no_pin("an array behind them was written")
                return None
    arrays = _arrays(s, codes, ())
    if arrays is None:
        return MISS
    arrays = values + arrays
    if VERIFY:
        _verify(tape, roots, _arrays(s, tape.captures, tape.pin_exprs))
        full = _tensor_module.run_function(tape.fn, _arrays(s, tape.captures, tape.pin_exprs))
    STATS["reads"] += 1
    STATS["pinned"] += 1
    STATS["calls"] += s.pos
    if kept is not None and kept.usable():
        outs = kept(arrays)
        step_read_code.consider(tape, _module)
    else:
        outs = _run(pinned, fn, arrays)
    if VERIFY:
        for a, b in zip(outs, full):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), "pinned values differ"
    return outs


def _run(keep, fn, arrays: list) -> list:
    """fn run by tensor.run_function (its outputs read-only), keeping a step_read.KeptRead
    of its Executable in keep.exe (a Tape) or keep[4] (_pin_program's list) when that is all
    run_function does with it (run_programs.executable_of: no input slices lifted, native
    code and no logging asked for): later reads call it directly, no lookups per read."""
    run = _tensor_module.run_function
    exe = run_programs.executable_of(fn) if run is run_programs.run_function else None
    if exe is None:
        return read_only(run(fn, arrays))
    kept = KeptRead(exe, run)
    if type(keep) is list:                   # (_pin_program's)
        keep[4] = kept
    else:
        keep.exe = kept
    return kept(arrays)


def _held(s: State, checks: tuple) -> list:
    """The values the learning read computed along because a Tensor held them (realize_plans.
    held: two_layer_net_tensor.py's `h = x.mm(w1)`), computed along again and kept as it
    did. Whether a Tensor still holds them is not checked (a reference count against the
    whole graph's uses): computing a value along gives the same numbers as computing it
    later, and one still pending is computed by whichever read needs it."""
    out = [result_at(s.outs if kind == CUR else s.prev_outs, j, r) for kind, j, r in checks]
    for e in out:
        if e.data is not None:
            raise IndexError                 # (settled since: not the learnt read)
    for e in out:
        e.recorded = True                    # as realize_plans.held marks it
    return out


def _other_roots():
    drop("the read is of other values than the captured step's")
    return None


def _verify(tape: Tape, roots: list, arrays: list):
    """Tests: the general path's walk would run the same program on the same arrays."""
    walk = realize_plans.describe(roots)
    plan = realize_plans.plans().get(walk.key) if walk is not None else None
    assert plan is not None and plan[0] is tape.fn, "the read's structure differs"
    assert all(walk.exprs[i].data is a for i, a in zip(plan[1], arrays)), "other inputs"


def _pin_walk(pins: dict):
    """(Exprs, parts) of structure_key.walk behind the pinned Exprs (None: not keyable)."""
    try:
        exprs, _, parts = structure_key.walk(list(pins.values()), False, _MAX_PIN_EXPRS)
    except structure_key.Unkeyable:
        return (), None
    return exprs, parts


def _data(s: State, code, pin_exprs):
    if type(code) is tuple:              # ("walk", i): a leaf behind the pinned Exprs
        return pin_exprs[code[1]].data
    if code >= 0:
        j, r = divmod(code >> 1, 16)
        try:
            return result_at(s.prev_outs if code & 1 else s.outs, j, r).data
        except IndexError:
            return None
    m, prev = divmod(-code - 1, 2)
    ext = s.prev_ext if prev else s.ext
    return ext[m].data if m < len(ext) else None


def end_read(walked, plans):
    """A read ended the cycle (before its results are stored). walked: (roots, realize_plans
    Walk, how many roots at the end were held values computed along) of a keyed read, or
    None; plans: realize_plans' programs."""
    s = _state()
    sig = None
    if s.events is None:
        sig = s.prev_sig                 # followed the tape: the same cycle again
        tape = s.tape
        if tape is not None and tape.unwritten > 0:
            tape.count_read()
    elif s.clean and walked is not None:
        sig = _learn(s, walked, plans)
    _next_cycle(s, sig)


def _learn(s: State, walked, plans: dict):
    """The cycle's signature, keeping it as the tape when the previous cycle's was equal."""
    roots, walk, held = walked
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
    sig = (tuple(s.events), root_codes, held)
    if sig == s.prev_sig:
        s.tape = Tape(sig[0], tuple(s.templates), tuple(s.names), root_codes, held, fn,
                      tuple(captures), pins, pin_exprs)
        if pins and PIN_ONCE:
            s.tape.pinned = _pin_program(ids, roots, pins, pin_exprs)
        STATS["tapes"] += 1
        if logging_enabled():
            log.info(f"step capture: a step of {len(sig[0])} calls repeats; its calls follow "
                     "the captured step and its read runs one kept program")
    return sig


def _next_cycle(s: State, sig):
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
    for j, x in enumerate(s.prev_outs):
        for r, e in enumerate(entry_exprs(x)):
            ids[id(e)] = 2 * (16 * j + r) + 1


def reset():
    """Forgets the tape and the cycles seen (tests)."""
    tls.s = State()


_module = sys.modules[__name__]
_tensor_module.step_capture = _module                   # tensor.realize's reads
step_follow.capture_module = sys.modules[__name__]      # (ENABLED)
