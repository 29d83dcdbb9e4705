"""The tensors a thread updated in place whose new value is still pending (tracer/tensor.py's
realisation computes them along with every read: `w -= lr * g` then `loss.item()`)."""
from __future__ import annotations

import threading
import weakref

from tracer.expr import Expr
from tracer.pending_expr import bare_constant


class _PendingUpdates(threading.local):
    """Per thread, the tensors it updated in place whose new value is still pending (id ->
    weakref), in first-update order: `w -= lr * g` under no_grad, or any in-place op on a
    tensor with no grad_fn. Per thread: two threads running update loops each realise their
    own updates with their reads (one shared dict made each thread's read list the other's
    updates, so neither read matched its captured tape)."""

    def __init__(self):
        self.updated = {}


PENDING = _PendingUpdates()


def updated_tensors() -> dict:
    """This thread's pending in-place updates (id -> weakref to the tensor)."""
    return PENDING.updated


def note_inplace(t):
    """t was just updated in place: its new value is computed at the next realisation."""
    if t._expr.data is None and not t._expr.symbolic:
        updated = PENDING.updated
        ref = updated.get(id(t))
        if ref is None or ref() is not t:          # (an id of a dead tensor is reused)
            updated[id(t)] = weakref.ref(t)


def updated_pending(pending: list[Expr]) -> list[Expr]:
    """The pending values of tensors updated in place (note_inplace), not yet in pending.

    Computing them with every realisation keeps a loop of updates (`w -= lr * grad`, then
    `loss.item()`) from stacking each step's update onto the last: every read would
    otherwise compile a program holding the whole history of w. A bare constant (`w.grad.
    zero_()`) has no history: it stays pending (and listed), so the next program that
    reads it (the next backward adding to the zeroed grad) folds it instead of reading an
    array of zeros written out by the read (two_layer_net's `.item()` every 10th step)."""
    seen = set(map(id, pending))        # (no comprehension: a read per step calls this)
    out = []
    updated = PENDING.updated
    for key, ref in list(updated.items()):
        t = ref()
        e = t._expr if t is not None else None
        if e is None or e.data is not None or e.symbolic:
            del updated[key]
        elif id(e) not in seen and not bare_constant(e):
            seen.add(id(e))
            out.append(e)
    return out
