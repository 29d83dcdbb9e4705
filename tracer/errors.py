"""Errors raised while tracing, and where in the user's code they come from."""
from __future__ import annotations

import os
import sys

# Frames inside these packages are gradjit's own; the first frame outside them is the user's.
_OWN_DIRS = tuple(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), pkg) + os.sep
    for pkg in ("tracer", "ir", "codegen", "runtime", "gradjit"))


class TracerError(Exception):
    """Python code asked for the data of a traced value (e.g. `if x > 0:` under @jit)."""


# code object -> None for gradjit's own code, else the basename of its file: one dict
# lookup per frame instead of string tests (this walk runs once per recorded user op)
_CODE_NAMES: dict = {}


def _code_name(code) -> str | None:
    name = _CODE_NAMES.get(code, False)
    if name is False:
        if len(_CODE_NAMES) >= 65536:        # code made by exec/eval in a loop: stay bounded
            _CODE_NAMES.clear()
        filename = code.co_filename
        own = filename.startswith(_OWN_DIRS) or filename.startswith("<frozen")
        name = _CODE_NAMES[code] = None if own else os.path.basename(filename)
    return name


def _user_frame():
    """The innermost stack frame outside gradjit's own packages, or None."""
    frame = sys._getframe(2)
    while frame is not None and _code_name(frame.f_code) is None:
        frame = frame.f_back
    return frame


def user_location() -> str | None:
    """'file.py:line' of the user's innermost frame (stamped on IR ops), or None."""
    frame = sys._getframe(1)
    while frame is not None:
        name = _CODE_NAMES.get(frame.f_code, False)
        if name is False:
            name = _code_name(frame.f_code)
        if name is not None:
            return f"{name}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def user_frame_path() -> str | None:
    """Full 'path:line' of the user's frame, for error messages that should be clickable."""
    frame = _user_frame()
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else None
