"""The one compile pipeline both fronts use: optimise, compile (cached by structure), run."""
from __future__ import annotations

import os

import numpy as np

from ir import Function
from ir.printer import print_function

_executables: dict[str, object] = {}


def structural_key(fn: Function) -> str:
    """The canonical text of fn (no names, no locations): equal structure, equal key."""
    return print_function(fn, locs=False, hints=False)


def compile_function(fn: Function):
    """The Executable for fn, compiled on first sight of its structure."""
    import runtime
    from ir.passes import optimize
    key = structural_key(fn)
    exe = _executables.get(key)
    if exe is None:
        exe = runtime.compile(optimize(fn))
        _executables[key] = exe
    return exe


def run(fn: Function, arrays: list[np.ndarray]) -> list[np.ndarray]:
    if os.environ.get("GRADJIT_BACKEND") == "interpret":
        from ir.interpret import interpret
        return interpret(fn, *arrays)
    return compile_function(fn)(*arrays)


def clear_cache():
    """Forgets every compiled function (the runtime's caches are cleared separately)."""
    _executables.clear()
