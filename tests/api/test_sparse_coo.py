"""Sparse COO tensors (tracer/sparse.py), as pytorch/examples gcn and gat use them: printed
forms and error texts recorded from PyTorch 2.13, numbers and gradients against the same
program on dense tensors, NumPy and float64 finite differences."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as torch

I = [[0, 1, 0], [1, 2, 1]]


def sparse(dtype=None, values=(1.0, 2.0, 3.0), **kw):
    return torch.sparse_coo_tensor(torch.tensor(I), torch.tensor(list(values)), (2, 3),
                                   dtype=dtype, **kw)


def test_printed_form_is_pytorchs():
    assert repr(sparse()) == (
        "tensor(indices=tensor([[0, 1, 0],\n"
        "                       [1, 2, 1]]),\n"
        "       values=tensor([1., 2., 3.]),\n"
        "       size=(2, 3), nnz=3, layout=torch.sparse_coo)")
    assert repr(torch.zeros(3, dtype=torch.float64).to_sparse()) == (
        "tensor(indices=tensor([], size=(1, 0)),\n"
        "       values=tensor([], size=(0,)),\n"
        "       size=(3,), nnz=0, dtype=torch.float64, layout=torch.sparse_coo)")
    assert repr(torch.ones(2, 2, requires_grad=True).to_sparse()) == (
        "tensor(indices=tensor([[0, 0, 1, 1],\n"
        "                       [0, 1, 0, 1]]),\n"
        "       values=tensor([1., 1., 1., 1.]),\n"
        "       size=(2, 2), nnz=4, layout=torch.sparse_coo, grad_fn=<ToSparseBackward1>)")
    assert repr(torch.tensor(3.).to_sparse()) == (
        "tensor(indices=tensor([], size=(0, 1)),\n"
        "       values=tensor([3.]),\n"
        "       size=(), nnz=1, layout=torch.sparse_coo)")


def test_entries_coalesce_and_layouts():
    s = sparse()
    assert (s.layout, s.is_sparse, s.is_coalesced(), s._nnz()) == (torch.sparse_coo, True,
                                                                  False, 3)
    assert (s.sparse_dim(), s.dense_dim(), tuple(s.shape)) == (2, 0, (2, 3))
    assert torch.ones(1).layout is torch.strided and repr(torch.strided) == "torch.strided"
    c = s.coalesce()
    assert c.is_coalesced() and c.indices().tolist() == [[0, 1], [1, 2]]
    assert c.values().tolist() == [4.0, 2.0]
    np.testing.assert_array_equal(s.to_dense().numpy(), [[0, 4, 0], [0, 0, 2]])
    x = torch.tensor([[0.0, -0.0], [float("nan"), 2.0]])      # -0.0 is zero, NaN is not
    assert x.to_sparse().indices().tolist() == [[1, 1], [0, 1]]
    assert x.to_dense() is x and s.to("cpu") is s


@pytest.mark.parametrize("call, error, text", [
    (lambda: sparse().indices(), RuntimeError,
     "Cannot get indices on an uncoalesced tensor, please call .coalesce() first"),
    (lambda: sparse().numpy(), TypeError,
     "can't convert Sparse layout tensor to numpy. Use Tensor.to_dense() first."),
    (lambda: sparse() + torch.ones(2, 3), RuntimeError,
     "add(sparse, dense) is not supported. Use add(dense, sparse) instead."),
    (lambda: torch.sparse_coo_tensor(torch.tensor([[0, 5]]), torch.ones(2), (3,)),
     RuntimeError, "size is inconsistent with indices: for dim 0, size is 3 but found index 5"),
    (lambda: torch.sparse_coo_tensor(torch.tensor([[0, -1]]), torch.ones(2), (3,)),
     RuntimeError, "found negative index -1 for dim 0"),
    (lambda: torch.sparse_coo_tensor(torch.tensor([[0, 1]]), torch.ones(3), (3,)),
     RuntimeError, "indices and values must have same nnz, but got nnz from indices: 2, "
                   "nnz from values: 3"),
    (lambda: torch.sparse_coo_tensor(torch.tensor([[0, 1]]), torch.ones(2), (3, 3)),
     RuntimeError, "'len(size) == sparse_dim + dense_dim' is not satisfied: len(size) = 2, "
                   "sparse_dim = 1, dense_dim = 0"),
])
def test_errors_are_pytorchs_and_name_the_line(call, error, text):
    with pytest.raises(error) as info:
        call()
    assert str(info.value).startswith(text) and "test_sparse_coo.py" in str(info.value)


def test_products_read_the_dense_value_bitwise():
    rng = np.random.default_rng(0)
    a = torch.tensor(rng.normal(size=(5, 4)) * (rng.random((5, 4)) < 0.4), dtype=torch.float32)
    b = torch.tensor(rng.normal(size=(4, 3)), dtype=torch.float32)
    s = a.to_sparse()
    want = (a @ b).numpy()
    for got in (torch.mm(s, b), torch.spmm(s, b), torch.matmul(s, b), s @ b):
        assert got.layout is torch.strided and not got.is_sparse
        np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal((b.t() @ s.t()).numpy(), (b.t() @ a.t()).numpy())
    total = torch.eye(5, 4) + torch.sparse_coo_tensor(torch.tensor([[0, 4], [0, 3]]),
                                                      torch.tensor([1, 2]), (5, 4))
    assert total.dtype == torch.float32 and not total.is_sparse       # float + int64 sparse
    want = np.eye(5, 4, dtype=np.float32)
    want[0, 0] += 1
    want[4, 3] += 2
    np.testing.assert_array_equal(total.numpy(), want)


def test_gradients_match_dense_and_finite_differences():
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=(3, 4))
    w0 = rng.normal(size=(4, 2))
    x, w = torch.tensor(x0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    torch.mm(x.to_sparse(), w).pow(2).sum().backward()
    xd, wd = torch.tensor(x0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    torch.mm(xd, wd).pow(2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), xd.grad.numpy())    # every element
    np.testing.assert_array_equal(w.grad.numpy(), wd.grad.numpy())
    v0 = rng.normal(size=3)
    index = torch.tensor(I)

    def loss(v):
        s = torch.sparse_coo_tensor(index, v, (2, 3))
        return torch.spmm(s, torch.tensor(w0[:3])).pow(2).sum()

    v = torch.tensor(v0, requires_grad=True)
    out = loss(v)
    assert type(torch.sparse_coo_tensor(index, v, (2, 3)).grad_fn).__name__ == \
        "SparseCooTensorWithDimsAndTensorsBackward0"
    out.backward()
    eps = 1e-6
    numeric = [(loss(torch.tensor(v0 + eps * e)).item() - loss(torch.tensor(v0 - eps * e))
                .item()) / (2 * eps) for e in np.eye(3)]
    np.testing.assert_allclose(v.grad.numpy(), numeric, rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_to_dense_sums_duplicates_as_numpy(data):
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    nnz = data.draw(st.integers(0, 8))
    index = np.array([[data.draw(st.integers(0, n - 1)) for _ in range(nnz)] for n in shape],
                     dtype=np.int64).reshape(len(shape), nnz)
    values = np.array(data.draw(st.lists(st.floats(-4, 4, width=32), min_size=nnz,
                                         max_size=nnz)), dtype=np.float32)
    s = torch.sparse_coo_tensor(torch.tensor(index), torch.tensor(values), shape)
    want = np.zeros(shape, np.float32)
    np.add.at(want, tuple(index), values)
    np.testing.assert_allclose(s.to_dense().numpy(), want, rtol=1e-6, atol=1e-6)
    c = s.coalesce()
    np.testing.assert_allclose(c.to_dense().numpy(), want, rtol=1e-6, atol=1e-6)
    assert c._nnz() == len({tuple(col) for col in index.T})
    dense = torch.tensor(want)
    back = dense.to_sparse()
    np.testing.assert_array_equal(back.to_dense().numpy(), want)
    assert back.indices().tolist() == np.array(np.nonzero(want)).tolist()


def test_to_dense_gradient_reaches_the_entries_only_as_pytorchs():
    # recorded from PyTorch 2.13: mm through to_sparse passes a dense gradient to x;
    # to_dense() masks it to the sparsity pattern (ToDenseBackward0)
    x = torch.tensor([[0.0, 2.0], [3.0, 0.0]], requires_grad=True)
    w = torch.ones(2, 3)
    torch.mm(x.to_sparse(), w).sum().backward()
    assert x.grad.tolist() == [[3.0, 3.0], [3.0, 3.0]]
    x.grad = None
    dense = x.to_sparse().to_dense()
    assert type(dense.grad_fn).__name__ == "ToDenseBackward0"
    (dense @ w).sum().backward()
    assert x.grad.tolist() == [[0.0, 3.0], [3.0, 0.0]]
    ints = torch.sparse_coo_tensor(torch.tensor([[0, 1]]), torch.tensor([1, 2]), (3,))
    assert ints.to_dense().dtype == torch.int64 and ints.to_dense().tolist() == [1, 2, 0]
    signed = torch.tensor([[-0.0, 1.0]]).to_sparse().to_dense().numpy()
    assert not np.signbit(signed[0, 0])                 # -0.0 is no entry: +0.0 comes back


def test_requires_grad_makes_the_sparse_tensor_a_leaf():
    s = torch.sparse_coo_tensor(torch.tensor([[0, 1]]), torch.tensor([1.0, 2.0]), (3,),
                                requires_grad=True)
    assert s.is_leaf and s.requires_grad and s.grad_fn is None
    assert repr(s).endswith("nnz=2, layout=torch.sparse_coo, requires_grad=True)")
    torch.spmm(s.reshape(1, 3), torch.ones(3, 1)).sum().backward()
    assert s.grad.tolist() == [1.0, 1.0, 1.0]            # dense here (PyTorch: sparse)
