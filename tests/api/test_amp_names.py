"""Names nanoGPT's train.py and sample.py met missing (torch.amp / torch.cuda.amp GradScaler
and autocast, torch.float16 / bfloat16, torch.backends.cuda.matmul, torch.cuda's bf16
query, torch.distributed outside a process group), each as PyTorch 2.13 on a CPU-only
machine defines it: values and error texts recorded from /tmp/refvenv's torch 2.13."""
import pickle
import warnings

import numpy as np
import pytest

import gradjit as torch
from gradjit import distributed as dist
from gradjit import nn
from tests.api.test_torch_namespaces import run_torch_script

NO_GROUP = ("Default process group has not been initialized, please make sure to call "
            "init_process_group.")


def _scaled_sgd_rounds(scaler, rounds=4, inf_round=2):
    """PyTorch's loop: scale(loss).backward(); unscale_; step; update (recorded below)."""
    w = nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = torch.optim.SGD([w], lr=0.1)
    seen = []
    for it in range(rounds):
        loss = (w * w).sum() * (float("inf") if it == inf_round else 1.0)
        scaled = scaler.scale(loss)
        scaled.backward()
        grad = w.grad.tolist()
        scaler.unscale_(opt)
        unscaled = w.grad.tolist()
        scaler.step(opt)
        scaler.update()
        seen.append((scaled.item(), grad, unscaled, w.tolist(), scaler.get_scale(),
                     scaler._get_growth_tracker()))
        opt.zero_grad()
    return seen


def test_grad_scaler_on_the_cpu_scales_skips_inf_steps_grows_and_backs_off():
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0, growth_interval=2)
    seen = _scaled_sgd_rounds(scaler)
    # torch 2.13: scaled loss, grad, unscaled grad, w after step, scale after update, tracker
    recorded = [(20.0, [8.0, 16.0], [2.0, 4.0], [0.8, 1.6], 4.0, 1),
                (12.8, [6.4, 12.8], [1.6, 3.2], [0.64, 1.28], 8.0, 0),
                (float("inf"), [float("inf")] * 2, [float("inf")] * 2, [0.64, 1.28], 4.0, 0),
                (8.192, [5.12, 10.24], [1.28, 2.56], [0.512, 1.024], 4.0, 1)]
    for got, want in zip(seen, recorded):
        np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
        for g, w in zip(got[1:4], want[1:4]):
            np.testing.assert_allclose(g, w, rtol=1e-6)
        assert got[4:] == want[4:]
    assert scaler.state_dict() == {"scale": 4.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                                   "growth_interval": 2, "_growth_tracker": 1}


def test_grad_scaler_step_without_unscale_unscales_first():
    ours = torch.amp.GradScaler("cpu", init_scale=8.0)
    w = nn.Parameter(torch.tensor([3.0]))
    opt = torch.optim.SGD([w], lr=0.5)
    ours.scale(w * w).sum().backward()
    ours.step(opt)
    np.testing.assert_allclose(w.tolist(), [3.0 - 0.5 * 6.0], rtol=1e-6)


def test_grad_scaler_error_texts():
    scaler = torch.amp.GradScaler("cpu")
    w = nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=0.1)
    scaler.scale(w.sum()).backward()
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match=r"^unscale_\(\) has already been called on this "
                                           r"optimizer since the last update\(\)\.$"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(RuntimeError, match=r"^step\(\) has already been called since the "
                                           r"last update\(\)\.$"):
        scaler.step(opt)
    with pytest.raises(RuntimeError, match="^Closure use is not currently supported if "
                                           "GradScaler is enabled.$"):
        scaler.step(opt, closure=lambda: 0)
    with pytest.raises(ValueError, match="^outputs must be a Tensor or an iterable of "
                                         "Tensors$"):
        scaler.scale(3.0)
    with pytest.raises(RuntimeError, match="^The source state dict is empty, possibly because"):
        scaler.load_state_dict({})


def test_grad_scaler_scales_nested_outputs_and_loads_state():
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    out = scaler.scale([torch.ones(1), (torch.ones(2),)])
    assert isinstance(out, list) and isinstance(out[1], tuple)
    assert out[0].tolist() == [4.0] and out[1][0].tolist() == [4.0, 4.0]
    state = {"scale": 8.0, "growth_factor": 2.0, "backoff_factor": 0.5,
             "growth_interval": 2000, "_growth_tracker": 3}
    scaler.load_state_dict(state)
    assert scaler.get_scale() == 8.0 and scaler.state_dict() == state
    scaler.update(new_scale=3.0)
    assert scaler.get_scale() == 3.0
    assert (scaler.get_backoff_factor(), scaler.get_growth_factor(),
            scaler.get_growth_interval()) == (0.5, 2.0, 2000)


