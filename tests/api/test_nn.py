"""nn: Module bookkeeping, layers, losses, init; printed layouts are PyTorch's (torch 2.13)."""

import copy
import math
from collections import OrderedDict

import numpy as np
import pytest

import gradjit as gj


def leaf(data, dtype=None):
    return gj.tensor(data, dtype=dtype, requires_grad=True)


nn = gj.nn
F = gj.nn.functional


def values(t) -> np.ndarray:
    return np.array(t.tolist(), dtype=np.float64)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        self.scale = nn.Parameter(gj.tensor(2.0))
        self.register_buffer("offset", gj.tensor([0.5, -0.5]))
        self.note = "plain attributes stay attributes"

    def forward(self, x):
        return self.body(x) * self.scale + self.offset


def test_registration_and_traversal_order():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"]
    assert [n for n, _ in net.named_buffers()] == ["offset"]
    assert [n for n, _ in net.named_modules()] == ["", "body", "body.0", "body.1", "body.2"]
    assert len(list(net.children())) == 1 and net.note.startswith("plain")
    assert all(p.requires_grad and p.is_leaf for p in net.parameters())


def test_shared_parameter_is_listed_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.Tanh(), lin)
    assert len(list(seq.parameters())) == 2


def test_repr_layout_matches_pytorch():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1, bias=False), nn.Sigmoid(),
                          nn.Softmax(dim=1), nn.MSELoss(), nn.CrossEntropyLoss())
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=3, out_features=1, bias=False)\n"
        "  (3): Sigmoid()\n"
        "  (4): Softmax(dim=1)\n"
        "  (5): MSELoss()\n"
        "  (6): CrossEntropyLoss()\n"
        ")")
    nested = nn.Sequential(nn.Sequential(nn.Tanh()))
    assert repr(nested) == "Sequential(\n  (0): Sequential(\n    (0): Tanh()\n  )\n)"


def test_parameter_repr_and_type():
    p = nn.Parameter(gj.tensor([1.0, 2.5]))
    assert repr(p) == "Parameter containing:\ntensor([1.0000, 2.5000], requires_grad=True)"
    assert isinstance(p, gj.Tensor) and isinstance(p, nn.Parameter)
    assert type(p * 2) is gj.Tensor


