"""Regressions the fuzzer's strided-view family found (tests/fuzz_views.py), with PyTorch
2.13's values and error texts recorded."""
import pytest

import gradjit as torch

VIEW_OF_LEAF = "a view of a leaf Variable that requires grad is being used in an in-place"


@pytest.mark.parametrize("make", [
    lambda x: x.movedim(0, 1).squeeze(),          # seed 30028: was accepted, x became a
    lambda x: x.t().unsqueeze(0),                 # non-leaf (grad_fn CopySlices)
    lambda x: x[0][1:],
    lambda x: x.narrow(1, 0, 2).select(0, 0),
    lambda x: x.t().t().t(),
    lambda x: x.expand(2, 3),                     # (PyTorch's leaf error before the overlap)
])
def test_an_in_place_write_to_a_view_of_a_view_of_a_leaf_is_refused(make):
    x = torch.ones(1, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=VIEW_OF_LEAF):
        make(x).zero_()
    assert x.grad_fn is None and x.is_leaf and x.tolist() == [[1.0, 1.0, 1.0]]
    x.detach().t().unsqueeze(0)[0, 1:].add_(1)   # through a detached alias: allowed
    assert x.is_leaf and x.tolist() == [[1.0, 2.0, 2.0]]
    with torch.no_grad():                         # and without grad
        x.t().unsqueeze(0)[0, :1].mul_(3)
    assert x.is_leaf and x.tolist() == [[3.0, 2.0, 2.0]]


def test_diagonal_is_a_view():
    """Was a copy: writes through it did not reach its base, nor the base's its values."""
    x = torch.arange(6.).reshape(2, 3).requires_grad_()
    y = x * 1
    d = y.diagonal(1)
    d.mul_(10)
    y.add_(1)
    (d * torch.tensor([1.0, 2.0])).sum().backward()
    # PyTorch 2.13:
    assert y.tolist() == [[1.0, 11.0, 3.0], [4.0, 5.0, 51.0]]
    assert d.tolist() == [11.0, 51.0]
    assert x.grad.tolist() == [[0.0, 10.0, 0.0], [0.0, 0.0, 20.0]]
    e = torch.zeros(3, 3)
    e.diagonal().fill_(1)
    assert e.tolist() == torch.eye(3).tolist()


def test_a_reshape_of_a_transposed_view_is_a_copy():
    """PyTorch's reshape/flatten copy where strides cannot express the result; gradjit
    aliased them, so writes leaked both ways (silently other numbers)."""
    y = torch.arange(6.).reshape(2, 3)
    f = y.t().flatten()
    r = y.t().reshape(6)
    s = y.t().reshape(3, 1, 2)               # splits an axis: still a view
    u = y.t().unsqueeze(0).flatten(0, 1)     # merges a size-1 axis: still a view
    y.mul_(-1)
    assert f.tolist() == r.tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    assert s.tolist() == [[[0.0, -3.0]], [[-1.0, -4.0]], [[-2.0, -5.0]]]
    assert u.tolist() == [[0.0, -3.0], [-1.0, -4.0], [-2.0, -5.0]]
    f.add_(100)
    assert y.tolist() == [[0.0, -1.0, -2.0], [-3.0, -4.0, -5.0]]
    x = torch.arange(6.).reshape(2, 3).requires_grad_()
    y = x * 1
    f = y.t().flatten()
    f.mul_(2)
    (f * torch.arange(6.)).sum().backward()
    assert y.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert f.tolist() == [0.0, 6.0, 2.0, 8.0, 4.0, 10.0]
    assert x.grad.tolist() == [[0.0, 4.0, 8.0], [2.0, 6.0, 10.0]]


def test_select_is_a_view_with_pytorchs_errors():
    """Tensor.select / torch.select were missing (AttributeError)."""
    x = torch.arange(6.).reshape(2, 3).requires_grad_()
    y = x * 1
    col = y.select(-1, -1)
    assert col.tolist() == [2.0, 5.0] and torch.select(y, 0, 1).tolist() == [3.0, 4.0, 5.0]
    col.mul_(3)
    assert y.tolist() == [[0.0, 1.0, 6.0], [3.0, 4.0, 15.0]]
    y.sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0, 3.0], [1.0, 1.0, 3.0]]
    with pytest.raises(IndexError, match=r"select\(\): index 5 out of range for tensor of "
                                         r"size \[2, 3\] at dimension 0"):
        x.select(0, 5)
    with pytest.raises(IndexError, match=r"select\(\) cannot be applied to a 0-dim tensor"):
        torch.tensor(1.0).select(0, 0)
    with pytest.raises(IndexError, match=r"Dimension out of range"):
        x.select(2, 0)


@pytest.mark.parametrize("make", [
    lambda x: x.narrow(1, 0, 0),                  # seed 30185: was accepted
    lambda x: x[:, :, 3:],
    lambda x: x[0][:0],
])
def test_an_in_place_op_on_an_empty_view_of_a_leaf_is_refused(make):
    x = torch.ones(2, 1, 3, requires_grad=True)
    for op in ("mul_", "fill_"):
        with pytest.raises(RuntimeError, match=VIEW_OF_LEAF):
            getattr(make(x), op)(2)
    assert x.is_leaf
    x.detach()[:0].fill_(2)                       # accepted, as in PyTorch
    (x * 1)[:0].fill_(2)
    with torch.no_grad():
        make(x).mul_(2)
    assert x.tolist() == torch.ones(2, 1, 3).tolist()


@pytest.mark.parametrize("make", [
    lambda: torch.ones(2) - True,                 # seed 30004: was accepted (x - 1)
    lambda: True - torch.ones(2),
    lambda: torch.ones(2).sub(True),
    lambda: torch.ones(2).sub_(True),
    lambda: torch.ones(2) - torch.tensor(True),
    lambda: torch.tensor([True]) - 1,
    lambda: torch.tensor([True]) - torch.tensor([True]),
])
def test_a_subtraction_with_a_bool_is_refused(make):
    # PyTorch 2.13's texts: "with two bool tensors" when both are, else "with a bool tensor"
    with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with (a bool "
                                           "tensor|two bool tensors) is not supported"):
        make()
    assert (torch.ones(2) + True).tolist() == [2.0, 2.0]      # (addition is not refused)
