"""index_put_ with accumulate=True (tracer/autograd/index_put_ops.py): gradients w.r.t. the
tensor written and the values against float64 finite differences, repeated positions
included, with a concrete index and under jit with a traced one."""
import numpy as np
import pytest

import gradjit as gj
from tests.gradcheck import numeric_grad

RNG = np.random.default_rng(0)
X0, V0, W = RNG.normal(size=(5, 2)), RNG.normal(size=(4, 2)), RNG.normal(size=(5, 2))
INDEX = np.array([3, 0, 3, 3])


def _loss(x, v, index, accumulate=True):
    y = x * 1
    y.index_put_((index,), v, accumulate=accumulate)
    return ((y * y) * gj.tensor(W)).sum()


@pytest.mark.parametrize("accumulate", [True, False])
def test_index_put_gradients_match_finite_differences(accumulate):
    x = gj.tensor(X0, requires_grad=True)
    v = gj.tensor(V0, requires_grad=True)
    _loss(x, v, gj.tensor(INDEX), accumulate).backward()
    want_x = numeric_grad(lambda a: _loss(gj.tensor(a), gj.tensor(V0), gj.tensor(INDEX),
                                          accumulate).item(), X0)
    want_v = numeric_grad(lambda a: _loss(gj.tensor(X0), gj.tensor(a), gj.tensor(INDEX),
                                          accumulate).item(), V0)
    np.testing.assert_allclose(x.grad.numpy(), want_x, rtol=1e-6, atol=1e-8)
    if accumulate:              # (overwritten rows: the write's gradient, not the loss's)
        np.testing.assert_allclose(v.grad.numpy(), want_v, rtol=1e-6, atol=1e-8)


def test_a_traced_index_gives_the_concrete_index_values_and_gradients():
    concrete = gj.grad(_loss, argnums=(0, 1))(X0, V0, gj.tensor(INDEX))
    traced = gj.jit(gj.grad(_loss, argnums=(0, 1)))(X0, V0, INDEX)
    for a, b in zip(traced, concrete):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)
    assert float(gj.jit(_loss)(X0, V0, INDEX)) == pytest.approx(
        float(_loss(gj.tensor(X0), gj.tensor(V0), gj.tensor(INDEX))), rel=1e-12)
