"""The one compile pipeline both fronts use: optimise, compile (cached by structure), run.

The cache, its keys and the backend choice (GRADJIT_BACKEND) are the runtime's
(runtime/compile_cache.py, runtime.compile); a Function is optimised only when its structure
is new. `plain_native()` (runtime.config's) is the per-call check that the settings ask for
nothing special (native code, no logging), cheap enough for the hot path of a cached call;
`current()` is the check of the slower paths that keep an Executable between calls.
"""
from __future__ import annotations

import numpy as np

import runtime
from ir import Function
from runtime import config
from runtime.compile_cache import compact_key, structural_key  # noqa: F401 (tracer's keys)
from runtime.config import plain_native  # noqa: F401 (the tracer's hot paths ask here)


def compile_function(fn: Function, optimized: bool = False):
    """The Executable for fn, compiled on first sight of its structure.

    Args:
        optimized: fn is the output of ir.passes.optimize already (which is idempotent:
            it runs to a fixed point), so it is not optimised again.
    """
    return runtime.compile(fn, optimize=not optimized)


def current(exe, fn: Function, optimized: bool = False):
    """exe when it runs on the configured backend, else fn's Executable for that backend."""
    if exe is not None and exe.backend == config.backend():
        return exe
    return compile_function(fn, optimized)


def run(fn: Function, arrays: list[np.ndarray]) -> list[np.ndarray]:
    return compile_function(fn)(*arrays)


def clear_cache():
    """Forgets every compiled function (the runtime's one memory cache)."""
    runtime.clear_cache()
