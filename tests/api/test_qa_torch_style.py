"""QA: the PyTorch-style API used as a PyTorch user uses it (`import gradjit as torch`).

Expected values are hand-derived or NumPy re-implementations of PyTorch's formulas; printed
text was copied from real torch 2.13.0 for the same expressions.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradjit as torch


def values(t) -> np.ndarray:
    return np.asarray(t.detach())


# ---- hooks and retain_grad -----------------------------------------------------------------

def test_retained_grad_of_a_non_leaf_is_the_gradient_after_its_hooks():
    # PyTorch >= 2.0 runs retain_grad's hook last, whatever the registration order
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: g * 10)
    y.retain_grad()
    y.register_hook(lambda g: g + 1)
    (y ** 2).sum().backward()
    np.testing.assert_allclose(values(y.grad), 2 * 3 * np.array([1, 2]) * 10 + 1)
    np.testing.assert_allclose(values(x.grad), 3 * values(y.grad))


def test_autograd_grad_wrt_a_non_leaf_applies_its_hooks():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: g * 10)
    (g,) = torch.autograd.grad((y ** 2).sum(), y)
    np.testing.assert_allclose(values(g), 2 * values(y) * 10)
    z = x * 2
    z.retain_grad()
    z.register_hook(lambda g: g * 5)
    (z ** 2).sum().backward(inputs=[z])
    np.testing.assert_allclose(values(z.grad), 2 * values(z) * 5)
    assert x.grad is None


# ---- optimizers against NumPy re-implementations of PyTorch's formulas ------------------

def np_sgd(p, g, buf, lr, momentum, wd, nesterov):
    g = g + wd * p
    buf = g if buf is None else momentum * buf + g
    g = g + momentum * buf if nesterov else buf
    return p - lr * g, buf


def np_adamw(p, g, m, v, t, lr, wd, b1=0.9, b2=0.999, eps=1e-8):
    p = p * (1 - lr * wd)
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    return p - lr / (1 - b1 ** t) * m / (np.sqrt(v / (1 - b2 ** t)) + eps), m, v


X = np.array([[1.0, 2.0], [3.0, -1.0], [0.0, 1.0]])


def quad_loss_and_grad(w):
    r = X @ w
    return (r ** 2).mean(), 2 * X.T @ r / r.size


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_weight_decay_nesterov(nesterov):
    w0 = np.array([[1.0, -2.0], [0.5, 3.0]])
    w = torch.tensor(w0, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=nesterov)
    ref, buf = w0.copy(), None
    for _ in range(5):
        opt.zero_grad()
        ((torch.tensor(X) @ w) ** 2).mean().backward()
        opt.step()
        _, g = quad_loss_and_grad(ref)
        ref, buf = np_sgd(ref, g, buf, 0.05, 0.9, 0.01, nesterov)
        np.testing.assert_allclose(values(w), ref, rtol=1e-12)


@pytest.mark.parametrize("wd", [0.01, 0.0])
def test_adamw_decouples_weight_decay(wd):
    w0 = np.array([[1.0, -2.0], [0.5, 3.0]])
    w = torch.tensor(w0, requires_grad=True)
    opt = torch.optim.AdamW([w], lr=0.1, weight_decay=wd)
    ref, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    for t in range(1, 6):
        opt.zero_grad()
        ((torch.tensor(X) @ w) ** 2).mean().backward()
        opt.step()
        _, g = quad_loss_and_grad(ref)
        ref, m, v = np_adamw(ref, g, m, v, t, 0.1, wd)
        np.testing.assert_allclose(values(w), ref, rtol=1e-12)
    assert torch.optim.AdamW([torch.ones(1, requires_grad=True)]).defaults["weight_decay"] == 0.01


# ---- autograd semantics --------------------------------------------------------------------

def test_grad_accumulates_and_the_zero_grad_variants():
    lin = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    x = torch.tensor([[1.0, 2.0]])
    for _ in range(3):
        lin(x).sum().backward()
    np.testing.assert_allclose(values(lin.weight.grad), [[3.0, 6.0]])
    opt.zero_grad(set_to_none=False)
    np.testing.assert_allclose(values(lin.weight.grad), [[0.0, 0.0]])
    lin(x).sum().backward()
    np.testing.assert_allclose(values(lin.weight.grad), [[1.0, 2.0]])
    opt.zero_grad()
    assert lin.weight.grad is None
    lin(x).sum().backward()
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None


def test_retain_graph_is_needed_only_when_something_was_saved():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second"):
        y.backward()
    z = (x + 2).sum()                       # AddBackward0 and SumBackward0 save no tensor
    z.backward()
    z.backward()
    np.testing.assert_allclose(values(x.grad), (np.exp([1, 2]) * [2, 3]) + 2)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second"):
        w = (x * 2).sum()                   # the 2 is saved, as a wrapped number tensor
        w.backward()
        w.backward()
    kept = (x.exp() * x).sum()
    kept.backward(retain_graph=True)
    kept.backward()


OPS = [
    lambda x: x + 1, lambda x: x.exp(), lambda x: x.sum(0), lambda x: x.T,
    lambda x: x.view(-1), lambda x: x[0], lambda x: x.max(), lambda x: x.max(1)[0],
    lambda x: torch.where(x > 2, x, 0.0), lambda x: x.mean(1, keepdim=True),
    lambda x: x.clamp(0, 2), lambda x: x @ x, lambda x: torch.cat([x, x]),
    lambda x: torch.stack([x, x]), lambda x: x.softmax(-1), lambda x: x.std(),
    lambda x: x.logsumexp(1), lambda x: x.permute(1, 0), lambda x: x.expand(3, 2, 2),
    lambda x: x[x > 2], lambda x: torch.einsum("ij,jk->ik", x, x), lambda x: x.double(),
    lambda x: x.split(1)[1], lambda x: x.prod(), lambda x: x.abs(), lambda x: x.sigmoid(),
]


@pytest.mark.parametrize("k", range(len(OPS)))
def test_requires_grad_propagates_through_every_op_but_not_under_no_grad(k):
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    out = OPS[k](x)
    assert out.requires_grad and out.grad_fn is not None and not out.is_leaf
    with torch.no_grad():
        assert not OPS[k](x).requires_grad
    assert not OPS[k](x.detach()).requires_grad
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_no_grad_update_inside_a_training_loop_keeps_leaves():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    ref = np.array([1.0, 2.0])
    for _ in range(3):
        loss = (w * w).sum()
        loss.backward()
        with torch.no_grad():
            w -= 0.1 * w.grad
        w.grad.zero_()
        ref = ref - 0.1 * 2 * ref
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    np.testing.assert_allclose(values(w), ref, rtol=1e-6)


def test_views_detach_data_and_in_place_changes():
    x = torch.zeros(2, 3)
    row = x[0]
    row += 1
    x.view(-1)[4] = 5.0
    x.T[0, 1] = 7.0
    np.testing.assert_allclose(values(x), [[1, 1, 1], [7, 5, 0]])
    np.testing.assert_allclose(values(row), [1, 1, 1])
    assert torch.tensor([1.0, 2.0]).T.shape == (2,)
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    d = w.detach()
    d[0] = 10.0
    assert w[0].item() == 10.0 and not d.requires_grad
    w.data = torch.tensor([3.0, 4.0])
    (w * w).sum().backward()
    np.testing.assert_allclose(values(w.grad), [6.0, 8.0])


def test_where_with_python_scalars():
    x = torch.tensor([1.0, -2.0, 3.0])
    np.testing.assert_allclose(values(torch.where(x > 0, x, 0.0)), [1, 0, 3])
    out = torch.where(x > 0, 1.0, -1.0)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(values(out), [1, -1, 1])
    mixed = torch.where(x > 0, 2, x)
    assert mixed.dtype == torch.float32
    np.testing.assert_allclose(values(mixed), [2, -2, 2])


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(2, 3)
        self.seq = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU(),
                                       torch.nn.Linear(3, 1))

    def forward(self, x):
        return self.seq(self.l1(x))


def test_state_dict_round_trip():
    torch.manual_seed(0)
    m = Net()
    sd = m.state_dict()
    assert list(sd) == ["l1.weight", "l1.bias", "seq.0.weight", "seq.0.bias",
                        "seq.2.weight", "seq.2.bias"]
    m2 = Net()
    x = torch.ones(4, 2)
    assert not np.allclose(values(m(x)), values(m2(x)))
    m2.load_state_dict(sd)
    np.testing.assert_array_equal(values(m(x)), values(m2(x)))
    with torch.no_grad():
        m.l1.weight[0, 0] = 100.0
    assert sd["l1.weight"][0, 0].item() == 100.0          # state_dict aliases, as in torch


def test_jitted_function_called_on_tensors_that_require_grad_is_differentiable():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    f = torch.jit(lambda v: (v * v).sum())
    loss = f(w) + w.sum()
    loss.backward()
    np.testing.assert_allclose(values(w.grad), 2 * np.array([1.0, 2.0]) + 1)


# ---- printing: PyTorch's exact text ------------------------------------------------------

PRINTS = [
    ("torch.tensor([1e10, 1.0])", "tensor([1.0000e+10, 1.0000e+00])"),
    ("torch.tensor([1e-10, 1.0])", "tensor([1.0000e-10, 1.0000e+00])"),
    ("torch.tensor([123456.789, 0.001])", "tensor([1.2346e+05, 1.0000e-03])"),
    ("torch.tensor(1e20)", "tensor(1.0000e+20)"),
    ("torch.tensor(-0.0)", "tensor(-0.)"),
    ("torch.tensor([1.123456789])", "tensor([1.1235])"),
    ("torch.tensor([-1, 200000])", "tensor([    -1, 200000])"),
    ("torch.tensor([1e-10, 1e10]).double()",
     "tensor([1.0000e-10, 1.0000e+10], dtype=torch.float64)"),
    ("torch.tensor([1.5, 2.5]).to(torch.int64)", "tensor([1, 2])"),
    ("torch.linspace(0, 1, 7)",
     "tensor([0.0000, 0.1667, 0.3333, 0.5000, 0.6667, 0.8333, 1.0000])"),
    ("torch.tensor([[[1e-3]]])", "tensor([[[0.0010]]])"),
    ("torch.zeros(2, 0)", "tensor([], size=(2, 0))"),
    ("torch.tensor([1000., 2.])", "tensor([1000.,    2.])"),
    ("torch.tensor([[True]])", "tensor([[True]])"),
    ("torch.tensor(2.5, dtype=torch.float64, requires_grad=True)",
     "tensor(2.5000, dtype=torch.float64, requires_grad=True)"),
    ("torch.ones(3, requires_grad=True).sum()", "tensor(3., grad_fn=<SumBackward0>)"),
    ("torch.tensor([1.0, 2.0]) == 1.0", "tensor([ True, False])"),
    ("torch.arange(6.).reshape(2, 3).T",
     "tensor([[0., 3.],\n        [1., 4.],\n        [2., 5.]])"),
    ("torch.tensor([[1e-8, 1.0], [2.0, 3e5]])",
     "tensor([[1.0000e-08, 1.0000e+00],\n        [2.0000e+00, 3.0000e+05]])"),
    ("torch.tensor([0.1, -0.25], dtype=torch.float64) * 3",
     "tensor([ 0.3000, -0.7500], dtype=torch.float64)"),
    ("torch.full((2, 2), 7, dtype=torch.int32)",
     "tensor([[7, 7],\n        [7, 7]], dtype=torch.int32)"),
    ("torch.tensor([[-1.5], [2.25]])", "tensor([[-1.5000],\n        [ 2.2500]])"),
]


@pytest.mark.parametrize("expr, text", PRINTS, ids=[p[0] for p in PRINTS])
def test_repr_matches_pytorch(expr, text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert repr(eval(expr)) == text


# ---- containers, state_dict errors, custom Functions -------------------------------------

def test_module_dict_and_parameter_list_register_their_members():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = torch.nn.ModuleDict({"a": torch.nn.Linear(2, 1), "b": torch.nn.ReLU()})
            self.scales = torch.nn.ParameterList([torch.ones(2), torch.nn.Parameter(torch.ones(1))])

        def forward(self, x):
            return self.heads["b"](self.heads["a"](x * self.scales[0])) * self.scales[1]

    m = M()
    assert [n for n, _ in m.named_parameters()] == ["heads.a.weight", "heads.a.bias",
                                                    "scales.0", "scales.1"]
    assert list(m.heads) == ["a", "b"] and "a" in m.heads and len(m.scales) == 2
    m(torch.ones(3, 2)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    assert list(m.state_dict()) == ["heads.a.weight", "heads.a.bias", "scales.0", "scales.1"]


def test_load_state_dict_reports_every_problem_as_pytorch_does():
    lin = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError) as info:
        lin.load_state_dict({"weight": torch.zeros(3, 2), "extra": torch.zeros(1)})
    assert str(info.value) == (
        'Error(s) in loading state_dict for Linear:\n\tMissing key(s) in state_dict: "bias". '
        '\n\tUnexpected key(s) in state_dict: "extra". \n\tsize mismatch for weight: copying a '
        "param with shape torch.Size([3, 2]) from checkpoint, the shape in current model is "
        "torch.Size([2, 2]).")
    before = values(lin.weight).copy()
    with pytest.raises(RuntimeError, match=r"Linear:\n\tsize mismatch for weight"):
        lin.load_state_dict({"weight": torch.zeros(3, 2), "bias": torch.zeros(2)}, strict=False)
    np.testing.assert_array_equal(values(lin.weight), before)        # nothing was loaded
    keys = lin.load_state_dict({"weight": torch.ones(2, 2)}, strict=False)
    assert keys.missing_keys == ["bias"] and values(lin.weight).tolist() == [[1, 1], [1, 1]]


def test_once_differentiable_backward_runs():
    class Triple(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx, g):
            return g * 3

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    Triple.apply(x).sum().backward()
    np.testing.assert_allclose(values(x.grad), [3.0, 3.0])


@pytest.mark.xfail(strict=True, reason=(
    "tracer/staging.py Entry.call: record_call receives the captured parameters (a model's "
    "weights closed over by the jitted function) as bare Exprs without autograd edges, so "
    "`jit(lambda x: model(x).sum())(x)` has no grad_fn and the weights get no gradient "
    "(an error here, a silently missing term in `jitted(x) + other_loss`)"))
def test_jitted_function_closing_over_parameters_is_differentiable():
    lin = torch.nn.Linear(2, 1)
    f = torch.jit(lambda x: lin(x).sum())
    x = torch.ones(3, 2)
    (f(x) + lin.bias.sum()).backward()
    np.testing.assert_allclose(values(lin.weight.grad), [[3.0, 3.0]])
    np.testing.assert_allclose(values(lin.bias.grad), [4.0])
