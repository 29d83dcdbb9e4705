"""Issue 11's first lines of real scripts: devices, CUDA queries, default dtype, the legacy
constructors (`torch.Tensor([...])`, `torch.LongTensor(...)`), and a hand-written update
loop (the tutorials' polynomial_autograd.py) that must not grow its pending graph.

Expected values and error texts were recorded from PyTorch 2.13 (CPU build) with the code
shown next to each constant; the tests never import torch.
"""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradjit as torch
import runtime

ROOT = Path(__file__).resolve().parents[2]
CUDA_TEXT = "Torch not compiled with CUDA enabled"


@pytest.fixture
def default_float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


# ---- devices -----------------------------------------------------------------------------

def test_device_prints_and_compares_as_pytorch():
    # PyTorch: repr(device("cpu", 0)) -> device(type='cpu', index=0);
    # device("cpu:0") == device("cpu") -> False; device("cpu") == "cpu" -> False
    cpu = torch.device("cpu")
    assert repr(cpu) == "device(type='cpu')" and str(cpu) == "cpu"
    assert repr(torch.device("cpu", 0)) == "device(type='cpu', index=0)"
    assert str(torch.device("cpu:0")) == "cpu:0" and torch.device("cpu:0").index == 0
    assert torch.device("cpu:0") == torch.device("cpu", 0) != cpu
    assert cpu == torch.device("cpu", None) and hash(cpu) == hash(torch.device("cpu"))
    assert cpu != "cpu" and torch.device(cpu) == cpu
    assert repr(torch.device("cuda:1")) == "device(type='cuda', index=1)"
    assert torch.ones(2).device == cpu and repr(torch.ones(2).device) == "device(type='cpu')"


def test_bad_device_strings_raise_pytorch_errors():
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda, ipu, .* device type at "
                                           "start of device string: gpu"):
        torch.device("gpu")
    with pytest.raises(RuntimeError, match=r"Invalid device string: 'cpu:x'"):
        torch.device("cpu:x")


def test_accelerator_queries_say_no():
    assert torch.cuda.is_available() is False and torch.cuda.device_count() == 0
    assert torch.backends.mps.is_available() is False
    torch.cuda.manual_seed_all(0)          # accepted, as PyTorch without CUDA does
    assert torch.get_default_device() == torch.device("cpu")
    torch.set_default_device("cpu")
    torch.set_default_device(torch.device("cpu:0"))


def test_cpu_requests_are_accepted():
    x = torch.tensor([1.0, 2.0], device="cpu")
    assert x.cpu() is x and x.to("cpu") is x and x.to(torch.device("cpu")) is x
    assert x.to("cpu", torch.float64).dtype == torch.float64
    assert x.to(torch.ones(1, dtype=torch.int64)).dtype == torch.int64
    assert x.to(device=torch.device("cpu:0"), dtype=torch.float64).dtype == torch.float64
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for t in (torch.zeros(2, device=dev), torch.randn(2, 3, device=dev),
              torch.arange(3, device="cpu"), torch.ones_like(x, device=dev),
              x.new_zeros(2, device=dev), torch.Tensor([1.0], device=dev)):
        assert t.device == torch.device("cpu")


@pytest.mark.parametrize("ask", [
    lambda x: x.cuda(), lambda x: x.to("cuda"), lambda x: x.to(torch.device("cuda:0")),
    lambda x: torch.tensor([1.0], device="cuda"), lambda x: torch.zeros(2, device="cuda"),
    lambda x: torch.randn(2, device=torch.device("cuda")),
    lambda x: x.new_ones(2, device="cuda"), lambda x: torch.set_default_device("cuda"),
    lambda x: torch.cuda.current_device(),
], ids=["cuda()", "to_str", "to_device", "tensor", "zeros", "randn", "new_ones",
        "set_default_device", "current_device"])
def test_asking_for_cuda_raises_pytorchs_assertion(ask):
    # PyTorch (CPU build): AssertionError: Torch not compiled with CUDA enabled
    with pytest.raises(AssertionError) as info:
        ask(torch.ones(2))
    assert str(info.value).startswith(CUDA_TEXT) and "CPU" in str(info.value)
    assert torch.get_default_device() == torch.device("cpu")


# ---- default dtype -----------------------------------------------------------------------

def test_default_dtype_starts_float32():
    assert torch.get_default_dtype() == torch.float32
    assert torch.tensor(1.5).dtype == torch.float32 and torch.Tensor([1]).dtype == torch.float32


