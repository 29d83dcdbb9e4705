"""The shapes generated code can index: every linear index and byte offset is an i64.

Loops, linear indices and pointer offsets are 64-bit everywhere in codegen, so any tensor
whose bytes fit in 2^63 is indexed exactly (a broadcast view of 2^40 elements, say). A
larger shape (which only a broadcast or iota can produce: it could never be allocated)
would wrap those offsets and compute wrong numbers silently, so it is refused before any
code is emitted, with an error naming the value, its shape and the user's line.
"""
from __future__ import annotations

from ir.core import Function

INDEX_BITS = 64
MAX_BYTES = 1 << (INDEX_BITS - 1)       # byte offsets are signed i64


class IndexRangeError(ValueError):
    """A shape whose byte size does not fit the 64-bit index type of generated code."""


def check_index_range(fn: Function):
    """Raises IndexRangeError if a parameter or a value computed in fn (regions included)
    has MAX_BYTES bytes or more."""
    stack = [fn]
    while stack:
        f = stack.pop()
        for p in f.params:
            _check(p.type, f"parameter of @{f.name}", None)
        for op in f.body:
            for r in op.results:
                _check(r.type, f"result of {op.prim.name}", op.loc)
            stack.extend(op.regions)


def _check(t, what: str, loc):
    size = 1
    for d in t.shape:
        size *= d
    if size * t.np_dtype.itemsize >= MAX_BYTES:
        where = f" (at {loc})" if loc else ""
        raise IndexRangeError(
            f"shape {t} ({what}{where}) has {size} elements of {t.np_dtype.itemsize} bytes: "
            f"its byte offsets would overflow the {INDEX_BITS}-bit signed index type of "
            f"gradjit's generated code (limit: 2^63 bytes)")