def test_cuda_grad_scaler_warns_and_disables_itself_and_then_passes_through():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scaler = torch.cuda.amp.GradScaler(enabled=True)       # nanoGPT's line
        default = torch.amp.GradScaler()
    texts = [str(w.message) for w in caught]
    assert "`torch.cuda.amp.GradScaler(args...)` is deprecated. Please use " \
           "`torch.amp.GradScaler('cuda', args...)` instead." in texts
    assert texts.count("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  "
                       "Disabling.") == 2
    assert not scaler.is_enabled() and not default.is_enabled()
    assert scaler.get_scale() == 1.0 and scaler.state_dict() == {}
    assert isinstance(scaler, torch.amp.GradScaler)
    w = nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.SGD([w], lr=0.5)
    loss = (w * 4).sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    scaler.unscale_(opt)
    assert scaler.step(opt) is None and scaler.update() is None
    assert w.tolist() == [-1.0]


def test_autocast_cuda_warns_and_runs_unchanged_cpu_half_is_refused():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autocast("cuda"):
            y = torch.ones(2, 2) @ torch.ones(2, 2)
        with torch.cuda.amp.autocast():
            pass
        with torch.amp.autocast(device_type="cpu", dtype=torch.float32):
            pass
    assert y.dtype == torch.float32
    texts = [str(w.message) for w in caught]
    assert texts[:2] == ["CUDA is not available or torch_xla is imported. Disabling "
                         "autocast."] * 2
    assert texts[2].startswith("In CPU autocast, but the target dtype is not supported.")
    with torch.amp.autocast(device_type="cpu", enabled=False):
        pass
    for dtype in (None, torch.bfloat16, torch.float16):
        with pytest.raises(TypeError, match="gradjit has no torch.(b?float16) tensors, so "
                                            "CPU autocast cannot run"):
            torch.autocast("cpu", dtype=dtype)
    with pytest.raises(RuntimeError, match="^Expected one of cpu, cuda.* device string: gpu$"):
        torch.autocast("gpu")

    @torch.autocast("cuda", enabled=False)
    def f(x):
        return x + 1
    assert f(torch.ones(1)).tolist() == [2.0]


def test_half_precision_dtypes_are_named_but_hold_no_tensors():
    assert repr(torch.float16) == "torch.float16" and repr(torch.bfloat16) == "torch.bfloat16"
    assert torch.half is torch.float16 and torch.float16 != torch.float32
    assert torch.float16.is_floating_point
    assert pickle.loads(pickle.dumps(torch.bfloat16)) is torch.bfloat16
    choices = {"float32": torch.float32, "bfloat16": torch.bfloat16,
               "float16": torch.float16}                      # nanoGPT's dict
    assert choices["float32"] is torch.float32
    with pytest.raises(TypeError, match="gradjit has no torch.float16 tensors"):
        torch.zeros(2, dtype=torch.float16)
    with pytest.raises(TypeError, match="bfloat16"):
        torch.ones(2).to(torch.bfloat16)


def test_cuda_flags_and_queries_answer_as_pytorch_without_cuda():
    matmul = torch.backends.cuda.matmul
    assert (matmul.allow_tf32, matmul.allow_fp16_reduced_precision_reduction,
            matmul.allow_bf16_reduced_precision_reduction) == (False, True, True)
    matmul.allow_tf32 = True                                   # nanoGPT's line
    try:
        assert torch.backends.cuda.matmul.allow_tf32 is True
    finally:
        matmul.allow_tf32 = False
    with pytest.raises(AttributeError, match="^Unknown attribute foo$"):
        matmul.foo = 1
    with pytest.raises(AttributeError, match="^Unknown attribute foo$"):
        _ = matmul.foo
    assert torch.backends.cuda.is_built() is False
    assert torch.cuda.is_bf16_supported() is False


def test_torch_amp_modules_import_through_the_torch_alias(tmp_path):
    done = run_torch_script(tmp_path, """
import torch.cuda.amp
from torch.cuda.amp import GradScaler, autocast
from torch.amp import GradScaler as G
from torch.backends.cuda import matmul
from torch.distributed import init_process_group, destroy_process_group
from torch.nn.parallel import DistributedDataParallel
import gradjit
assert GradScaler is gradjit.cuda.amp.GradScaler and G is gradjit.amp.GradScaler
print("imported", issubclass(GradScaler, G), matmul.allow_tf32)
""")
    assert done.returncode == 0, done.stderr
    assert "imported True False" in done.stdout


def test_distributed_outside_a_process_group(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert dist.is_initialized() is False and dist.is_available() is False
    for call in (dist.get_rank, dist.get_world_size, dist.barrier):
        with pytest.raises(ValueError, match=f"^{NO_GROUP}$"):
            call()
    with pytest.raises(AssertionError, match="^Process group cannot be None$"):
        dist.destroy_process_group()
    with pytest.raises(ValueError, match="^Error initializing torch.distributed using env:// "
                                         "rendezvous: environment variable RANK expected, "
                                         "but not set$"):
        dist.init_process_group(backend="nccl")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(RuntimeError, match="gradjit does not implement torch.distributed "
                                           "process groups"):
        dist.init_process_group(backend="gloo")
    with pytest.raises(ValueError, match=f"^{NO_GROUP}$"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
