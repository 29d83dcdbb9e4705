"""Differences from PyTorch closed in session 21 (docs/compat.md), one test per behaviour,
with PyTorch 2.13's values and error texts recorded. Like test_compat_fixes.py, the file
passes under real PyTorch with `import gradjit as torch` replaced by `import torch`."""
import numpy as np
import pytest

import gradjit as torch


# ---- tensor_split --------------------------------------------------------------------------

@pytest.mark.parametrize("sections, shapes", [
    (3, [(2, 2), (2, 2), (2, 1)]),
    ([1, 4], [(2, 1), (2, 3), (2, 1)]),
    ((1, 4), [(2, 1), (2, 3), (2, 1)]),
    ([], [(2, 5)]),
    ([4, 1], [(2, 4), (2, 0), (2, 4)]),
    ([7], [(2, 5), (2, 0)]),
    ([-2], [(2, 3), (2, 2)]),
])
def test_tensor_split_pieces_are_pytorchs(sections, shapes):
    x = torch.arange(10.).reshape(2, 5)
    for given in (sections, torch.tensor(sections, dtype=torch.long)) \
            if isinstance(sections, list) and sections else (sections,):
        pieces = torch.tensor_split(x, given, dim=1)
        assert [tuple(p.shape) for p in pieces] == shapes
        want = np.array_split(np.arange(10.).reshape(2, 5), sections, axis=1)
        for p, w in zip(pieces, want):
            np.testing.assert_array_equal(p.numpy(), w)


def test_tensor_split_of_a_0d_tensor_of_sections_and_the_keyword_forms():
    x = torch.arange(7)
    assert [p.tolist() for p in x.tensor_split(torch.tensor(3))] == [[0, 1, 2], [3, 4], [5, 6]]
    assert [p.tolist() for p in torch.tensor_split(x, indices=[1, 5])] == [[0], [1, 2, 3, 4],
                                                                          [5, 6]]
    assert [p.tolist() for p in torch.tensor_split(x, sections=2)] == [[0, 1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize("call, error, text", [
    (lambda: torch.tensor_split(torch.arange(7), 0), RuntimeError,
     "number of sections must be larger than 0, got 0"),
    (lambda: torch.tensor_split(torch.arange(7), torch.tensor([[1]])), RuntimeError,
     "tensor_split expected tensor_indices_or_sections to be a zero-dimensional or "
     "one-dimensional tensor, but got a tensor with 2 dims"),
    (lambda: torch.tensor_split(torch.arange(7), torch.tensor([1.])), RuntimeError,
     "tensor_split expected tensor_indices_or_sections to have dtype of long, but got Float"),
    (lambda: torch.tensor_split(torch.tensor(1.), 2), RuntimeError,
     "tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims"),
    (lambda: torch.tensor_split(torch.arange(7), 2, dim=3), IndexError,
     r"Dimension out of range \(expected to be in range of \[-1, 0\], but got 3\)"),
    (lambda: torch.tensor_split(torch.arange(7), 2.5), TypeError,
     "tensor_split\\(\\) received an invalid combination of arguments"),
])
def test_tensor_split_refusals_are_pytorchs(call, error, text):
    with pytest.raises(error, match=text):
        call()


def test_tensor_split_pieces_are_slice_views_that_may_be_written_in_place():
    x = torch.arange(6.).requires_grad_()
    y = x * 1
    a, b = y.tensor_split(2)
    assert a.grad_fn.name() == "SliceBackward0"
    a.mul_(2)                              # allowed: not a multi-output view (PyTorch: same)
    assert y.tolist() == [0., 2., 4., 3., 4., 5.]
    y.add_(1)                              # its base changed: the piece follows it
    assert (b * 1).tolist() == [4., 5., 6.]
    (y * torch.arange(6.)).sum().backward()
    assert x.grad.tolist() == [0., 2., 4., 3., 4., 5.]


def test_tensor_split_gradient():
    z = torch.arange(6.).requires_grad_()
    a, b = z.tensor_split(2)
    (a * torch.arange(3.) + b.exp()).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), [0., 1., 2., np.exp(3.), np.exp(4.),
                                                np.exp(5.)], rtol=1e-6)


# ---- index_put_ / index_put --------------------------------------------------------------

