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


# PyTorch 2.13's node for each loss, whatever the reduction (autogradqs_tutorial.py prints
# `loss.grad_fn` of binary_cross_entropy_with_logits: it was MeanBackward0 here)
LOSS_NODES = [
    ("binary_cross_entropy", lambda F, x, t: F.binary_cross_entropy(x.sigmoid(), t),
     "BinaryCrossEntropyBackward0"),
    ("binary_cross_entropy_with_logits", lambda F, x, t: F.binary_cross_entropy_with_logits(
        x, t, weight=t + 1, pos_weight=t[0] + 0.5), "BinaryCrossEntropyWithLogitsBackward0"),
    ("smooth_l1_loss", lambda F, x, t: F.smooth_l1_loss(x, t, beta=0.5), "SmoothL1LossBackward0"),
    ("huber_loss", lambda F, x, t: F.huber_loss(x, t, delta=0.7), "HuberLossBackward0"),
    ("soft_margin_loss", lambda F, x, t: F.soft_margin_loss(x, 2 * t - 1),
     "SoftMarginLossBackward0"),
]


@pytest.mark.parametrize("case", LOSS_NODES, ids=[c[0] for c in LOSS_NODES])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_is_one_node_named_as_in_pytorch(case, reduction):
    _, loss, node = case
    F = _Reduced(torch.nn.functional, reduction)
    x = torch.randn(3, 4, requires_grad=True)
    t = torch.rand(3, 4)
    assert type(loss(F, x, t).grad_fn).__name__ == node
    assert loss(F, x.detach(), t).grad_fn is None


@pytest.mark.parametrize("case", LOSS_NODES, ids=[c[0] for c in LOSS_NODES])
def test_loss_node_gradient_matches_float64_finite_differences(case):
    _, loss, _ = case
    F = _Reduced(torch.nn.functional, "sum")
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=(3, 4))
    t = torch.tensor(rng.uniform(0.05, 0.95, size=(3, 4)))
    x = torch.tensor(x0, requires_grad=True)
    loss(F, x, t).backward()
    eps, numeric = 1e-6, np.zeros_like(x0)
    for i in np.ndindex(x0.shape):
        up, down = x0.copy(), x0.copy()
        up[i] += eps
        down[i] -= eps
        numeric[i] = (loss(F, torch.tensor(up), t).item()
                      - loss(F, torch.tensor(down), t).item()) / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy(), numeric, rtol=1e-6, atol=1e-8)


class _Reduced:
    """nn.functional with every loss called at one reduction."""

    def __init__(self, F, reduction):
        self.F, self.reduction = F, reduction

    def __getattr__(self, name):
        fn = getattr(self.F, name)
        return lambda *a, **k: fn(*a, **k, reduction=self.reduction)


def test_a_range_indexes_as_a_list_of_ints():
    # nn_tutorial.py's nll: -input[range(target.shape[0]), target].mean()
    x = torch.arange(12.0).reshape(3, 4).requires_grad_()
    t = torch.tensor([1, 0, 3])
    y = x[range(3), t]
    assert y.tolist() == [1.0, 4.0, 11.0] and type(y.grad_fn).__name__ == "IndexBackward0"
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.eye(4)[[1, 0, 3]])
    np.testing.assert_array_equal(x[:, range(0, 4, 2)].detach().numpy(),
                                  x.detach().numpy()[:, 0:4:2])
    assert tuple(x[range(0)].shape) == (0, 4)
    z = torch.zeros(3, 4)
    z[range(2)] = 1.0
    z[range(3), t] = torch.tensor([5.0, 6.0, 7.0])
    assert z.tolist() == [[1, 5, 1, 1], [6, 1, 1, 1], [0, 0, 0, 7]]
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        x[range(5)]
