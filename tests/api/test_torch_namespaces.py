"""PyTorch's importable namespaces, their friendly errors, the drop-in runner, and the
utilities in them (nn.utils, autograd.functional, gradcheck, func, utils.data), against
values recorded from PyTorch 2.13 (tests/api/recorded/namespaces.json)."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import gradjit as torch

REF = json.loads((pathlib.Path(__file__).parent / "recorded" / "namespaces.json").read_text())
ROOT = pathlib.Path(__file__).resolve().parents[2]


def close(got, want, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want), rtol=rtol,
                               atol=atol)


# ---- import forms and errors -------------------------------------------------------------

def test_every_namespace_imports_as_pytorch_spells_it():
    import gradjit.autograd
    import gradjit.autograd.functional
    import gradjit.func
    import gradjit.nn
    import gradjit.nn.functional as F
    import gradjit.nn.init
    import gradjit.nn.utils
    import gradjit.nn.utils.rnn
    import gradjit.optim
    import gradjit.utils.checkpoint
    import gradjit.utils.data
    from gradjit.autograd import Function, Variable  # noqa: F401
    from gradjit.optim import Adam, SGD  # noqa: F401
    assert F.relu is torch.nn.functional.relu
    assert gradjit.nn.Linear is torch.nn.Linear
    assert gradjit.optim.Adam is torch.optim.Adam
    assert gradjit.autograd.grad is torch.autograd.grad


@pytest.mark.parametrize("module, name", [("gradjit", "fft_thing"), ("gradjit.nn", "Conv3d"),
                                          ("gradjit.nn.functional", "grid_sample"),
                                          ("gradjit.optim", "Rprop2"),
                                          ("gradjit.utils.data", "WeightedRandomSampler2")])
def test_a_missing_name_says_gradjit_lacks_the_torch_name(module, name):
    import importlib
    mod = importlib.import_module(module)
    torch_name = "torch" + module[len("gradjit"):] + "." + name
    with pytest.raises(AttributeError, match=f"gradjit does not implement {torch_name}"):
        getattr(mod, name)
    assert not hasattr(mod, name)


def test_dunder_lookups_stay_plain_attribute_errors():
    with pytest.raises(AttributeError, match="has no attribute '__wrapped__'"):
        torch.nn.__wrapped__  # noqa: B018  the lookup itself is the test


def run_torch_script(tmp_path, source: str, *args) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(source)
    return subprocess.run([sys.executable, "-m", "gradjit", "torch", str(script), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_dropin_runner_resolves_torch_and_submodules(tmp_path):
    done = run_torch_script(tmp_path, """
