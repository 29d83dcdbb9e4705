"""Attention of nn.functional: scaled_dot_product_attention and multi_head_attention_forward
(the computation behind nn.MultiheadAttention), as matmuls and a softmax."""
from __future__ import annotations

from tracer.creation import rand
from tracer.dtypes import float32, float64

import math

import numpy as np

import tracer.ops as ops
from tracer.creation import tensor
from tracer.nn.functional_act import as_float
from tracer.nn.functional_misc import pad as _pad
from tracer.ops.operands import dtype_of, to_tensor, user_error

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]


def _additive(mask, dtype: str, allowed_when_true: bool):
    """A float mask to add to attention scores: a bool mask becomes 0 / -inf (True allows
    for SDPA, True forbids for MultiheadAttention); a float mask is used as is."""
    m = to_tensor(mask)
    if dtype_of(m) == "bool":
        blocked = m if not allowed_when_true else ops.logical_not(m)
        zeros = tensor(np.zeros(()), dtype=_DT[dtype])
        return ops.masked_fill(ops.broadcast_to(zeros, tuple(m.shape)), blocked, -math.inf)
    return m


def _check_masks(attn_mask, key_padding_mask, n: int, heads: int, l: int, s: int):
    """PyTorch's checks of multi_head_attention_forward's masks (its classes and texts)."""
    for name, m in (("key_padding_mask", key_padding_mask), ("attn_mask", attn_mask)):
        if m is not None and dtype_of(to_tensor(m)) not in ("bool", "f32", "f64"):
            raise user_error(AssertionError, f"only bool and floating types of {name} are "
                                             "supported")
    if key_padding_mask is not None:
        for axis, want in enumerate((n, s)):
            got = key_padding_mask.shape[axis] if key_padding_mask.ndim > axis else None
            if got != want:
                raise user_error(AssertionError, f"Expected key_padded_mask.shape[{axis}] to "
                                                 f"be {want}, but got {got}")
    if attn_mask is not None:
        if attn_mask.ndim not in (2, 3):
            raise user_error(AssertionError, "For batched (3-D) `query`, expected `attn_mask` "
                                             "to be `None`, 2-D or 3-D but found "
                                             f"{attn_mask.ndim}-D tensor instead")
        if attn_mask.ndim == 3 and tuple(attn_mask.shape) != (n * heads, l, s):
            raise user_error(RuntimeError, "The shape of the 3D attn_mask is torch.Size("
                                           f"{list(attn_mask.shape)}), but should be "
                                           f"({n * heads}, {l}, {s}).")


_DT = {}


def _dtypes():
    if not _DT:
        _DT.update({"f32": float32, "f64": float64})


def _repeat_heads(t, rep: int):
    """(..., H, S, D) -> (..., H * rep, S, D), each head repeated rep times in place."""
    shape = tuple(t.shape)
    wide = ops.expand(t.unsqueeze(-3), shape[:-3] + (shape[-3], rep) + shape[-2:])
    return wide.reshape(shape[:-3] + (shape[-3] * rep,) + shape[-2:])


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale=None, enable_gqa: bool = False):
    """softmax(q k^T * scale + mask) v over the last two dims; a bool attn_mask allows where
    True, is_causal masks the upper triangle."""
    _dtypes()
    q, k, v = as_float(query), as_float(key), as_float(value)
    if attn_mask is not None and is_causal:
        raise user_error(RuntimeError, "_scaled_dot_product_attention: Explicit attn_mask "
                                       "should not be set when is_causal=True")
    l, s = q.shape[-2], k.shape[-2]
    if enable_gqa and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        rep = q.shape[-3] // k.shape[-3]
        k, v = _repeat_heads(k, rep), _repeat_heads(v, rep)
    factor = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = ops.matmul(q, ops.transpose(k, -2, -1)) * factor
    if is_causal:
        allowed = np.tril(np.ones((l, s), dtype=bool))
        scores = ops.masked_fill(scores, tensor(~allowed), -math.inf)
    elif attn_mask is not None:
        scores = scores + _additive(attn_mask, dtype_of(scores), True)
    weights = ops.softmax(scores, -1)
    if dropout_p > 0.0:
        weights = _dropout(weights, dropout_p)
    return ops.matmul(weights, v)


def _project(x, weight, bias):
    out = ops.matmul(x, ops.t(weight))
    return out if bias is None else out + bias


def _dropout(x, p: float):
    """Training-mode dropout of attention weights (nn.functional.dropout's formula)."""
    keep = ops.gt(rand(*x.shape), p).to(x.dtype)
    return x * keep * (1.0 / (1.0 - p)) if p < 1.0 else x * 0.0


