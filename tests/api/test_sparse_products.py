"""Sparse @ dense products computed from the entries (tracer/sparse_products.py): numbers
against NumPy in float64 and the dense path, gradients against finite differences, the
counters that show which path ran, and the refusals that keep the dense product."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as torch
from tracer import sparse_products


def counts():
    return dict(sparse_products.STATS)


def delta(before):
    return {k: sparse_products.STATS[k] - before[k] for k in before}


def random_sparse(rng, m, k, density, dtype=torch.float64):
    a = rng.normal(size=(m, k)) * (rng.random((m, k)) < density)
    return a, torch.tensor(a, dtype=dtype).to_sparse()


def test_every_spelling_of_sparse_at_dense_takes_the_entries():
    rng = np.random.default_rng(0)
    a, s = random_sparse(rng, 6, 5, 0.4)
    x0 = rng.normal(size=(5, 3))
    x = torch.tensor(x0)
    for product in (lambda: torch.spmm(s, x), lambda: s @ x, lambda: s.mm(x),
                    lambda: s.matmul(x)):
        before = counts()
        got = product()
        assert delta(before) == {"entries": 1, "dense": 0}
        assert not got.is_sparse and got.layout is torch.strided
        np.testing.assert_allclose(got.numpy(), a @ x0, rtol=1e-13, atol=1e-13)
    y0 = rng.normal(size=(2, 6))
    before = counts()
    got = torch.tensor(y0) @ s                       # dense @ sparse: S's __rmatmul__
    assert delta(before) == {"entries": 1, "dense": 0}
    np.testing.assert_allclose(got.numpy(), y0 @ a, rtol=1e-13, atol=1e-13)


def test_refusals_use_the_dense_product_with_its_numbers():
    rng = np.random.default_rng(1)
    a, s = random_sparse(rng, 4, 4, 0.5)
    leaf = torch.sparse_coo_tensor(s._indices(), s._values(), (4, 4), requires_grad=True)
    x0 = rng.normal(size=(4, 2))
    before = counts()
    out = torch.spmm(leaf, torch.tensor(x0))     # S requires grad: its gradient is dense
    out.sum().backward()
    assert delta(before) == {"entries": 0, "dense": 1}
    np.testing.assert_allclose(leaf.grad.numpy(), np.ones((4, 2)) @ x0.T)
    for other in (torch.tensor(x0[:, 0]), s):     # a vector, and sparse @ sparse
        before = counts()
        got = s @ other
        assert delta(before) == {"entries": 0, "dense": 1}
        np.testing.assert_allclose(got.numpy(), a @ other.to_dense().numpy(), atol=1e-13)


def test_a_shape_mismatch_raises_the_dense_products_error_naming_the_line():
    s = torch.eye(3).to_sparse()
    with pytest.raises(Exception) as info:
        torch.spmm(s, torch.ones(2, 2))
    assert "cannot be multiplied" in str(info.value)
    assert "test_sparse_products.py" in str(info.value)


def test_gradient_of_the_dense_operand_matches_finite_differences_and_the_dense_path():
    rng = np.random.default_rng(2)
    a, s = random_sparse(rng, 5, 4, 0.5)
    x0, y0 = rng.normal(size=(4, 3)), rng.normal(size=(3, 5))

    def loss(x, y, sp):
        return ((sp @ x).pow(2).sum() + (y @ sp).sin().sum())

    x, y = torch.tensor(x0, requires_grad=True), torch.tensor(y0, requires_grad=True)
    before = counts()
    loss(x, y, s).backward()
    assert delta(before)["entries"] == 2
    xd, yd = torch.tensor(x0, requires_grad=True), torch.tensor(y0, requires_grad=True)
    loss(xd, yd, torch.tensor(a)).backward()
    np.testing.assert_allclose(x.grad.numpy(), xd.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), yd.grad.numpy(), rtol=1e-12, atol=1e-12)
    eps = 1e-6
    for value, grad, which in ((x0, x.grad, 0), (y0, y.grad, 1)):
        numeric = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            step = np.zeros_like(value)
            step[i] = eps
            args = [torch.tensor(x0), torch.tensor(y0)]
            args[which] = torch.tensor(value + step)
            up = loss(*args, s).item()
            args[which] = torch.tensor(value - step)
            numeric[i] = (up - loss(*args, s).item()) / (2 * eps)
        np.testing.assert_allclose(grad.numpy(), numeric, rtol=1e-6, atol=1e-8)


def test_duplicate_entries_add_up_as_in_the_dense_value():
    index = torch.tensor([[0, 2, 0, 1], [1, 0, 1, 1]])           # (0, 1) twice: uncoalesced
    s = torch.sparse_coo_tensor(index, torch.tensor([1.5, -2.0, 0.25, 3.0]), (3, 2),
                                dtype=torch.float64)
    x0 = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    before = counts()
    got = torch.spmm(s, torch.tensor(x0)).numpy()
    assert delta(before)["entries"] == 1
    np.testing.assert_array_equal(got, s.to_dense().numpy() @ x0)


def test_absent_entries_do_not_multiply_inf_as_pytorchs_sparse_product():
    s = torch.sparse_coo_tensor(torch.tensor([[0], [0]]), torch.tensor([2.0]), (2, 2))
    x = torch.tensor([[1.0, 1.0], [float("inf"), 0.0]])
    np.testing.assert_array_equal(torch.spmm(s, x).numpy(), [[2.0, 2.0], [0.0, 0.0]])


def test_float32_and_integer_operands_promote_as_the_dense_product():
    rng = np.random.default_rng(3)
    a, s = random_sparse(rng, 4, 3, 0.6, dtype=torch.float32)
    x = torch.tensor(rng.normal(size=(3, 2)), dtype=torch.float32)
    got = s @ x
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), (torch.tensor(a, dtype=torch.float32) @ x).numpy(),
                               rtol=1e-6, atol=1e-6)
    ints = torch.sparse_coo_tensor(torch.tensor([[0, 1], [1, 0]]), torch.tensor([2, 3]), (2, 2))
    got = ints @ torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), [[6.0, 8.0], [3.0, 6.0]])


def test_a_training_loop_reuses_one_program_structure():
    rng = np.random.default_rng(4)
    a, s = random_sparse(rng, 30, 30, 0.1, dtype=torch.float32)
    w = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.01)
    w_np = w.detach().numpy().copy().astype(np.float64)
    for _ in range(5):
        opt.zero_grad()
        before = counts()
        loss = torch.spmm(s, w).pow(2).sum()
        loss.backward()
        opt.step()
        assert delta(before) == {"entries": 1, "dense": 0}
        w_np -= 0.01 * 2 * a.T @ (a @ w_np)
    np.testing.assert_allclose(w.detach().numpy(), w_np, rtol=1e-4, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 4), st.floats(0.0, 1.0),
       st.integers(0, 2**31 - 1), st.booleans())
def test_products_match_numpy_over_shapes_and_densities(m, k, n, density, seed, left):
    rng = np.random.default_rng(seed)
    a, s = random_sparse(rng, m, k, density)
    if left:
        x0 = rng.normal(size=(k, n))
        got, want = torch.spmm(s, torch.tensor(x0)), a @ x0
    else:
        x0 = rng.normal(size=(n, m))
        got, want = torch.tensor(x0) @ s, x0 @ a
    assert tuple(got.shape) == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


def test_to_sparse_without_grad_holds_realised_entries_with_the_same_numbers():
    base = torch.tensor([[0.0, 1.5, 0.0], [2.0, 0.0, -3.0]], dtype=torch.float64)
    computed = (base * 3).exp() - 1                   # pending ops: not re-run by later products
    s = computed.to_sparse()
    assert s._expr.data is not None and s._values()._expr.data is not None
    want = np.exp(base.numpy() * 3) - 1
    np.testing.assert_array_equal(s.to_dense().numpy(), want)
    np.testing.assert_array_equal(s._values().numpy(), want[want != 0])
    base.mul_(0)                                      # a copy, as PyTorch's to_sparse
    np.testing.assert_array_equal(s.to_dense().numpy(), want)
    graded = torch.tensor(base.numpy() + 1, requires_grad=True).to_sparse()
    assert type(graded.grad_fn).__name__ == "ToSparseBackward1"       # keeps its history


def test_a_sparse_tensor_changed_in_place_uses_its_new_dense_value():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    s = torch.tensor([[0.0, 2.0], [3.0, 0.0]], dtype=torch.float64).to_sparse()
    s.mul_(2)                                     # the entries kept are no longer its value
    before = counts()
    np.testing.assert_array_equal((s @ x).numpy(), [[0.0, 4.0], [6.0, 0.0]])
    assert delta(before) == {"entries": 0, "dense": 1}
    t = torch.tensor([[0.0, 2.0], [3.0, 0.0]], dtype=torch.float64).to_sparse()
    t[1].add_(1)                                  # through a view: the shared version moves
    np.testing.assert_array_equal(torch.spmm(t, x).numpy(), [[0.0, 2.0], [4.0, 1.0]])
    assert delta(before) == {"entries": 0, "dense": 2}


def test_reading_the_dense_value_keeps_the_entry_path():
    s = torch.sparse_coo_tensor(torch.tensor([[0, 1], [1, 0]]), torch.tensor([2.0, 3.0]),
                                (2, 2), dtype=torch.float64)
    np.testing.assert_array_equal(s.to_dense().numpy(), [[0.0, 2.0], [3.0, 0.0]])
    repr(s)
    before = counts()
    got = s @ torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    assert delta(before) == {"entries": 1, "dense": 0}
    np.testing.assert_array_equal(got.numpy(), [[6.0, 8.0], [3.0, 6.0]])


def test_a_vector_on_either_side_uses_the_dense_product():
    a = np.array([[0.0, 2.0], [3.0, 0.0]])
    s, v = torch.tensor(a).to_sparse(), torch.tensor([1.0, 2.0], dtype=torch.float64)
    before = counts()
    np.testing.assert_array_equal((v @ s).numpy(), v.numpy() @ a)
    np.testing.assert_array_equal((s @ v).numpy(), a @ v.numpy())
    assert delta(before) == {"entries": 0, "dense": 2}
