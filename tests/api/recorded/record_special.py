"""Records tests/api/recorded/special_ops.json from real PyTorch 2.13 (not run by the suite):
    PYTHONPATH=. /tmp/torchvenv/bin/python tests/api/recorded/record_special.py \
        > tests/api/recorded/special_ops.json
"""
import json

import torch

from tests.api.recorded.special_cases import cases

out = {"_source": "torch 2.13.0, float64; value of f(x) and the gradient of f(x).sum()"}
for name, (inputs, fn) in cases(torch).items():
    x = torch.tensor(inputs, dtype=torch.float64, requires_grad=True)
    y = fn(x)
    (g,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    out[name] = {"x": [repr(v) for v in inputs], "value": [repr(v) for v in y.tolist()],
                 "grad": [repr(v) for v in g.tolist()]}
print(json.dumps(out, indent=0))
