"""A call that is the captured step's next event: checked by identity and exact value, its
results made pending (tracer/pending_expr.py: the Ops are built only if something reads them).

This is the hot path of a followed loop (polynomial_tensor.py: 30 calls per step), so each
event's checks were worked out when the tape was kept (step_tape.Tape.steps) and the checks
here are inlined: one tuple per event, one pass over the arguments.
"""
from __future__ import annotations

from sys import _getframe

from ir import Value
from tracer import op_memo, pending_expr, step_tape
from tracer import step_follow_code  # noqa: F401  (sets step_tape.write_follow)
from tracer.dtypes import _default_float
from tracer.expr import _int_tree
from tracer.pending_expr import PendingExpr
from tracer.step_tape import (CUR, EXT, FLOAT, MISS, NEW, PLAIN, PREV, PREV_EXT, TENSOR,
                              drop, entry, result_at, tls)
from tracer.errors import user_site
from tracer.tensor import Tensor

# set when tracer/record.py and tracer/step_capture.py are imported (they import this module):
# record's thread state (_guard sets its depth and location) and step_capture (ENABLED)
record_state = None
capture_module = None
_replay = pending_expr.replay
_new = object.__new__
_set_recipe = pending_expr._ARGS.__set__


def follow(fn, args: tuple, kwargs: dict):
    """The result of a memoised user op call (fn: the op's body, args and kwargs bound as
    record.torch_op binds them) that is the tape's next event (pending; no hooks run: no
    operand requires grad), else MISS (the call takes the general path; a call that does
    not match ends the tape). Called first thing by the op's wrapper (record.torch_op) and
    by Tensor's operators (tracer/surface.py), so a followed call costs one Python call past
    the user's: the user's location is found here, only for a call that follows."""
    # NOTE: no test of record's depth (a call inside another op's body) or of a functional
    # trace here (two thread-local reads, ~0.2 us each): an op's body runs only after its
    # call took the general path, which a followed tape does not survive (it spoils or
    # finds no tape), an op's check (_guard) runs with the tape set aside, and a functional
    # trace beginning ends the tape (captures.reading)
    s = tls.s
    if s is None or s.events is not None or not capture_module.ENABLED:
        return MISS
    pos = s.pos
    tape = s.tape
    try:
        fast = tape.fast[pos]
    except IndexError:
        return drop("more calls than the captured step")
    if fast is not None and not kwargs:      # the event's own Python (step_follow_code)
        t = fast(s, fn, args)
        if t is not None:
            return t
    step_fn, dtype, key, specs, checks, guard, template, outs_all, outs, name, view = \
        tape.steps[pos]
    if step_fn is not fn or dtype != _default_float[0]:
        return drop(f"call {pos + 1} of the step is another op than the captured one")
    if specs is None or kwargs or len(args) != len(specs):
        keyed = op_memo.key_of(fn, args, kwargs)
        if keyed is None or keyed[0] != key:
            return drop(f"call {pos + 1} of the step has other arguments than captured")
        tensors = keyed[1]
        for t, check in zip(tensors, checks):
            if not _operand_ok(s, t, check):
                return _elsewhere(pos)
        ins = [t._expr for t in tensors]
    else:
        tensors, ins = [], []
        for a, spec in zip(args, specs):
            kind = spec[0]
            if kind == TENSOR:
                if type(a) is not Tensor and not isinstance(a, Tensor):
                    return drop(f"call {pos + 1}: an argument is not a Tensor any more")
                check = spec[1]
                if a._requires_grad or a._grad_fn is not None:
                    return _elsewhere(pos)   # (requires_grad set on a result holding data)
                e = a._expr
                kind = check[0]
                if kind == CUR:              # the common cases, inline
                    if e is not result_at(s.outs, check[1], check[2]):
                        return _elsewhere(pos)
                elif kind == EXT:
                    if e is not s.ext[check[1]]:
                        return _elsewhere(pos)
                elif kind == PREV:
                    if e is not result_at(s.prev_outs, check[1], check[2]):
                        return _elsewhere(pos)
                elif not _operand_ok(s, a, check):
                    return _elsewhere(pos)
                tensors.append(a)
                ins.append(e)
            elif kind == FLOAT:
                # the exact value: hex() (~0.6 us) only where == cannot tell (0.0 and -0.0,
                # NaN)
                if type(a) is not float or (a != spec[2] or a == 0.0) and a.hex() != spec[1]:
                    return drop(f"call {pos + 1}: a Python float changed")
            elif kind == PLAIN:
                if type(a) is not spec[1] or a != spec[2]:
                    return drop(f"call {pos + 1}: a plain Python argument changed")
            elif type(a) is not tuple or a != spec[1] or not _int_tree(a):
                return drop(f"call {pos + 1}: a tuple argument changed")
    # the user's line: this event's call site seen before (the same code at the same
    # instruction, reached through the same gradjit frames, is the same line: no walk, no
    # dict lookup), else found by the walk and kept. Frames: this, the op's wrapper or
    # operator (always gradjit's own), its caller
    f = _getframe(2)
    site = tape.sites[pos]
    if site is not None and not site[0] and f.f_code is site[1] and f.f_lasti == site[2]:
        loc = site[3]
    else:
        loc = _site(tape, pos, f)
    if guard is not None:
        _guard(s, guard, name, args, kwargs, loc)
    if outs is not None:                     # one new result: pending_expr.replay, inline
        # NOTE: objects made without their __init__ calls (PendingExpr's, Tensor's, and
        # Value's: its name_hint is the class default None): the same fields, ~0.6 us less
        # per call
        e = _new(PendingExpr)
        e.value = v = _new(Value)
        v.type = outs[0]
        _set_recipe(e, (template, outs[1], loc, *ins))
        e.data = None
        e.symbolic = e.recorded = False
        s.outs.append(e)                     # (one result: bare, step_tape.entry)
        s.pos = pos + 1
        t = _new(Tensor)
        t._expr = e                          # (its Storage is made when first asked for)
        if view:                             # as the autograd hook does on the general path
            step_tape.mark_views(name, args, t)
        return t
    result = _replay(template, outs_all, ins, tensors, loc, Tensor)
    s.outs.append(result._expr if type(result) is not tuple else
                  entry(tuple([t._expr for t in result])))
    s.pos = pos + 1
    if view:
        step_tape.mark_views(name, args, result)
    return result


