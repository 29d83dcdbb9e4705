"""More nn cases (transposed convolution, adaptive max pooling, the transformer decoder, ...)
registered into tests/api/nn_cases.py's CASES and nn_cases_text.py's REPRS (the same
recording and checking path: record_nn.py, nn_check.py). Never imports torch."""
from __future__ import annotations

import numpy as np

from tests.api.nn_cases import case, normal, normals
from tests.api.nn_cases_text import ERRORS, REPRS

# ---- transposed convolution, adaptive max pooling ------------------------------------------

case("F.conv_transpose1d", "conv_transpose", normals((2, 4, 5), (4, 3, 3), (3,)),
     lambda t, x, w, b: t.nn.functional.conv_transpose1d(x, w, b, stride=2, padding=1,
                                                         output_padding=1))
case("F.conv_transpose1d_unbatched", "conv_transpose", normals((4, 5), (4, 2, 2)),
     lambda t, x, w: t.nn.functional.conv_transpose1d(x, w, stride=3))
case("F.conv_transpose2d_groups", "conv_transpose", normals((1, 4, 4, 3), (4, 3, 3, 2), (6,)),
     lambda t, x, w, b: t.nn.functional.conv_transpose2d(
         x, w, b, stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2,
         dilation=(1, 2)))
case("F.conv_transpose2d_crop", "conv_transpose", normals((1, 2, 3, 3), (2, 2, 2, 2)),
     lambda t, x, w: t.nn.functional.conv_transpose2d(x, w, padding=1))
case("nn.ConvTranspose2d", "conv_transpose", normal(2, 3, 4, 4),
     module=lambda t: t.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1))
case("nn.ConvTranspose1d_groups", "conv_transpose", normal(2, 4, 5),
     module=lambda t: t.nn.ConvTranspose1d(4, 6, 3, groups=2, bias=False, dilation=2))
case("nn.ConvTranspose2d_output_size", "conv_transpose", normal(1, 2, 4, 4),
     lambda t, m, x: m(x, output_size=[8, 8]),
     module=lambda t: t.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1))
case("nn.AdaptiveMaxPool1d", "conv_transpose", normal(2, 3, 7),
     module=lambda t: t.nn.AdaptiveMaxPool1d(3))
case("nn.AdaptiveMaxPool2d", "conv_transpose", normal(1, 2, 5, 7),
     module=lambda t: t.nn.AdaptiveMaxPool2d((2, 3)))
case("F.adaptive_max_pool2d_none", "conv_transpose", normal(2, 5, 4),
     lambda t, x: t.nn.functional.adaptive_max_pool2d(x, (3, None)))

REPRS.update({
    "ConvTranspose2d": lambda t: t.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1,
                                                      output_padding=1),
    "ConvTranspose1d": lambda t: t.nn.ConvTranspose1d(4, 6, 3, groups=2, bias=False,
                                                      output_padding=1, stride=2),
    "AdaptiveMaxPool2d": lambda t: t.nn.AdaptiveMaxPool2d((2, 3)),
})
ERRORS.update({
    "conv_transpose_channels": lambda t: t.nn.functional.conv_transpose2d(
        t.ones(1, 3, 4, 4), t.ones(2, 3, 3, 3)),
    "conv_transpose_output_size": lambda t: t.nn.ConvTranspose2d(2, 3, 3, stride=2)(
        t.ones(1, 2, 4, 4), output_size=[20, 20]),
})

# ---- transformer decoder -------------------------------------------------------------------


def _causal(t, m, tgt, memory):
    mask = t.nn.Transformer.generate_square_subsequent_mask(tgt.shape[0], dtype=t.float64)
    return m(tgt, memory, tgt_mask=mask)


def _padded(n, lengths):
    return np.array([[i >= k for i in range(n)] for k in lengths])


case("nn.TransformerDecoderLayer_causal", "transformer", normals((4, 2, 8), (5, 2, 8)),
     _causal, module=lambda t: t.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0))
