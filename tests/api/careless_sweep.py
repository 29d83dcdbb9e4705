"""Runs the careless programs of careless_cases.py and reduces each outcome to plain JSON:
the values left in `out` (tensors as dtype, shape and numbers) or the exception's class and
the first line of its text. Run as a script to print the outcomes as JSON:

    PYTHONPATH=$PWD /tmp/refvenv/bin/python -m tests.api.careless_sweep --torch \
        > tests/api/recorded/careless.json        # PyTorch 2.13's outcomes
    PYTHONPATH=$PWD /work/venv/bin/python -m tests.api.careless_sweep --diff
        # gradjit's outcomes against the recorded ones: one line per difference
"""
import importlib
import json
import math
import os
import re
import sys
import tempfile
import warnings

import numpy as np

from tests.api.careless_cases import CASES

# gradjit names the user's line at the end of an error's first line: " (at file.py:3)"
AT_USER_LINE = re.compile(r" \(at [^()]*:\d+\)$")
RECORDED = os.path.join(os.path.dirname(__file__), "recorded", "careless.json")


def plain(value, torch):
    """`value` as JSON: tensors as {dtype, shape, values}, other objects by type name."""
    if isinstance(value, torch.Tensor):
        values = value.detach().double().reshape(-1).tolist() if value.numel() else []
        return {"dtype": str(value.dtype), "shape": list(value.shape), "values": values}
    if isinstance(value, (list, tuple)):
        return [plain(v, torch) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v, torch) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist()}
    return "<%s>" % type(value).__name__


def outcome(source, torch):
    """The outcome of one careless program: ["ok", values] or ["raise", class, first line]."""
    scope = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional, "np": np}
    with tempfile.TemporaryDirectory() as tmp:
        scope["tmp"] = tmp
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(source, "careless_program.py", "exec"), scope)
            return ["ok", plain(scope.get("out"), torch)]
        except Exception as e:              # the outcome under test
            lines = str(e).replace(tmp, "TMP").strip().splitlines()
            first = AT_USER_LINE.sub("", lines[0]) if lines else ""
            return ["raise", [c.__name__ for c in type(e).__mro__[:-3]], first]


def close(got, want):
    """Outcomes equal: numbers to 1e-5 (nan to nan), all else exactly; an exception of a
    subclass of PyTorch's class (gradjit's ShapeError is a RuntimeError) passes."""
    if len(want) == 3 and want[0] == got[0] == "raise":
        return want[1][0] in got[1] and got[2] == want[2]
    return _close(got, want)


def _close(got, want):
    if got == want:
        return True
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return abs(got - want) <= 1e-5 * max(1.0, abs(want))
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_close(g, w) for g, w in zip(got, want))
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(_close(got[k], want[k]) for k in want)
    return got == want


def main(argv):
    torch = importlib.import_module("torch" if "--torch" in argv else "gradjit")
    got = {name: outcome(source, torch) for name, source in CASES.items()}
    if "--diff" not in argv:
        json.dump(got, sys.stdout, indent=1, sort_keys=True)
        return
    with open(RECORDED) as f:
        want = json.load(f)
    for name in CASES:
        if not close(got[name], want[name]):
            print(f"{name}:\n  gradjit {got[name]}\n  pytorch {want[name]}")


if __name__ == "__main__":
    main(sys.argv[1:])
