"""The tensors a thread updated in place whose new value is still pending (tracer/tensor.py's
realisation computes them along with every read: `w -= lr * g` then `loss.item()`)."""
from __future__ import annotations

import threading
import weakref



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
