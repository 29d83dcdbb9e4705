"""Small real models written as a JAX or PyTorch user would, checked against NumPy.

Training loops are compared step by step with a NumPy implementation of the same forward
pass, hand-written backward pass and optimizer; the other models' gradients are compared
with central finite differences in float64.
"""
from __future__ import annotations

import numpy as np
import pytest

import gradjit as gj
from tests.gradcheck import numeric_grad as fd_grad

RNG = np.random.default_rng(1234)


def values(t) -> np.ndarray:
    return np.asarray(t.detach() if isinstance(t, gj.Tensor) else t)


# ---- a 2-layer MLP classifier: NumPy reference ------------------------------------------

def np_mlp_loss_and_grads(p: dict, x: np.ndarray, y: np.ndarray):
    """Mean softmax cross-entropy of relu(x W1^T + b1) W2^T + b2, and its gradients."""
    h_pre = x @ p["w1"].T + p["b1"]
    h = np.maximum(h_pre, 0)
    logits = h @ p["w2"].T + p["b2"]
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    n = len(y)
    loss = -logp[np.arange(n), y].mean()
    dlogits = np.exp(logp)
    dlogits[np.arange(n), y] -= 1
    dlogits /= n
    dh = dlogits @ p["w2"] * (h_pre > 0)
    grads = {"w2": dlogits.T @ h, "b2": dlogits.sum(0), "w1": dh.T @ x, "b1": dh.sum(0)}
    return loss, grads


def init_mlp(dtype) -> dict:
    rng = np.random.default_rng(7)
    shapes = {"w1": (16, 4), "b1": (16,), "w2": (3, 16), "b2": (3,)}
    return {k: (rng.standard_normal(s) * 0.4).astype(dtype) for k, s in shapes.items()}


X = RNG.standard_normal((32, 4))
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)


def gj_mlp_loss(p, x, y):
    h = gj.relu(x @ p["w1"].T + p["b1"])
    return gj.nn.functional.cross_entropy(h @ p["w2"].T + p["b2"], y)


def test_functional_mlp_sgd_matches_numpy_step_by_step():
    p_gj, p_np = init_mlp(np.float64), init_mlp(np.float64)
    step = gj.jit(gj.value_and_grad(gj_mlp_loss))
    losses = []
    for _ in range(40):
        loss, grads = step(p_gj, X, Y)
        ref_loss, ref_grads = np_mlp_loss_and_grads(p_np, X, Y)
        np.testing.assert_allclose(loss.item(), ref_loss, rtol=1e-10)
        for k in p_np:
            np.testing.assert_allclose(values(grads[k]), ref_grads[k], rtol=1e-8, atol=1e-12)
        p_gj = {k: values(p_gj[k]) - 0.5 * values(grads[k]) for k in p_gj}
        p_np = {k: p_np[k] - 0.5 * ref_grads[k] for k in p_np}
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    assert step.trace_count == 1


