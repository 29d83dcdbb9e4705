"""torch.nn.utils: gradient clipping, parameters as one vector, pad_sequence."""
from __future__ import annotations

import math

import tracer.ops as ops
from tracer.autograd.grad_mode import no_grad
from tracer.creation import full, tensor
from tracer.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "vector_to_parameters", "pad_sequence"]


def _tensors(parameters) -> list[Tensor]:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scales the gradients in place so that their joint norm is at most max_norm; returns
    the total norm before clipping (as PyTorch: a 0-d tensor)."""
    grads = [p.grad for p in _tensors(parameters) if p.grad is not None]
    if not grads:
        return tensor(0.0)
    norm_type = float(norm_type)
    with no_grad():
        if math.isinf(norm_type):
            norms = [ops.amax(ops.abs(g)) for g in grads]
            total = norms[0] if len(norms) == 1 else ops.amax(ops.stack(norms))
        else:
            norms = [ops.sum(ops.abs(g) ** norm_type) for g in grads]
            total = ops.stack(norms).sum() ** (1.0 / norm_type)
        if error_if_nonfinite and not math.isfinite(float(total)):
            raise RuntimeError(
                f"The total norm of order {norm_type} for gradients from `parameters` is "
                "non-finite, so it cannot be clipped. To disable this error and scale the "
                "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")
        coef = ops.clamp(max_norm / (total + 1e-6), max=1.0)
        for g in grads:
            g.mul_(coef.to(g.dtype) if coef.dtype != g.dtype else coef)
    return total


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamps every gradient element into [-clip_value, clip_value], in place."""
    with no_grad():
        for p in _tensors(parameters):
            if p.grad is not None:
                p.grad.clamp_(-clip_value, clip_value)


def parameters_to_vector(parameters) -> Tensor:
    """The parameters flattened and concatenated into one 1-D tensor."""
    return ops.cat([p.reshape(-1) for p in _tensors(parameters)])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copies consecutive slices of vec into the parameters (their .data), in order."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    offset = 0
    with no_grad():
        for p in _tensors(parameters):
            n = p.numel()
            p.copy_(vec[offset:offset + n].reshape(p.shape))
            offset += n


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stacks tensors of shapes (L_i, *) into (max L, B, *) (or (B, max L, *)), padding."""
    sequences = list(sequences)
    longest = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        extra = longest - s.shape[0]
        if extra:
            fill = full((extra, *s.shape[1:]), padding_value, dtype=s.dtype)
            s = ops.cat([s, fill] if padding_side == "right" else [fill, s])
        padded.append(s)
    return ops.stack(padded, 0 if batch_first else 1)
