"""nn.MaxUnpool1d/2d and F.max_unpool1d/2d against values, gradients, reprs and error
texts recorded from PyTorch 2.13 (/tmp/torchvenv/bin/python, float64); finite differences;
compiled vs eager; hypothesis round trips with max pooling."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj

F = gj.nn.functional

# recorded from torch 2.13
U1 = [[[0.5, 0.0, 2.0, 0.0, 1.5, 0.0, 0.9, 0.0]]]
I1 = [[[0, 2, 4, 6]]]
GX1 = [[[0.0, 0.0, 2.0, 0.0, 4.0, 0.0, 6.0, 0.0]]]
I2 = [[[[5, 7], [13, 15]]]]
U2 = [[[[0.0, 0.0, 0.0, 0.0, 0.0], [0.5, 0.0, -1.5, 0.0, 0.0], [0.0, 0.0, 0.0, 2.5, 0.0],
        [3.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]]]]
GV2 = [[[[5.0, 7.0], [13.0, 15.0]]]]
I3, U3, GV3 = [[[1, 1]]], [[[0.0, 5.0, 0.0, 0.0]]], [[[10.0, 10.0]]]


def test_unpool1d_after_pool_value_and_gradient():
    x = gj.tensor([[[0.5, -1.0, 2.0, 0.3, 1.5, -0.2, 0.9, 0.1]]], dtype=gj.float64,
                  requires_grad=True)
    p, i = F.max_pool1d(x, 2, stride=2, return_indices=True)
    u = F.max_unpool1d(p, i, 2)
    (u * gj.arange(u.numel(), dtype=gj.float64).reshape(u.shape)).sum().backward()
    assert u.tolist() == U1 and i.tolist() == I1 and x.grad.tolist() == GX1


def test_unpool2d_with_output_size():
    x = gj.arange(1.0, 17.0, dtype=gj.float64).reshape(1, 1, 4, 4)
    v = gj.tensor([[[[0.5, -1.5], [2.5, 3.0]]]], dtype=gj.float64, requires_grad=True)
    _, i = F.max_pool2d(x, 2, stride=2, return_indices=True)
    u = gj.nn.MaxUnpool2d(2, stride=2)(v, i, output_size=(5, 5))
    (u * gj.arange(u.numel(), dtype=gj.float64).reshape(u.shape)).sum().backward()
    assert i.tolist() == I2 and u.tolist() == U2 and v.grad.tolist() == GV2


def test_overlapping_windows_write_once_and_give_full_gradients():
    x = gj.tensor([[[1.0, 5.0, 2.0, 0.0]]], dtype=gj.float64)
    p, i = F.max_pool1d(x, 3, stride=1, return_indices=True)
    v = p.detach().clone().requires_grad_(True)
    u = gj.nn.MaxUnpool1d(3, stride=1)(v, i)
    (u * gj.tensor([[[1.0, 10.0, 100.0, 1000.0]]], dtype=gj.float64)).sum().backward()
    assert i.tolist() == I3 and u.tolist() == U3 and v.grad.tolist() == GV3


def test_reprs():
    assert repr(gj.nn.MaxUnpool2d(2, stride=2)) == \
        "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    assert repr(gj.nn.MaxUnpool1d(3, stride=2, padding=1)) == \
        "MaxUnpool1d(kernel_size=(3,), stride=(2,), padding=(1,))"


def test_pytorch_error_texts():
    with pytest.raises(RuntimeError) as e:
        F.max_unpool1d(gj.ones(1, 1, 2), gj.tensor([[[0, 9]]]), 2)
    assert str(e.value).startswith("Found an invalid max index: 9 (output volumes are of "
                                   "size 4x1")
    with pytest.raises(ValueError) as e:
        F.max_unpool1d(gj.ones(1, 1, 2), gj.tensor([[[0, 1]]]), 2, output_size=(9,))
    assert 'invalid output_size "(9,)" (dim 0 must be between 2 and 6)' in str(e.value)


def test_finite_differences_float64():
    rng = np.random.default_rng(0)
    x = gj.tensor(rng.standard_normal((2, 3, 4, 4)))
    _, i = F.max_pool2d(x, 2, stride=2, return_indices=True)
    base = rng.standard_normal((2, 3, 2, 2))
    w = gj.tensor(rng.standard_normal((2, 3, 4, 4)))
    v = gj.tensor(base, requires_grad=True)
    (F.max_unpool2d(v, i, 2) * w).sum().backward()
    eps, numeric = 1e-6, np.zeros_like(base)
    for idx in np.ndindex(base.shape):
        vals = []
        for sign in (1, -1):
            shifted = base.copy()
            shifted[idx] += sign * eps
            vals.append((F.max_unpool2d(gj.tensor(shifted), i, 2) * w).sum().item())
        numeric[idx] = (vals[0] - vals[1]) / (2 * eps)
    np.testing.assert_allclose(v.grad.numpy(), numeric, rtol=1e-7, atol=1e-9)


def test_compiled_equals_eager():
    pool, unpool = gj.nn.MaxPool2d(2, return_indices=True), gj.nn.MaxUnpool2d(2)

    def f(x):
        p, i = pool(x)
        return unpool(p * 2.0, i)
    x = gj.randn(2, 2, 6, 6)
    np.testing.assert_allclose(gj.compile(f)(x).numpy(), f(x).numpy(), rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), length=st.integers(2, 12),
       k=st.integers(1, 3), seed=st.integers(0, 100))
def test_unpool_puts_each_max_back_in_place(n, c, length, k, seed):
    k = min(k, length)
    x = np.random.default_rng(seed).standard_normal((n, c, length))
    p, i = F.max_pool1d(gj.tensor(x), k, return_indices=True)
    u = F.max_unpool1d(p, i, k, output_size=(n, c, length) if length % k else None).numpy()
    flat = i.numpy()
    for a in range(n):
        for b in range(c):
            want = np.zeros(u.shape[-1])
            want[flat[a, b]] = x[a, b, flat[a, b]]
            np.testing.assert_array_equal(u[a, b], want)
