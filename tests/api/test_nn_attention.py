"""Attention: scaled_dot_product_attention, MultiheadAttention (masks, batch_first,
need_weights, kdim/vdim), TransformerEncoderLayer/Encoder; against PyTorch 2.13."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
from tests.api.nn_cases_text import REPRS
from tests.api.nn_check import RECORDED, check_case, check_error, names
from tests.gradcheck import check_grads

nn = gj.nn
F = gj.nn.functional


@pytest.mark.parametrize("name", names("attention"))
def test_matches_pytorch(name):
    check_case(name)


def test_sdpa_finite_differences():
    r = np.random.default_rng(7)
    q, k, v = (r.standard_normal((2, 3, 4)) for _ in range(3))
    check_grads(gj.make_ir(lambda q, k, v: F.scaled_dot_product_attention(q, k, v))(q, k, v),
                [q, k, v])


def test_causal_attention_ignores_the_future():
    r = np.random.default_rng(8)
    q, k, v = (r.standard_normal((1, 5, 4)) for _ in range(3))
    out = F.scaled_dot_product_attention(gj.tensor(q), gj.tensor(k), gj.tensor(v),
                                         is_causal=True)
    v2 = v.copy()
    v2[:, 3:] += 10.0                                # change only the last positions
    k2 = k.copy()
    k2[:, 3:] -= 5.0
    out2 = F.scaled_dot_product_attention(gj.tensor(q), gj.tensor(k2), gj.tensor(v2),
                                          is_causal=True)
    np.testing.assert_allclose(np.asarray(out.tolist())[:, :3],
                               np.asarray(out2.tolist())[:, :3], rtol=1e-12)


def test_mha_state_dict_names_and_need_weights():
    mha = nn.MultiheadAttention(8, 2)
    assert list(mha.state_dict()) == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                      "out_proj.bias"]
    x = gj.randn(3, 2, 8)
    out, w = mha(x, x, x, need_weights=False)
    assert w is None and tuple(out.shape) == (3, 2, 8)


def test_encoder_state_dict_names():
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2)
    keys = list(enc.state_dict())
    assert keys[:4] == ["layers.0.self_attn.in_proj_weight", "layers.0.self_attn.in_proj_bias",
                        "layers.0.self_attn.out_proj.weight", "layers.0.self_attn.out_proj.bias"]
    assert keys[-1] == "layers.1.norm2.bias" and len(keys) == 24
    # deep copies: the layers train independently
    assert enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight


def test_transformer_dropout_only_in_training():
    gj.manual_seed(2)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5)
    x = gj.randn(4, 2, 8)
    layer.eval()
    assert layer(x).tolist() == layer(x).tolist()
    layer.train()
    assert layer(x).tolist() != layer(x).tolist()


@pytest.mark.parametrize("name", ["mha_divisible", "sdpa_mask_and_causal"])
def test_error_texts(name):
    check_error(name)


@pytest.mark.parametrize("name", ["MultiheadAttention", "TransformerEncoder"])
def test_repr(name):
    assert repr(REPRS[name](gj)) == RECORDED["reprs"][name]


@pytest.mark.parametrize("batch_first", [False, True])
def test_self_attention_packed_projection_equals_separate_inputs(batch_first):
    """mha(x, x, x) projects with the packed weight in one product (PyTorch's
    _in_projection_packed); the same values and gradients as three equal inputs, and its
    weight gradient against float64 finite differences."""
    gj.manual_seed(9)
    mha = nn.MultiheadAttention(6, 2, batch_first=batch_first).double()
    data = np.random.default_rng(9).standard_normal((3, 4, 6))
    mask = gj.tensor(np.triu(np.ones((4 if batch_first else 3,) * 2, dtype=bool), 1))

    def run(same: bool):
        mha.zero_grad()
        x = gj.tensor(data, requires_grad=True)
        args = (x, x, x) if same else (x, x * 1.0, x + 0.0)
        out, weights = mha(*args, attn_mask=mask)
        ((out ** 2).sum() + weights.sum()).backward()
        return [out.detach().numpy(), x.grad.numpy(), mha.in_proj_weight.grad.numpy().copy()]
    packed, separate = run(True), run(False)
    for a, b in zip(packed, separate):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    w = mha.in_proj_weight
    base, eps = w.detach().numpy().copy(), 1e-6
    x = gj.tensor(data)
    for idx in [(0, 0), (7, 3), (13, 5)]:             # a row of q's, k's and v's block each
        vals = []
        for sign in (1, -1):
            shifted = base.copy()
            shifted[idx] += sign * eps
            with gj.no_grad():
                w.copy_(gj.tensor(shifted))
                out, weights = mha(x, x, x, attn_mask=mask)
                vals.append(((out ** 2).sum() + weights.sum()).item())
        np.testing.assert_allclose(packed[2][idx], (vals[0] - vals[1]) / (2 * eps),
                                   rtol=1e-6, atol=1e-8)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 3), l=st.integers(1, 5), s=st.integers(1, 5), heads=st.sampled_from([1, 2]),
       self_attn=st.booleans(), extras=st.booleans(), kv_dim=st.booleans(),
       masks=st.sampled_from(["none", "2d", "3d", "padding"]), seed=st.integers(0, 999))
def test_batch_first_is_computed_in_its_own_layout(n, l, s, heads, self_attn, extras, kv_dim,
                                                  masks, seed):
    """MultiheadAttention(batch_first=True) works on (N, L, E) without transposing to
    (L, N, E): outputs, attention weights and every gradient equal those of the same
    module with batch_first=False on transposed inputs (float64), for self- and
    cross-attention, bias_k/bias_v with add_zero_attn, kdim/vdim and every mask kind."""
    e = 2 * heads
    s = l if self_attn else s
    kv_dim = kv_dim and not self_attn
    gj.manual_seed(seed)
    kw = dict(add_bias_kv=extras, add_zero_attn=extras,
              kdim=3 if kv_dim else None, vdim=5 if kv_dim else None)
    first = nn.MultiheadAttention(e, heads, batch_first=True, **kw).double()
    second = nn.MultiheadAttention(e, heads, batch_first=False, **kw).double()
    second.load_state_dict(first.state_dict())
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, l, e))
    k = q if self_attn else rng.standard_normal((n, s, 3 if kv_dim else e))
    v = q if self_attn else rng.standard_normal((n, s, 5 if kv_dim else e))
    mask_kw = {}
    if masks == "2d":
        mask_kw["attn_mask"] = gj.tensor(rng.random((l, s)) < 0.3)
    elif masks == "3d":
        mask_kw["attn_mask"] = gj.tensor(rng.standard_normal((n * heads, l, s)))
    elif masks == "padding":
        pad = rng.random((n, s)) < 0.3
        pad[:, 0] = False                        # every query sees one key
        mask_kw["key_padding_mask"] = gj.tensor(pad)

    def run(module, transpose: bool):
        module.zero_grad()
        arrays = [a.transpose(1, 0, 2) if transpose else a for a in (q, k, v)]
        ts = [gj.tensor(a, requires_grad=True) for a in arrays]
        if self_attn:
            ts = [ts[0]] * 3
        out, weights = module(*ts, **mask_kw)
        rows = out.transpose(0, 1) if transpose else out
        (rows * gj.tensor(np.arange(rows.numel()).reshape(rows.shape) % 7.0)).sum().backward()
        grads = [t.grad.numpy() for t in ts[:1 if self_attn else 3]]
        grads = [g.transpose(1, 0, 2) if transpose else g for g in grads]
        return [rows.detach().numpy(), weights.detach().numpy()] + grads + \
            [p.grad.numpy() for p in module.parameters()]
    for a, b in zip(run(first, False), run(second, True)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_batch_first_gradients_against_finite_differences():
    """The (N, L, E) layout's in_proj and out_proj weight gradients, float64 central
    differences, with a causal mask."""
    gj.manual_seed(3)
    mha = nn.MultiheadAttention(4, 2, batch_first=True).double()
    x = gj.tensor(np.random.default_rng(3).standard_normal((2, 3, 4)))
    mask = gj.tensor(np.triu(np.ones((3, 3), dtype=bool), 1))

    def loss():
        out, _ = mha(x, x, x, attn_mask=mask, need_weights=False)
        return (out ** 3).sum()
    mha.zero_grad()
    loss().backward()
    for w, spots in ((mha.in_proj_weight, [(0, 1), (5, 2), (10, 3)]),
                     (mha.out_proj.weight, [(0, 0), (3, 2)])):
        base, eps = w.detach().numpy().copy(), 1e-6
        for idx in spots:
            vals = []
            for sign in (1, -1):
                shifted = base.copy()
                shifted[idx] += sign * eps
                with gj.no_grad():
                    w.copy_(gj.tensor(shifted))
                    vals.append(loss().item())
            with gj.no_grad():
                w.copy_(gj.tensor(base))
            np.testing.assert_allclose(w.grad.numpy()[idx], (vals[0] - vals[1]) / (2 * eps),
                                       rtol=1e-6, atol=1e-8)
