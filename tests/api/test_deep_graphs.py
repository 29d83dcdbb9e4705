"""Long dependence chains through both fronts: the graph cut, the autograd engine, the
passes and the code generator walk them without recursion (the default recursion limit
used to stop them at ~330 ops)."""
import numpy as np
import pytest

import gradjit as gj


def _imperative_sum(n):
    leaves = [gj.tensor(np.full(3, float(i)), requires_grad=True) for i in range(n)]
    total = leaves[0]
    for t in leaves[1:]:
        total = total + t
    (total * total).sum().backward()
    want = n * (n - 1) / 2
    np.testing.assert_allclose(total.detach().numpy(), [want] * 3)
    for t in (leaves[0], leaves[n // 2], leaves[-1]):
        np.testing.assert_allclose(t.grad.numpy(), [2 * want] * 3)


def test_imperative_sum_of_400_tensors_with_backward():
    _imperative_sum(400)


def test_imperative_sum_of_5000_tensors_with_backward(monkeypatch):
    # the reference interpreter: the walks are the same, and LLVM's time for a kernel with
    # 5,000 outputs is not what this test is about
    monkeypatch.setenv("GRADJIT_BACKEND", "interpret")
    _imperative_sum(5000)


@pytest.mark.parametrize("n", [400])
def test_imperative_in_place_chain_with_backward(n):
    x = gj.tensor(np.array([1.0, -0.5]), requires_grad=True)
    y = x * 1.0
    for _ in range(n):
        y.mul_(1.0001).add_(0.0001)
    y.sum().backward()
    a = 1.0001 ** n
    np.testing.assert_allclose(y.detach().numpy(), a * np.array([1.0, -0.5]) + (a - 1), rtol=1e-9)
    np.testing.assert_allclose(x.grad.numpy(), [a, a], rtol=1e-9)


def test_jit_gradient_of_a_600_op_chain():
    def f(z):
        for _ in range(300):
            z = gj.tanh(z) * 1.5
        return z.sum()
    x = np.array([0.3, -0.2])
    ref = x.copy()
    d = np.ones_like(x)
    for _ in range(300):
        d = d * (1 - np.tanh(ref) ** 2) * 1.5
        ref = np.tanh(ref) * 1.5
    np.testing.assert_allclose(gj.grad(f)(x).numpy(), d, rtol=1e-9)
