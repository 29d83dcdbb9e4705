"""torch.nn.utils.rnn's packed sequences: PackedSequence, pack_padded_sequence,
pad_packed_sequence, pack_sequence (pad_sequence is in tracer/nn/utils.py).

A PackedSequence holds the valid steps of a batch of sequences, time-major, each step's
batch in order of decreasing length (`data`, `batch_sizes`), as PyTorch lays it out; packing
and unpacking are one index_select each (so gradients flow through both). The recurrent
modules run a packed batch as a padded one with a per-step mask (tracer/nn/rnn.py)."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

import tracer.ops as ops
from tracer.creation import full, tensor
from tracer.nn.utils import pad_sequence
from tracer.ops.operands import to_tensor, user_error
from tracer.tensor import Tensor

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pack_sequence"]

UNSORTED = ("`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. "
            "You can pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence "
            "to sidestep this requirement if you do not need ONNX exportability.")


class PackedSequence(namedtuple("PackedSequence_",
                                ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    """(data, batch_sizes, sorted_indices, unsorted_indices), as PyTorch's."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = tensor(np.argsort(np.asarray(sorted_indices)))
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        return type(self)(self.data.to(*args, **kwargs), self.batch_sizes,
                          self.sorted_indices, self.unsorted_indices)

    def lengths(self) -> np.ndarray:
        """The length of each sequence, in the original batch order."""
        sizes = np.asarray(self.batch_sizes)
        by_rank = (sizes[None, :] > np.arange(int(sizes[0]))[:, None]).sum(1)
        order = (np.arange(len(by_rank)) if self.sorted_indices is None
                 else np.asarray(self.sorted_indices))
        out = np.empty_like(by_rank)
        out[order] = by_rank
        return out


def _lengths(lengths) -> np.ndarray:
    arr = np.asarray(lengths.tolist() if isinstance(lengths, Tensor) else lengths,
                     dtype=np.int64).reshape(-1)
    return arr


def _positions(lengths: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Flat (t * N + b) indices of the valid steps, time-major, b in `order`."""
    n = len(lengths)
    return np.array([t * n + b for t in range(int(lengths.max(initial=0)))
                     for b in order if lengths[b] > t], dtype=np.int64)


def _pack(padded, lengths: np.ndarray, order: np.ndarray, sorted_indices) -> PackedSequence:
    """padded (T, N, *) -> PackedSequence of the valid steps, b in `order` at each step."""
    flat = padded.reshape((padded.shape[0] * padded.shape[1],) + tuple(padded.shape[2:]))
    data = ops.index_select(flat, 0, tensor(_positions(lengths, order)))
    steps = int(lengths.max(initial=0))
    sizes = tensor(np.array([(lengths > t).sum() for t in range(steps)], dtype=np.int64))
    return PackedSequence(data, sizes, sorted_indices)


def pack_padded_sequence(input, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Packs a padded (T, B, *) batch (or (B, T, *)) of sequences of the given lengths."""
    x = to_tensor(input)
    if batch_first:
        x = ops.transpose(x, 0, 1)
    lens = _lengths(lengths)
    if len(lens) != x.shape[1]:
        raise user_error(RuntimeError, f"Expected `len(lengths)` to be equal to batch_size, "
                                       f"but got {len(lens)} (batch_size={x.shape[1]})")
    if lens.size and (lens.min() <= 0 or lens.max() > x.shape[0]):
        raise user_error(RuntimeError, "Length of all samples has to be between 1 and the "
                                       f"padded length {x.shape[0]}, got {lens.tolist()}")
    if enforce_sorted:
        if np.any(np.diff(lens) > 0):
            raise user_error(RuntimeError, UNSORTED)
        return _pack(x, lens, np.arange(len(lens)), None)
    order = np.argsort(-lens, kind="stable")
    return _pack(x, lens, order, tensor(order.astype(np.int64)))


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length=None):
    """(padded (T, B, *) or (B, T, *), lengths int64) in the original batch order."""
    lens = sequence.lengths()
    steps = int(lens.max(initial=0))
    if total_length is not None:
        if total_length < steps:
            raise user_error(ValueError, f"Expected total_length to be at least the length of "
                                         f"the longest sequence in input, but got "
                                         f"total_length={total_length} and max sequence "
                                         f"length being {steps}")
        steps = int(total_length)
    n = len(lens)
    order = (np.arange(n) if sequence.sorted_indices is None
             else np.asarray(sequence.sorted_indices))
    data = sequence.data
    where = np.full(steps * n, data.shape[0], dtype=np.int64)      # default: the pad row
    where[_positions(lens, order)] = np.arange(data.shape[0])
    pad_row = full((1,) + tuple(data.shape[1:]), padding_value, dtype=data.dtype)
    flat = ops.index_select(ops.cat([data, pad_row], 0), 0, tensor(where))
    padded = flat.reshape((steps, n) + tuple(data.shape[1:]))
    if batch_first:
        padded = ops.transpose(padded, 0, 1)
    return padded, tensor(lens)


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Packs a list of (L_i, *) tensors."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths,
                                enforce_sorted=enforce_sorted)


def repack(padded, like: PackedSequence) -> PackedSequence:
    """padded (T, B, *) in the original batch order, packed as `like` is."""
    lens = like.lengths()
    order = (np.arange(len(lens)) if like.sorted_indices is None
             else np.asarray(like.sorted_indices))
    return _pack(padded, lens, order, like.sorted_indices)
