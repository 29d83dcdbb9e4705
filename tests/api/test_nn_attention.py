"""Attention: scaled_dot_product_attention, MultiheadAttention (masks, batch_first,
need_weights, kdim/vdim), TransformerEncoderLayer/Encoder; against PyTorch 2.13."""
import numpy as np
import pytest

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
