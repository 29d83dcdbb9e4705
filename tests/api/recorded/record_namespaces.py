"""Records tests/api/recorded/namespaces.json from real PyTorch 2.13 (not run by the suite):
    python tests/api/recorded/record_namespaces.py > tests/api/recorded/namespaces.json
"""
import torch
import json
out = {}
w = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], requires_grad=True)
b = torch.tensor([0.1, -0.2], requires_grad=True)
x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0], [0.0, 1.0, -1.0], [2.0, -2.0, 1.0]])
loss = ((x @ w.T + b) ** 2).sum()
loss.backward()
total = torch.nn.utils.clip_grad_norm_([w, b], 5.0)
out["clip_total"] = total.item(); out["clip_w"] = w.grad.tolist(); out["clip_b"] = b.grad.tolist()
w.grad = None; b.grad = None
((x @ w.T + b) ** 2).sum().backward()
total = torch.nn.utils.clip_grad_norm_([w, b], 5.0, norm_type=float("inf"))
out["clip_inf_total"] = total.item(); out["clip_inf_w"] = w.grad.tolist()
torch.nn.utils.clip_grad_value_([w, b], 3.0); out["clip_value_w"] = w.grad.tolist()
out["ptv"] = torch.nn.utils.parameters_to_vector([w, b]).tolist()
out["pad"] = torch.nn.utils.rnn.pad_sequence([torch.tensor([1., 2.]), torch.tensor([3., 4., 5.])], padding_value=-1).tolist()
xs = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
out["jac"] = torch.autograd.functional.jacobian(lambda a: a.sin() * a, xs).tolist()
ys = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
j = torch.autograd.functional.jacobian(lambda a, b: (a * b, a.exp() + b), (xs, ys))
out["jac_tt"] = [[t.tolist() for t in r] for r in j]
h = torch.autograd.functional.hessian(lambda a, b: (a * a * b).sum(), (xs, ys))
out["hess_tt"] = [[t.tolist() for t in r] for r in h]
o, v = torch.autograd.functional.hvp(lambda a: (a ** 3).sin().sum(), xs, torch.ones(3, dtype=torch.float64))
out["hvp"] = [o.item(), v.tolist()]
o, v = torch.autograd.functional.vjp(lambda a: a.exp(), xs, torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64))
out["vjp"] = [o.tolist(), v.tolist()]
o, v = torch.autograd.functional.jvp(lambda a, b: a * b, (xs, ys), (ys, xs))
out["jvp"] = [o.tolist(), v.tolist()]
class Bad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a): return a * 2
    @staticmethod
    def backward(ctx, g): return g * 3
try:
    torch.autograd.gradcheck(Bad.apply, (xs.clone().requires_grad_(),))
except Exception as e:
    out["gradcheck_err"] = [type(e).__name__, str(e).splitlines()[0], isinstance(e, RuntimeError)]
out["gradcheck_ok"] = torch.autograd.gradcheck(lambda a, b: (a * b).sin(), (xs.clone().requires_grad_(), ys.clone().requires_grad_()))
out["gradgradcheck_ok"] = torch.autograd.gradgradcheck(lambda a, b: (a * b).sin(), (xs.clone().requires_grad_(), ys.clone().requires_grad_()))
from torch.utils.data import TensorDataset, DataLoader, random_split
ds = TensorDataset(torch.arange(10.).reshape(10, 1), torch.arange(10))
out["dl_len"] = [len(DataLoader(ds, batch_size=4)), len(DataLoader(ds, batch_size=4, drop_last=True))]
out["dl_shapes"] = [[list(a.shape), list(b.shape)] for a, b in DataLoader(ds, batch_size=4)]
out["split_lens"] = [len(s) for s in random_split(range(10), [0.3, 0.3, 0.4])]
out["split_lens2"] = [len(s) for s in random_split(range(11), [0.5, 0.5])]
dl = DataLoader([{"a": torch.tensor(1.), "b": (1, 2.0)}, {"a": torch.tensor(2.), "b": (3, 4.0)}], batch_size=2)
batch = next(iter(dl))
out["collate_dict"] = [batch["a"].tolist(), [t.tolist() for t in batch["b"]], str(batch["b"][0].dtype), str(batch["b"][1].dtype)]
try:
    torch.nn.Conv3dd
except AttributeError as e:
    out["torch_attr_err"] = str(e)
m = torch.nn.Linear(3, 1)
with torch.no_grad():
    m.weight.copy_(torch.tensor([[1.0, 2.0, 3.0]])); m.bias.fill_(0.5)
p = {"weight": torch.tensor([[0.0, 1.0, 0.0]], requires_grad=True), "bias": torch.tensor([2.0])}
r = torch.func.functional_call(m, p, (torch.tensor([[1.0, 5.0, 7.0]]),))
r.sum().backward()
out["fcall"] = [r.tolist(), p["weight"].grad.tolist(), m.weight.tolist()]
v = torch.autograd.Variable(torch.ones(2), requires_grad=True)
out["variable"] = [type(v).__name__, v.requires_grad, isinstance(torch.ones(1), torch.autograd.Variable)]
print(json.dumps(out))
