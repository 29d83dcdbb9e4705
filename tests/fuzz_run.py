"""Running a tests/fuzz_programs.py program against a `torch` module (PyTorch or gradjit):
the data it draws, and what it records. Only the standard library and NumPy."""
from __future__ import annotations

import traceback

import numpy as np

BOOL, I64 = "bool", "int64"


def data(seed: int):
    """D(slot, it, shape, dtype) and I(slot, it, n, bound): the same exact values under any
    interpreter (small multiples of 1/8 drawn with NumPy's integer stream)."""
    def make(slot, it, shape, dtype):
        g = np.random.default_rng([seed, slot, it + 1])
        if dtype == BOOL:
            return g.integers(0, 2, size=shape).astype(bool)
        vals = g.integers(-16, 17, size=shape)
        return vals if dtype == I64 else (vals / 8.0).astype(dtype)

    def index(slot, it, n, bound, distinct=False):
        """n indices in [-bound, bound); distinct: of n different positions (an index write
        with a repeated position is undefined in PyTorch: its gradient differs, compat.md)."""
        g = np.random.default_rng([seed, slot, it + 1])
        if not distinct:
            return g.integers(-bound, bound, size=n).tolist()
        where = g.choice(bound, size=n, replace=False)
        return (where - bound * g.integers(0, 2, size=n)).tolist()
    return make, index


def snapshot(x, torch):
    """A comparable copy of a recorded value."""
    if isinstance(x, torch.Tensor):
        return ("tensor", str(x.dtype).replace("torch.", ""), tuple(x.shape),
                x.detach().numpy().copy(), bool(x.requires_grad))
    if isinstance(x, np.ndarray):
        return ("ndarray", str(x.dtype), x.shape, x.copy())
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [snapshot(e, torch) for e in x])
    if isinstance(x, Exception):     # compared by class: PyTorch's must be among its bases
        return ("error", [c.__name__ for c in type(x).__mro__])
    return ("py", type(x).__name__, x)


def run(source: str, torch, seed: int, filename: str = "<fuzz>") -> dict:
    """Every rec(...) of the program as (tag, snapshot), and the uncaught exception's class,
    line and message if one ended it."""
    records = []
    make, index = data(seed)
    env = {"torch": torch, "D": make, "I": index, "np": np,
           "rec": lambda tag, x: records.append((tag, snapshot(x, torch)))}
    error = None
    try:
        exec(compile(source, filename, "exec"), env)
    except Exception as e:     # recorded, compared by class
        line = next((f.lineno for f in reversed(traceback.extract_tb(e.__traceback__))
                     if f.filename == filename), None)
        error = ([c.__name__ for c in type(e).__mro__], line,
                 str(e).splitlines()[0] if str(e) else "")
    return {"records": records, "error": error}
