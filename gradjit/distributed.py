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
from tracer.distributed.run import RunContext, run

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
]
