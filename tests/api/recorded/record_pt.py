"""Writes the PyTorch-saved fixtures of tests/api/test_save_load.py with real PyTorch 2.13
(not run by the suite):
    /tmp/torchvenv/bin/python tests/api/recorded/record_pt.py
-> tests/api/recorded/pt/{linear_bn.pt, optimizer.pt, tensors.pt, expected.json}
"""
import json
from pathlib import Path

import torch

OUT = Path(__file__).parent / "pt"
OUT.mkdir(exist_ok=True)
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
model(torch.randn(4, 3)).sum().backward()
opt = torch.optim.Adam(model.parameters(), lr=0.01)
opt.step()
torch.save(model.state_dict(), OUT / "linear_bn.pt")
torch.save(opt.state_dict(), OUT / "optimizer.pt")
base = torch.arange(12, dtype=torch.float64).reshape(3, 4)
tensors = {"view": base[1:, ::2], "base": base, "ints": torch.tensor([1, -2, 3]),
           "half": torch.tensor([0.5, 1.5], dtype=torch.float16), "flag": torch.tensor(True),
           "param": torch.nn.Parameter(torch.tensor([1.0, 2.0])),
           "nested": [1, 2.5, "x", None, (3, 4)]}
torch.save(tensors, OUT / "tensors.pt")


def plain(v):
    if torch.is_tensor(v):
        return {"value": v.tolist(), "dtype": str(v.dtype), "shape": list(v.shape),
                "requires_grad": v.requires_grad}
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


expected = {"linear_bn": plain(model.state_dict()), "optimizer": plain(opt.state_dict()),
            "tensors": plain(tensors)}
(OUT / "expected.json").write_text(json.dumps(expected, indent=1))
