"""Data-parallel gradients on a Ray cluster (the public face is `gradjit.distributed`).

A data-parallel worker is runtime/worker.py, which needs only `ir` and `runtime`: a worker
process runs gradjit's compiler on IR text and never imports the user's code or the tracer.

    cluster.py        starting / joining Ray, the worker pool, replacing dead workers
    programs.py       a staged function's IR for one shard signature, hashed for the wire
    data_parallel.py  split the batch, dispatch, retry lost shards, reduce
    reduce.py         fixed-order reductions (mean weighted by shard size, sum, concat)
    run.py            dist.run: train_fn(ctx) on N workers, ctx.all_reduce
    ddp.py            DistributedDataParallel: one fused gradient all-reduce per backward
"""
