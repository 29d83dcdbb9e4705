"""The debug_print primitive's run-time side: formatting the values it is handed.

`debug_print(*xs) {fmt, names, batch_dims}` returns its operands unchanged and, when it runs,
prints `fmt.format(*positional, **dict(zip(names, keyword)))` (the last len(names) operands
are the keyword ones), as jax.debug.print does. batch_dims > 0 (after vmap) prints once per
element of the leading batch axes. The interpreter calls `emit` directly; native code calls
the runtime's callback (runtime/debug_callback.py) with `spec(...)` and its buffers.
"""
from __future__ import annotations

import json
import sys

import numpy as np


def emit(fmt: str, names, batch_dims: int, arrays) -> None:
    """Prints the formatted values (once per batch element) to sys.stdout."""
    arrays = [np.asarray(a) for a in arrays]
    batch = arrays[0].shape[:batch_dims] if arrays and batch_dims else ()
    for index in np.ndindex(*batch):
        values = [a[index] for a in arrays]
        print(render(fmt, names, values), file=sys.stdout, flush=True)


def render(fmt: str, names, values) -> str:
    k = len(values) - len(names)
    return fmt.format(*values[:k], **dict(zip(names, values[k:])))


def spec(fmt: str, names, batch_dims: int, types) -> str:
    """What native code hands the callback: the format and the operands' types, as JSON."""
    return json.dumps({"fmt": fmt, "names": list(names), "batch_dims": batch_dims,
                       "types": [[t.dtype, list(t.shape)] for t in types]})
