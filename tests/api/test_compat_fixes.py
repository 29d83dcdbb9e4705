"""Differences from PyTorch that the fuzzers found and session 20 closed (docs/compat.md),
one test per behaviour, with PyTorch 2.13's values and error texts recorded."""
import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


MULTI = ("Output {} of {} is a view and {}. This view is the output of a function that "
         "returns multiple views. Such functions do not allow the output views to be modified "
         "inplace. You should replace the inplace operation by an out-of-place one.")
WRITTEN = "is being modified inplace"
CHANGED = "its base or another view of its base has been modified inplace"


@pytest.mark.parametrize("write, text", [                  # PyTorch 2.13's texts
    (lambda y: y.unbind(0)[0].mul_(3), MULTI.format(0, "Unbind", WRITTEN)),
    (lambda y: y.unbind(1)[1].zero_(), MULTI.format(1, "Unbind", WRITTEN)),
    (lambda y: y.split(2)[1].add_(1), MULTI.format(1, "Split", WRITTEN)),
    (lambda y: y.split([1, 3])[1].add_(1), MULTI.format(1, "SplitWithSizes", WRITTEN)),
    (lambda y: y.chunk(2)[0].add_(1), MULTI.format(0, "Split", WRITTEN)),
    (lambda y: y.chunk(1)[0].add_(1), MULTI.format(0, "Split", WRITTEN)),
    (lambda y: y.chunk(2)[0].t()[0].add_(1), MULTI.format(0, "Select", WRITTEN)),
    (lambda y: y.chunk(2)[1].__setitem__(0, 5.0), MULTI.format(0, "Select", WRITTEN)),
    (lambda y: y.chunk(2)[1].__setitem__((0, slice(1, None)), 5.0),
     MULTI.format(0, "Slice", WRITTEN)),
    (lambda y: y.chunk(2)[1].__setitem__([0], 5.0), MULTI.format(1, "Split", WRITTEN)),
    (lambda y: y.chunk(2)[1].__setitem__(slice(None), 5.0), MULTI.format(1, "Split", WRITTEN)),
])
def test_an_in_place_write_to_an_output_of_a_multi_output_view_op_is_refused(write, text):
    x = torch.ones(4, 2, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError) as err:
        write(y)
    assert str(err.value).split(" (at ")[0] == text
    assert y.tolist() == [[2.0, 2.0]] * 4


def test_multi_output_views_stay_writable_where_pytorch_lets_them():
    x = torch.ones(4, 2, requires_grad=True)
    y = torch.ones(4, 2)
    y.chunk(2)[0].add_(1)                                  # nothing requires grad
    assert y.tolist() == [[2.0, 2.0]] * 2 + [[1.0, 1.0]] * 2
    with pytest.raises(RuntimeError, match="A view was created in no_grad mode and is being "
                                           "modified inplace with grad mode enabled. This view "
                                           "is the output of a function that returns multiple"):
        y.chunk(2)[1].add_(x[:2])                          # the operand requires grad
    z = x * 2
    with torch.no_grad():
        z.unbind(0)[0].add_(1)                             # grad mode off
    z.chunk(2)[0].detach().add_(1)                         # through a detach
    assert z.tolist() == [[4.0, 4.0], [3.0, 3.0], [2.0, 2.0], [2.0, 2.0]]


def test_backward_through_a_multi_output_view_whose_base_changed_in_place_is_refused():
    """PyTorch raises when the view's grad_fn is next read (`a * 1`); gradjit when a backward
    reaches it (docs/compat.md). Same class and text."""
    x = torch.ones(4, 2, requires_grad=True)
    y = x * 2
    a, b = y.chunk(2)
    y.mul_(2)
    assert a.tolist() == [[4.0, 4.0]] * 2                  # the values follow, as PyTorch's
    with pytest.raises(RuntimeError) as err:
        a.sum().backward()
    assert str(err.value) == MULTI.format(0, "Split", CHANGED)
    x2 = torch.ones(4, 2, requires_grad=True)
    y2 = x2 * 2
    a2, b2 = y2.unbind(0)[:2]
    y2[0].add_(1)                                          # another view of the base
    with pytest.raises(RuntimeError, match="Output 1 of Unbind is a view and its base"):
        (b2 * 3).sum().backward()
    y2.sum().backward()                                    # the base itself is fine
    assert x2.grad.tolist() == [[2.0, 2.0]] * 4


EXPANDED_PUT = re.escape("Use of index_put_ on expanded tensors is deprecated. Please clone() the "
                         "tensor before performing this operation.")