def test_forward_and_backward_through_a_module():
    net = Net()
    x = gj.tensor([[1.0, -1.0, 0.5], [0.0, 2.0, 1.0]])
    out = net(x)
    w1, b1 = values(net.body[0].weight), values(net.body[0].bias)
    w2, b2 = values(net.body[2].weight), values(net.body[2].bias)
    h = np.maximum(values(x) @ w1.T + b1, 0)
    np.testing.assert_allclose(values(out), (h @ w2.T + b2) * 2 + [0.5, -0.5], rtol=1e-5,
                               atol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(net.scale.grad.item(), (h @ w2.T + b2).sum(), rtol=1e-5)
    assert net.body[0].weight.grad.shape == (4, 3)


def test_linear_default_init_bounds():
    gj.manual_seed(0)
    lin = nn.Linear(16, 64)
    bound = 1 / math.sqrt(16)       # kaiming_uniform_(a=sqrt(5)) and the bias rule agree
    for p in (lin.weight, lin.bias):
        v = values(p)
        assert np.all(np.abs(v) <= bound) and v.std() > bound / 3
    assert lin.weight.dtype == gj.float32


def test_linear_float64_and_1d_input():
    lin = nn.Linear(3, 2, dtype=gj.float64)
    assert lin.weight.dtype == gj.float64
    out = lin(gj.tensor([1.0, 2.0, 3.0], dtype=gj.float64))
    np.testing.assert_allclose(values(out), values(lin.weight) @ [1, 2, 3] + values(lin.bias))


def test_state_dict_round_trip_and_errors():
    a, b = Net(), Net()
    state = a.state_dict()
    # PyTorch's order (torch 2.13): a module's parameters, its buffers, then its children
    assert list(state) == ["scale", "offset", "body.0.weight", "body.0.bias", "body.2.weight",
                           "body.2.bias"]
    assert not state["scale"].requires_grad
    result = b.load_state_dict(state)
    assert repr(result) == "<All keys matched successfully>"
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert p.tolist() == q.tolist()
    assert b.body[0].weight.is_leaf and b.body[0].weight.requires_grad
    del state["offset"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "offset"'):
        b.load_state_dict(state)
    b.load_state_dict(state, strict=False)


def test_train_eval_and_dropout():
    model = nn.Sequential(nn.Dropout(0.5), nn.Identity())
    assert model.training and model[0].training
    model.eval()
    assert not model[0].training
    x = gj.ones(1000)
    assert model(x).tolist() == x.tolist()
    model.train()
    kept = values(model(x))
    assert set(np.unique(kept)) <= {0.0, 2.0} and 300 < (kept > 0).sum() < 700


def test_zero_grad_and_requires_grad_():
    net = Net()
    net(gj.ones(1, 3)).sum().backward()
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_assigning_a_plain_tensor_over_a_parameter_is_an_error():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign 'torch.FloatTensor' as parameter 'weight'"):
        lin.weight = gj.zeros(2, 2)


def test_deepcopy_of_a_module_copies_parameters():
    lin = nn.Linear(2, 2)
    twin = copy.deepcopy(lin)
    with gj.no_grad():
        twin.weight.add_(1)
    np.testing.assert_allclose(values(twin.weight), values(lin.weight) + 1, rtol=1e-6)
    assert isinstance(twin.weight, nn.Parameter) and twin.weight.requires_grad


def test_sequential_from_ordered_dict_indexing_and_slicing():
    seq = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert isinstance(seq.fc, nn.Linear) and isinstance(seq[-1], nn.Tanh)
    assert len(seq[:1]) == 1 and len(seq) == 2
    assert isinstance(nn.ModuleList([nn.ReLU(), nn.Tanh()])[1], nn.Tanh)


def _children(m) -> list:
    return [(k, type(v).__name__) for k, v in m.named_children()]


def test_sequential_edits_renumber_as_pytorch():
    """Each step's children recorded from torch 2.13.0 running the same edits."""
    s = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 1))
    s[0] = nn.Tanh()
    assert _children(s) == [("0", "Tanh"), ("1", "ReLU"), ("2", "Linear")]
    s[-1] = nn.Sigmoid()
    assert _children(s) == [("0", "Tanh"), ("1", "ReLU"), ("2", "Sigmoid")]
    del s[1]
    assert _children(s) == [("0", "Tanh"), ("1", "Sigmoid")]
    s.insert(1, nn.ReLU())
    s.insert(-1, nn.ELU())
    assert _children(s) == [("0", "Tanh"), ("1", "ReLU"), ("2", "ELU"), ("3", "Sigmoid")]
    s.extend([nn.Identity()])
    assert type(s.pop(0)).__name__ == "Tanh"
    assert _children(s) == [("0", "ReLU"), ("1", "ELU"), ("2", "Sigmoid"), ("3", "Identity")]
    del s[1:3]
    assert _children(s) == [("0", "ReLU"), ("1", "Identity")]
    for bad in (lambda: s[10], lambda: s.__setitem__(10, nn.ReLU()), lambda: s.__delitem__(10)):
        with pytest.raises(IndexError, match="^index 10 is out of range$"):
            bad()
    with pytest.raises(TypeError, match=r"^cannot assign 'int' as child module '0' "
                                        r"\(torch.nn.Module or None expected\)$"):
        s[0] = 3
    joined = nn.Sequential(nn.ReLU(), nn.Tanh()) + nn.Sequential(nn.ELU())
    assert isinstance(joined, nn.Sequential)
    assert _children(joined) == [("0", "ReLU"), ("1", "Tanh"), ("2", "ELU")]


def test_module_list_edits_renumber_as_pytorch():
    ml = nn.ModuleList([nn.Linear(1, 1), nn.ReLU(), nn.Tanh()])
    ml[0] = nn.ELU()
    ml[-1] = nn.Sigmoid()
    assert _children(ml) == [("0", "ELU"), ("1", "ReLU"), ("2", "Sigmoid")]
    del ml[0]
    ml.insert(0, nn.Identity())
    assert _children(ml) == [("0", "Identity"), ("1", "ReLU"), ("2", "Sigmoid")]
    assert type(ml.pop(1)).__name__ == "ReLU"
    ml += [nn.ReLU()]
    assert _children(ml) == [("0", "Identity"), ("1", "Sigmoid"), ("2", "ReLU")]
    with pytest.raises(IndexError, match="^index 10 is out of range$"):
        ml[10]
    assert _children(nn.ModuleList([nn.ReLU()]) + nn.ModuleList([nn.Tanh()])) == \
        [("0", "ReLU"), ("1", "Tanh")]


def test_a_replaced_parameter_or_child_keeps_its_place():
    lin = nn.Linear(2, 3)
    lin.weight = nn.Parameter(gj.zeros(3, 2))
    assert [n for n, _ in lin.named_parameters()] == ["weight", "bias"]   # as torch 2.13.0

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(gj.ones(1))
            self.b = nn.Linear(1, 1)
            self.c = nn.Parameter(gj.ones(1))

    net = Net()
    net.a = nn.Parameter(gj.zeros(1))
    net.b = nn.Linear(1, 1)
    assert [n for n, _ in net.named_parameters()] == ["a", "c", "b.weight", "b.bias"]
    seq = nn.Sequential(nn.ReLU(), nn.Tanh())
    seq.add_module("0", nn.ELU())
    assert _children(seq) == [("0", "ELU"), ("1", "Tanh")]
    params = list(net.parameters())
    del net.b
    assert len(list(net.parameters())) == len(params) - 2     # the cached list is renewed


