"""gradjit.distributed: data-parallel gradients on Ray (pip install "gradjit[distributed]").

    from gradjit import distributed as dist
    cluster = dist.init(num_workers=2)            # or joins RAY_ADDRESS / address=
    step = dist.data_parallel(gj.value_and_grad(loss), batch_argnums=(1, 2))
    value, grads = step(params, x, y)             # equals the one-process result
    dist.shutdown()

Workers receive the program as printed IR (once, by SHA-256) and then only array shards;
they need gradjit installed, not the user's code. See docs/distributed.md.
"""
from tracer.distributed.cluster import Cluster, DistributedError, init, shutdown
from tracer.distributed.data_parallel import DataParallel, data_parallel, shard_bounds
from tracer.distributed.ddp import DistributedDataParallel
from tracer.distributed.process_group import (barrier, destroy_process_group, get_rank,
                                              get_world_size, init_process_group,
                                              is_initialized)
from tracer.distributed.run import RunContext, run


def is_available() -> bool:
    """False: torch.distributed's process groups are not here (gradjit's are `run`'s)."""
    return False


__all__ = [
           "Cluster",
           "DataParallel",
           "DistributedDataParallel",
           "DistributedError",
           "RunContext",
           "data_parallel",
           "init",
           "run",
           "shard_bounds",
           "shutdown",
           # torch.distributed's names, as in a process outside any group
           "barrier",
           "destroy_process_group",
           "get_rank",
           "get_world_size",
           "init_process_group",
           "is_available",
           "is_initialized",
]
