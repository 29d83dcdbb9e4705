"""Starting or joining Ray, and the pool of data-parallel workers.

`init` starts a private local Ray instance (loopback only, no dashboard, no usage
statistics) unless an address is given or RAY_ADDRESS is set, in which case it joins that
cluster. `shutdown` stops the workers `init` created and Ray only if `init` started it.

Every wait on Ray goes through `Cluster.wait` with a deadline: nothing blocks forever. A
worker found dead is replaced by a fresh actor of the same rank (`Cluster.replace`); the
caller then re-sends the lost work, which is safe because a step is a pure function of
(IR, arguments).
"""
from __future__ import annotations

import contextlib
import os
import time

from runtime import config
import runtime.disk_cache
from runtime.worker import LoadError, ProgramWorker

DEFAULT_TIMEOUT = 120.0        # seconds; the first call includes compiling on every worker


class DistributedError(RuntimeError):
    """A worker failed in a way a retry cannot fix (it could not compile, or raised)."""


def ray_module():
    """Ray, imported with its usage statistics off; a clear error when it is missing."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ImportError("gradjit.distributed needs Ray: pip install 'gradjit[distributed]'") \
            from None
    return ray


def start_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connects to Ray; True when this call started a local instance (ours to stop)."""
    ray = ray_module()
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    if address is not None:
        ray.init(address=address, **quiet)
        return False
    with loopback_only():
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1,
                 _node_ip_address="127.0.0.1", **quiet)
    return True


@contextlib.contextmanager
def loopback_only():
    """Makes a new local Ray instance use 127.0.0.1, so its servers listen on loopback only.

    On Linux Ray replaces a loopback node address by the machine's network address (so other
    nodes could join) unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which Ray reads once at
    import: we set both the variable (for the processes ray.init starts) and the constant,
    for the duration of the start only. A Ray without that constant keeps its default."""
    try:
        from ray._private import ray_constants
        saved = ray_constants.ENABLE_RAY_CLUSTER
    except (ImportError, AttributeError):
        yield
        return
    var = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    saved_env = os.environ.get(var)
    os.environ[var] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
        if saved_env is None:
            del os.environ[var]
        else:
            os.environ[var] = saved_env


def kill_quietly(actor):
    """Stops an actor; one that is dead already needs no stopping."""
    with contextlib.suppress(Exception):
        ray_module().kill(actor, no_restart=True)


_actor_classes: dict = {}


def _actor_class(cls):
    """cls wrapped with ray.remote (once per process)."""
    if cls not in _actor_classes:
        _actor_classes[cls] = ray_module().remote(cls)
    return _actor_classes[cls]


def worker_options(cpus: float, env: dict | None) -> dict:
    """Ray actor options: no automatic restarts (we replace workers ourselves, knowing what
    was lost); env only when asked for (a runtime_env costs seconds per worker start)."""
    opts = {"num_cpus": cpus, "max_restarts": 0, "max_task_retries": 0}
    if env:
        opts["runtime_env"] = {"env_vars": {k: str(v) for k, v in env.items()}}
    return opts


def worker_threads(cpus: float, env: dict | None) -> int | None:
    """Kernel threads for a worker: its CPU share, unless GRADJIT_NUM_THREADS says."""
    if config.value("GRADJIT_NUM_THREADS") or "GRADJIT_NUM_THREADS" in (env or {}):
        return None
    return max(1, int(cpus)) if cpus >= 1 else 1


