"""Differences from PyTorch that the fuzzers found and session 20 closed (docs/compat.md),
one test per behaviour, with PyTorch 2.13's values and error texts recorded."""
import warnings

import pytest

import gradjit as torch

EMPTY_AXIS = "index is out of bounds for dimension with size 0"


@pytest.mark.parametrize("make, shape", [
    (lambda: torch.zeros(3, 0)[[0, 5]], [2, 0]),
    (lambda: torch.zeros(3, 0)[[0, -7]], [2, 0]),
    (lambda: torch.zeros(3, 0, 2)[[5]], [1, 0, 2]),
    (lambda: torch.zeros(3, 2, 0)[[5], [9]], [1, 0]),
    (lambda: torch.zeros(3, 2, 0)[:, [9]], [3, 1, 0]),
    (lambda: torch.zeros(3, 0)[torch.tensor([[0, 5]])], [1, 2, 0]),
    (lambda: torch.zeros(0, 3)[[]], [0, 3]),
])
def test_an_out_of_range_index_into_a_tensor_with_no_elements_is_not_checked(make, shape):
    assert list(make().shape) == shape                      # PyTorch 2.13's shapes


@pytest.mark.parametrize("make", [
    lambda: torch.zeros(0, 3)[[1]],
    lambda: torch.zeros(3, 0)[:, [0, 5]],
    lambda: torch.zeros(0)[[0, 5]],
])
def test_any_index_along_an_axis_of_length_0_is_refused(make):
    with pytest.raises(IndexError, match=EMPTY_AXIS):
        make()


def test_an_out_of_range_write_into_a_tensor_with_no_elements_is_not_checked():
    x = torch.zeros(3, 0)
    x[[1, 7]] = 1.0
    x[torch.tensor([True, False, True])] = 1.0
    y = torch.zeros(0, 3)
    y[:, [7]] = 1.0
    y[[]] = 1.0
    assert list(x.shape) == [3, 0] and list(y.shape) == [0, 3]
    with pytest.raises(IndexError, match=EMPTY_AXIS):
        y[[1]] = 1.0
    with pytest.raises(IndexError, match="index 5 is out of bounds"):
        torch.zeros(3, 1)[[0, 5]] = 1.0                     # a tensor with elements: checked
    z = torch.zeros(3, 0, requires_grad=True)
    z[[0, 5]].sum().backward()
    assert list(z.grad.shape) == [3, 0]


PARTIAL = "some elements of the input tensor and the written-to tensor refer to a single"
INTERNAL = "more than one element of the written-to tensor refers to a single memory"


@pytest.mark.parametrize("run, text", [
    (lambda x: torch.div(x[0], 1, out=x), PARTIAL),
    (lambda x: torch.div(x[0, :2], 1, out=x[0]), PARTIAL),
    (lambda x: torch.add(x.view(4, 3), 1, out=x), PARTIAL),
    (lambda x: torch.add(x[:1], torch.ones(2, 4), out=x[:1].expand(2, 4)), INTERNAL),
])
def test_an_out_of_another_shape_is_checked_for_overlap_before_it_is_resized(run, text):
    """PyTorch 2.13 checks overlaps before it resizes out (no resize warning either); gradjit
    raised its own resize error first."""
    x = torch.ones(3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match=text):
            run(x)
    assert x.tolist() == [[1.0] * 4] * 3
