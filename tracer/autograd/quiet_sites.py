"""A no-grad parameter update after `backward()`, its op's Template found by call site.

two_layer_net_autograd.py's `w -= lr * w.grad` and `w.grad.zero_()` under no_grad are
memoised ops (tracer/op_memo.py) none of whose operands requires grad, in a cycle step
capture cannot learn (the forward recorded autograd nodes). Their general path (the op's
wrapper, record.torch_op, or inplace._direct) replays the op's Template without hooks.
Right after the backward program (whose arrays evict the interpreter's objects from cache)
each of its layers costs 2-3x its warm time: the first such op measured ~31 us, the same op
again ~11. `operator` takes a Tensor operator's call (`lr * w.grad`) to that same replay
straight from the operator, with the Template and line found by call site
(tracer/op_sites.py), when the wrapper would do just that.
"""
from __future__ import annotations

import sys

from tracer import captures, op_memo, op_sites, step_capture, step_follow
from tracer.record import GRAD_HOOKS, op_hooks
from tracer.record import _state as record_state
from tracer.tensor import Tensor

# calls taken here (the tests read it); ENABLED off: none (each takes the op's wrapper)
STATS = {"operators": 0}
ENABLED = True


def operator(fn, args: tuple):
    """A Tensor operator's memoised op (fn: its wrapper) on args, replayed as the wrapper
    would replay it when that is known in advance: no operand requires grad, every hook
    skips the op, not inside another op or a functional trace, no guard, and step capture
    notes nothing (its cycle is spoiled, or capture is off). None: the caller calls fn."""
    if not ENABLED or record_state.depth or captures.active():
        return None
    for a in args:
        if isinstance(a, Tensor) and (a._requires_grad or a._grad_fn is not None):
            return None
    name = fn.torch_name
    for hook in op_hooks:
        views = GRAD_HOOKS.get(hook)
        if views is None or name in views:
            return None
    if name in op_memo.GUARDS or not capture_idle():
        return None
    found = op_sites.find(fn.memo_body, args, sys._getframe(1))
    if found is None:
        return None
    template, tensors, loc = found
    op_memo.STATS["replays"] += 1
    STATS["operators"] += 1
    return template.replay(tensors, loc)


def capture_idle() -> bool:
    """Whether step capture would not note a call now: its cycle is spoiled, or it is off."""
    if not step_capture.ENABLED:
        return True
    s = step_follow.tls.s
    return s is not None and s.events is not None and not s.clean