case("nn.TransformerDecoderLayer_norm_first_gelu_bf", "transformer",
     lambda r: [r.standard_normal((2, 3, 8)), r.standard_normal((2, 5, 8)), _padded(5, [5, 3])],
     lambda t, m, tgt, mem, kpm: m(tgt, mem, memory_key_padding_mask=kpm, tgt_is_causal=False),
     module=lambda t: t.nn.TransformerDecoderLayer(8, 4, 12, dropout=0.0, activation="gelu",
                                                   batch_first=True, norm_first=True))
case("nn.TransformerDecoder", "transformer", normals((3, 2, 8), (4, 2, 8)), _causal,
     module=lambda t: t.nn.TransformerDecoder(
         t.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0), 2, norm=t.nn.LayerNorm(8)))
case("nn.Transformer", "transformer",
     lambda r: [r.standard_normal((5, 2, 8)), r.standard_normal((3, 2, 8)), _padded(5, [5, 4])],
     lambda t, m, src, tgt, kpm: m(
         src, tgt, tgt_mask=t.nn.Transformer.generate_square_subsequent_mask(3, dtype=t.float64),
         src_key_padding_mask=kpm, memory_key_padding_mask=kpm),
     module=lambda t: t.nn.Transformer(8, 2, num_encoder_layers=1, num_decoder_layers=2,
                                       dim_feedforward=16, dropout=0.0))
case("nn.Transformer_eval_bf", "transformer", normals((2, 4, 8), (2, 3, 8)),
     lambda t, m, src, tgt: m(src, tgt, tgt_mask=t.nn.Transformer.generate_square_subsequent_mask(
         3, dtype=t.float64), tgt_is_causal=True),
     module=lambda t: t.nn.Transformer(8, 4, 1, 1, 12, dropout=0.3, batch_first=True,
                                       norm_first=True), train=False)
case("Transformer.generate_square_subsequent_mask", "transformer", normal(1),
     lambda t, x: t.nn.Transformer.generate_square_subsequent_mask(4), grad=False)

REPRS.update({
    "TransformerDecoderLayer": lambda t: t.nn.TransformerDecoderLayer(8, 2, 16),
    "Transformer": lambda t: t.nn.Transformer(8, 2, 1, 1, 16),
})
ERRORS.update({
    "transformer_batch": lambda t: t.nn.Transformer(8, 2, 1, 1, 16)(t.ones(3, 2, 8),
                                                                     t.ones(3, 4, 8)),
    "transformer_features": lambda t: t.nn.Transformer(8, 2, 1, 1, 16)(t.ones(3, 2, 6),
                                                                        t.ones(3, 2, 6)),
})

# ---- MultiheadAttention options ------------------------------------------------------------

case("nn.MultiheadAttention_bias_kv", "transformer",
     lambda r: [r.standard_normal((3, 2, 4)), r.standard_normal((5, 2, 4)),
                r.standard_normal((5, 2, 4)), _padded(5, [5, 2])],
     lambda t, m, q, k, v, kpm: m(q, k, v, key_padding_mask=kpm),
     module=lambda t: t.nn.MultiheadAttention(4, 2, add_bias_kv=True))
case("nn.MultiheadAttention_zero_attn_mask", "transformer", normals((3, 2, 4), (4, 2, 3),
                                                                    (4, 2, 2), (3, 4)),
     lambda t, m, q, k, v, mask: m(q, k, v, attn_mask=mask.detach(), need_weights=True,
                                   average_attn_weights=False),
     module=lambda t: t.nn.MultiheadAttention(4, 2, add_zero_attn=True, kdim=3, vdim=2))
case("nn.MultiheadAttention_both_bf", "transformer", normals((2, 3, 6), (2, 4, 6)),
     lambda t, m, q, kv: m(q, kv, kv, attn_mask=t.nn.Transformer.generate_square_subsequent_mask(
         4, dtype=t.float64)[:3]),
     module=lambda t: t.nn.MultiheadAttention(6, 3, add_bias_kv=True, add_zero_attn=True,
                                              batch_first=True))
