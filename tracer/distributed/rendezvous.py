"""The meeting point of dist.run's workers: an async Ray actor that all-reduces buffers.

Every rank calls `all_reduce(round, rank, buffer, op)` in the same order (as with MPI);
the call returns once all world_size ranks have contributed to that round. The reduction
adds the contributions in rank order in float64, so every rank gets the same bits and a
run is reproducible. It imports only NumPy: it runs no user code.
"""
from __future__ import annotations

import asyncio

import numpy as np

OPS = ("mean", "sum", "broadcast")


class Round:
    def __init__(self):
        self.parts: dict[int, np.ndarray] = {}
        self.done = asyncio.Event()
        self.result = None
        self.error: str | None = None
        self.taken = 0


class Rendezvous:
    def __init__(self, world_size: int):
        self.world_size = world_size
        self.rounds: dict[int, Round] = {}
        self.signature: dict[int, tuple] = {}

    async def all_reduce(self, round_id: int, rank: int, buffer: np.ndarray, op: str):
        r = self.rounds.setdefault(round_id, Round())
        sig = (op, buffer.shape, buffer.dtype.str)
        first = self.signature.setdefault(round_id, sig)
        if sig != first and r.error is None:
            r.error = (f"all_reduce round {round_id}: rank {rank} sent {op} of {buffer.shape} "
                       f"{buffer.dtype}, another rank sent {first[0]} of {first[1]} "
                       f"{np.dtype(first[2])}: every rank must make the same calls in the "
                       "same order")
        r.parts[rank] = buffer
        if len(r.parts) == self.world_size:
            if r.error is None:
                r.result = reduce_in_order([r.parts[i] for i in range(self.world_size)], op)
            r.done.set()
        else:
            await r.done.wait()
        r.taken += 1
        if r.taken == self.world_size:
            del self.rounds[round_id]
            del self.signature[round_id]
        if r.error is not None:
            raise RuntimeError(r.error)
        return r.result


def reduce_in_order(parts: list[np.ndarray], op: str) -> np.ndarray:
    if op == "broadcast":                 # rank 0's value for everyone
        return parts[0]
    dtype = parts[0].dtype
    acc = np.zeros(parts[0].shape, np.float64)
    for p in parts:
        acc += p
    if op == "mean":
        acc /= len(parts)
    return acc.astype(dtype)
