"""Where every program of the imperative front (realisations, backward passes, the bounded
tier's small programs) runs: through the pipeline, one place to observe them (the tests count
compiles this way)."""
from __future__ import annotations

import weakref

import numpy as np

from tracer import pipeline
from tracer.lift_slices import lift_input_slices

# Function -> its Executable, for Function objects run again (a replayed backward program,
# tracer/autograd/replay.py): skips the pipeline's structural key of the whole program
_EXECUTABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def run_function(fn, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """fn run on arrays (lists of results), compiled once per Function object."""
    fn, arrays = lift_input_slices(fn, arrays)     # input slice offsets as data
    if not pipeline.plain_native():
        return pipeline.run(fn, arrays)
    exe = _EXECUTABLES.get(fn)
    if exe is None:
        exe = _EXECUTABLES[fn] = pipeline.compile_function(fn)
    return exe(*arrays)


def executable_of(fn):
    """The Executable run_function calls straight for fn, or None when it would do more
    (settings other than plain native code, input slices to lift). A caller that keeps
    it calls it only while pipeline.plain_native() holds (the settings can change)."""
    if not pipeline.plain_native() or lift_input_slices(fn, [])[0] is not fn:
        return None
    exe = _EXECUTABLES.get(fn)
    if exe is None:
        exe = _EXECUTABLES[fn] = pipeline.compile_function(fn)
    return exe