@pytest.mark.parametrize("shape, size, key, value, base", [     # PyTorch 2.13's values
    ((1, 3), (2, 3), [0, 1], [[1.0, 2, 3], [4, 5, 6]], [[4.0, 5.0, 6.0]]),
    ((1, 3), (2, 3), [0, 1], 5.0, [[5.0, 5.0, 5.0]]),
    ((3, 1), (3, 4), ([2, 0, 2], [1, 3, 0]), [1.0, 2, 3], [[2.0], [0.0], [3.0]]),
    ((2, 1), (2, 3), "mask", [1.0, 2, 3], [[2.0], [3.0]]),
    ((2, 1), (2, 3), (1, [0, 2]), 7.0, [[0.0], [7.0]]),
])
def test_an_advanced_index_write_to_an_expand_warns_and_writes_the_last_value(
        shape, size, key, value, base):
    x = torch.zeros(*shape)
    e = x.expand(*size)
    if key == "mask":
        key = torch.tensor([[True, False, True], [False, False, True]])
    with pytest.warns(UserWarning, match=EXPANDED_PUT) as got:
        e[key] = torch.tensor(value) if isinstance(value, list) else value
    assert got[0].filename == __file__                      # the user's line
    assert x.tolist() == base
    assert e.tolist() == torch.tensor(base).expand(*size).tolist()


def test_backward_through_an_advanced_index_write_to_an_expand_is_refused():
    """PyTorch writes forward and refuses in backward (its gradient write overlaps)."""
    x = torch.zeros(1, 3, requires_grad=True)
    y = x * 1
    e = y.expand(2, 3)
    v = torch.tensor([[1.0, 2, 3], [4, 5, 6]], requires_grad=True)
    with pytest.warns(UserWarning, match=EXPANDED_PUT):
        e[[0, 1]] = v
    assert y.tolist() == [[4.0, 5.0, 6.0]] and type(e.grad_fn).__name__ == "AsStridedBackward0"
    with pytest.raises(RuntimeError, match=INTERNAL):
        (y * 2).sum().backward()
    x2 = torch.zeros(1, 3, requires_grad=True)
    y2 = x2 * 1
    with pytest.warns(UserWarning, match=EXPANDED_PUT):
        y2.expand(2, 3)[[0, 1]] = 5.0
    with pytest.raises(RuntimeError, match=INTERNAL):
        y2.sum().backward()


def _write_dups(write, idx, vals):
    x = torch.zeros(4, requires_grad=True)
    v = torch.tensor(vals, requires_grad=True)
    y = write(x * 1, torch.tensor(idx), v)
    (y * torch.tensor([1.0, 10.0, 100.0, 1000.0])).sum().backward()
    return y.tolist(), x.grad.tolist(), v.grad.tolist()


_WRITES = {
    "setitem": lambda y, i, v: y.__setitem__(i, v) or y,
    "scatter": lambda y, i, v: y.scatter(0, i, v),
    "scatter_": lambda y, i, v: y.scatter_(0, i, v),
}


@pytest.mark.parametrize("how", list(_WRITES))
@pytest.mark.parametrize("idx, vals, want", [              # PyTorch 2.13's values
    ([1, 1, 2], [1.0, 2.0, 3.0],
     ([0.0, 2.0, 3.0, 0.0], [1.0, 0.0, 0.0, 1000.0], [10.0, 10.0, 100.0])),
    ([2, 1, 2, 1, 0], [1.0, -0.0, 3.0, 4.0, -0.0],
     ([-0.0, 4.0, 3.0, 0.0], [0.0, 0.0, 0.0, 1000.0], [100.0, 10.0, 100.0, 10.0, 1.0])),
])
def test_every_value_written_to_a_repeated_position_gets_its_gradient(how, idx, vals, want):
    """x[idx] = v and scatter: the last duplicate lands, and each one gets the gradient of
    its position (gradjit gave the overwritten ones zero)."""
    got = _write_dups(_WRITES[how], idx, vals)
    assert got == want
    assert [math.copysign(1, a) for a in got[0]] == [math.copysign(1, a) for a in want[0]]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_repeated_writes_match_numpys_last_write_and_gather_gradient(idx, rnd):
    vals = [rnd.uniform(-4, 4) for _ in idx]
    w = np.arange(1.0, 7.0) ** 2
    want_y = np.zeros(6)
    for i, v in zip(idx, vals):
        want_y[i] = v                                      # a serial loop: the last lands
    for write in (_WRITES["setitem"], _WRITES["scatter"]):
        x = torch.zeros(6, requires_grad=True)
        v = torch.tensor(vals, dtype=torch.float64, requires_grad=True)
        y = write(x.double() * 1, torch.tensor(idx), v)
        (y * torch.tensor(w)).sum().backward()
        assert y.tolist() == want_y.tolist()
        assert v.grad.tolist() == w[idx].tolist()
        assert x.grad.tolist() == np.where(np.isin(np.arange(6), idx), 0.0, w).tolist()


def test_a_write_through_a_view_keeps_negative_zero():
    """A write through a view (`a = x[0]; a.mul_(-1)`) reached the base as 0.0."""
    x = torch.zeros(2, 3)
    a = x[0]
    a.mul_(-1)
    assert (1 / x).tolist() == [[-math.inf] * 3, [math.inf] * 3]
    y = torch.zeros(2, 3, dtype=torch.float32, requires_grad=True) * 1
    y.t()[1].neg_()
    assert (1 / y).tolist() == [[math.inf, -math.inf, math.inf]] * 2
    z = torch.zeros(3)
    z[[0, 2]] = torch.tensor([-0.0, -0.0])
    assert (1 / z).tolist() == [-math.inf, math.inf, -math.inf]


