"""Records tests/api/recorded/nan_select_ops.json from real PyTorch 2.13 (not run by the suite):
    PYTHONPATH=. /tmp/torchvenv/bin/python tests/api/recorded/record_nan_select.py \
        > tests/api/recorded/nan_select_ops.json
"""
import json

import torch

from tests.api.recorded.nan_cases import X, cases

out = {"_source": "torch 2.13.0, float64; value of f(x) and the gradient of f(x).sum()"}
for name, fn in cases(torch, torch.nn.functional).items():
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    y = fn(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    out[name] = {"value": [repr(v) for v in y.tolist()], "grad": [repr(v) for v in g.tolist()]}
print(json.dumps(out, indent=0))
