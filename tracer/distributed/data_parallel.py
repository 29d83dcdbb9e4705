"""data_parallel(f, batch_argnums): a staged gradjit function run over a Ray cluster.

One call:
  1. checks the batch arguments (arrays, equal leading dims, at least one example per
     worker) before anything is sent;
  2. splits them along axis 0 into contiguous shards (sizes differ by at most one);
  3. gets the program of each shard signature (traced once, cached; at most two differ);
  4. puts broadcast arguments and the closure's arrays in the object store once, and sends
     each worker its shard with the program's hash (the IR text only on first contact);
  5. waits for every shard (with a deadline); a dead worker is replaced and its shard is
     run again on the replacement: each shard's result is stored once, by shard index, so
     nothing is counted twice or lost;
  6. reduces the results in shard order and rebuilds f's output tree.
"""
from __future__ import annotations

import time

import numpy as np

from tracer.api import jit
from tracer.distributed.cluster import Cluster, default_cluster, ray_module
from tracer.distributed.programs import Program, program_for
from tracer.distributed.reduce import check_reduction, combine
from tracer.errors import user_location
from tracer.pytree import tree_flatten, tree_unflatten
from tracer.signature import arg_names, is_array_leaf, normalize_argnums
from tracer.staging import Staged, as_tensor
from tracer.tensor import Tensor


def _error(cls, msg: str) -> Exception:
    where = user_location()
    return cls(f"{msg} (at {where})" if where else msg)