def _site(tape, pos: int, f):
    """The user's line for a call whose innermost frames past gradjit's wrapper start at f:
    tape.sites[pos] when f's chain matches it (gradjit frames of the same code objects, then
    the same user code at the same f_lasti), else found by the walk and kept there."""
    site = tape.sites[pos]
    if site is not None:
        own, code, lasti, loc = site
        g = f
        for c in own:
            if g is None or g.f_code is not c:
                break
            g = g.f_back
        else:
            if g is not None and g.f_code is code and g.f_lasti == lasti:
                return loc
    site = user_site(f)
    if site is None:
        return None
    tape.sites[pos] = site
    return site[3]


def _guard(s, guard, name: str, args: tuple, kwargs: dict, loc):
    """Runs an op's check of its argument values (op_memo.GUARDS) as inside the op (its
    errors name the user's line), the tape set aside: ops it applies are not step calls."""
    st = record_state
    st.depth, st.loc = 1, loc
    s.events = ()
    try:
        guard(args, kwargs)
    except BaseException:
        s.events = None
        drop(f"{name} raised")
        raise
    finally:
        st.depth, st.loc = 0, None
    s.events = None


def _elsewhere(pos: int):
    return drop(f"call {pos + 1}: an operand comes from elsewhere than in the captured step, "
                "or requires grad")


def _operand_ok(s, t: Tensor, check: tuple) -> bool:
    """Whether operand t is where the tape's check says (an operand's first use from outside
    the cycle is noted, as the learning cycle noted it)."""
    if t._requires_grad or t._grad_fn is not None:
        return False
    e = t._expr
    kind = check[0]
    if kind == CUR or kind == PREV:
        try:
            return e is result_at(s.outs if kind == CUR else s.prev_outs, check[1], check[2])
        except IndexError:
            return False
    if kind == EXT:
        return e is s.ext[check[1]]
    if kind == NEW:
        ok = e.data is not None and e.value.type == check[1]
    elif kind == PREV_EXT:
        ok = e is s.prev_ext[check[1]]
    else:
        ok = e is s.tape.pins[check[1]]
    if ok:
        s.ext.append(e)
    return ok