def multi_head_attention_forward(query, key, value, embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v,
                                 add_zero_attn: bool, dropout_p: float, out_proj_weight,
                                 out_proj_bias, training: bool = True, key_padding_mask=None,
                                 need_weights: bool = True, attn_mask=None,
                                 use_separate_proj_weight: bool = False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights: bool = True,
                                 is_causal: bool = False, *, _batch_first: bool = False):
    """PyTorch's multi-head attention on (L, N, E) query and (S, N, E) key/value (or
    unbatched (L, E)); returns (output, attention weights averaged over heads or None).
    Masks: a bool True forbids (attn_mask (L, S) or (N*heads, L, S); key_padding_mask
    (N, S)); float masks are added.

    _batch_first (MultiheadAttention(batch_first=True), batched inputs): (N, L, E) in and
    out, computed in that layout instead of transposed to (L, N, E) and back: the same
    values, but the projections' weight gradients contract the (N, L) axes in the order
    they are stored, which a gemm reads directly (NOTE: the transformer step's in_proj
    weight gradient transposed its (L, N, 3E) operand first, ~90 us a step)."""
    _dtypes()
    self_attention = query is key and key is value
    q_in = as_float(query)
    k_in, v_in = (q_in, q_in) if self_attention else (as_float(key), as_float(value))
    unbatched = q_in.ndim == 2
    seq = 1 if _batch_first and not unbatched else 0        # the axis of L and S
    if unbatched:
        q_in, k_in, v_in = q_in.unsqueeze(1), k_in.unsqueeze(1), v_in.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = to_tensor(key_padding_mask).unsqueeze(0)
    n, l, e = q_in.shape if seq else (q_in.shape[1], q_in.shape[0], q_in.shape[2])
    s = k_in.shape[seq]
    if e != embed_dim_to_check:
        raise user_error(AssertionError, f"was expecting embedding dimension of "
                                         f"{embed_dim_to_check}, but got {e}")
    head = e // num_heads
    if head * num_heads != e:
        raise user_error(AssertionError, f"embed_dim {e} not divisible by num_heads "
                                         f"{num_heads}")
    if self_attention and not use_separate_proj_weight:
        # one product with the packed weight, as PyTorch's _in_projection_packed: one gemm
        # and one weight gradient instead of three (fewer kernels to run and to compile)
        q, k, v = ops.chunk(_project(q_in, in_proj_weight, in_proj_bias), 3, -1)
    else:
        if use_separate_proj_weight:
            ws = (q_proj_weight, k_proj_weight, v_proj_weight)
        else:
            ws = ops.chunk(in_proj_weight, 3, 0)
        bs = ops.chunk(in_proj_bias, 3, 0) if in_proj_bias is not None else (None,) * 3
        q = _project(q_in, ws[0], bs[0])
        k = _project(k_in, ws[1], bs[1])
        v = _project(v_in, ws[2], bs[2])

    def heads(t, length):                    # (length, N, E) -> (N, heads, length, head)
        if seq:                              # (N, length, E)
            return ops.permute(t.reshape(n, length, num_heads, head), (0, 2, 1, 3))
        return ops.permute(t.reshape(length, n, num_heads, head), (1, 2, 0, 3))

    if bias_k is not None and bias_v is not None:    # one learned key/value more
        one = (n, 1, e) if seq else (1, n, e)
        k = ops.cat([k, ops.expand(bias_k.reshape(1, 1, e), *one)], seq)
        v = ops.cat([v, ops.expand(bias_v.reshape(1, 1, e), *one)], seq)
    q, k, v = heads(q, l), heads(k, k.shape[seq]), heads(v, v.shape[seq])
    if add_zero_attn:                                # and a zero key/value after them
        k, v = _pad(k, (0, 0, 0, 1)), _pad(v, (0, 0, 0, 1))
    extra = k.shape[2] - s                           # keys added after the masks' S
    scores = ops.matmul(q, ops.transpose(k, -2, -1)) * (1.0 / math.sqrt(head))
    _check_masks(attn_mask, key_padding_mask, n, num_heads, l, s)
    if is_causal and attn_mask is None:
        attn_mask = tensor(np.triu(np.ones((l, s), dtype=bool), 1))
    if attn_mask is not None:
        m = _additive(attn_mask, dtype_of(scores), False)
        if m.ndim == 3:
            m = m.reshape(n, num_heads, l, s)
        elif m.ndim == 2 and tuple(m.shape) != (l, s):
            raise user_error(RuntimeError, f"The shape of the 2D attn_mask is "
                                           f"torch.Size({list(m.shape)}), but should be "
                                           f"({l}, {s}).")
        scores = scores + (_pad(m, (0, extra)) if extra else m)
    if key_padding_mask is not None:
        kp = _additive(key_padding_mask, dtype_of(scores), False)
        kp = _pad(kp, (0, extra)) if extra else kp
        scores = scores + kp.reshape(n, 1, 1, s + extra)
    weights = ops.softmax(scores, -1)
    if dropout_p > 0.0 and training:
        weights = _dropout(weights, dropout_p)
    out = ops.matmul(weights, v)                                  # (N, heads, L, head)
    if seq:
        out = ops.permute(out, (0, 2, 1, 3)).reshape(n, l, e)
    else:
        out = ops.permute(out, (2, 0, 1, 3)).reshape(l, n, e)
    out = _project(out, out_proj_weight, out_proj_bias)
    if unbatched:
        out = out.squeeze(1)
    if not need_weights:
        return out, None
    if average_attn_weights:
        weights = weights.mean(1)
    if unbatched:
        weights = weights.squeeze(0)
    return out, weights
