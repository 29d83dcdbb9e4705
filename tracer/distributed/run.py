"""dist.run(train_fn, num_workers=N): PyTorch-style training, train_fn(ctx) on every worker.

Each rank is a Ray task running train_fn with a RunContext: its rank, the world size and
`all_reduce`, which goes through one Rendezvous actor via Ray's object store. The driver
watches all ranks: when one fails or dies, the others are stopped and the error names it.
"""
from __future__ import annotations

import contextlib
import time

import numpy as np

from runtime.threads import set_num_threads
from tracer.distributed.cluster import (
    DEFAULT_TIMEOUT,
    DistributedError,
    _actor_class,
    kill_quietly,
    ray_module,
    start_ray,
    worker_options,
    worker_threads,
)
from tracer.distributed.rendezvous import OPS, Rendezvous
from tracer.pytree import tree_flatten, tree_unflatten
from tracer.staging import as_tensor
from tracer.tensor import Tensor


class RunContext:
    """What train_fn gets: rank, world_size, all_reduce (and broadcast)."""

    def __init__(self, rank: int, world_size: int, rendezvous, timeout: float):
        self.rank = rank
        self.world_size = world_size
        self.timeout = timeout
        self._rendezvous = rendezvous
        self._round = 0

    def all_reduce(self, arrays, op: str = "mean"):
        """arrays (one array / Tensor, or a pytree of them) reduced over all ranks.

        The leaves travel as ONE flat buffer (one round trip, whatever their number) and
        come back in the same structure; Tensors come back as Tensors, the rest as NumPy.
        Every rank must call it in the same order. Raises TimeoutError when a peer does not
        arrive within the context's timeout (it died or hangs).
        """
        if op not in OPS:
            raise ValueError(f"op={op!r}: expected one of {', '.join(map(repr, OPS))}")
        leaves, tree = tree_flatten(arrays)
        if not leaves:
            return arrays
        np_leaves = [np.asarray(x) for x in leaves]
        for x in np_leaves:
            if not np.issubdtype(x.dtype, np.floating):
                raise TypeError(f"all_reduce takes float arrays, got {x.dtype}")
        dtype = np.result_type(*np_leaves)
        flat = np.concatenate([x.astype(dtype, copy=False).ravel() for x in np_leaves])
        reduced = self._exchange(flat, op)
        out, at = [], 0
        for src, x in zip(leaves, np_leaves):
            part = reduced[at:at + x.size].reshape(x.shape).astype(x.dtype, copy=False)
            at += x.size
            out.append(as_tensor(part) if isinstance(src, Tensor) else part)
        return tree_unflatten(tree, out)

    def broadcast(self, arrays):
        """Rank 0's arrays on every rank."""
        return self.all_reduce(arrays, op="broadcast")

    def _exchange(self, flat: np.ndarray, op: str) -> np.ndarray:
        ray = ray_module()
        from ray.exceptions import GetTimeoutError
        self._round += 1
        ref = self._rendezvous.all_reduce.remote(self._round, self.rank, flat, op)
        try:
            return np.array(ray.get(ref, timeout=self.timeout))
        except GetTimeoutError:
            raise TimeoutError(f"rank {self.rank}: all_reduce round {self._round} waited "
                               f"{self.timeout:g} s for the other ranks (did one die?)") from None


def run_rank(train_fn, ctx: RunContext, threads: int | None):
    """One rank of dist.run (a Ray task: its worker process is pooled, so a second run does
    not start Python and import gradjit again)."""
    if threads is not None:
        set_num_threads(threads)
    return train_fn(ctx)


_run_task = None


def run(train_fn, num_workers: int, timeout: float = DEFAULT_TIMEOUT,
        cpus_per_worker: float = 1, env: dict | None = None, max_seconds: float | None = None):
    """Runs train_fn(ctx) on num_workers Ray workers; returns their results by rank.

    All ranks run at once (they meet in all_reduce): the cluster needs num_workers *
    cpus_per_worker free CPUs, else the collectives time out.

    Args:
        timeout: seconds a collective (ctx.all_reduce) may wait for the other ranks.
        max_seconds: a limit on the whole run (default none; a failed rank still ends it).
    Raises:
        DistributedError: a rank raised or died (the others are stopped).
    """
    global _run_task
    if not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be a positive int, got {num_workers!r}")
    ray = ray_module()
    started = start_ray(None, max(num_workers * max(int(cpus_per_worker), 1), 1))
    if _run_task is None:
        _run_task = ray.remote(run_rank)
    rendezvous = _actor_class(Rendezvous).options(num_cpus=0, max_restarts=0) \
        .remote(num_workers)
    options = worker_options(cpus_per_worker, env)
    options.pop("max_restarts"), options.pop("max_task_retries")
    threads = worker_threads(cpus_per_worker, env)
    refs = [_run_task.options(max_retries=0, **options).remote(
        train_fn, RunContext(rank, num_workers, rendezvous, timeout), threads)
        for rank in range(num_workers)]
    try:
        return _collect(ray, refs, max_seconds)
    finally:
        # the rendezvous first: ranks blocked in all_reduce then fail and end by themselves
        kill_quietly(rendezvous)
        _stop_ranks(ray, refs)
        if started:
            ray.shutdown()


# Seconds the other ranks get to end by themselves once the rendezvous is gone.
STOP_GRACE = 10.0


def _stop_ranks(ray, refs: list) -> None:
    """Waits for the ranks to end, cancelling only those still running after STOP_GRACE.

    A cancel that races a task's own completion aborts the driver inside Ray 2.60
    ("Tried to complete task that was not pending", a fatal check in task_manager.cc):
    ranks that were waiting in all_reduce fail as soon as the rendezvous dies, so they are
    left to finish and only a rank still computing (max_seconds) is cancelled.
    """
    with contextlib.suppress(Exception):
        _, running = ray.wait(refs, num_returns=len(refs), timeout=STOP_GRACE)
        for ref in running:
            # not force=True: a forced cancel kills the worker process, and arriving late it
            # can kill a pooled worker that has moved on to another task
            with contextlib.suppress(Exception):         # finished meanwhile
                ray.cancel(ref)


def _collect(ray, refs: list, max_seconds: float | None) -> list:
    """The ranks' results; the first failure (in time) ends the run with its rank named."""
    from ray.exceptions import RayError, RayTaskError
    start = time.monotonic()
    rank_of = {ref: rank for rank, ref in enumerate(refs)}
    results, waiting = [None] * len(refs), list(refs)
    while waiting:
        if max_seconds is not None and time.monotonic() - start > max_seconds:
            raise TimeoutError(f"dist.run: ranks {sorted(rank_of[r] for r in waiting)} did not "
                               f"finish within max_seconds={max_seconds:g}")
        done, waiting = ray.wait(waiting, num_returns=1, timeout=1.0)
        for ref in done:
            rank = rank_of[ref]
            try:
                results[rank] = ray.get(ref, timeout=60)
            except RayTaskError as e:
                cause = getattr(e, "cause", None)
                reason = f"{type(cause).__name__}: {cause}" if cause is not None else str(e)
                raise DistributedError(f"dist.run: rank {rank} raised {reason}") from None
            except RayError as e:                # its worker process died
                raise DistributedError(f"dist.run: rank {rank} died: {e}") from None
    return results
