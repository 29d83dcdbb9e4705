"""Embedding, one_hot, pad, interpolate, dropout variants, containers (ParameterList /
ParameterDict), forward hooks and pre-hooks, Linear's shape error; against PyTorch 2.13."""
import numpy as np
import pytest

import gradjit as gj
from tests.api.nn_cases_text import REPRS
from tests.api.nn_check import RECORDED, check_case, check_error, error_names, names

nn = gj.nn
F = gj.nn.functional

_ELSEWHERE = {"batchnorm2d_dim", "batchnorm1d_dim", "batchnorm_one_value", "groupnorm_divisible",
              "layer_norm_shape", "conv2d_channels", "conv_same_strided", "conv_groups",
              "lstm_input_size", "rnn_nonlinearity", "mha_divisible", "sdpa_mask_and_causal",
              "bce_size", "reduction"}


@pytest.mark.parametrize("name", names("embedding") + names("misc"))
def test_matches_pytorch(name):
    check_case(name)


@pytest.mark.parametrize("name", [n for n in error_names() if n not in _ELSEWHERE])
def test_error_texts(name):
    check_error(name)


def test_embedding_padding_row_starts_at_zero_and_gets_no_gradient():
    emb = nn.Embedding(5, 3, padding_idx=-2)
    assert emb.padding_idx == 3 and emb.weight[3].tolist() == [0.0, 0.0, 0.0]
    emb(gj.tensor([[3, 1], [3, 3]])).sum().backward()
    grad = np.asarray(emb.weight.grad.tolist())
    assert grad[3].tolist() == [0.0, 0.0, 0.0] and grad[1].tolist() == [1.0, 1.0, 1.0]


def test_embedding_from_pretrained_freezes_by_default():
    w = gj.tensor([[1.0, 2.0], [3.0, 4.0]])
    emb = nn.Embedding.from_pretrained(w)
    assert not emb.weight.requires_grad
    assert emb(gj.tensor([1, 0])).tolist() == [[3.0, 4.0], [1.0, 2.0]]


def test_dropout_scales_kept_elements_and_is_identity_in_eval():
    gj.manual_seed(3)
    drop = nn.Dropout(0.25)
    y = np.asarray(drop(gj.ones(200, 100)).tolist())
    assert set(np.unique(y)) <= {0.0, np.float32(1.0 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    drop.eval()
    x = gj.randn(3, 4)
    assert drop(x) is x or drop(x).tolist() == x.tolist()


def test_dropout2d_zeroes_whole_channels():
    gj.manual_seed(4)
    y = np.asarray(F.dropout2d(gj.ones(8, 16, 3, 3), 0.5).tolist())
    per_channel = y.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    assert 0 < (per_channel == 0).all(-1).sum() < 8 * 16


def test_forward_hooks_and_pre_hooks_with_removable_handles():
    lin = nn.Linear(2, 2)
    calls = []
    pre = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = lin.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    out = lin(gj.ones(3, 2))
    np.testing.assert_allclose(out.tolist(), (np.asarray(lin.bias.tolist()) + 1)[None].repeat(
        3, 0), rtol=1e-6)
    assert [tuple(s) for s in calls] == [(3, 2)]
    pre.remove()
    post.remove()
    assert lin(gj.ones(1, 2)).tolist() == lin.forward(gj.ones(1, 2)).tolist()
    assert len(calls) == 1


def test_hooks_with_kwargs_order_and_context_manager():
    seq = nn.Sequential(nn.Identity())
    order = []
    seq.register_forward_hook(lambda m, a, o: order.append("second"))
    seq.register_forward_hook(lambda m, a, o: order.append("first"), prepend=True)

    def pre(m, args, kwargs):
        return (args[0] * 2,), kwargs
    with seq.register_forward_pre_hook(pre, with_kwargs=True):
        assert seq(gj.tensor([1.0])).tolist() == [2.0]
    assert seq(gj.tensor([1.0])).tolist() == [1.0]
    assert order == ["first", "second", "first", "second"]


def test_hook_output_keeps_gradients():
    lin = nn.Linear(3, 1)
    lin.register_forward_hook(lambda m, a, out: out * 2)
    lin(gj.ones(1, 3)).sum().backward()
    assert lin.weight.grad.tolist() == [[2.0, 2.0, 2.0]]


def test_parameter_containers_register_parameters():
    plist = nn.ParameterList([nn.Parameter(gj.ones(2)), gj.zeros(3)])
    pdict = nn.ParameterDict({"scale": gj.ones(1)})
    pdict["shift"] = nn.Parameter(gj.zeros(1))
    model = nn.Module()
    model.plist, model.pdict = plist, pdict
    assert list(model.state_dict()) == ["plist.0", "plist.1", "pdict.scale", "pdict.shift"]
    assert all(isinstance(p, nn.Parameter) for p in model.parameters())
    assert "scale" in pdict and len(pdict) == 2 and list(pdict.keys()) == ["scale", "shift"]


def test_interpolate_needs_size_or_scale():
    with pytest.raises(ValueError, match="either size or scale_factor should be defined"):
        F.interpolate(gj.ones(1, 1, 4))


def test_unflatten_and_flatten_round_trip():
    x = gj.randn(2, 6, 5)
    y = nn.Unflatten(1, (2, 3))(x)
    assert tuple(y.shape) == (2, 2, 3, 5)
    assert nn.Flatten(1, 2)(y).tolist() == x.tolist()


@pytest.mark.parametrize("name", ["Embedding"])
def test_repr(name):
    assert repr(REPRS[name](gj)) == RECORDED["reprs"][name]


@pytest.mark.parametrize("make", [
    lambda: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.GELU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 2)),
    lambda: nn.LSTM(4, 3, batch_first=True, bidirectional=True),
    lambda: nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True)],
    ids=["cnn", "lstm", "encoder"])
def test_jit_of_a_module_forward_equals_eager(make):
    gj.manual_seed(5)
    model = make().eval()
    x = gj.randn(2, 4, 4) if not isinstance(model, nn.Sequential) else gj.randn(2, 2, 4, 4)

    def first(out):
        return out[0] if isinstance(out, tuple) else out
    eager = np.asarray(first(model(x)).tolist())
    jitted = np.asarray(gj.jit(lambda x: first(model(x)))(x).tolist())
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-6)
