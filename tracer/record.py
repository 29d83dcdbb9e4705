"""How the op surface records work on Tensors, and where autograd hooks in.

`apply(prim, *tensors, **params)` records one IR primitive on Tensors (checked eagerly by the
primitive's shape rule, stamped with the user's file:line). Every user-facing op is wrapped
in `@torch_op("Mul", saves=...)`: the outermost such op in a call chain is one node of the
PyTorch-style autograd graph (grad_fn `MulBackward0`); ops it calls internally are not.

`saves` names what PyTorch's backward node for that op keeps (for version-counter checks
of in-place ops): argument positions (0, 1, ...) and/or "out".
"""
from __future__ import annotations

import functools
import inspect
import sys
import threading

from tracer import captures, op_memo, op_sites, step_capture, step_follow
from tracer.errors import user_location
from tracer.expr import apply_op
from tracer.tensor import Tensor

class _State(threading.local):
    depth = 0           # inside a user op (the outermost one records the autograd node)
    loc = None          # that op's user location
    memo_log = None     # the primitives of a memoised op's body being learnt (op_memo.py)
    hook_loc = None     # the location of the op whose hooks are running
    replayed = None     # (Template, result) of the memoised op just run, for on_op


_state = _State()
step_follow.record_state = _state
MISS = step_follow.MISS
# called as hook(name, saves, args, kwargs, result) for the outermost user op; see autograd
op_hooks: list = []
# hook -> names of ops it must see although no Tensor operand requires grad (set by the
# autograd hook for the view ops): a memoised op none of whose operands requires grad skips
# the hooks listed here (when every hook is listed) instead of calling them to do nothing
GRAD_HOOKS: dict = {}
# (the autograd hook, its node maker(name, saves, args, result, Template, loc)), set by
# tracer/autograd/recording.install: a recorded call found by its site when that hook is
# the only one goes straight from the replay to the node (_replay_recorded)
NODE_MAKER = None
_TRACE = captures._state
RECORDED_ENABLED = True      # tests and comparison: off takes _memoised and the hooks loop
RECORDED_STATS = {"calls": 0}


def apply(prim: str, *tensors: Tensor, regions=(), **params):
    """Records one primitive; returns a Tensor, or a tuple for multi-result primitives."""
    st = _state
    loc = st.loc
    if not st.depth:
        loc = user_location()
        step_capture.spoil(f"{prim} recorded outside a user op")
    captures.note(tensors)           # a trace learns which Tensor each captured Expr is
    ins = tuple([t._expr for t in tensors])
    exprs = apply_op(prim, ins, loc, regions=regions, **params)
    log = st.memo_log
    if log is not None:
        log.append((ins, exprs))      # the body of a memoised op (op_memo.py) being learnt
    outs = [Tensor(e) for e in exprs]
    return outs[0] if len(outs) == 1 and not regions else tuple(outs)


def _quiet(name: str, tensors: list) -> bool:
    """Whether the hooks have nothing to do for this op (see GRAD_HOOKS)."""
    for t in tensors:
        if t._requires_grad or t._grad_fn is not None:
            return False
    hooks = GRAD_HOOKS
    for hook in op_hooks:
        views = hooks.get(hook)
        if views is None or name in views:
            return False
    return True