def shard_bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous [lo, hi) ranges: the first n % parts shards get one example more."""
    q, r = divmod(n, parts)
    bounds, lo = [], 0
    for i in range(parts):
        hi = lo + q + (i < r)
        bounds.append((lo, hi))
        lo = hi
    return bounds


class DataParallel:
    """f over a cluster; see data_parallel."""

    def __init__(self, f, batch_argnums, reduce: str = "mean", cluster: Cluster | None = None,
                 timeout: float | None = None):
        self._reduce = check_reduction(reduce)
        if not callable(f):
            raise TypeError(f"data_parallel expects a gradjit function, got {type(f).__name__}")
        if not isinstance(f, Staged):
            f = jit(f)
        self.staged = f
        self.batch_argnums = (batch_argnums,) if isinstance(batch_argnums, int) \
            else tuple(batch_argnums)
        if not self.batch_argnums:
            raise ValueError("batch_argnums is empty: name the arguments to split")
        self.reduce = reduce
        self.cluster = cluster
        self.timeout = timeout
        self.programs: dict[tuple, Program] = {}
        self.stats = {"calls": 0, "retries": 0, "texts_sent": 0}
        self.last_timing: dict[str, float] = {}

    # ---- checks and splitting --------------------------------------------------------------

    def _check_batch(self, args: tuple, nums: tuple, workers: int) -> int:
        names = arg_names(self.staged.fun, len(args))
        dims = []
        for i in nums:
            leaves = tree_flatten(args[i])[0]
            if not leaves:
                raise _error(ValueError, f"batch argument {i} ({names[i]}) holds no arrays")
            for leaf in leaves:
                if not isinstance(leaf, (np.ndarray, Tensor)):
                    raise _error(TypeError, f"batch argument {i} ({names[i]}) must be an array "
                                 f"(or a pytree of arrays) to split along axis 0, got "
                                 f"{type(leaf).__name__}")
                if leaf.ndim == 0:
                    raise _error(ValueError, f"batch argument {i} ({names[i]}) is a 0-d array: "
                                 "there is no axis 0 to split")
                dims.append((names[i], leaf.shape[0]))
        if len({d for _, d in dims}) > 1:
            listed = ", ".join(f"{name}: {d}" for name, d in dims)
            raise _error(ValueError, f"batch arguments must have the same leading dimension "
                         f"(the number of examples); got {listed}")
        n = dims[0][1]
        if n < workers:
            raise _error(ValueError, f"a batch of {n} examples cannot be split over {workers} "
                         "workers (each needs at least one example)")
        return n

    def _shard_args(self, args: tuple, nums: tuple, lo: int, hi: int) -> tuple:
        out = list(args)
        for i in nums:
            leaves, tree = tree_flatten(args[i])
            out[i] = tree_unflatten(tree, [leaf[lo:hi] for leaf in leaves])
        return tuple(out)

    def _program(self, sig) -> Program:
        prog = self.programs.get(sig.key)
        if prog is None:
            prog = self.programs[sig.key] = program_for(self.staged, sig)
        return prog

    # ---- the call --------------------------------------------------------------------------

    def __call__(self, *args, **kwargs):
        ray = ray_module()
        cluster = self.cluster or default_cluster()
        t0 = time.perf_counter()
        try:
            nums = normalize_argnums(self.batch_argnums, len(args), "batch_argnums")
        except ValueError as e:
            raise _error(ValueError, str(e)) from None
        n = self._check_batch(args, nums, cluster.num_workers)
        bounds = shard_bounds(n, cluster.num_workers)
        sizes = [hi - lo for lo, hi in bounds]
        sigs = [self.staged.signature(self._shard_args(args, nums, lo, hi), kwargs)
                for lo, hi in bounds]
        progs = [self._program(sig) for sig in sigs]
        outputs = len(progs[0].result_dtypes)
        if not isinstance(self._reduce, str) and len(self._reduce) != outputs:
            raise _error(ValueError, f"reduce names {len(self._reduce)} reductions; the "
                         f"function has {outputs} outputs")
        t1 = time.perf_counter()

        broadcast = {}                 # array leaf position -> ObjectRef, put once per call
        shard_inputs = []
        for sig, prog in zip(sigs, progs):
            inputs, k = [], 0
            for leaf, owner in zip(sig.leaves, sig.owners):
                if not is_array_leaf(leaf):
                    continue
                if owner in nums:
                    inputs.append(np.ascontiguousarray(np.asarray(leaf)))
                else:
                    if k not in broadcast:
                        broadcast[k] = ray.put(np.ascontiguousarray(np.asarray(leaf)))
                    inputs.append(broadcast[k])
                k += 1
            inputs += self._capture_refs(prog, cluster)
            shard_inputs.append(inputs)
        t2 = time.perf_counter()

        results = self._run_all(cluster, progs, shard_inputs)
        t3 = time.perf_counter()
        flat = combine(results, sizes, self._reduce)
        out = tree_unflatten(progs[0].out_tree, [as_tensor(a) for a in flat])
        t4 = time.perf_counter()
        self.stats["calls"] += 1
        self.last_timing = {"prepare": t1 - t0, "put": t2 - t1, "run": t3 - t2,
                            "reduce": t4 - t3, "total": t4 - t0}
        return out

    def _capture_refs(self, prog: Program, cluster: Cluster) -> list:
        """The closure's arrays in the object store: put once per program and cluster."""
        refs = cluster.objects.get(prog.digest)
        if refs is None:
            ray = ray_module()
            refs = cluster.objects[prog.digest] = [ray.put(c) for c in prog.captures]
        return refs

    def _submit(self, cluster: Cluster, rank: int, prog: Program, inputs: list):
        text = None if prog.digest in cluster.loaded[rank] else prog.text
        if text is not None:
            self.stats["texts_sent"] += 1
        return cluster.workers[rank].run.remote(prog.digest, text, *inputs)

    def _run_all(self, cluster: Cluster, progs: list, shard_inputs: list) -> list:
        """Every shard's outputs, by shard index; lost shards rerun on replacement workers."""
        from ray.exceptions import RayActorError
        pending = {rank: self._submit(cluster, rank, progs[rank], shard_inputs[rank])
                   for rank in range(len(progs))}
        results: list = [None] * len(progs)
        attempts = [0] * len(progs)
        limit = self.timeout or cluster.timeout
        deadline = time.monotonic() + limit
        while pending:
            rank = next(iter(pending))
            ref = pending.pop(rank)
            what = f"{progs[rank].name} (program {progs[rank].digest[:12]}) on shard {rank}"
            try:
                results[rank] = cluster.wait(ref, rank, what, deadline, limit)
                cluster.loaded[rank].add(progs[rank].digest)
            except RayActorError as e:
                attempts[rank] += 1
                if attempts[rank] > cluster.max_retries:
                    raise RuntimeError(f"{cluster.describe(rank)} died {attempts[rank]} times "
                                       f"running {what}; giving up: {e}") from None
                try:
                    cluster.replace(rank)
                except RayActorError as again:
                    raise RuntimeError(f"{cluster.describe(rank)} died running {what}, and its "
                                       f"replacement did not start: {again}") from None
                self.stats["retries"] += 1
                pending[rank] = self._submit(cluster, rank, progs[rank], shard_inputs[rank])
                deadline = time.monotonic() + limit
        return results


def data_parallel(f, batch_argnums, reduce: str = "mean", cluster: Cluster | None = None,
                  timeout: float | None = None) -> DataParallel:
    """f (a gradjit grad / value_and_grad / jit function) with its batch spread over workers.

    Args:
        f: a staged gradjit function; a plain function is wrapped with jit.
        batch_argnums: positions of the arguments split along axis 0 (arrays or pytrees
            of arrays); the other arguments are broadcast to every worker.
        reduce: "mean" (weighted by shard size: equals the one-process value of a mean
            loss and its gradient), "sum", or "concat" (per-example outputs); or a pytree
            of these shaped like f's output, one per result.
        cluster: default: the one gradjit.distributed.init() made.
        timeout: seconds a worker may take per call (default: the cluster's).

    Returns:
        A callable with f's arguments and output structure (gradjit Tensors).
    """
    return DataParallel(f, batch_argnums, reduce, cluster, timeout)