def test_module_to_float64():
    lin = nn.Linear(2, 1).double()
    assert lin.weight.dtype == gj.float64 and lin.weight.is_leaf
    assert lin(gj.ones(1, 2, dtype=gj.float64)).dtype == gj.float64


LOSSES = [
    (nn.MSELoss(), F.mse_loss, "float"),
    (nn.MSELoss(reduction="sum"), lambda a, b: F.mse_loss(a, b, reduction="sum"), "float"),
    (nn.L1Loss(), F.l1_loss, "float"),
    (nn.CrossEntropyLoss(), F.cross_entropy, "class"),
    (nn.CrossEntropyLoss(label_smoothing=0.1),
     lambda a, b: F.cross_entropy(a, b, label_smoothing=0.1), "class"),
    (nn.NLLLoss(), lambda a, b: F.nll_loss(F.log_softmax(a, 1), b), "log"),
]


@pytest.mark.parametrize("module, fn, kind", LOSSES, ids=[repr(c[0]) + c[2] for c in LOSSES])
def test_loss_modules_equal_their_functions(module, fn, kind):
    pred = gj.tensor([[0.2, 1.5, -0.3], [1.0, 0.0, 2.0]])
    if kind == "float":
        target = gj.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
        got = module(pred, target)
    elif kind == "log":
        target = gj.tensor([1, 2])
        got = module(F.log_softmax(pred, 1), target)
    else:
        target = gj.tensor([1, 2])
        got = module(pred, target)
    np.testing.assert_allclose(got.item(), fn(pred, target).item(), rtol=1e-6)


def test_init_functions():
    gj.manual_seed(3)
    w = nn.Parameter(gj.empty(200, 100))
    nn.init.xavier_uniform_(w)
    a = math.sqrt(6 / 300)
    v = values(w)
    assert np.all(np.abs(v) <= a) and abs(v.std() - a / math.sqrt(3)) < 0.01
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(values(w).std() - math.sqrt(2 / 100)) < 0.01
    nn.init.zeros_(w)
    assert not values(w).any() and w.is_leaf and w.requires_grad
    nn.init.constant_(w, 0.25)
    assert set(np.unique(values(w))) == {0.25}
    assert nn.init.calculate_gain("tanh") == 5 / 3


# ---- Linear and the losses: values and gradients (torch 2.13.0) ------------------------------

def test_linear_parameters():
    lin = gj.nn.Linear(4, 3)
    shapes = [(name, tuple(p.shape)) for name, p in lin.named_parameters()]
    assert shapes == [("weight", (3, 4)), ("bias", (3,))]
    assert sum(int(np.prod(p.shape)) for p in lin.parameters()) == 15
    assert lin.weight.requires_grad and lin.weight.is_leaf
    assert repr(lin) == "Linear(in_features=4, out_features=3, bias=True)"
    no_bias = gj.nn.Linear(4, 3, bias=False)
    assert len(list(no_bias.parameters())) == 1 and no_bias.bias is None