def _memoised(name: str, fn, args: tuple, kwargs: dict, loc, found=None, frame=None):
    """(fn(*args, **kwargs), whether the hooks can be skipped), replayed from its template
    when the call's key has one; a call step_capture expects replays the step's template.
    found: (Template, Tensor arguments, loc) of the call's key, from its site (op_sites);
    else a replayed call's site at frame (the wrapper's caller) is noted for next time."""
    if captures.active():
        step_capture.spoil(f"{name} inside a functional trace")
        return fn(*args, **kwargs), False
    if found is None:
        keyed = op_memo.key_of(fn, args, kwargs)
        if keyed is None:
            step_capture.spoil(f"{name} with an argument op_memo does not key")
            return fn(*args, **kwargs), False
        key, tensors = keyed
    else:
        key, tensors = None, found[1]
    quiet = _quiet(name, tensors)
    # a view op without grad: its hook only joins the view to its base's storage, which a
    # followed call does too (step_follow.follow)
    followable = quiet or step_capture.view_event(name, tensors)
    # step_capture notes the call only while the cycle can still become a tape: a cycle
    # spoiled already (two_layer_net's no_grad update after its backward) skips both calls
    # (after() would find nothing noted: spoiling clears it)
    noted = followable and step_capture.ENABLED and _cycle_clean()
    if noted:
        if key is None:                     # (step capture notes the key itself)
            key = op_memo.key_of(fn, args, kwargs)[0]
        step_capture.before(name, key, tensors, len(args))
    elif not followable:
        step_capture.spoil(f"{name} with an operand that requires grad, or a hook")
    try:
        hit = op_memo.lookup(key) if found is None else found[0]
        if hit is None:
            result = _learn(key, fn, args, kwargs, tensors)
            if quiet:
                _state.replayed = None          # no hook runs to read it
            if noted:
                step_capture.after(op_memo.template(key), result)
            return result, quiet
        if op_memo.refused(hit):
            step_capture.spoil(f"{name}: its body runs (no template)")
            return fn(*args, **kwargs), False
        if found is None and frame is not None:
            op_sites.note(fn, args, frame, hit)
        guard = op_memo.GUARDS.get(name)
        if guard is not None:
            guard(args, kwargs)
        op_memo.STATS["replays"] += 1
        if quiet or not _pending_ok(name):
            result = hit.replay(tensors, loc)
        else:                                   # a recorded op: its interior left pending
            result = hit.replay_pending(tensors, loc)
        if not quiet:
            # the Template this call replayed, with its result: the autograd hook keys
            # the call's node by it (tracer/autograd/node_walk.py)
            _state.replayed = (hit, result)
    except BaseException:
        step_capture.spoil(f"{name} raised")
        raise
    if noted:
        step_capture.after(hit, result)
    return result, quiet


def _replay_recorded(name: str, saves, args: tuple, found: tuple):
    """What torch_op's wrapper, _memoised and the autograd hook do for a call found by its
    site (positional arguments, its Template) of which a Tensor operand requires grad, when
    that hook is the only one: the same spoil, guard, pending replay and node, with fewer
    calls and tests between them. MISS, with nothing done, for anything else (the general
    path then runs). Called with _state.depth set; returns with it cleared."""
    maker = NODE_MAKER
    hooks = op_hooks
    if maker is None or len(hooks) != 1 or hooks[0] is not maker[0] or \
            not _PENDING_OK.get(name) or not PENDING or _TRACE.log is not None:
        return MISS                         # (_TRACE.log: captures.active(), inline)
    hit, tensors, loc = found
    for t in tensors:
        if t._requires_grad or t._grad_fn is not None:
            break
    else:                                   # nothing requires grad: _memoised's quiet path
        return MISS
    st = _state
    st.loc = loc
    # (_memoised: neither quiet nor a view event, so the cycle is not a step's); a cycle
    # spoiled already, with no tape or call pending, has nothing left to spoil
    s = step_follow.tls.s
    if s is None or s.clean or s.tape is not None or s.pending is not None:
        step_capture.spoil(f"{name} with an operand that requires grad, or a hook")
    try:
        guard = op_memo.GUARDS.get(name)
        if guard is not None:
            guard(args, {})
        op_memo.STATS["replays"] += 1
        result = hit.replay_pending(tensors, loc)
    except BaseException:
        step_capture.spoil(f"{name} raised")
        raise
    finally:
        st.depth = 0
        st.loc = None
        st.memo_log = None
    st.replayed = None
    st.hook_loc = loc
    try:
        maker[1](name, saves, args, result, hit, loc)
    finally:
        st.hook_loc = None
    RECORDED_STATS["calls"] += 1
    return result


def _cycle_clean() -> bool:
    """Whether step capture's cycle under way is not spoiled (step_capture.before)."""
    s = step_follow.tls.s
    return s is None or s.clean


