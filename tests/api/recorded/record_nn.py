"""Records tests/api/recorded/nn.json from real PyTorch 2.13 (not run by the suite):
    /tmp/torchvenv/bin/python tests/api/recorded/record_nn.py
The cases live in tests/api/nn_cases.py, which the tests run under gradjit."""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))
from tests.api.nn_cases import CASES, run_case  # noqa: E402
from tests.api.nn_cases_text import ERRORS, REPRS, run_error  # noqa: E402

out = {"torch": torch.__version__, "cases": {}, "errors": {}, "reprs": {}}
for name, c in CASES.items():
    torch.manual_seed(0)
    out["cases"][name] = run_case(torch, c)
out["reprs"] = {name: repr(make(torch)) for name, make in REPRS.items()}
for name in ERRORS:
    out["errors"][name] = run_error(torch, name)


def rounded(v):
    """12 significant digits: far below the tests' tolerance, a third of the file size."""
    if isinstance(v, float):
        return float(f"{v:.12g}")
    if isinstance(v, list):
        return [rounded(x) for x in v]
    if isinstance(v, dict):
        return {k: rounded(x) for k, x in v.items()}
    return v


out = rounded(out)
path = os.path.join(os.path.dirname(__file__), "nn.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
print(f"wrote {len(out['cases'])} cases and {len(out['errors'])} errors to {path}")
