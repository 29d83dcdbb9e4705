"""torch.multinomial: indices drawn from rows of non-negative weights, with or without
replacement (gradjit's generator, so reproducible under manual_seed but not PyTorch's
numbers). The errors are PyTorch 2.13's texts. Sampling reads the weights' values, so it
runs eagerly, like every other draw of the imperative front."""
from __future__ import annotations

import numpy as np

from tracer.creation import generator
from tracer.tensor import Tensor, tensor_from_array

__all__ = ["multinomial"]


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,
                generator=None, out=None) -> Tensor:
    """Row-wise samples of category indices, probabilities proportional to input."""
    if not isinstance(input, Tensor):
        raise TypeError(f"multinomial(): argument 'input' must be Tensor, not "
                        f"{type(input).__name__}")
    if input.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    weights = np.asarray(input.detach().numpy(), dtype=np.float64).reshape(-1, input.shape[-1])
    if not replacement and num_samples > weights.shape[1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without "
                           "replacement")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    totals = weights.sum(axis=1)
    if (totals <= 0).any():
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    rng = _generator(generator)
    if replacement:
        cdf = np.cumsum(weights / totals[:, None], axis=1)
        u = rng.random((weights.shape[0], num_samples))
        picks = np.stack([np.searchsorted(row, us, side="right") for row, us in zip(cdf, u)])
        picks = np.minimum(picks, weights.shape[1] - 1)
    else:
        # exponential races: the k smallest E/w, as PyTorch; categories of weight 0 come
        # last (PyTorch returns them too once the others are used up)
        keys = rng.exponential(size=weights.shape) / np.where(weights > 0, weights, 1.0)
        keys = np.where(weights > 0, keys, np.inf)
        picks = np.argsort(keys, axis=1, kind="stable")[:, :num_samples]
    result = tensor_from_array(picks.reshape(tuple(input.shape[:-1]) + (num_samples,)), "i64")
    if out is not None:
        out.copy_(result)
        return out
    return result


def _generator(g) -> np.random.Generator:
    return generator(g)
