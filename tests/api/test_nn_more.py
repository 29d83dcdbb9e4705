"""Transposed convolution, adaptive max pooling (and the other modules of
tests/api/nn_cases_more.py): values, gradients of inputs and parameters, state_dict keys,
printed layouts and error texts against PyTorch 2.13; gradients against finite differences
on the interpreter."""
import numpy as np
import pytest

import gradjit as gj
from tests.api.nn_cases_text import REPRS
from tests.api.nn_check import RECORDED, check_case, check_error, names

F = gj.nn.functional


@pytest.mark.parametrize("name", names("conv_transpose"))
def test_conv_transpose_and_adaptive_max_match_pytorch(name):
    check_case(name)


@pytest.mark.parametrize("name", ["ConvTranspose2d", "ConvTranspose1d", "AdaptiveMaxPool2d"])
def test_repr(name):
    assert repr(REPRS[name](gj)) == RECORDED["reprs"][name]


@pytest.mark.parametrize("name", ["conv_transpose_channels", "conv_transpose_output_size"])
def test_errors(name):
    check_error(name)


@pytest.mark.parametrize("kw", [{"stride": 2, "padding": 1, "output_padding": 1},
                                {"groups": 2, "dilation": 2}],
                         ids=["stride_pad", "groups_dilation"])
def test_conv_transpose_gradients_against_finite_differences(kw):
    r = np.random.default_rng(5)
    x, w = r.standard_normal((2, 4, 3, 3)), r.standard_normal((4, 2, 3, 2))
    u = r.standard_normal(F.conv_transpose2d(gj.tensor(x), gj.tensor(w), **kw).shape)

    def f(x, w):
        return float((F.conv_transpose2d(gj.tensor(x), gj.tensor(w), **kw)
                      * gj.tensor(u)).sum())
    xt, wt = gj.tensor(x, requires_grad=True), gj.tensor(w, requires_grad=True)
    (F.conv_transpose2d(xt, wt, **kw) * gj.tensor(u)).sum().backward()
    eps = 1e-6
    for _ in range(3):            # directional derivatives, central differences in float64
        dx, dw = r.standard_normal(x.shape), r.standard_normal(w.shape)
        numeric = (f(x + eps * dx, w + eps * dw) - f(x - eps * dx, w - eps * dw)) / (2 * eps)
        analytic = float((xt.grad.numpy() * dx).sum() + (wt.grad.numpy() * dw).sum())
        assert abs(numeric - analytic) < 1e-6 * max(1.0, abs(numeric))


def test_conv_transpose_is_the_adjoint_of_conv():
    # <conv(x, w), y> == <x, conv_transpose(y, w)>: the definition of the transpose
    r = np.random.default_rng(6)
    x, w = r.standard_normal((1, 3, 7, 6)), r.standard_normal((4, 3, 3, 3))
    y = r.standard_normal((1, 4, 4, 3))
    lhs = float((F.conv2d(gj.tensor(x), gj.tensor(w), stride=2, padding=1)
                 * gj.tensor(y)).sum())
    rhs = float((gj.tensor(x) * F.conv_transpose2d(gj.tensor(y), gj.tensor(w), stride=2,
                                                   padding=1, output_padding=(0, 1))).sum())
    assert abs(lhs - rhs) < 1e-9 * max(1.0, abs(lhs))


def test_compiled_equals_eager():
    m = gj.nn.Sequential(gj.nn.ConvTranspose2d(2, 3, 3, stride=2), gj.nn.AdaptiveMaxPool2d(2))
    x = gj.randn(2, 2, 4, 4)
    np.testing.assert_allclose(gj.compile(m)(x).detach().numpy(), m(x).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", names("transformer"))
def test_transformer_decoder_attention_options_embedding_max_norm_match_pytorch(name):
    check_case(name, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["TransformerDecoderLayer", "Transformer",
                                  "MultiheadAttention_bias_kv", "Embedding_max_norm"])
def test_transformer_reprs(name):
    assert repr(REPRS[name](gj)) == RECORDED["reprs"][name]


@pytest.mark.parametrize("name", ["transformer_batch", "transformer_features"])
def test_transformer_errors(name):
    check_error(name)


def test_transformer_compiled_equals_eager_in_train_and_eval():
    gj.manual_seed(0)
    m = gj.nn.Transformer(8, 2, 1, 1, 16, dropout=0.0)
    src, tgt = gj.randn(5, 2, 8), gj.randn(3, 2, 8)
    mask = gj.nn.Transformer.generate_square_subsequent_mask(3)
    compiled = gj.compile(m)
    for train in (True, False):
        m.train(train)
        np.testing.assert_allclose(compiled(src, tgt, tgt_mask=mask).detach().numpy(),
                                   m(src, tgt, tgt_mask=mask).detach().numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_embedding_max_norm_renormalises_the_looked_up_rows_only():
    e = gj.nn.Embedding(4, 2, max_norm=1.0)
    with gj.no_grad():
        e.weight.copy_(gj.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0], [0.0, 2.0]]))
    e(gj.tensor([0, 1, 1]))
    w = e.weight.detach().numpy()
    np.testing.assert_allclose(np.linalg.norm(w[0]), 1.0, rtol=1e-6)   # 5 -> 1
    np.testing.assert_allclose(w[1], [0.3, 0.4], rtol=1e-6)             # under the norm
    np.testing.assert_allclose(w[2], [6.0, 8.0])                        # not looked up


@pytest.mark.parametrize("name", names("rnn_packed"))
def test_packed_sequences_and_lstm_proj_size_match_pytorch(name):
    check_case(name, rtol=1e-6, atol=1e-8)


def test_packed_rnn_repr_and_errors():
    assert repr(REPRS["LSTM_proj_size"](gj)) == RECORDED["reprs"]["LSTM_proj_size"]
    for name in ("lstm_proj_size_large", "gru_proj_size", "pack_unsorted"):
        check_error(name)


def test_packed_lstm_compiled_equals_eager():
    rnn = gj.nn.utils.rnn
    m = gj.nn.LSTM(2, 3, bidirectional=True)
    x = gj.randn(4, 3, 2)

    def run(x):
        out, (h, c) = m(rnn.pack_padded_sequence(x, [4, 2, 3], enforce_sorted=False))
        return rnn.pad_packed_sequence(out)[0], h

    eager, compiled = run(x), gj.compile(run)(x)
    for a, b in zip(eager, compiled):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-5, atol=1e-6)
