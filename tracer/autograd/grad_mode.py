"""Grad mode: whether ops on Tensors that require grad are recorded for autograd.

Thread-local, as in PyTorch. `no_grad`, `enable_grad` and `set_grad_enabled` work both as
context managers and as decorators; `set_grad_enabled(False)` called as a plain function
also switches the mode immediately (PyTorch's behaviour).
"""
from __future__ import annotations

import functools
import inspect
import threading

class _State(threading.local):
    enabled = True      # a class default: no raised AttributeError per read in a new thread


_state = _State()


def is_grad_enabled() -> bool:
    """True when new ops on Tensors that require grad are recorded."""
    return _state.enabled


def _set(mode: bool):
    _state.enabled = bool(mode)


class _GradModeContext:
    """Base of the grad-mode switches: a context manager that is also a decorator."""
    mode: bool = True

    def __enter__(self):
        self.prev = is_grad_enabled()
        _set(self.mode)
        return self

    def __exit__(self, *exc):
        _set(self.prev)
        return False

    def __call__(self, fn):
        if inspect.isclass(fn):
            raise TypeError(f"{type(self).__name__} decorates functions, not classes")
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = is_grad_enabled()
            _set(mode)
            try:
                return fn(*args, **kwargs)
            finally:
                _set(prev)
        return wrapper

    def clone(self):
        return type(self)()


class no_grad(_GradModeContext):
    """Disables recording: results of ops do not require grad (context or decorator)."""
    mode = False

    def __new__(cls, orig_func=None):
        # `@no_grad` without parentheses: PyTorch accepts it too
        self = super().__new__(cls)
        if callable(orig_func):
            return self(orig_func)
        return self

    def __init__(self, orig_func=None):
        pass


class enable_grad(_GradModeContext):
    """Enables recording inside a no_grad region (context or decorator)."""
    mode = True

    def __new__(cls, orig_func=None):
        self = super().__new__(cls)
        if callable(orig_func):
            return self(orig_func)
        return self

    def __init__(self, orig_func=None):
        pass


class set_grad_enabled(_GradModeContext):
    """set_grad_enabled(mode): switches now; as a context, restores the old mode on exit."""

    def __init__(self, mode: bool):
        self.prev = is_grad_enabled()
        self.mode = bool(mode)
        _set(self.mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set(self.prev)
        return False

    def __call__(self, fn):
        _set(self.prev)          # as a decorator it must not switch the mode at definition
        return super().__call__(fn)

    def clone(self):
        return set_grad_enabled(self.mode)


class inference_mode(no_grad):
    """Treated as no_grad: gradjit has no separate inference tensors."""

    def __new__(cls, mode=True):
        self = _GradModeContext.__new__(cls)
        if callable(mode):
            return self(mode)
        self.mode = not bool(mode)
        return self

    def __init__(self, mode=True):
        pass