def test_linear_forward_and_gradients():
    lin = gj.nn.Linear(4, 3)
    x = gj.tensor([[1.0, 2.0, 0.0, -1.0], [0.5, 0.0, 3.0, 1.0]])
    out = lin(x)
    assert tuple(out.shape) == (2, 3) and type(out.grad_fn).__name__ == "AddmmBackward0"
    w, b = values(lin.weight), values(lin.bias)
    np.testing.assert_allclose(values(out), values(x) @ w.T + b, rtol=1e-5, atol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(values(lin.weight.grad), np.tile(values(x).sum(0), (3, 1)))
    assert lin.bias.grad.tolist() == [2.0, 2.0, 2.0]


LOGITS = [[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]]


def test_cross_entropy_value_and_gradient():
    logits = leaf(LOGITS)
    loss = F.cross_entropy(logits, gj.tensor([1, 2]))
    loss.backward()
    np.testing.assert_allclose(loss.item(), 0.26757151, rtol=1e-6)
    np.testing.assert_allclose(values(logits.grad), [[0.11561194, -0.18573415, 0.07012219],
                                                     [0.02563180, 0.00853209, -0.03416389]],
                               rtol=1e-5, atol=1e-7)


def test_softmax_value_and_gradient():
    logits = leaf(LOGITS)
    probs = F.softmax(logits, dim=1)
    np.testing.assert_allclose(values(probs), [[0.23122390, 0.62853169, 0.14024438],
                                               [0.05126360, 0.01706417, 0.93167222]], rtol=1e-5)
    probs[:, 0].sum().backward()
    np.testing.assert_allclose(values(logits.grad), [[0.17775941, -0.14533155, -0.03242785],
                                                     [0.04863565, -0.00087477, -0.04776087]],
                               rtol=1e-5, atol=1e-7)


def test_log_softmax_value_and_gradient():
    logits = leaf(LOGITS)
    logp = F.log_softmax(logits, dim=1)
    np.testing.assert_allclose(values(logp), [[-1.46436882, -0.46436879, -1.96436882],
                                              [-2.97077441, -4.07077408, -0.07077423]], rtol=1e-5)
    (logp * gj.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])).sum().backward()
    np.testing.assert_allclose(values(logits.grad), [[0.76877612, -0.62853169, -0.14024438],
                                                     [-0.05126359, -0.01706417, 0.06832778]],
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("reduction, loss, grad", [
    ("mean", 1.5, [-1 / 3, 1 / 3, -4 / 3]),
    ("sum", 4.5, [-1.0, 1.0, -4.0]),
])
def test_mse_loss_value_and_gradient(reduction, loss, grad):
    pred = leaf([0.5, 1.5, -1.0])
    out = F.mse_loss(pred, gj.tensor([1.0, 1.0, 1.0]), reduction=reduction)
    out.backward()
    assert out.item() == loss
    np.testing.assert_allclose(values(pred.grad), grad, rtol=1e-6)


# ---- containers and state_dict ---------------------------------------------------------------

class NestedNet(gj.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = gj.nn.Linear(2, 3)
        self.seq = gj.nn.Sequential(gj.nn.Linear(3, 3), gj.nn.ReLU(),
                                       gj.nn.Linear(3, 1))

    def forward(self, x):
        return self.seq(self.l1(x))


def test_state_dict_round_trip():
    gj.manual_seed(0)
    m = NestedNet()
    sd = m.state_dict()
    assert list(sd) == ["l1.weight", "l1.bias", "seq.0.weight", "seq.0.bias",
                        "seq.2.weight", "seq.2.bias"]
    m2 = NestedNet()
    x = gj.ones(4, 2)
    assert not np.allclose(values(m(x)), values(m2(x)))
    m2.load_state_dict(sd)
    np.testing.assert_array_equal(values(m(x)), values(m2(x)))
    with gj.no_grad():
        m.l1.weight[0, 0] = 100.0
    assert sd["l1.weight"][0, 0].item() == 100.0          # state_dict aliases, as in torch


def test_module_dict_and_parameter_list_register_their_members():
    class M(gj.nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = gj.nn.ModuleDict({"a": gj.nn.Linear(2, 1), "b": gj.nn.ReLU()})
            self.scales = gj.nn.ParameterList([gj.ones(2), gj.nn.Parameter(gj.ones(1))])

        def forward(self, x):
            return self.heads["b"](self.heads["a"](x * self.scales[0])) * self.scales[1]

    m = M()
    assert [n for n, _ in m.named_parameters()] == ["heads.a.weight", "heads.a.bias",
                                                    "scales.0", "scales.1"]
    assert list(m.heads) == ["a", "b"] and "a" in m.heads and len(m.scales) == 2
    m(gj.ones(3, 2)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    assert list(m.state_dict()) == ["heads.a.weight", "heads.a.bias", "scales.0", "scales.1"]


def test_load_state_dict_reports_every_problem_as_pytorch_does():
    lin = gj.nn.Linear(2, 2)
    with pytest.raises(RuntimeError) as info:
        lin.load_state_dict({"weight": gj.zeros(3, 2), "extra": gj.zeros(1)})
    assert str(info.value) == (
        'Error(s) in loading state_dict for Linear:\n\tMissing key(s) in state_dict: "bias". '
        '\n\tUnexpected key(s) in state_dict: "extra". \n\tsize mismatch for weight: copying a '
        "param with shape torch.Size([3, 2]) from checkpoint, the shape in current model is "
        "torch.Size([2, 2]).")
    before = values(lin.weight).copy()
    with pytest.raises(RuntimeError, match=r"Linear:\n\tsize mismatch for weight"):
        lin.load_state_dict({"weight": gj.zeros(3, 2), "bias": gj.zeros(2)}, strict=False)
    np.testing.assert_array_equal(values(lin.weight), before)        # nothing was loaded
    keys = lin.load_state_dict({"weight": gj.ones(2, 2)}, strict=False)
    assert keys.missing_keys == ["bias"] and values(lin.weight).tolist() == [[1, 1], [1, 1]]
