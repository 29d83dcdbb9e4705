"""The one compile pipeline both fronts use: optimise, compile (cached by structure), run.

Two keys find an already compiled Function. `compact_key` is nested tuples of the types, op
names, parameters and wiring (no names, no locations): building and hashing it is several
times cheaper than printing, which matters to the imperative front, whose training loop cuts
a fresh Function every step. `structural_key` is the canonical printed text, exact by
construction: a compact-key miss looks there before compiling, so two spellings of one
structure (op params in another order, say) still share one Executable.

`plain_native()` is the per-call check that GRADJIT_BACKEND and GRADJIT_LOG ask for nothing
special, cheap enough for the hot path of a cached call.
"""
from __future__ import annotations

import os

import numpy as np

from ir import Function
from ir.interpret import interpret
from ir.passes import optimize
from ir.printer import print_function

_by_text: dict[str, object] = {}
_by_compact: dict[tuple, object] = {}
_COMPACT_LIMIT = 4096            # the imperative front can make many one-off structures


def structural_key(fn: Function) -> str:
    """The canonical text of fn (no names, no locations): equal structure, equal key."""
    return print_function(fn, locs=False, hints=False)


def compact_key(fn: Function) -> tuple:
    """fn's structure as nested tuples: equal keys mean equal canonical text."""
    index = {v: i for i, v in enumerate(fn.params)}
    parts = [tuple([p.type for p in fn.params])]
    append = parts.append
    for op in fn.body:
        params = tuple([(k, _freeze(v)) for k, v in op.params.items()]) if op.params else ()
        regions = tuple([compact_key(r) for r in op.regions]) if op.regions else ()
        append((op.prim.name, tuple([index[v] for v in op.inputs]), params,
                tuple([r.type for r in op.results]), regions))
        for r in op.results:
            index[r] = len(index)
    append(tuple([index[r] for r in fn.results]))
    return tuple(parts)


def _freeze(v):
    """A hashable stand-in for a param value that tells apart what the printer tells apart:
    1 from 1.0 from True, and 0.0 from -0.0 (equal and equally hashed in Python)."""
    t = type(v)
    if t is int or t is str or t is bool or v is None:
        return (t, v)
    if t is float:
        return v.hex()
    if t is tuple and all(type(x) is int for x in v):
        return v                 # the common case (axes, shapes): nothing else freezes to it
    if t is tuple or t is list:
        return (t, tuple([_freeze(x) for x in v]))
    if t is dict:
        return (dict, tuple([(k, _freeze(x)) for k, x in v.items()]))
    if isinstance(v, np.ndarray):
        return (np.ndarray, v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, np.generic):
        return (type(v), v.tobytes())
    return (t, repr(v))


def compile_function(fn: Function, optimized: bool = False):
    """The Executable for fn, compiled on first sight of its structure.

    Args:
        optimized: fn is the output of ir.passes.optimize already (which is idempotent:
            it runs to a fixed point), so it is not optimised again.
    """
    key = compact_key(fn)
    exe = _by_compact.get(key)
    if exe is None:
        text = structural_key(fn)
        exe = _by_text.get(text)
        if exe is None:
            import runtime  # NOTE: late: runtime loads llvmlite, `import tracer` does not
            exe = runtime.compile(fn if optimized else optimize(fn))
            _by_text[text] = exe
        if len(_by_compact) >= _COMPACT_LIMIT:
            _by_compact.clear()
        _by_compact[key] = exe
    return exe


def run(fn: Function, arrays: list[np.ndarray]) -> list[np.ndarray]:
    if os.environ.get("GRADJIT_BACKEND") == "interpret":
        return interpret(fn, *arrays)
    return compile_function(fn)(*arrays)


def clear_cache():
    """Forgets every compiled function (the runtime's caches are cleared separately)."""
    _by_text.clear()
    _by_compact.clear()


# NOTE: os.environ.get costs ~0.4 us (key encoding, Mapping machinery); a lookup in the
# dict os.environ keeps in step with the real environment costs ~40 ns
try:
    _ENV = os.environ._data
    _BACKEND, _LOG = os.environ.encodekey("GRADJIT_BACKEND"), os.environ.encodekey("GRADJIT_LOG")
    _PLAIN_BACKEND = {None, os.environ.encodevalue(""), os.environ.encodevalue("native")}
    _PLAIN_LOG = {None, os.environ.encodevalue(""), os.environ.encodevalue("0")}
except AttributeError:           # not CPython's os.environ
    _ENV = None


def plain_native() -> bool:
    """True when the environment asks for the default: native code, no logging."""
    if _ENV is None:
        return (os.environ.get("GRADJIT_BACKEND", "") in ("", "native")
                and os.environ.get("GRADJIT_LOG", "") in ("", "0"))
    return _ENV.get(_BACKEND) in _PLAIN_BACKEND and _ENV.get(_LOG) in _PLAIN_LOG
