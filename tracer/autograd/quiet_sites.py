"""Quiet memoised calls found by their call site: a parameter update after `backward()`.

two_layer_net_autograd.py's `w -= lr * w.grad` and `w.grad.zero_()` under no_grad are
memoised ops (tracer/op_memo.py) none of whose operands requires grad, in a cycle step
capture cannot learn (the forward recorded autograd nodes). Their general path computes the
op-memo key, looks it up, walks the stack for the user's line and replays the Template.
Right after the backward program (whose arrays evict the interpreter's objects from cache)
each of those layers costs 2-3x its warm time: the first such op measured ~31 us, the same
op again ~11.

A call site (the user's code object and instruction offset) makes the same call each step.
Its first call finds its key, Template and line as the general path does and notes, per
argument, what the key said of it: a Tensor's type and which earlier Tensor argument holds
the same Expr; a Python number's type and value. A later call at that site whose arguments
match all of that has the same key, hence the same Template, at the same line, so it is
replayed without the key, the lookup or the walk. Anything else (another op at the site,
an argument of another kind, type or value, an alias changed, a keyword, a float that `==`
cannot tell from another: 0.0 and NaN, a frame of gradjit's own, op_memo cleared since)
takes the general path (and notes the site again when that finds a Template).
"""
from __future__ import annotations

import sys

from tracer import captures, op_memo, step_capture, step_follow
from tracer.dtypes import default_float
from tracer.errors import user_location, user_site
from tracer.record import GRAD_HOOKS, op_hooks
from tracer.record import _state as record_state
from tracer.tensor import Tensor

# (id(code), instruction offset) -> (code, op body, default float, argument specs, Template,
# user line, op_memo generation); bounded like op_memo's table
_SITES: dict = {}
_SITES_LIMIT = 4096
# calls replayed from a noted site, sites noted (the tests read these); ENABLED off: none
STATS = {"hits": 0, "noted": 0}
ENABLED = True
_TENSOR = "tensor"


def template_at(body, args: tuple, frame) -> tuple | None:
    """(Template, Tensor arguments, user line) for a call of the op body `body` on
    positional args made at frame's current instruction: what op_memo.key_of, lookup and
    user_location would give. None when the key has no Template (not learnt, refused), the
    op is guarded or an argument is not a plain kind: the caller takes its general path."""
    code = frame.f_code
    site = _SITES.get((id(code), frame.f_lasti)) if ENABLED else None
    if site is not None and site[0] is code and site[1] is body:
        tensors = _match(site, args)
        if tensors is not None:
            STATS["hits"] += 1
            return site[4], tensors, site[5]
    keyed = op_memo.key_of(body, args, {})
    if keyed is None:
        return None
    hit = op_memo.lookup(keyed[0])
    if hit is None or op_memo.refused(hit):
        return None
    found = user_site(frame)
    if found is None or found[0]:            # a frame of gradjit's own: not a user's site
        return hit, keyed[1], user_location(1)
    specs = _specs(args)
    if specs is not None and ENABLED:
        if len(_SITES) >= _SITES_LIMIT:
            _SITES.clear()
        _SITES[(id(code), frame.f_lasti)] = (code, body, default_float(), specs, hit,
                                             found[3], op_memo.GENERATION[0])
        STATS["noted"] += 1
    return hit, keyed[1], found[3]


def _specs(args: tuple) -> tuple | None:
    """Per argument what its key part says: (_TENSOR, type, alias) or (type, value)."""
    specs, exprs = [], []
    for a in args:
        t = type(a)
        if t is Tensor:
            e = a._expr
            alias = next((i for i, x in enumerate(exprs) if x is e), len(exprs))
            specs.append((_TENSOR, e.value.type, alias))
            exprs.append(e)
        elif t is float:
            if a != a or a == 0.0:
                return None                  # NaN, -0.0: `==` does not tell their bits
            specs.append((t, a, None))
        elif t is int or t is bool:
            specs.append((t, a, None))
        else:
            return None
    return tuple(specs)


def _match(site: tuple, args: tuple) -> list | None:
    """The Tensor arguments when args give the key noted at the site, else None."""
    specs = site[3]
    if len(args) != len(specs) or site[6] != op_memo.GENERATION[0] or \
            site[2] != default_float():
        return None
    tensors: list = []
    for a, (kind, want, alias) in zip(args, specs):
        if kind is _TENSOR:
            if type(a) is not Tensor:
                return None
            e = a._expr
            if e.symbolic:
                return None
            got = e.value.type
            if got is not want and got != want:
                return None
            for i, x in enumerate(tensors):     # which earlier argument holds the same Expr
                if x._expr is e:
                    if i != alias:
                        return None
                    break
            else:
                if alias != len(tensors):
                    return None
            tensors.append(a)
        elif type(a) is not kind or a != want:
            return None
    return tensors


def operator(fn, args: tuple):
    """A Tensor operator's memoised op (`lr * w.grad`) called from user code, replayed from
    its site when the op's wrapper (record.torch_op) would replay its Template quietly: no
    operand requires grad, every hook skips the op, not inside another op or a functional
    trace, and step capture notes nothing (its cycle is spoiled, or capture is off). None:
    the caller calls the wrapper."""
    if not ENABLED or record_state.depth or captures.active():
        return None
    for a in args:
        if type(a) is Tensor and (a._requires_grad or a._grad_fn is not None):
            return None
    name = fn.torch_name
    for hook in op_hooks:
        views = GRAD_HOOKS.get(hook)
        if views is None or name in views:
            return None
    if name in op_memo.GUARDS or not _capture_idle():
        return None
    found = template_at(fn.memo_body, args, sys._getframe(2))
    if found is None:
        return None
    template, tensors, loc = found
    op_memo.STATS["replays"] += 1
    return template.replay(tensors, loc)


def _capture_idle() -> bool:
    """Whether step capture would not note this call: its cycle is spoiled, or it is off."""
    if not step_capture.ENABLED:
        return True
    s = step_follow.tls.s
    return s is not None and s.events is not None and not s.clean