REPRS["MultiheadAttention_bias_kv"] = lambda t: t.nn.MultiheadAttention(4, 2, add_bias_kv=True)

# ---- Embedding max_norm --------------------------------------------------------------------

case("nn.Embedding_max_norm", "transformer", lambda r: [np.array([[0, 2, 2], [4, 1, 0]])],
     module=lambda t: t.nn.Embedding(6, 3, max_norm=1.0), scale=1.5)
case("nn.Embedding_max_norm_p1_padding", "transformer", lambda r: [np.array([1, 3, 5, 3])],
     module=lambda t: t.nn.Embedding(6, 4, padding_idx=3, max_norm=0.8, norm_type=1.0),
     scale=1.0)
REPRS["Embedding_max_norm"] = lambda t: t.nn.Embedding(6, 3, max_norm=1.0, norm_type=1.0)

# ---- packed sequences, LSTM proj_size ------------------------------------------------------


def _packed_run(t, m, x, lengths=(4, 2, 3), enforce_sorted=False, batch_first=False):
    rnn = t.nn.utils.rnn
    packed = rnn.pack_padded_sequence(x, list(lengths), batch_first=batch_first,
                                      enforce_sorted=enforce_sorted)
    out, state = m(packed)
    padded, lens = rnn.pad_packed_sequence(out, batch_first=batch_first, padding_value=-2.0)
    states = list(state) if isinstance(state, tuple) else [state]
    return [padded, out.data, lens.double()] + states


case("nn.LSTM_packed_bidirectional", "rnn_packed", normal(4, 3, 2),
     _packed_run, module=lambda t: t.nn.LSTM(2, 3, num_layers=2, bidirectional=True))
case("nn.GRU_packed_sorted_bf", "rnn_packed", normal(3, 4, 2),
     lambda t, m, x: _packed_run(t, m, x, (4, 3, 1), True, True),
     module=lambda t: t.nn.GRU(2, 3, batch_first=True, bidirectional=True))
case("nn.RNN_packed_hx", "rnn_packed", normals((4, 3, 2), (1, 3, 3)),
     lambda t, m, x, h: m(t.nn.utils.rnn.pack_padded_sequence(x, [2, 4, 1],
                                                             enforce_sorted=False), h)[1],
     module=lambda t: t.nn.RNN(2, 3))
case("pack_sequence_pad_packed", "rnn_packed", normals((3, 2), (1, 2), (2, 2)),
     lambda t, a, b, c: list(t.nn.utils.rnn.pad_packed_sequence(
         t.nn.utils.rnn.pack_sequence([a, b, c], enforce_sorted=False), batch_first=True,
         total_length=4)[:1]) + [t.nn.utils.rnn.pack_sequence([a, c, b]).data])
case("nn.LSTM_proj_size", "rnn_packed", normal(5, 2, 3),
     module=lambda t: t.nn.LSTM(3, 4, num_layers=2, proj_size=2, bidirectional=True))
case("nn.LSTM_proj_size_packed_hx_bf", "rnn_packed", normals((3, 4, 3), (1, 3, 2), (1, 3, 4)),
     lambda t, m, x, h, c: _packed_run(t, lambda p: m(p, (h, c)), x, (2, 4, 3), False, True),
     module=lambda t: t.nn.LSTM(3, 4, proj_size=2, batch_first=True))
REPRS["LSTM_proj_size"] = lambda t: t.nn.LSTM(3, 4, proj_size=2)
ERRORS.update({
    "lstm_proj_size_large": lambda t: t.nn.LSTM(3, 4, proj_size=4),
    "gru_proj_size": lambda t: t.nn.GRU(3, 4, proj_size=2),
    "pack_unsorted": lambda t: t.nn.utils.rnn.pack_padded_sequence(t.ones(4, 3, 1), [2, 4, 1]),
})
