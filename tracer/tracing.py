"""Whether user code is running on traced values: the transforms' one piece of state.

Every transform (jit, grad, vmap, the bodies of cond / scan / while_loop) calls the user's
function through `traced(f)`; code that must behave differently while tracing asks
`is_tracing()` (tracer/creation.py warns that random draws there become trace constants).
Kept apart from staging.py so that low modules (creation) can ask without importing the
staging machinery.
"""
from __future__ import annotations

import contextlib
import functools
import threading

_trace_state = threading.local()


def is_tracing() -> bool:
    return getattr(_trace_state, "depth", 0) > 0


@contextlib.contextmanager
def tracing():
    """Marks user code running on traced values (random draws there are trace constants)."""
    depth = getattr(_trace_state, "depth", 0)
    _trace_state.depth = depth + 1
    try:
        yield
    finally:
        _trace_state.depth = depth


def traced(f):
    """f, called inside tracing(): how the transforms call the user's functions."""
    @functools.wraps(f)
    def call(*args, **kwargs):
        with tracing():
            return f(*args, **kwargs)
    return call
