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


def _user_frame():
    """The innermost stack frame outside gradjit's own packages, or None."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_OWN_DIRS) and not filename.startswith("<frozen"):
            return frame
        frame = frame.f_back
    return None


def user_location() -> str | None:
    """'file.py:line' of the user's innermost frame (stamped on IR ops), or None."""
    frame = _user_frame()
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}" if frame else None


def user_frame_path() -> str | None:
    """Full 'path:line' of the user's frame, for error messages that should be clickable."""
    frame = _user_frame()
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else None
