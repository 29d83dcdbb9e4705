"""The NumPy bridge shares memory as PyTorch documents: `t.numpy()`, `torch.from_numpy(a)`
and `torch.Tensor(float32 array)` are views of one buffer; `torch.Tensor(t)` aliases t.

Expected values recorded from PyTorch 2.13 (the same statements run there).
"""
from __future__ import annotations

import numpy as np
import pytest

import gradjit as torch


def test_numpy_of_a_leaf_sees_inplace_ops_and_the_tensor_sees_writes():
    t = torch.ones(3)
    n = t.numpy()
    t.mul_(3)
    assert n.tolist() == [3.0, 3.0, 3.0]             # PyTorch: [3. 3. 3.]
    n[0] = -1
    assert t.tolist() == [-1.0, 3.0, 3.0]            # PyTorch: tensor([-1., 3., 3.])
    assert t.numpy() is n                             # one buffer


def test_setitem_and_views_write_through():
    t = torch.ones(3)
    n = t.numpy()
    t[1] = 9
    assert n.tolist() == [1.0, 9.0, 1.0]             # PyTorch: [1. 9. 1.]
    v = t[1:]
    v.add_(1)
    assert n.tolist() == [1.0, 10.0, 2.0]            # PyTorch: [ 1. 10.  2.]


def test_from_numpy_shares_both_ways():
    n = np.ones(3)
    t = torch.from_numpy(n)
    t.add_(1)
    assert n.tolist() == [2.0, 2.0, 2.0]             # PyTorch: [2. 2. 2.]
    n[1] = 7
    assert t.tolist() == [2.0, 7.0, 2.0]             # PyTorch: tensor([2., 7., 2.], f64)
    assert t.dtype == torch.float64


def test_results_read_before_a_write_keep_the_old_value():
    n = np.ones(3)
    t = torch.from_numpy(n)
    c, r = t.clone(), t + 0
    assert c.tolist() == [1.0, 1.0, 1.0] and r.tolist() == [1.0, 1.0, 1.0]    # computed now
    n[0] = 5
    assert c.tolist() == [1.0, 1.0, 1.0] and r.tolist() == [1.0, 1.0, 1.0]
    assert t.tolist() == [5.0, 1.0, 1.0]


def test_a_lazy_result_not_read_before_the_write_sees_it():
    # the documented difference (Tensor.numpy): gradjit's ops are lazy
    n = np.ones(3)
    t = torch.from_numpy(n)
    pending = t * 2
    n[0] = 5
    assert pending.tolist() == [10.0, 2.0, 2.0]      # PyTorch (eager): [2., 2., 2.]


def test_a_compiled_function_reads_the_current_memory():
    f = torch.jit(lambda a: a * 2)
    n = np.ones(2, dtype=np.float32)
    t = torch.from_numpy(n)
    assert f(t).tolist() == [2.0, 2.0]
    n[0] = 3
    assert f(t).tolist() == [6.0, 2.0]


def test_non_contiguous_arrays_are_copied():
    n = np.arange(6.0).reshape(2, 3).T
    t = torch.from_numpy(n)
    assert t.tolist() == n.tolist()
    n[0, 0] = 100.0
    assert t[0, 0].item() == 0.0


def test_tensors_that_cannot_share_give_copies():
    x = torch.ones(3, requires_grad=True)
    d = x.detach().numpy()                # an alias of x: a copy (x's storage has members)
    d[0] = 5
    assert x[0].item() == 1.0
    with pytest.raises(RuntimeError, match="Use tensor.detach"):
        x.numpy()
    y = (x * 2).detach()
    assert y.numpy().tolist() == [2.0, 2.0, 2.0]


def test_inplace_with_grad_ends_the_sharing_after_the_last_write():
    t = torch.zeros(2)
    n = t.numpy()
    w = torch.ones(2, requires_grad=True)
    t.add_(w)                             # t joins the graph: it requires grad now
    assert n.tolist() == [1.0, 1.0]
    n[0] = 9
    assert t[0].item() == 1.0


def test_legacy_constructor_as_pytorch():
    t = torch.tensor([1.0, 2.0])
    a = torch.Tensor(t)
    a.add_(1)
    assert t.tolist() == [2.0, 3.0] and a.tolist() == [2.0, 3.0]   # PyTorch: both [2., 3.]
    assert a is not t
    assert torch.Tensor(torch.tensor([1, 2])).dtype == torch.int64   # PyTorch keeps the dtype
    assert torch.Tensor(torch.tensor([1.0], dtype=torch.float64)).dtype == torch.float64
    assert torch.Tensor([[1, 2], [3, 4]]).dtype == torch.float32
    assert tuple(torch.Tensor(2, 3).shape) == (2, 3)
    assert tuple(torch.Tensor().shape) == (0,)
    assert torch.Tensor((1, 2)).tolist() == [1.0, 2.0]
    assert torch.Tensor(np.array([1, 2])).dtype == torch.float32     # converted: a copy
    n = np.ones(3, dtype=np.float32)
    s = torch.Tensor(n)
    n[0] = 5
    assert s.tolist() == [5.0, 1.0, 1.0]  # PyTorch: tensor([5., 1., 1.]), shared
    with pytest.raises(TypeError, match="requires grad"):
        torch.Tensor(torch.ones(2, requires_grad=True))


def test_bce_with_logits_errors_as_pytorch():
    F = torch.nn.functional
    cases = [   # (args, kwargs, PyTorch 2.13's exception and text)
        ((torch.ones(2), torch.ones(3)), {}, ValueError,
         r"Target size \(torch.Size\(\[3\]\)\) must be the same as input size "
         r"\(torch.Size\(\[2\]\)\)"),
        ((torch.ones(2), torch.ones(2)), {"pos_weight": torch.ones(3)}, RuntimeError,
         r"The size of tensor a \(3\) must match the size of tensor b \(2\) at non-singleton "
         r"dimension 0"),
        ((torch.ones(2), torch.ones(2)), {"weight": torch.ones(3)}, RuntimeError,
         r"The size of tensor a \(2\) must match the size of tensor b \(3\) at non-singleton "
         r"dimension 0"),
        ((torch.ones(2), torch.ones(2)), {"reduction": "bad"}, ValueError,
         "bad is not a valid value for reduction"),
    ]
    for args, kwargs, exc, text in cases:
        with pytest.raises(exc, match=text) as info:
            F.binary_cross_entropy_with_logits(*args, **kwargs)
        assert type(info.value).__module__ == "builtins"     # no internal module named
