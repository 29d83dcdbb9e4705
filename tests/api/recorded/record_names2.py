"""Records tests/api/recorded/names2.json from real PyTorch 2.13 (not run by the suite):
    PYTHONPATH=. /tmp/refvenv/bin/python tests/api/recorded/record_names2.py \
        > tests/api/recorded/names2.json
"""
import json
import warnings

import torch
import torch.nn.functional as F

from tests.api.recorded.names2_cases import grad_cases, value_cases, x_grad

warnings.simplefilter("ignore")       # (scatter's reduce= deprecation warning)
out = {"_source": "torch 2.13.0: value/dtype or error of each case; for the gradient cases "
                  "the value, grad_fn name and gradient of (f(x) * weights).sum()"}
for name, fn in value_cases(torch).items():
    try:
        y = fn()
        out[name] = {"value": y.tolist(), "dtype": str(y.dtype).replace("torch.", "")}
    except Exception as e:          # noqa: BLE001  (the recorded error is the point)
        out[name] = {"error": [type(e).__name__, str(e)]}
for name, fn in grad_cases(torch, F).items():
    x = x_grad(torch).requires_grad_()
    y = fn(x)
    w = torch.arange(1.0, y.numel() + 1.0, dtype=y.dtype).reshape(y.shape)
    case = out["grad_" + name] = {"value": y.tolist(), "grad_fn": type(y.grad_fn).__name__}
    try:
        case["grad"] = torch.autograd.grad((y * w).sum(), x)[0].tolist()
    except RuntimeError as e:       # (scatter's reduce=: PyTorch has no derivative)
        case["grad_error"] = str(e)
print(json.dumps(out, indent=0))
