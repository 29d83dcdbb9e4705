"""std() of constant input: value 0 and gradient 0, as PyTorch (which masks the zero-variance
case; sqrt's derivative alone gives 0/0 = nan there). References recorded with torch 2.13.0:
y = x.std(**kw); (y * arange(1, y.numel() + 1)).sum().backward(); x.grad."""
import numpy as np
import pytest

import gradjit as gj

# name: (x, kwargs, torch's y, torch's x.grad)
TORCH = {
    "const_vec": (np.full(4, 3.0), {}, 0.0, [0.0] * 4),
    "const_rows_dim1": (np.array([[1.0, 1, 1], [1, 2, 4]]), {"dim": 1},
                        [0.0, 1.5275252316519465],
                        [[0.0, 0.0, 0.0],
                         [-0.8728715609439697, -0.2182178902359925, 1.0910894511799618]]),
    "const_cols_dim0_keep": (np.array([[2.0, 1, 1], [2, 2, 5]]), {"dim": 0, "keepdim": True},
                             [[0.0, 0.7071067811865476, 2.8284271247461903]],
                             [[0.0, -1.414213562373095, -2.1213203435596424],
                              [0.0, 1.414213562373095, 2.1213203435596424]]),
    "const_biased": (np.full((2, 3), -1.5), {"unbiased": False}, 0.0, [[0.0] * 3] * 2),
    "const_f32": (np.full(5, 0.25, np.float32), {}, 0.0, [0.0] * 5),
}


def weighted(kw):
    def f(x):
        y = x.std(**kw)
        w = gj.arange(1, y.numel() + 1, dtype=y.dtype).reshape(y.shape)
        return (y * w).sum()
    return f


@pytest.mark.parametrize("name", list(TORCH))
def test_imperative_std_of_constant_matches_torch(name):
    x0, kw, y_want, g_want = TORCH[name]
    x = gj.tensor(x0, requires_grad=True)
    y = x.std(**kw)
    w = gj.arange(1, y.numel() + 1, dtype=y.dtype).reshape(y.shape)
    (y * w).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), y_want, rtol=1e-6, atol=0)
    np.testing.assert_allclose(x.grad.numpy(), g_want, rtol=1e-6, atol=0)
    assert not np.isnan(x.grad.numpy()).any()


@pytest.mark.parametrize("name", list(TORCH))
def test_functional_std_of_constant_matches_torch(name):
    x0, kw, _, g_want = TORCH[name]
    np.testing.assert_allclose(np.asarray(gj.grad(weighted(kw))(x0)), g_want, rtol=1e-6, atol=0)


def test_std_gradient_away_from_zero_variance_matches_finite_differences():
    x = np.random.default_rng(2).standard_normal((3, 4))
    f = weighted({"dim": 1})
    g = np.asarray(gj.grad(f)(x))
    eps, fd = 1e-6, np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        plus, minus = float(np.asarray(gj.jit(f)(x + d))), float(np.asarray(gj.jit(f)(x - d)))
        fd[i] = (plus - minus) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
