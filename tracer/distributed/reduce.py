"""Combining the workers' results, in shard order (so a run is bitwise reproducible).

"mean" weights each shard's result by its number of examples: for a loss that is a mean
over the batch (and its gradient), sum_i n_i * mean_i / N is the mean over the whole batch,
whatever the shard sizes. "sum" adds. "concat" joins per-example results along axis 0.
Float results are accumulated in float64 and rounded once to their dtype at the end.
"""
from __future__ import annotations

import numpy as np

from tracer.pytree import tree_flatten

REDUCTIONS = ("mean", "sum", "concat")


def check_reduction(how) -> list[str] | str:
    """how: one reduction for every output, or a pytree of them shaped like the output
    (e.g. ("sum", ("concat", "concat")) for a value and per-element gradients)."""
    hows = [how] if isinstance(how, str) else tree_flatten(how)[0]
    for h in hows:
        if h not in REDUCTIONS:
            raise ValueError(f"reduce={h!r}: expected one of {', '.join(map(repr, REDUCTIONS))}"
                             " (or a pytree of them shaped like the output)")
    return how if isinstance(how, str) else hows


def combine(results: list[list[np.ndarray]], sizes: list[int], how) -> list[np.ndarray]:
    """One array per output: the per-shard outputs (results[shard][output]) reduced."""
    n = len(results[0])
    hows = [how] * n if isinstance(how, str) else how
    if len(hows) != n:
        raise ValueError(f"reduce names {len(hows)} reductions; the function has {n} outputs")
    return [combine_one([r[k] for r in results], sizes, hows[k], k) for k in range(n)]


def combine_one(parts: list[np.ndarray], sizes: list[int], how: str, k: int) -> np.ndarray:
    parts = [np.asarray(p) for p in parts]
    dtype = parts[0].dtype
    if how == "concat":
        if parts[0].ndim == 0:
            raise ValueError(f"reduce='concat': output {k} is a scalar; concat joins "
                             "per-example outputs along axis 0")
        return np.concatenate(parts, axis=0)
    if dtype == np.bool_ or (how == "mean" and not np.issubdtype(dtype, np.floating)):
        raise TypeError(f"reduce={how!r}: output {k} has dtype {dtype}; use reduce='sum' or "
                        "'concat' for integer outputs")
    if len(parts) == 1:
        return np.array(parts[0])              # a fresh, writable array
    wide = np.float64 if np.issubdtype(dtype, np.floating) else np.int64
    acc = np.zeros(parts[0].shape, wide)
    for part, n in zip(parts, sizes):
        if how == "mean":
            acc += part.astype(wide) * n
        else:
            acc += part
    if how == "mean":
        acc /= sum(sizes)
    return acc.astype(dtype)