@pytest.mark.parametrize("indices, values, accumulate, want", [
    ((torch.tensor([0, 1]), torch.tensor([2, 2])), torch.tensor([1., 2.]), True,
     [[0, 0, 1], [0, 0, 2], [0, 0, 0], [0, 0, 0]]),
    ((torch.tensor([[0], [3]]), torch.tensor([2, 0])), torch.tensor(5.), True,
     [[5, 0, 5], [0, 0, 0], [0, 0, 0], [5, 0, 5]]),
    ((torch.tensor([True, False, True, False]),), torch.tensor([1., 2., 3.]), True,
     [[1, 2, 3], [0, 0, 0], [1, 2, 3], [0, 0, 0]]),
    ((torch.tensor([-1, 0]),), torch.tensor([1., 2., 3.]), True,
     [[1, 2, 3], [0, 0, 0], [0, 0, 0], [1, 2, 3]]),
    ([torch.tensor([1])], torch.tensor([1., 2., 3.]), True,
     [[0, 0, 0], [1, 2, 3], [0, 0, 0], [0, 0, 0]]),
    ((torch.tensor([1, 1]),), torch.tensor([1., 2.]).reshape(2, 1), True,
     [[0, 0, 0], [3, 3, 3], [0, 0, 0], [0, 0, 0]]),
    ((torch.tensor([1, 1]),), torch.tensor([1., 2.]).reshape(2, 1), False,
     [[0, 0, 0], [2, 2, 2], [0, 0, 0], [0, 0, 0]]),
])
def test_index_put_values_are_pytorchs(indices, values, accumulate, want):
    assert torch.zeros(4, 3).index_put(indices, values, accumulate).tolist() == want
    assert torch.index_put(torch.zeros(4, 3), indices, values, accumulate).tolist() == want
    x = torch.zeros(4, 3)
    assert x.index_put_(indices, values, accumulate=accumulate) is x
    assert x.tolist() == want


def test_index_put_accumulate_of_integers_adds_repeated_positions():
    x = torch.tensor([1, 2, 3])
    x.index_put_((torch.tensor([0, 0, 2]),), torch.tensor([10, 20, 30]), accumulate=True)
    assert x.tolist() == [31, 2, 33]


@pytest.mark.parametrize("accumulate, out, w_grad", [
    (True, [[0, 0, 0], [3, 5, 7], [0, 0, 0], [0, 0, 0]],
     [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]),
    (False, [[0, 0, 0], [3, 4, 5], [0, 0, 0], [0, 0, 0]],
     [[0, 1, 2], [0, 0, 0], [6, 7, 8], [9, 10, 11]]),
])
def test_index_put_gradients_are_pytorchs(accumulate, out, w_grad):
    v = torch.arange(6.).reshape(2, 3).requires_grad_()
    w = torch.zeros(4, 3).requires_grad_()
    got = w.index_put((torch.tensor([1, 1]),), v, accumulate=accumulate)
    assert got.grad_fn.name() == "IndexPutBackward0"
    (got * torch.arange(12.).reshape(4, 3)).sum().backward()
    assert got.tolist() == out
    assert w.grad.tolist() == w_grad
    assert v.grad.tolist() == [[3, 4, 5], [3, 4, 5]]     # the repeated row's too


def test_index_put_in_place_on_a_leaf_that_requires_grad_is_refused():
    w = torch.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        w.index_put_((torch.tensor([0]),), torch.tensor(1.))


@pytest.mark.parametrize("indices, values, accumulate, error, text", [
    ((torch.tensor([4]),), torch.tensor([1., 2., 3.]), True, IndexError,
     "index 4 is out of bounds for dimension 0 with size 4"),
    ((torch.tensor([4]),), torch.tensor([1., 2., 3.]), False, IndexError,
     "index 4 is out of bounds for dimension 0 with size 4"),
    ((torch.tensor([1.]),), torch.tensor([1., 2., 3.]), True, IndexError,
     "tensors used as indices must be long, int, byte or bool tensors"),
    ((torch.tensor([1]),), torch.tensor([1, 2, 3]), True, RuntimeError,
     "Index put requires the source and destination dtypes match, got Float for the "
     "destination and Long for the source."),
    ((torch.tensor([1]),), torch.tensor([1., 2., 3.], dtype=torch.float64), False, RuntimeError,
     "Index put requires the source and destination dtypes match, got Float for the "
     "destination and Double for the source."),
    ((torch.tensor([1]), torch.tensor([1]), torch.tensor([1])), torch.tensor([1.]), True,
     IndexError, r"too many indices for tensor of dimension 2 \(got 3\)"),
    ((torch.tensor([1, 1]),), torch.ones(3, 3), True, RuntimeError,
     r"shape mismatch: value tensor of shape \[3, 3\] cannot be broadcast to indexing result "
     r"of shape \[2, 3\]"),
    (torch.tensor([1]), torch.ones(3), False, TypeError,
     r"index_put\(\): argument 'indices' \(position 1\) must be tuple of Tensors, not Tensor"),
    ((torch.tensor([1]),), 1.0, False, TypeError,
     r"index_put\(\): argument 'values' \(position 2\) must be Tensor, not float"),
    (([1],), torch.ones(3), False, TypeError,
     "expected Tensor as element 0 in argument 0, but got list"),
    ((None, torch.tensor([1])), torch.ones(4, 1), True, TypeError,
     "expected Tensor as element 0 in argument 0, but got NoneType"),
])
def test_index_put_refusals_are_pytorchs(indices, values, accumulate, error, text):
    with pytest.raises(error, match=text):
        torch.zeros(4, 3).index_put(indices, values, accumulate)


def test_setitem_with_an_index_out_of_bounds_uses_pytorchs_text():
    x = torch.zeros(4, 3)
    with pytest.raises(IndexError, match="index 4 is out of bounds for dimension 0 with size 4"):
        x[torch.tensor([4])] = torch.ones(3)
    with pytest.raises(RuntimeError, match=r"shape mismatch: value tensor of shape \[3, 3\]"):
        x[torch.tensor([1, 1])] = torch.ones(3, 3)


