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
import threading

from tracer import captures, op_memo
from tracer.errors import user_location
from tracer.expr import apply_op
from tracer.tensor import Tensor

_state = threading.local()
# called as hook(name, saves, args, kwargs, result) for the outermost user op; see autograd
op_hooks: list = []


def apply(prim: str, *tensors: Tensor, regions=(), **params):
    """Records one primitive; returns a Tensor, or a tuple for multi-result primitives."""
    loc = getattr(_state, "loc", None) or user_location()
    captures.note(tensors)           # a trace learns which Tensor each captured Expr is
    ins = tuple([t._expr for t in tensors])
    exprs = apply_op(prim, ins, loc, regions=regions, **params)
    log = getattr(_state, "memo_log", None)
    if log is not None:
        log.append((ins, exprs))      # the body of a memoised op (op_memo.py) being learnt
    outs = [Tensor(e) for e in exprs]
    return outs[0] if len(outs) == 1 and not regions else tuple(outs)


def _memoised(name: str, fn, args: tuple, kwargs: dict, loc):
    """fn(*args, **kwargs), replayed from its template when the call's key has one."""
    keyed = op_memo.key_of(fn, args, kwargs) if not captures.active() else None
    if keyed is None:
        return fn(*args, **kwargs)
    key, tensors = keyed
    hit = op_memo.lookup(key)
    if hit is not None:
        if op_memo.refused(hit):
            return fn(*args, **kwargs)
        guard = op_memo.GUARDS.get(name)
        if guard is not None:
            guard(args, kwargs)
        op_memo.STATS["replays"] += 1
        result = hit.replay(tensors, loc)
        # the Template this call replayed (or recorded, below), with its result: the
        # autograd hook keys the call's node by it (tracer/autograd/node_walk.py)
        _state.replayed = (hit, result)
        return result
    exprs = [t._expr for t in tensors]
    versions = [t._storage.version for t in tensors]
    _state.memo_log = log = []
    result = fn(*args, **kwargs)
    _state.memo_log = None
    op_memo.build(key, tensors, versions, exprs, log, result)
    built = op_memo.lookup(key)
    if not op_memo.refused(built):           # the body's ops are the Template's
        _state.replayed = (built, result)
    return result


def op_location() -> str | None:
    """The user's file:line of the op whose hooks are running (else of the caller)."""
    return getattr(_state, "hook_loc", None) or user_location()


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
            if getattr(_state, "depth", 0):
                return fn(*args, **kwargs)
            _state.depth = 1
            _state.loc = loc = user_location()
            try:
                result = _memoised(name, fn, args, kwargs, loc) if memo else fn(*args, **kwargs)
            finally:
                _state.depth = 0
                _state.loc = None
                _state.memo_log = None
            # the hooks see the op's location (one stack walk per user op, not per use)
            _state.hook_loc = loc
            try:
                for hook in op_hooks:
                    result = hook(name, saves, args, kwargs, result)
            finally:
                _state.hook_loc = None
            return result
        inner.torch_name = name
        return inner
    return wrap