class MLP(gj.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = gj.nn.Linear(4, 16)
        self.fc2 = gj.nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(gj.nn.functional.relu(self.fc1(x)))


def np_adam(p, g, state, t, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
    m, v = state.get("m", np.zeros_like(p)), state.get("v", np.zeros_like(p))
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    state.update(m=m, v=v)
    return p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)


def test_torch_style_mlp_adam_matches_numpy_step_by_step():
    model = MLP()
    ref = init_mlp(np.float32)
    with gj.no_grad():
        for name, layer in (("1", model.fc1), ("2", model.fc2)):
            layer.weight.copy_(gj.tensor(ref["w" + name]))
            layer.bias.copy_(gj.tensor(ref["b" + name]))
    opt = gj.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = gj.nn.CrossEntropyLoss()
    x, y = gj.tensor(X.astype(np.float32)), gj.tensor(Y)
    ref = {k: v.astype(np.float64) for k, v in ref.items()}
    states = {k: {} for k in ref}
    losses = []
    for t in range(1, 9):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        ref_loss, ref_grads = np_mlp_loss_and_grads(ref, X, Y)
        np.testing.assert_allclose(loss.item(), ref_loss, rtol=1e-5)
        np.testing.assert_allclose(values(model.fc1.weight.grad), ref_grads["w1"], atol=1e-5)
        ref = {k: np_adam(ref[k], ref_grads[k], states[k], t) for k in ref}
        losses.append(loss.item())
    np.testing.assert_allclose(values(model.fc2.bias), ref["b2"], atol=1e-5)
    np.testing.assert_allclose(values(model.fc1.weight), ref["w1"], atol=1e-5)
    assert losses[-1] < losses[0]


def test_logistic_regression_gradient_is_the_closed_form():
    x = RNG.standard_normal((50, 3))
    y = (x @ np.array([1.0, -2.0, 0.5]) > 0).astype(np.float64)

    def nll(w, b):
        z = x @ w + b
        return (gj.nn.functional.softplus(z) - y * z).mean()

    w, b = np.zeros(3), np.float64(0.0)
    vg = gj.jit(gj.value_and_grad(nll, argnums=(0, 1)))
    first = None
    for _ in range(30):
        loss, (gw, gb) = vg(w, b)
        p = 1 / (1 + np.exp(-(x @ w + b)))
        np.testing.assert_allclose(values(gw), x.T @ (p - y) / len(y), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(gb.item(), (p - y).mean(), rtol=1e-10, atol=1e-14)
        w, b = w - 1.0 * values(gw), b - 1.0 * gb.item()
        first = loss.item() if first is None else first
    assert loss.item() < 0.5 * first


# ---- recurrent nets with scan ----------------------------------------------------------

H, D, T = 4, 3, 6


def lstm_loss(params, xs):
    def step(carry, x):
        h, c = carry
        z = x @ params["W"] + h @ params["U"] + params["b"]
        i, f, o, g = gj.split(z, H, dim=-1)
        c = gj.sigmoid(f) * c + gj.sigmoid(i) * gj.tanh(g)
        h = gj.sigmoid(o) * gj.tanh(c)
        return (h, c), h
    zero = gj.zeros(H, dtype=gj.float64)
    (h, c), hs = gj.scan(step, (zero, zero), xs)
    return (hs ** 2).sum() + c.sum()


def gru_loss(w, xs):
    def step(h, x):
        zr = gj.sigmoid(gj.cat([x, h]) @ w[:, :2 * H])
        z, r = zr[:H], zr[H:]
        n = gj.tanh(gj.cat([x, r * h]) @ w[:, 2 * H:])
        h = (1 - z) * n + z * h
        return h, h.sum()
    h, ys = gj.scan(step, gj.zeros(H, dtype=gj.float64), xs)
    return ys.sum() + (h * h).sum()


def test_lstm_via_scan_gradients_match_finite_differences():
    params = {"W": RNG.standard_normal((D, 4 * H)) * 0.5,
              "U": RNG.standard_normal((H, 4 * H)) * 0.5,
              "b": RNG.standard_normal(4 * H) * 0.1}
    xs = RNG.standard_normal((T, D))
    grads = gj.grad(lstm_loss, argnums=(0, 1))(params, xs)
    for k in params:
        want = fd_grad(lambda v, k=k: lstm_loss({**params, k: v}, xs).item(), params[k])
        np.testing.assert_allclose(values(grads[0][k]), want, atol=1e-7)
    np.testing.assert_allclose(values(grads[1]),
                               fd_grad(lambda v: lstm_loss(params, v).item(), xs), atol=1e-7)
    assert "scan" in str(gj.make_ir(gj.grad(lstm_loss))(params, xs))


def test_gru_via_scan_gradient_matches_finite_differences():
    w = RNG.standard_normal((D + H, 3 * H)) * 0.5
    xs = RNG.standard_normal((T, D))
    np.testing.assert_allclose(values(gj.grad(gru_loss)(w, xs)),
                               fd_grad(lambda v: gru_loss(v, xs).item(), w), atol=1e-7)


# ---- attention, layer norm, convolutions ---------------------------------------------------

def np_attention(q, k, v, mask):
    s = np.where(mask, q @ k.T / np.sqrt(q.shape[-1]), -1e9)
    e = np.exp(s - s.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)) @ v


def gj_attention(q, k, v, mask):
    s = gj.where(mask, q @ k.T / np.sqrt(q.shape[-1]), -1e9)
    return gj.softmax(s, -1) @ v


def test_masked_attention_value_and_gradient():
    q, k, v = (RNG.standard_normal((5, 4)) for _ in range(3))
    mask = np.tril(np.ones((5, 5), bool))
    np.testing.assert_allclose(values(gj.jit(gj_attention)(q, k, v, mask)),
                               np_attention(q, k, v, mask), rtol=1e-12)
    w = RNG.standard_normal((5, 4))
    grads = gj.grad(lambda q, k, v: (gj_attention(q, k, v, mask) * w).sum(),
                    argnums=(0, 1, 2))(q, k, v)
    refs = [fd_grad(lambda a: (np_attention(a, k, v, mask) * w).sum(), q),
            fd_grad(lambda a: (np_attention(q, a, v, mask) * w).sum(), k),
            fd_grad(lambda a: (np_attention(q, k, a, mask) * w).sum(), v)]
    for got, want in zip(grads, refs):
        np.testing.assert_allclose(values(got), want, atol=1e-7)
    # masked-out keys get no gradient from the first query (it only sees key 0)
    g_k = values(gj.grad(lambda k: gj_attention(q, k, v, mask)[0].sum())(k))
    assert np.all(g_k[1:] == 0)


def gj_layer_norm(x, g, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / gj.sqrt(var + 1e-5) * g + b


def np_layer_norm(x, g, b):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * g + b


def test_layer_norm_gradients_match_finite_differences():
    x, g, b = RNG.standard_normal((3, 6)), RNG.standard_normal(6), RNG.standard_normal(6)
    w = RNG.standard_normal((3, 6))
    grads = gj.grad(lambda *a: (gj_layer_norm(*a) * w).sum(), argnums=(0, 1, 2))(x, g, b)
    args = [x, g, b]
    for i, got in enumerate(grads):
        def f(a, i=i):
            return (np_layer_norm(*(args[:i] + [a] + args[i + 1:])) * w).sum()
        np.testing.assert_allclose(values(got), fd_grad(f, args[i]), atol=1e-7)


def gj_conv2d(img, kern):
    """'valid' cross-correlation (C,6,6) x (O,C,3,3) from shifted windows and one einsum."""
    rows = [gj.stack([img[:, i:i + 4, j:j + 4] for j in range(3)], -1) for i in range(3)]
    return gj.einsum("chwij,ocij->ohw", gj.stack(rows, -2), kern)


def np_conv2d(img, kern):
    out = np.zeros((kern.shape[0], 4, 4))
    for o, h, w in np.ndindex(out.shape):
        out[o, h, w] = (img[:, h:h + 3, w:w + 3] * kern[o]).sum()
    return out


def test_conv_via_einsum_value_and_gradient():
    img, kern = RNG.standard_normal((2, 6, 6)), RNG.standard_normal((4, 2, 3, 3))
    np.testing.assert_allclose(values(gj.jit(gj_conv2d)(img, kern)), np_conv2d(img, kern),
                               rtol=1e-12, atol=1e-12)
    w = RNG.standard_normal((4, 4, 4))
    gk = gj.grad(lambda k: (gj_conv2d(img, k) * w).sum())(kern)
    np.testing.assert_allclose(values(gk), fd_grad(lambda k: (np_conv2d(img, k) * w).sum(),
                                                   kern), atol=1e-7)
    sig, ker = RNG.standard_normal(10), RNG.standard_normal(3)
    windows = np.arange(8)[:, None] + np.arange(3)[None, :]
    conv1d = gj.jit(lambda s, k: gj.einsum("tk,k->t", s[windows], k))
    np.testing.assert_allclose(values(conv1d(sig, ker)), np.convolve(sig, ker[::-1], "valid"),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch", [1, 7])
def test_vmapped_per_example_gradients_equal_a_python_loop(batch):
    p = init_mlp(np.float64)
    xs, ys = X[:batch], Y[:batch]

    def one(p, x, y):
        return gj_mlp_loss(p, x[None], y[None])

    per_ex = gj.vmap(gj.grad(one), in_axes=(None, 0, 0))(p, xs, ys)
    for i in range(batch):
        _, ref = np_mlp_loss_and_grads(p, xs[i:i + 1], ys[i:i + 1])
        for k in p:
            np.testing.assert_allclose(values(per_ex[k])[i], ref[k], rtol=1e-9, atol=1e-12)