# op name -> whether its replay may leave its Ops pending: not when a hook that skips ops
# without grad still wants it (the view ops: views.mark_views)
_PENDING_OK: dict = {}
PENDING = True          # tests: off gives Template.replay's eager Ops everywhere


def _pending_ok(name: str) -> bool:
    ok = _PENDING_OK.get(name)
    if ok is None:
        ok = _PENDING_OK[name] = not any(name in names for names in GRAD_HOOKS.values())
    return ok and PENDING


def _learn(key, fn, args: tuple, kwargs: dict, tensors: list):
    """Runs fn's body, logging its primitives into a template for key (op_memo.build)."""
    exprs = [t._expr for t in tensors]
    versions = [t._storage.version for t in tensors]
    _state.memo_log = log = []
    result = fn(*args, **kwargs)
    _state.memo_log = None
    op_memo.build(key, tensors, versions, exprs, log, result)
    built = op_memo.template(key)
    if built is not None:                    # the body's ops are the Template's
        _state.replayed = (built, result)    # (cleared below when the hooks are skipped)
    return result


def op_location() -> str | None:
    """The user's file:line of the op whose hooks are running (else of the caller)."""
    return _state.hook_loc or user_location()


def _positional(fn):
    """Binds fn's arguments passed by keyword (`torch.mul(input=a, other=b)`) to positions,
    so that `saves` (argument positions) and the hooks see them as in a positional call."""
    sig = inspect.signature(fn)
    names = {p.name for p in sig.parameters.values() if p.kind == p.POSITIONAL_OR_KEYWORD}
    order = [p.name for p in sig.parameters.values()
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]

    def bind(args, kwargs):
        if names.isdisjoint(kwargs):
            return args, kwargs
        if names.issuperset(kwargs):
            # what sig.bind gives without its cost (F.mse_loss(a, b, reduction="sum") is
            # in every step of a loop): keyword arguments that continue the positional ones
            # move to positions, up to the first one not given; a clash is left for the
            # call to report
            args, kwargs, i = list(args), dict(kwargs), len(args)
            while i < len(order) and order[i] in kwargs:
                args.append(kwargs.pop(order[i]))
                i += 1
            return tuple(args), kwargs
        bound = sig.bind(*args, **kwargs)
        return bound.args, bound.kwargs
    return bind


def torch_op(name: str, saves: tuple = ()):
    """Marks a user-facing op (see module docstring)."""
    memo = name in op_memo.OPS

    def wrap(fn):
        bind = _positional(fn)

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            if kwargs:
                args, kwargs = bind(args, kwargs)
            st = _state
            if st.depth:
                return fn(*args, **kwargs)
            if memo:                             # the captured step's next call?
                result = step_follow.follow(fn, args, kwargs)
                if result is not MISS:
                    return result                # (no hooks: nothing requires grad)
            st.depth = 1
            # the key's Template and the user's line, by call site where one was noted
            frame = sys._getframe(1) if memo and not kwargs else None
            found = op_sites.lookup(fn, args, frame) if frame is not None else None
            if found is not None and RECORDED_ENABLED:
                result = _replay_recorded(name, saves, args, found)
                if result is not MISS:
                    return result
            st.loc = loc = user_location() if found is None else found[2]
            try:
                if memo:
                    result, quiet = _memoised(name, fn, args, kwargs, loc, found, frame)
                else:
                    step_capture.spoil(f"{name} is not memoised")
                    result, quiet = fn(*args, **kwargs), False
            finally:
                st.depth = 0
                st.loc = None
                st.memo_log = None
            if quiet:
                return result
            # the hooks see the op's location (one stack walk per user op, not per use)
            st.hook_loc = loc
            try:
                for hook in op_hooks:
                    result = hook(name, saves, args, kwargs, result)
            finally:
                st.hook_loc = None
            return result
        inner.torch_name = name
        inner.memo_body = fn if memo else None   # (surface's operators: step_follow.follow)
        return inner
    return wrap
