"""Errors raised while tracing, and where in the user's code they come from."""
from __future__ import annotations

import os
import sys
import warnings

# Frames inside these packages are gradjit's own; the first frame outside them is the user's.
_OWN_DIRS = tuple(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), pkg) + os.sep
    for pkg in ("tracer", "ir", "codegen", "runtime", "gradjit"))


class TracerError(Exception):
    """Python code asked for the data of a traced value (e.g. `if x > 0:` under @jit)."""


# id(code object) -> (the code object, None for gradjit's own code, else a dict: instruction
# offset -> "file.py:line"). This walk runs once per recorded user op. NOTE: keyed by id (a
# code object's hash reads its name, bytecode and constants each time), and the line found
# once per call site: Python 3.11 computes f_lineno by scanning the code's line table from
# its start (3.5 us for a call low in a long module). The entry holds the code object, so
# its id is not reused while it is in the table.
_CODES: dict = {}


def _code_entry(code) -> tuple:
    hit = _CODES.get(id(code))
    if hit is None or hit[0] is not code:
        if len(_CODES) >= 65536:             # code made by exec/eval in a loop: stay bounded
            _CODES.clear()
        filename = code.co_filename
        own = filename.startswith(_OWN_DIRS) or filename.startswith("<frozen")
        hit = _CODES[id(code)] = (code, None if own else {None: os.path.basename(filename)})
    return hit


def _user_frame():
    """The innermost stack frame outside gradjit's own packages, or None."""
    frame = sys._getframe(2)
    while frame is not None and _code_entry(frame.f_code)[1] is None:
        frame = frame.f_back
    return frame


def user_location(depth: int = 2) -> str | None:
    """'file.py:line' of the user's innermost frame (stamped on IR ops), or None. The walk
    starts `depth` frames up (2: the caller's caller; the caller is always gradjit's own)."""
    frame = sys._getframe(depth)
    while frame is not None:
        code = frame.f_code
        hit = _CODES.get(id(code))
        if hit is None or hit[0] is not code:
            hit = _code_entry(code)
        lines = hit[1]
        if lines is not None:
            lasti = frame.f_lasti
            loc = lines.get(lasti)
            if loc is None:
                loc = lines[lasti] = f"{lines[None]}:{frame.f_lineno}"
            return loc
        frame = frame.f_back
    return None


def user_site(frame) -> tuple | None:
    """(codes of gradjit's own frames from `frame` outwards, the user's frame's code, its
    f_lasti, 'file.py:line') for the walk user_location does from `frame`, or None. A caller
    that meets the same codes and f_lasti again finds the same user line without the walk's
    dict lookups (step_follow: a followed call's site)."""
    own = []
    while frame is not None:
        code = frame.f_code
        lines = _code_entry(code)[1]
        if lines is not None:
            lasti = frame.f_lasti
            loc = lines.get(lasti)
            if loc is None:
                loc = lines[lasti] = f"{lines[None]}:{frame.f_lineno}"
            return tuple(own), code, lasti, loc
        own.append(code)
        frame = frame.f_back
    return None


def user_frame_path() -> str | None:
    """Full 'path:line' of the user's frame, for error messages that should be clickable."""
    frame = _user_frame()
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else None


def warn_at_user(message: str, category=UserWarning):
    """warnings.warn naming the user's line, from any depth inside gradjit (an op's body runs
    at one depth on its first call and another when its template is learned or replayed)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and _code_entry(frame.f_code)[1] is None:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1 if frame is not None else 2)