def test_set_default_dtype_float64(default_float64):
    # PyTorch after set_default_dtype(float64): all float64 except float32 * 2.5 (float32),
    # FloatTensor (float32) and arange(3) (int64)
    assert torch.get_default_dtype() == torch.float64
    f64 = [torch.Tensor([1]), torch.tensor(1.5), torch.tensor([1, 2.0]), torch.zeros(2),
           torch.ones(2), torch.randn(2), torch.rand(2), torch.eye(2), torch.linspace(0, 1, 2),
           torch.arange(2.0), torch.full((2,), 1.5), torch.ones(2, dtype=torch.int64) * 1.5,
           torch.sqrt(torch.arange(3)), torch.nn.Linear(2, 2).weight]
    assert [t.dtype for t in f64] == [torch.float64] * len(f64)
    assert (torch.ones(2, dtype=torch.float32) * 2.5).dtype == torch.float32
    assert torch.FloatTensor([1]).dtype == torch.float32
    assert torch.arange(3).dtype == torch.int64
    assert torch.tensor(0.1).item() == 0.1          # a float64 value, not float32's 0.1


def test_set_default_dtype_rejects_non_floats():
    with pytest.raises(TypeError, match="only floating-point types are supported as the "
                                        "default type"):
        torch.set_default_dtype(torch.int64)
    assert torch.get_default_dtype() == torch.float32


# ---- legacy constructors -----------------------------------------------------------------

def test_legacy_tensor_constructor():
    x = torch.Tensor([-4.0, 2])
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
    assert x.tolist() == [-4.0, 2.0] and x.is_leaf and not x.requires_grad
    e = torch.Tensor(2, 3)
    assert e.shape == (2, 3) and e.dtype == torch.float32
    assert torch.Tensor().shape == (0,) and torch.Tensor(torch.Size([4, 1])).shape == (4, 1)
    assert torch.Tensor(np.array([[1, 2]])).dtype == torch.float32
    assert (torch.Tensor([1, 2]) + 1).tolist() == [2.0, 3.0]


def test_typed_constructors():
    # PyTorch: LongTensor([1.7]) -> tensor([1]); BoolTensor([0, 2]) -> tensor([False, True])
    assert torch.LongTensor([1.7]).tolist() == [1]
    assert torch.LongTensor([1.7]).dtype == torch.int64
    assert torch.BoolTensor([0, 2]).tolist() == [False, True]
    assert torch.IntTensor(2).dtype == torch.int32 and torch.IntTensor(2).shape == (2,)
    assert torch.DoubleTensor([1]).dtype == torch.float64
    assert torch.LongTensor(2, 3).shape == (2, 3)
    f = torch.FloatTensor([1, 2])
    assert type(f) is torch.Tensor and f.dtype == torch.float32
    assert isinstance(torch.ones(1), torch.FloatTensor)
    assert not isinstance(torch.ones(1).long(), torch.FloatTensor)
    assert isinstance(torch.ones(1).long(), torch.LongTensor)


@pytest.mark.parametrize("args, error, text", [
    (("abc",), TypeError, "new(): invalid data type 'str'"),          # PyTorch's texts
    ((2.5,), TypeError, "new(): data must be a sequence (got float)"),
    (([[1], [2, 3]],), ValueError, ""),
])
def test_legacy_constructor_errors(args, error, text):
    with pytest.raises(error) as info:
        torch.Tensor(*args)
    assert str(info.value).startswith(text)


def test_micrograd_sanity_check():
    # karpathy/micrograd test/test_engine.py, its torch half; PyTorch: y = -20, dy/dx = 46
    x = torch.Tensor([-4.0]).double()
    x.requires_grad = True
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    assert y.data.item() == -20.0 and x.grad.item() == 46.0


