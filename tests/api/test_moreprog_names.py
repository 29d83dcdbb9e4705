"""Names that real programs (pytorch/examples dcgan, gat, the pytorch/tutorials basics) met
missing, each as PyTorch 2.13 on a CPU-only machine defines it (values and error texts
recorded from /tmp/refvenv's torch 2.13)."""
import numpy as np
import pytest

import gradjit as torch
import gradjit.backends.cudnn as cudnn
from gradjit import nn


def test_dataparallel_without_gpus_runs_the_module_and_prefixes_its_names():
    torch.manual_seed(0)
    inner = nn.Linear(2, 3)
    wrapped = nn.DataParallel(inner)
    x = torch.randn(4, 2)
    assert wrapped.module is inner and wrapped.device_ids == []
    np.testing.assert_array_equal(wrapped(x).detach().numpy(), inner(x).detach().numpy())
    assert list(wrapped.state_dict()) == ["module.weight", "module.bias"]
    assert [n for n, _ in wrapped.named_parameters()] == ["module.weight", "module.bias"]
    assert repr(wrapped).startswith("DataParallel(\n  (module): Linear(in_features=2")
    assert nn.parallel.DataParallel is nn.DataParallel


def test_dataparallel_backward_reaches_the_wrapped_parameters():
    inner = nn.Linear(3, 1)
    nn.DataParallel(inner)(torch.ones(2, 3)).sum().backward()
    np.testing.assert_array_equal(inner.weight.grad.numpy(), np.full((1, 3), 2.0, np.float32))


def test_dataparallel_refuses_device_ids():
    with pytest.raises(ValueError, match="takes no device_ids"):
        nn.DataParallel(nn.Linear(2, 2), device_ids=[0, 1])


def test_data_parallel_cannot_find_a_device_as_in_pytorch_on_cpu():
    for devices in (None, range(2)):
        with pytest.raises(RuntimeError, match="^device type could not be determined$"):
            nn.parallel.data_parallel(nn.Linear(2, 2), torch.ones(1, 2), devices)


def test_missing_parallel_name_says_so():
    with pytest.raises(AttributeError, match="does not implement torch.nn.parallel.replicate"):
        _ = nn.parallel.replicate


def test_cudnn_is_absent_and_its_flags_take_assignments():
    assert cudnn.is_available() is False and cudnn.version() is None
    assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic) == (True, False, False)
    assert torch.backends.cudnn is cudnn
    cudnn.benchmark = True                     # dcgan's line; nothing changes on the CPU
    try:
        assert torch.backends.cudnn.benchmark is True
    finally:
        cudnn.benchmark = False


def test_device_flags_of_a_cpu_tensor():
    x = torch.ones(2)
    assert (x.is_cuda, x.is_xpu, x.is_mps, x.is_meta, x.is_sparse, x.is_quantized) == \
        (False,) * 6