# ---- a repeated write position whose overwritten value is not finite -----------------------

_WRITES = {
    "setitem": lambda y, i, v: y.__setitem__(i, v) or y,
    "scatter": lambda y, i, v: y.scatter(0, i, v),
    "scatter_": lambda y, i, v: y.scatter_(0, i, v),
}


@pytest.mark.parametrize("how", list(_WRITES))
@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_an_overwritten_value_that_is_not_finite_gets_its_positions_gradient(how, bad):
    """gradjit gave it zero (its silent term was nan, masked out with its gradient)."""
    v = torch.tensor([bad, 2.0, 3.0], requires_grad=True)
    x = torch.zeros(3, requires_grad=True)
    y = _WRITES[how](x * 1, torch.tensor([1, 1, 0]), v)
    (y * torch.tensor([5.0, 7.0, 11.0])).sum().backward()
    assert y.tolist() == [3.0, 2.0, 0.0]                   # PyTorch 2.13's values
    assert v.grad.tolist() == [7.0, 7.0, 5.0]
    assert x.grad.tolist() == [0.0, 0.0, 11.0]


# ---- an empty view saved for backward whose base changed -----------------------------------

MODIFIED = ("one of the variables needed for gradient computation has been modified by an "
            "inplace operation: ")


@pytest.mark.parametrize("change", [lambda y, v: y.add_(1), lambda y, v: v.mul_(2)])
def test_a_changed_empty_view_is_named_as_strided_in_the_saved_tensor_error(change):
    """gradjit named the view's own node ("output 0 of Slice", or "of Mul" after v.mul_)."""
    x = torch.ones(2, 3, requires_grad=True)
    y = x * 2
    v = y[:1, :0]
    z = v.matmul(torch.ones(0, 2, requires_grad=True))
    change(y, v)
    with pytest.raises(RuntimeError) as info:
        z.sum().backward()
    assert str(info.value).startswith(          # PyTorch 2.13's text
        MODIFIED + "[torch.FloatTensor [1, 0]], which is output 0 of AsStrided, is at version "
        "1; expected version 0 instead.")


# ---- a multi-output view whose base changed in place ---------------------------------------

CHANGED = ("Output {} of {} is a view and its base or another view of its base has been "
           "modified inplace. This view is the output of a function that returns multiple "
           "views. Such functions do not allow the output views to be modified inplace. You "
           "should replace the inplace operation by an out-of-place one.")


@pytest.mark.parametrize("views, change, nr, name", [
    (lambda y: y.chunk(2), lambda y, vs: y.add_(1), 0, "Split"),
    (lambda y: y.split([1, 3]), lambda y, vs: y.mul_(2), 1, "SplitWithSizes"),
    (lambda y: y.unbind(0), lambda y, vs: y[0].add_(1), 1, "Unbind"),
])
def test_reading_the_grad_fn_of_a_multi_output_view_whose_base_changed_raises(views, change,
                                                                             nr, name):
    """gradjit read AsStridedBackward0 (and raised only when a backward reached the view)."""
    x = torch.ones(4, 2, requires_grad=True)
    y = x * 2
    vs = views(y)
    change(y, vs)
    v = vs[nr]
    for read in (lambda: v.grad_fn, lambda: v.is_leaf):
        with pytest.raises(RuntimeError) as err:
            read()
        assert str(err.value) == CHANGED.format(nr, name)     # PyTorch 2.13's text
    assert repr(v).endswith("grad_fn=<Invalid>)") and v.requires_grad
    assert v.detach().tolist() == views(y.detach())[nr].tolist()   # the values follow


# ---- the node of x[key] = v ------------------------------------------------------------------

@pytest.mark.parametrize("key, node", [                     # PyTorch 2.13's node names
    (torch.tensor([0, 2]), "IndexPutBackward0"),
    ([0, 2], "IndexPutBackward0"),
    (torch.tensor([True, False, True, False]), "IndexPutBackward0"),
    ((slice(None), [0, 1]), "IndexPutBackward0"),
    (([0, 1], slice(None)), "IndexPutBackward0"),
    ((Ellipsis, [0, 1]), "IndexPutBackward0"),
    ((0, [0, 1]), "CopySlices"),
    ((slice(1, None), [0, 1]), "CopySlices"),
    (([0, 1], 1), "CopySlices"),
    ((None, [0, 1]), "CopySlices"),
    (torch.tensor(1), "CopySlices"),
    (slice(1, 2), "CopySlices"),
    ((0, 1), "CopySlices"),
])
def test_an_advanced_index_write_is_index_put_and_a_view_write_copy_slices(key, node):
    """gradjit named every x[key] = v CopySlices."""
    y = torch.zeros(4, 3, requires_grad=True) * 1
    y[key] = 1.0
    assert y.grad_fn.name().split("::")[-1] == node      # PyTorch: torch::autograd::CopySlices