def test_device_agnostic_script_runs_unmodified(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        "import torch\n"
        "device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')\n"
        "x = torch.Tensor([[1, 2], [3, 4]]).to(device)\n"
        "w = torch.ones(2, 1, device=device, requires_grad=True)\n"
        "(x @ w).sum().backward()\n"
        "print(device, repr(device), w.grad.cpu().flatten().tolist())\n")
    out = subprocess.run([sys.executable, "-m", "gradjit", "torch", str(script)], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out == "cpu device(type='cpu') [4.0, 6.0]\n"


# ---- a hand-written update loop ------------------------------------------------------------

# PyTorch 2.13 after STEPS steps of poly_loop below (a, b, c, d, final loss)
POLY_TORCH = [0.02817685902118683, 0.2985786497592926, -0.004815694410353899,
              -0.014443316496908665, 33.99119186401367]
STEPS = 300


def _pending_depth(t) -> int:
    """The longest chain of not-yet-computed ops behind t."""
    depth, memo = 0, {}
    stack = [(t._expr, 0)]
    while stack:
        e, d = stack.pop()
        if e.data is not None or e.op is None or memo.get(id(e), -1) >= d:
            continue
        memo[id(e)] = d
        depth = max(depth, d + 1)
        stack.extend((a, d + 1) for a in e.args)
    return depth


def poly_loop(steps: int, read_every: int):
    """pytorch/tutorials polynomial_autograd.py (200 points, lr 1e-5): updates under no_grad,
    `.grad = None`, reading the loss every read_every steps."""
    x = torch.linspace(-math.pi, math.pi, 200)
    y = torch.sin(x)
    a, b, c, d = (torch.tensor(v, requires_grad=True) for v in (0.1, -0.2, 0.3, -0.05))
    compiles, depths = [], []
    for t in range(steps):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        loss = (y_pred - y).pow(2).sum()
        if t % read_every == read_every - 1:
            loss.item()
            compiles.append(runtime.cache_info()["compiles"])
        loss.backward()
        with torch.no_grad():
            for p in (a, b, c, d):
                p -= 1e-5 * p.grad
                p.grad = None
        depths.append(max(_pending_depth(p) for p in (a, b, c, d)))
    return [p.item() for p in (a, b, c, d)] + [loss.item()], compiles, depths


def test_hand_written_update_loop_stays_one_step_deep():
    values, compiles, depths = poly_loop(STEPS, read_every=10)
    np.testing.assert_allclose(values, POLY_TORCH, rtol=2e-5)
    # the pending graph behind the parameters never holds more than one update
    assert max(depths) <= 3, depths[:10]
    # reads of the same structure reuse one compiled program: no compile after the first
    # few reads, however many steps run
    assert len(compiles) == 30 and compiles[-1] == compiles[1], compiles


def test_update_loop_without_reads_compiles_a_bounded_number_of_programs():
    before = runtime.cache_info()["compiles"]
    poly_loop(40, read_every=1000)
    short = runtime.cache_info()["compiles"] - before
    before = runtime.cache_info()["compiles"]
    values, _, depths = poly_loop(160, read_every=1000)
    assert runtime.cache_info()["compiles"] - before <= short
    assert max(depths) <= 3


def test_tensor_type_conversions():
    # PyTorch: int64 float64 float64 torch.FloatTensor True; ValueError invalid type: 'torch.Foo'
    x = torch.ones(2)
    assert x.type(torch.LongTensor).dtype == torch.int64
    assert x.type("torch.DoubleTensor").dtype == torch.float64
    assert x.type(torch.float64).dtype == torch.float64
    assert x.type() == "torch.FloatTensor" and x.type(torch.FloatTensor) is x
    with pytest.raises(ValueError, match="invalid type: 'torch.Foo'"):
        x.type("torch.Foo")
    with pytest.raises(AssertionError, match=CUDA_TEXT):
        x.type("torch.cuda.FloatTensor")


def test_out_keyword():
    # PyTorch: add(ones(2), 1, out=empty(3)) -> the same z, tensor([2., 2.]) and a warning;
    # cat(..., out=empty(0)) -> tensor([1., 1., 0.]); mul(ones(2), 1.5, out=int64) ->
    # RuntimeError result type Float can't be cast to the desired output type Long
    z = torch.zeros(3)
    with pytest.warns(UserWarning, match="An output with one or more elements was resized"):
        assert torch.add(torch.ones(2), 1, out=z) is z
    assert z.tolist() == [2.0, 2.0]
    z = torch.Tensor()
    assert torch.cat([torch.ones(2), torch.zeros(1)], out=z) is z
    assert z.tolist() == [1.0, 1.0, 0.0]
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired "
                                           "output type Long"):
        torch.mul(torch.ones(2), 1.5, out=torch.zeros(2, dtype=torch.int64))
    z = torch.zeros(2, dtype=torch.float64)
    version = z._version
    torch.mul(torch.ones(2), 1.5, out=z)
    assert z.tolist() == [1.5, 1.5] and z.dtype == torch.float64 and z._version > version
    z = torch.zeros(2, 2)
    torch.matmul(torch.eye(2), torch.full((2, 2), 3.0), out=z)
    assert z.tolist() == [[3.0, 3.0], [3.0, 3.0]]
    with pytest.raises(RuntimeError, match=r"add\(\): functions with out=\.\.\. arguments "
                                           "don't support automatic differentiation"):
        torch.add(torch.ones(2, requires_grad=True), 1, out=torch.zeros(2))


def test_norm():
    # PyTorch 2.13 on [[1, -2], [3, 4]]: norm() 5.4772257804870605, p=1 10, p=inf 4,
    # dim=1 [2.2360680103302, 5.0], p=1 dim=0 keepdim [[4.0, 6.0]]
    x = torch.tensor([[1.0, -2.0], [3.0, 4.0]], requires_grad=True)
    assert x.norm().item() == pytest.approx(5.4772257804870605, rel=1e-7)
    assert torch.norm(x, p=1).item() == 10.0 and torch.norm(x, p=math.inf).item() == 4.0
    assert torch.norm(x, "fro", dim=(0, 1)).item() == pytest.approx(5.4772257804870605)
    np.testing.assert_allclose(torch.norm(x, dim=1).tolist(), [2.2360680103302, 5.0],
                               rtol=1e-6)
    assert torch.norm(x, p=1, dim=0, keepdim=True).tolist() == [[4.0, 6.0]]
    x.norm().backward()                    # d|x|/dx = x / |x|
    np.testing.assert_allclose(x.grad.tolist(), (np.array([[1, -2], [3, 4]]) /
                                                 5.4772257804870605).tolist(), rtol=1e-6)
