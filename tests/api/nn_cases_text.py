"""Error texts and printed layouts of the nn surface, shared by
tests/api/recorded/record_nn.py (PyTorch 2.13) and the tests (gradjit). Never imports torch."""
from __future__ import annotations



# ---- error texts (recorded as type name and message) ---------------------------------------

def _shape_error_linear(t):
    t.nn.Linear(4, 3)(t.ones(2, 5))


ERRORS = {
    "linear_shape": _shape_error_linear,
    "conv2d_channels": lambda t: t.nn.functional.conv2d(t.ones(1, 3, 5, 5),
                                                        t.ones(2, 4, 3, 3)),
    "conv_same_strided": lambda t: t.nn.Conv2d(1, 1, 3, stride=2, padding="same"),
    "conv_groups": lambda t: t.nn.Conv2d(3, 4, 3, groups=2),
    "batchnorm2d_dim": lambda t: t.nn.BatchNorm2d(3)(t.ones(2, 3)),
    "batchnorm1d_dim": lambda t: t.nn.BatchNorm1d(3)(t.ones(2, 3, 4, 5)),
    "batchnorm_one_value": lambda t: t.nn.BatchNorm1d(3)(t.ones(1, 3)),
    "groupnorm_divisible": lambda t: t.nn.GroupNorm(3, 4),
    "layer_norm_shape": lambda t: t.nn.functional.layer_norm(t.ones(2, 3), (4,)),
    "dropout_p": lambda t: t.nn.Dropout(1.5),
    "bce_size": lambda t: t.nn.functional.binary_cross_entropy(t.ones(3) * 0.5, t.ones(2, 3)),
    "reduction": lambda t: t.nn.functional.huber_loss(t.ones(2), t.ones(2), reduction="avg"),
    "embedding_float_index": lambda t: t.nn.functional.embedding(t.ones(2), t.ones(3, 2)),
    "one_hot_float": lambda t: t.nn.functional.one_hot(t.ones(2)),
    "pad_odd": lambda t: t.nn.functional.pad(t.ones(2, 3), (1, 2, 3)),
    "lstm_input_size": lambda t: t.nn.LSTM(3, 4)(t.ones(5, 2, 2)),
    "rnn_nonlinearity": lambda t: t.nn.RNN(3, 4, nonlinearity="sigmoid"),
    "mha_divisible": lambda t: t.nn.MultiheadAttention(6, 4),
    "interpolate_both": lambda t: t.nn.functional.interpolate(t.ones(1, 1, 4), size=2,
                                                              scale_factor=2.0),
    "gelu_approximate": lambda t: t.nn.functional.gelu(t.ones(2), approximate="fast"),
    "sdpa_mask_and_causal": lambda t: t.nn.functional.scaled_dot_product_attention(
        t.ones(1, 2, 2), t.ones(1, 2, 2), t.ones(1, 2, 2), attn_mask=t.ones(2, 2),
        is_causal=True),
    "module_missing_forward": lambda t: t.nn.Module()(1),
}


def run_error(torch, name: str):
    try:
        ERRORS[name](torch)
    except Exception as e:          # noqa: BLE001  (the recorded error is the point)
        return [type(e).__name__, str(e)]
    return None


# ---- printed layouts (repr) ----------------------------------------------------------------

REPRS = {
    "GELU": lambda t: t.nn.GELU("tanh"), "ELU": lambda t: t.nn.ELU(0.5),
    "Softplus": lambda t: t.nn.Softplus(), "Hardtanh": lambda t: t.nn.Hardtanh(-2.0, 2.0),
    "Mish": lambda t: t.nn.Mish(), "Unflatten": lambda t: t.nn.Unflatten(1, (2, 3)),
    "Dropout2d": lambda t: t.nn.Dropout2d(0.3),
    "LayerNorm": lambda t: t.nn.LayerNorm(8), "RMSNorm": lambda t: t.nn.RMSNorm([4, 5]),
    "GroupNorm": lambda t: t.nn.GroupNorm(2, 6), "BatchNorm1d": lambda t: t.nn.BatchNorm1d(4),
    "BatchNorm2d": lambda t: t.nn.BatchNorm2d(3, momentum=None, affine=False),
    "Embedding": lambda t: t.nn.Embedding(10, 3, padding_idx=0),
    "Conv2d": lambda t: t.nn.Conv2d(3, 16, 3, padding=1),
    "Conv2d_opts": lambda t: t.nn.Conv2d(4, 8, (3, 5), stride=2, padding="valid",
                                         dilation=2, groups=2, bias=False),
    "Conv1d": lambda t: t.nn.Conv1d(2, 4, 3, padding="same", padding_mode="reflect"),
    "MaxPool2d": lambda t: t.nn.MaxPool2d(2), "AvgPool2d": lambda t: t.nn.AvgPool2d(3, 1, 1),
    "AdaptiveAvgPool2d": lambda t: t.nn.AdaptiveAvgPool2d((1, 1)),
    "LSTM": lambda t: t.nn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True),
    "GRU": lambda t: t.nn.GRU(3, 4, dropout=0.5, num_layers=2),
    "RNN": lambda t: t.nn.RNN(3, 4, nonlinearity="relu", bias=False),
    "LSTMCell": lambda t: t.nn.LSTMCell(3, 4), "GRUCell": lambda t: t.nn.GRUCell(3, 4, False),
    "MultiheadAttention": lambda t: t.nn.MultiheadAttention(8, 2),
    "TransformerEncoder": lambda t: t.nn.TransformerEncoder(
        t.nn.TransformerEncoderLayer(8, 2, 16), 2),
    "BCEWithLogitsLoss": lambda t: t.nn.BCEWithLogitsLoss(),
    "HuberLoss": lambda t: t.nn.HuberLoss(),
}