class _ScatterByComputedIndex(torch.nn.Module):
    def forward(self, x, i, s):
        at = (i * 1).long()
        return x.scatter(0, at, s * 2) * torch.arange(1.0, 5.0) + x.index_fill(0, at, 3.0)


def test_scatter_and_index_fill_take_a_computed_index_in_compiled_code():
    """torch.compile refused them (NotImplementedError); PyTorch 2.13's values."""
    for model in (_ScatterByComputedIndex(), torch.compile(_ScatterByComputedIndex())):
        x = torch.ones(4, requires_grad=True)
        s = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = model(x, torch.tensor([2.0, 0.0, 2.0]), s)
        y.sum().backward()
        assert y.tolist() == [7.0, 3.0, 21.0, 5.0]
        assert x.grad.tolist() == [0.0, 3.0, 0.0, 5.0]
        assert s.grad.tolist() == [6.0, 2.0, 6.0]


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_a_traced_scatter_index_gives_the_concrete_index_values_and_gradients(data):
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    dim = data.draw(st.integers(0, len(shape) - 1))
    ishape = tuple(data.draw(st.integers(1, 5 if d == dim else s)) for d, s in enumerate(shape))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    index = rng.integers(-shape[dim] if data.draw(st.booleans()) else 0, shape[dim], ishape)
    src, base = rng.standard_normal(ishape), rng.standard_normal(shape)
    w = rng.standard_normal(shape)

    def loss(x, i, s):
        return ((x.scatter(dim, i % shape[dim], s) + x.index_fill(dim, i.reshape(-1), 2.0))
                * torch.tensor(w)).sum()
    want = torch.grad(loss, argnums=(0, 2))(base, torch.tensor(index), src)   # concrete index
    got = torch.jit(torch.grad(loss, argnums=(0, 2)))(base, index, src)        # traced index
    for a, b in zip(got, want):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(torch.jit(loss)(base, index, src)) == float(loss(torch.tensor(base),
                                                                  torch.tensor(index),
                                                                  torch.tensor(src)))


MODIFIED = "one of the variables needed for gradient computation has been modified by an inplace"


def test_an_empty_view_shares_its_bases_version_counter():
    """A saved empty view whose base changed in place: PyTorch 2.13 refuses backward
    ("... [torch.FloatTensor [1, 0]], which is output 0 of AsStrided, is at version 1;
    expected version 0 instead"; gradjit names the view's Slice node); gradjit ran."""
    x = torch.ones(2, 3, requires_grad=True)
    y = x * 2
    v = y[:1, :0]
    z = v.matmul(torch.ones(0, 2, requires_grad=True))
    assert (y._version, v._version) == (0, 0)
    y.add_(1)
    assert (y._version, v._version) == (1, 1)
    v.mul_(2)                                              # and the other way
    assert (y._version, v._version) == (2, 2)
    with pytest.raises(RuntimeError, match=MODIFIED + r".*\[torch.FloatTensor \[1, 0\]\].*"
                                           "is at version 2; expected version 0 instead"):
        z.sum().backward()
    x2 = torch.ones(2, 3, requires_grad=True)
    v2 = (x2 * 2)[:1, :0]
    v2.matmul(torch.ones(0, 2)).sum().backward()          # unchanged: runs
    assert x2.grad.tolist() == [[0.0] * 3] * 2


@pytest.mark.parametrize("make, writes, refused", [
    (lambda y: y.t().reshape(6), lambda y, r: y.add_(1), False),         # a copy
    (lambda y: y[:, 1:].reshape(4), lambda y, r: y.add_(1), False),      # a copy
    (lambda y: y.t().reshape(6), lambda y, r: (y.add_(1), r.mul_(2)), True),
    (lambda y: y[:1].reshape(3), lambda y, r: y.add_(1), True),          # a view
    (lambda y: y.t().t().reshape(6), lambda y, r: y.add_(1), True),      # a view
])
def test_a_reshape_of_a_view_saved_before_it_is_known_a_copy_keeps_its_own_counter(
        make, writes, refused):
    """A reshape merging axes of a view is a copy where strides cannot express it; saved
    (sin saves its input) before the first write decided that, it kept the view's counter:
    a false "modified by an inplace operation" (PyTorch 2.13 ran)."""
    x = torch.ones(2, 3, requires_grad=True)
    y = x * 1
    r = make(y)
    z = r.sin()
    writes(y, r)
    if refused:
        with pytest.raises(RuntimeError, match=MODIFIED):
            z.sum().backward()
        return
    z.sum().backward()
    want = torch.ones(2, 3, requires_grad=True)
    make(want).sin().sum().backward()                     # no write: the same gradient
    assert x.grad.tolist() == want.grad.tolist()