class Cluster:
    """num_workers ProgramWorker actors. `workers` lists the live actor handles by rank."""

    def __init__(self, num_workers: int, timeout: float = DEFAULT_TIMEOUT,
                 cpus_per_worker: float = 1, env: dict | None = None, max_retries: int = 2):
        if not isinstance(num_workers, int) or num_workers < 1:
            raise ValueError(f"num_workers must be a positive int, got {num_workers!r}")
        if not timeout or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        ray = ray_module()
        if not ray.is_initialized():
            raise RuntimeError("Ray is not running: call gradjit.distributed.init() first")
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self._options = worker_options(cpus_per_worker, env)
        self._threads = worker_threads(cpus_per_worker, env)
        self.workers: list = [None] * num_workers
        self.infos: list[dict | None] = [None] * num_workers
        self.loaded: list[set] = [set() for _ in range(num_workers)]
        self.objects: dict[str, list] = {}     # program digest -> its captures' ObjectRefs
        self.replacements = 0          # workers started to replace dead ones
        self.closed = False
        for rank in range(num_workers):
            self.workers[rank] = self._spawn(rank)
        self._handshake(range(num_workers))

    @property
    def num_workers(self) -> int:
        return len(self.workers)

    def _spawn(self, rank: int):
        return _actor_class(ProgramWorker).options(**self._options).remote(rank, self._threads)

    def _handshake(self, ranks):
        """Waits for the workers to start (bounded): who and where each one is."""
        refs = {rank: self.workers[rank].info.remote() for rank in ranks}
        deadline = time.monotonic() + self.timeout
        for rank, ref in refs.items():
            self.infos[rank] = self.wait(ref, rank, "starting", deadline)

    def describe(self, rank: int) -> str:
        info = self.infos[rank]
        where = f" (pid {info['pid']} on {info['host']})" if info else ""
        return f"worker {rank}{where}"

    def replace(self, rank: int):
        """A fresh worker in place of a dead one; it holds no programs yet."""
        kill_quietly(self.workers[rank])
        self.workers[rank] = self._spawn(rank)
        self.infos[rank] = None
        self.loaded[rank] = set()
        self.replacements += 1
        self._handshake([rank])

    def wait(self, ref, rank: int, what: str, deadline: float, limit: float | None = None):
        """ray.get(ref) by the deadline; a worker that raised becomes a clear error.

        Raises:
            TimeoutError: the deadline passed (the worker is hung or the cluster is full).
            ray.exceptions.RayActorError: the worker died (the caller may replace it).
            DistributedError: the worker could not load the program, or the program raised.
        """
        ray = ray_module()
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
        try:
            return ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))
        except GetTimeoutError:
            raise TimeoutError(f"{self.describe(rank)} did not finish {what} within "
                               f"{limit or self.timeout:g} s (set timeout= in dist.init or "
                               "data_parallel; is the cluster short of CPUs?)") from None
        except RayActorError:
            raise
        except RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, RayActorError):
                raise cause from None
            if isinstance(cause, LoadError):
                raise DistributedError(f"{self.describe(rank)} could not compile {what}: "
                                       f"{cause}{self._version_note(rank)}") from None
            reason = f"{type(cause).__name__}: {cause}" if cause is not None else str(e)
            raise DistributedError(f"{self.describe(rank)} failed running {what}: "
                                   f"{reason}") from None

    def _version_note(self, rank: int) -> str:
        info = self.infos[rank]
        if info is None:
            return ""
        mine = runtime.disk_cache.source_hash()
        if info["source_hash"] == mine:
            return ""
        return (f" (the worker runs a different gradjit: source hash "
                f"{info['source_hash'][:12]}, the driver's is {mine[:12]})")

    def close(self):
        """Stops the workers (not Ray)."""
        if self.closed:
            return
        self.closed = True
        if ray_module().is_initialized():
            for w in self.workers:
                kill_quietly(w)

    def __repr__(self) -> str:
        return f"<gradjit Cluster: {self.num_workers} workers, timeout {self.timeout:g} s>"


# ---- the default cluster (dist.init / dist.shutdown) ---------------------------------------

_state = {"cluster": None, "started_ray": False}


def init(num_workers: int | None = None, address: str | None = None,
         timeout: float = DEFAULT_TIMEOUT, cpus_per_worker: float = 1,
         num_cpus: int | None = None, env: dict | None = None) -> Cluster:
    """Starts (or joins) Ray and num_workers data-parallel workers; returns the Cluster.

    Args:
        num_workers: default: the CPUs of the cluster divided by cpus_per_worker.
        address: a Ray cluster to join ("ray://host:10001", "host:6379", "auto"); default
            RAY_ADDRESS, else a new private local instance.
        timeout: seconds any single wait on a worker may take.
        cpus_per_worker: Ray CPUs each worker reserves (and its kernel threads).
        num_cpus: CPUs of a local instance (default: this machine's, at least num_workers).
        env: environment variables for the workers.
    """
    ray = ray_module()
    if _state["cluster"] is not None:
        _state["cluster"].close()
        _state["cluster"] = None
    want = num_workers * max(cpus_per_worker, 1) if num_workers else None
    local_cpus = num_cpus or max(os.cpu_count() or 1, int(want or 1))
    started = start_ray(address, local_cpus)
    _state["started_ray"] = _state["started_ray"] or started
    if num_workers is None:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        num_workers = max(1, int(cpus // cpus_per_worker) if cpus_per_worker else cpus)
    cluster = Cluster(num_workers, timeout, cpus_per_worker, env)
    _state["cluster"] = cluster
    return cluster


def default_cluster() -> Cluster:
    cluster = _state["cluster"]
    if cluster is None or cluster.closed:
        raise RuntimeError("no gradjit cluster: call gradjit.distributed.init() first "
                           "(or pass cluster=)")
    return cluster


def shutdown():
    """Stops the default cluster's workers, and Ray if init started it."""
    if _state["cluster"] is not None:
        _state["cluster"].close()
        _state["cluster"] = None
    if _state["started_ray"]:
        ray_module().shutdown()
        _state["started_ray"] = False
