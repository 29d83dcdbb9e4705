"""Regressions the fuzzer's dtype, reduction and autograd families found (tests/fuzz_views.py,
tests/fuzz_more.py), with PyTorch 2.13's values, error classes and texts recorded."""
import pytest

import gradjit as torch


@pytest.mark.parametrize("make, cls, text", [
    (lambda: torch.tensor([1, 2]).std(), RuntimeError,            # was TypeError
     "std and var only support floating point and complex dtypes"),
    (lambda: torch.tensor([True]).var(dim=0), RuntimeError,
     "std and var only support floating point and complex dtypes"),
    (lambda: torch.tensor([True]) // torch.tensor([True]), NotImplementedError,   # TypeError
     "\"div_floor_cpu\" not implemented for 'Bool'"),
    (lambda: torch.tensor([True]) % True, NotImplementedError,
     "\"remainder_cpu\" not implemented for 'Bool'"),
    (lambda: torch.fmod(torch.tensor([True]), torch.tensor([True])), NotImplementedError,
     "\"fmod_cpu\" not implemented for 'Bool'"),
    (lambda: torch.tensor([True, False]).argmax(), RuntimeError,  # was answered
     "argmax\\(\\): does not support bool input"),
    (lambda: torch.argmin(torch.tensor([True, False]), 0), RuntimeError,
     "argmin\\(\\): does not support bool input"),
    (lambda: torch.tensor([True, False]).mul_(2), RuntimeError,   # was cast to bool
     "result type Long can't be cast to the desired output type Bool"),
    (lambda: torch.tensor([True, False]).add_(1), RuntimeError,
     "result type Long can't be cast to the desired output type Bool"),
])
def test_pytorchs_error_for_a_dtype(make, cls, text):
    with pytest.raises(cls, match=text) as info:
        make()
    assert "(at " in str(info.value)            # names the user's line


def test_what_pytorch_still_accepts_for_bools():
    b = torch.tensor([True, False])
    assert b.max(dim=0).indices.item() == 0 and b.fill_(2).tolist() == [True, True]
    b = torch.tensor([True, False])
    b.mul_(True)
    b[1] = 2                                    # (a Python scalar in setitem casts)
    assert b.tolist() == [True, True]
    b.copy_(torch.tensor([0, 3]))
    assert b.tolist() == [False, True]


@pytest.mark.parametrize("op, dtype, other, after", [     # PyTorch 2.13's values
    ("//=", torch.int64, torch.tensor([2, -3, 4]), [2, 2, 0]),
    ("%=", torch.int64, torch.tensor([2, -3, 4]), [1, -1, 0]),
    ("**=", torch.float32, 2, [25.0, 49.0, 0.0]),
    ("&=", torch.int64, torch.tensor([3, 3, 3]), [1, 1, 0]),
    ("|=", torch.bool, torch.tensor([True, False, True]), [True, True, True]),
    ("^=", torch.bool, torch.tensor([True, False, True]), [False, True, True]),
])
def test_an_augmented_operator_writes_in_place(op, dtype, other, after):
    """`x |= m`, `x //= 2`, ... had no __ior__ etc.: Python rebound x to a new tensor, so its
    views (and any other name for it) kept the old values."""
    x = torch.tensor([5, -7, 0], dtype=dtype)
    view = x[1:]
    same = x
    exec(f"x {op} other")
    assert x is same and x.tolist() == after and view.tolist() == after[1:]


def test_logical_not_in_place():
    b = torch.tensor([True, False])
    b.logical_not_()
    assert b.tolist() == [False, True]


def test_a_write_to_an_empty_view_moves_its_bases_version():
    """Seed 40037: relu saves its output; an in-place op on an empty view of it bumps the
    shared version counter in PyTorch, so backward refuses (gradjit ran on)."""
    for make in (lambda y: y.narrow(-1, 0, 0), lambda y: y[:0], lambda y: y.t()[:, :0]):
        x = torch.tensor([[1.0], [-2.0], [3.0]], requires_grad=True)
        y = x.relu()
        make(y).clamp_(max=-1.5)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = x.exp()
    w[:0].zero_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        w.sum().backward()
    w = x * 2                                  # (mul by a number saves nothing of w)
    w[:0].zero_()
    w.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_scatter_add_of_bools_is_an_or():
    """Seed 60119: True + True wrapped to False in the scatter_add primitive."""
    b = torch.tensor([False, False])
    out = b.scatter_add(0, torch.tensor([1, 1]), torch.tensor([True, True]))
    assert out.tolist() == [False, True]          # PyTorch 2.13
    out = torch.tensor([True, False]).scatter_add(0, torch.tensor([1, 0]),
                                                  torch.tensor([True, False]))
    assert out.tolist() == [True, True]


def test_take_along_dim_does_not_check_its_indices_version():
    """Seed 50562: PyTorch 2.13's node keeps its own index; changing the user's in place
    before backward is no error (gradjit raised) and the gradient is of the old index."""
    x = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    i = torch.tensor([[2, 0]])
    y = torch.take_along_dim(x, i, dim=-1)
    i.copy_(torch.tensor([[1, 1]]))
    (y * torch.tensor([[1.0, 2.0]])).sum().backward()
    assert x.grad.tolist() == [[2.0, 0.0, 1.0]]
    x2 = x * 1                                    # its input's version is still checked
    y = torch.take_along_dim(x2, torch.tensor([[0]]), dim=1)
    x2.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
