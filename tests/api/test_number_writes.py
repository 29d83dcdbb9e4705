"""A Python number written into a tensor keeps its double precision (as PyTorch 2.13), and an
index checked through a pending reshape is not realised for the check.

The expected values are PyTorch 2.13's, recorded: `x[0] = 0.1` on a float64 tensor stores
0.1, not float32's 0.10000000149011612 (gradjit made the number an f32 constant first).
"""
import numpy as np
import pytest

import gradjit as torch
from tracer.ops import indexing

F32_TENTH = float(np.float32(0.1))      # 0.10000000149011612


def _writes(dt):
    """Every write form that takes a number: setitem by int, slice, list and mask, fill_,
    index_fill_."""
    x = torch.zeros(6, dtype=dt)
    x[0] = 0.1
    x[1:3] = 2.7
    x[[3]] = 0.1
    x[torch.tensor([False, False, False, False, True, False])] = 0.1
    x.index_fill_(0, torch.tensor([5]), 0.1)
    y = torch.zeros(2, dtype=dt)
    y.fill_(0.1)
    return x.tolist() + y.tolist()


@pytest.mark.parametrize("dt, want", [
    (torch.float64, [0.1, 2.7, 2.7, 0.1, 0.1, 0.1, 0.1, 0.1]),
    (torch.float32, [F32_TENTH, float(np.float32(2.7)), float(np.float32(2.7)), F32_TENTH,
                     F32_TENTH, F32_TENTH, F32_TENTH, F32_TENTH]),
    (torch.int64, [0, 2, 2, 0, 0, 0, 0, 0]),
    (torch.bool, [True] * 8),
])
def test_a_number_written_keeps_its_precision_as_pytorch(dt, want):
    assert _writes(dt) == want


def test_a_float64_write_with_grad_keeps_the_number_and_its_gradient():
    w = torch.ones(3, dtype=torch.float64, requires_grad=True)
    y = w * 1.0
    y[1] = 0.1                     # f32 would round it
    y.sum().backward()
    assert y[1].item() == 0.1
    assert w.grad.tolist() == [1.0, 0.0, 1.0]


def test_an_embedding_index_is_checked_without_realising_its_reshape():
    idx = torch.tensor([[1, 2], [3, 0]])
    flat = idx.reshape(-1)
    assert flat._expr.data is None
    data = indexing.check_index_values(flat, 4, 0, wrap=False)
    assert flat._expr.data is None                   # no read made for the check
    assert data.tolist() == [1, 2, 3, 0]
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        indexing.check_index_values(flat, 3, 0, wrap=False)


def test_an_embedding_out_of_range_index_raises_naming_the_line_each_step():
    emb = torch.nn.Embedding(4, 3)
    for _ in range(3):                          # memoised replays run the guard too
        out = emb(torch.tensor([[1, 2], [3, 0]]))
        assert out.shape == (2, 2, 3)
    for bad in (4, -1):     # PyTorch 2.13: IndexError "index out of range in self"
        with pytest.raises(IndexError, match=f"^index {bad} is out of bounds for dimension 0 "
                                             "with size 4 .at test_number_writes.py:"):
            emb(torch.tensor([[1, 2], [bad, 0]]))