import sys
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
import gradjit
assert torch is gradjit and nn is gradjit.nn and sys.modules["torch.nn.functional"] is F
print("argv", sys.argv[1:], __name__)
x = torch.ones(4, 3)
print(F.relu(nn.Linear(3, 2)(x)).shape)
""", "--epochs", "2")
    assert done.returncode == 0, done.stderr
    assert "argv ['--epochs', '2'] __main__" in done.stdout
    assert "torch.Size([4, 2])" in done.stdout


def test_dropin_runner_names_missing_submodules_and_keeps_tracebacks(tmp_path):
    done = run_torch_script(tmp_path, "import torch.distributions\n")
    assert done.returncode != 0
    assert "ModuleNotFoundError: gradjit does not implement torch.distributions" in done.stderr
    done = run_torch_script(tmp_path, "import torch\nx = 1\nraise ValueError('boom')\n")
    assert "script.py\", line 3" in done.stderr and "ValueError: boom" in done.stderr


# ---- nn.utils -----------------------------------------------------------------------------

def linear_grads():
    w = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], requires_grad=True)
    b = torch.tensor([0.1, -0.2], requires_grad=True)
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0], [0.0, 1.0, -1.0], [2.0, -2.0, 1.0]])
    ((x @ w.T + b) ** 2).sum().backward()
    return w, b


def test_clip_grad_norm_as_pytorch():
    w, b = linear_grads()
    total = torch.nn.utils.clip_grad_norm_([w, b], 5.0)
    close(total.item(), REF["clip_total"])
    close(w.grad.tolist(), REF["clip_w"])
    close(b.grad.tolist(), REF["clip_b"])
    w, b = linear_grads()
    total = torch.nn.utils.clip_grad_norm_([w, b], 5.0, norm_type=float("inf"))
    close(total.item(), REF["clip_inf_total"])
    close(w.grad.tolist(), REF["clip_inf_w"])
    torch.nn.utils.clip_grad_value_([w, b], 3.0)
    close(w.grad.tolist(), REF["clip_value_w"])


def test_clip_grad_norm_nonfinite_error():
    w = torch.tensor([1.0], requires_grad=True)
    (w * float("inf")).sum().backward()
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_([w], 1.0, error_if_nonfinite=True)


def test_parameter_vectors_and_pad_sequence():
    w, b = linear_grads()
    v = torch.nn.utils.parameters_to_vector([w, b])
    close(v.tolist(), REF["ptv"])
    torch.nn.utils.vector_to_parameters(v * 2, [w, b])
    close(w.detach().numpy().reshape(-1), np.asarray(REF["ptv"][:6]) * 2)
    padded = torch.nn.utils.rnn.pad_sequence([torch.tensor([1., 2.]), torch.tensor([3., 4., 5.])],
                                             padding_value=-1)
    close(padded.tolist(), REF["pad"])


# ---- autograd.functional, gradcheck, func ---------------------------------------------------

XS = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
YS = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
AF = torch.autograd.functional


def test_autograd_functional_as_pytorch():
    close(AF.jacobian(lambda a: a.sin() * a, XS).tolist(), REF["jac"], rtol=1e-12)
    j = AF.jacobian(lambda a, b: (a * b, a.exp() + b), (XS, YS))
    close([[t.tolist() for t in r] for r in j], REF["jac_tt"], rtol=1e-12)
    h = AF.hessian(lambda a, b: (a * a * b).sum(), (XS, YS))
    close([[t.tolist() for t in r] for r in h], REF["hess_tt"], rtol=1e-12)
    out, hv = AF.hvp(lambda a: (a ** 3).sin().sum(), XS, torch.ones(3, dtype=torch.float64))
    close([out.item()], [REF["hvp"][0]], rtol=1e-12)
    close(hv.tolist(), REF["hvp"][1], rtol=1e-10)
    out, v = AF.vjp(lambda a: a.exp(), XS, torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64))
    close([out.tolist(), v.tolist()], REF["vjp"], rtol=1e-12)
    out, v = AF.jvp(lambda a, b: a * b, (XS, YS), (YS, XS))
    close([out.tolist(), v.tolist()], REF["jvp"], rtol=1e-12)


def test_gradcheck_and_gradgradcheck():
    x, y = XS.clone().requires_grad_(), YS.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: (a * b).sin(), (x, y)) is REF["gradcheck_ok"]
    assert torch.autograd.gradgradcheck(lambda a, b: (a * b).sin(), (x, y)) is \
        REF["gradgradcheck_ok"]

    class Bad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3
    name, first_line, is_runtime = REF["gradcheck_err"]
    with pytest.raises(torch.autograd.GradcheckError) as e:
        torch.autograd.gradcheck(Bad.apply, (x,))
    assert type(e.value).__name__ == name and isinstance(e.value, RuntimeError) == is_runtime
    assert str(e.value).splitlines()[0] == first_line
    assert torch.autograd.gradcheck(Bad.apply, (x,), raise_exception=False) is False


def test_func_functional_call_routes_gradients_to_the_given_tensors():
    m = torch.nn.Linear(3, 1)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[1.0, 2.0, 3.0]]))
        m.bias.fill_(0.5)
    p = {"weight": torch.tensor([[0.0, 1.0, 0.0]], requires_grad=True),
         "bias": torch.tensor([2.0])}
    r = torch.func.functional_call(m, p, (torch.tensor([[1.0, 5.0, 7.0]]),))
    r.sum().backward()
    want_r, want_grad, want_weight = REF["fcall"]
    close(r.tolist(), want_r)
    close(p["weight"].grad.tolist(), want_grad)
    close(m.weight.tolist(), want_weight)           # the module's own parameter is restored


def test_func_transforms_are_gradjits():
    f = lambda a: (a ** 3).sum()                                # noqa: E731
    close(torch.func.grad(f)(XS).tolist(), (3 * XS ** 2).tolist())
    grads, value = torch.func.grad_and_value(f)(XS)
    close(value.item(), 36.0)
    close(torch.func.jacrev(lambda a: a ** 2)(XS).tolist(), np.diag([2.0, 4.0, 6.0]))
    close(torch.func.jacfwd(lambda a: a ** 2)(XS).tolist(), np.diag([2.0, 4.0, 6.0]))
    close(torch.func.hessian(f)(XS).tolist(), np.diag([6.0, 12.0, 18.0]))
    close(torch.func.vmap(lambda r: r.sum())(torch.ones(4, 3)).tolist(), [3.0] * 4)


def test_variable_is_the_tensor():
    v = torch.autograd.Variable(torch.ones(2), requires_grad=True)
    kind, requires_grad, is_instance = REF["variable"]
    assert type(v).__name__ == kind and v.requires_grad is requires_grad
    assert isinstance(torch.ones(1), torch.autograd.Variable) is is_instance


def test_utils_checkpoint_gives_the_same_values_and_gradients():
    from gradjit.utils.checkpoint import checkpoint
    x = torch.tensor([0.5, 1.5], requires_grad=True)
    checkpoint(lambda a: (a.sin() * a).sum(), x, use_reentrant=False).backward()
    close(x.grad.tolist(), (np.sin([0.5, 1.5]) + np.array([0.5, 1.5]) * np.cos([0.5, 1.5])))


# ---- utils.data ----------------------------------------------------------------------------

def test_dataloader_batches_and_lengths_as_pytorch():
    from gradjit.utils.data import DataLoader, TensorDataset, random_split
    ds = TensorDataset(torch.arange(10.).reshape(10, 1), torch.arange(10))
    assert [len(DataLoader(ds, batch_size=4)), len(DataLoader(ds, batch_size=4, drop_last=True))] \
        == REF["dl_len"]
    assert [[list(a.shape), list(b.shape)] for a, b in DataLoader(ds, batch_size=4)] == \
        REF["dl_shapes"]
    assert [len(s) for s in random_split(range(10), [0.3, 0.3, 0.4])] == REF["split_lens"]
    assert [len(s) for s in random_split(range(11), [0.5, 0.5])] == REF["split_lens2"]
    parts = random_split(range(10), [4, 6], generator=torch.Generator().manual_seed(0))
    assert sorted(parts[0].indices + parts[1].indices) == list(range(10))
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(range(10), [3, 3])


def test_dataloader_collates_dicts_tuples_and_numbers():
    from gradjit.utils.data import DataLoader
    samples = [{"a": torch.tensor(1.), "b": (1, 2.0)}, {"a": torch.tensor(2.), "b": (3, 4.0)}]
    dl = DataLoader(samples, batch_size=2)
    batch = next(iter(dl))
    a, b, dt_int, dt_float = REF["collate_dict"]
    assert batch["a"].tolist() == a and [t.tolist() for t in batch["b"]] == b
    assert [str(batch["b"][0].dtype), str(batch["b"][1].dtype)] == [dt_int, dt_float]


def test_shuffle_is_reproducible_under_manual_seed():
    from gradjit.utils.data import DataLoader, TensorDataset
    ds = TensorDataset(torch.arange(20))

    def order():
        torch.manual_seed(3)
        return [int(v) for (batch,) in DataLoader(ds, batch_size=5, shuffle=True) for v in batch]
    first, second = order(), order()
    assert first == second and sorted(first) == list(range(20)) and first != list(range(20))


def test_training_loop_over_a_dataloader_learns():
    from gradjit.utils.data import DataLoader, TensorDataset
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.25
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(30):
        for xb, yb in DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(xb), yb).backward()
            opt.step()
    close(model.weight.detach().numpy(), [[1.0, -2.0, 0.5]], atol=1e-2)
    close(model.bias.detach().numpy(), [0.25], atol=1e-2)


def test_cloned_leaves_get_second_order_gradients():
    # x.clone().requires_grad_() makes a leaf; create_graph gradients must still depend on it
    x = XS.clone().requires_grad_()
    y = YS.clone().requires_grad_()
    gx, gy = torch.autograd.grad((x * y).sin(), [x, y], torch.ones(3, dtype=torch.float64),
                                 create_graph=True)
    assert gx.requires_grad and gy.requires_grad
    (h,) = torch.autograd.grad(gx.sum(), [y])
    a, b = XS.numpy(), YS.numpy()
    close(h.tolist(), np.cos(a * b) - a * b * np.sin(a * b), rtol=1e-12)
