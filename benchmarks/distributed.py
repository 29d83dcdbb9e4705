"""python -m benchmarks.distributed [--repeats N] [--json out.json]

Data-parallel gradients on a local Ray cluster: the per-step overhead and the time per step
for 1 and 2 workers on the MLP and on `chain` (benchmarks/workloads.py's definitions), and
the constants of the scaling model in docs/distributed.md:

  latency     a step of a trivial program on one worker (driver + Ray round trip)
  bandwidth   bytes/s of a shard through the object store (driver -> worker)
  reduce      seconds per byte of result to reduce on the driver (per worker)
  ir_ship     first contact: ship the IR text, parse, compile on a worker (disk cache warm
              and cold)

All figures are medians of interleaved repeats. On one machine the "network" is shared
memory, so bandwidth here is an upper bound for a real cluster's.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np


def median_time(fn, repeats: int) -> float:
    fn()                                     # warm: traced, compiled, shipped
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def mlp_problem(gj, batch: int):
    rng = np.random.default_rng(1)
    params = ((rng.standard_normal((784, 256)) * 0.05).astype(np.float32),
              np.zeros(256, np.float32),
              (rng.standard_normal((256, 10)) * 0.05).astype(np.float32),
              np.zeros(10, np.float32))
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    onehot = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]

    def loss(w1, b1, w2, b2, x, onehot):
        h = gj.relu(x @ w1 + b1)
        return -(onehot * gj.log_softmax(h @ w2 + b2, axis=1)).sum() / x.shape[0]

    vg = gj.value_and_grad(loss, argnums=(0, 1, 2, 3))
    return vg, (*params, x, onehot), (4, 5), "mean"


def chain_problem(gj, n: int):
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(n).astype(np.float32) for _ in range(3))

    def f(x, w, b):
        return (gj.tanh(x * w + b) ** 2 * 0.5 + gj.exp(-x * x)).sum()

    vg = gj.value_and_grad(f, argnums=(0, 1, 2))
    # the value adds up; the gradients are per element: joined, not reduced
    return vg, (x, w, b), (0, 1, 2), ("sum", ("concat", "concat", "concat"))


def measure_problem(gj, dist, clusters, name, problem, repeats) -> dict:
    vg, args, batch_argnums, reduce = problem
    from runtime.threads import set_num_threads
    row = {"name": name, "local": median_time(lambda: vg(*args), repeats)}
    set_num_threads(1)                        # a worker's share: one core (the model's C)
    try:
        row["local_1thread"] = median_time(lambda: vg(*args), repeats)
    finally:
        set_num_threads(None)
    want = vg(*args)
    for workers, cluster in clusters.items():
        step = dist.data_parallel(vg, batch_argnums, reduce=reduce, cluster=cluster)
        got = step(*args)
        err = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                  for a, b in zip(_leaves(got), _leaves(want)))
        row[f"w{workers}"] = median_time(lambda step=step: step(*args), repeats)
        row[f"w{workers}_parts"] = {k: round(v, 6) for k, v in step.last_timing.items()}
        row[f"w{workers}_max_abs_err"] = err
    row["batch_bytes"] = sum(args[i].nbytes for i in batch_argnums)
    row["param_bytes"] = sum(a.nbytes for i, a in enumerate(args) if i not in batch_argnums)
    return row


def _leaves(tree):
    from tracer.pytree import tree_flatten
    return tree_flatten(tree)[0]


def measure_constants(gj, dist, cluster, cluster2, repeats) -> dict:
    """latency, bandwidth, reduce cost and first-contact (IR shipping) cost."""
    import ray
    tiny = dist.data_parallel(gj.jit(lambda x: x.sum()), 0, reduce="sum", cluster=cluster)
    tiny2 = dist.data_parallel(gj.jit(lambda x: x.sum()), 0, reduce="sum", cluster=cluster2)
    small = np.ones(8, np.float32)
    latency = median_time(lambda: tiny(small), repeats)
    latency2 = median_time(lambda: tiny2(small), repeats)
    per_worker = max(latency2 - latency, 0.0)
    big = np.ones(8 << 20, np.float32)                       # 32 MiB
    local_sum = median_time(lambda: gj.jit(lambda x: x.sum())(big), repeats)
    t_big = median_time(lambda: tiny(big), repeats)
    bandwidth = big.nbytes / max(t_big - latency - local_sum, 1e-9)

    parts = [np.ones(1 << 20, np.float32) for _ in range(2)]   # 4 MiB per worker
    from tracer.distributed.reduce import combine
    t_reduce = median_time(lambda: combine([[p] for p in parts], [1, 1], "mean"), repeats)
    reduce_per_byte = t_reduce / sum(p.nbytes for p in parts)

    # first contact: IR text to a worker that has never seen it (parse + compile there)
    vg, args, batch_argnums, _ = mlp_problem(gj, 64)
    step = dist.data_parallel(vg, batch_argnums, cluster=cluster)
    step(*args)
    prog = next(iter(step.programs.values()))
    ship = {}
    for label, env in (("disk_cache_warm", None), ("cold_compile", {"GRADJIT_DISK_CACHE": "0"})):
        fresh = dist.Cluster(1, cpus_per_worker=0, env=env)
        try:
            t0 = time.perf_counter()
            ray.get(fresh.workers[0].load.remote(prog.digest, prog.text), timeout=600)
            ship[label] = time.perf_counter() - t0
        finally:
            fresh.close()
    return {"latency": latency, "latency_per_worker": per_worker,
            "latency_2w": latency2, "bandwidth": bandwidth, "reduce_per_byte": reduce_per_byte,
            "ir_text_bytes": len(prog.text.encode()), "ir_ship": ship}


def predict(c: dict, compute: float, data_bytes: float, param_bytes: float, workers: int,
            bandwidth: float | None = None) -> float:
    # compute: one core's time for the whole batch; data goes out once, the parameters go
    # to and the gradients come back from every worker, all through the driver's link
    """docs/distributed.md's model: step time for `workers` workers."""
    bw = bandwidth or c["bandwidth"]
    return (compute / workers + c["latency"] + (workers - 1) * c["latency_per_worker"]
            + (data_bytes + 2 * workers * param_bytes) / bw
            + workers * param_bytes * c["reduce_per_byte"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", help="write the figures here")
    opts = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import gradjit as gj
    from gradjit import distributed as dist
    one = dist.init(num_workers=1, num_cpus=2)
    clusters = {1: one, 2: dist.Cluster(2, cpus_per_worker=0)}
    try:
        rows = [measure_problem(gj, dist, clusters, "mlp b=4096", mlp_problem(gj, 4096),
                                opts.repeats),
                measure_problem(gj, dist, clusters, "chain 1e6", chain_problem(gj, 10**6),
                                opts.repeats)]
        consts = measure_constants(gj, dist, one, clusters[2], opts.repeats)
    finally:
        clusters[2].close()
        dist.shutdown()
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"Ray local (object store = shared memory)")
    print(f"{'workload':<12} {'local':>9} {'local 1t':>9} {'1 worker':>9} {'2 workers':>9}"
          "   max |err| (2w)")
    for r in rows:
        print(f"{r['name']:<12} {r['local'] * 1e3:8.2f}ms {r['local_1thread'] * 1e3:8.2f}ms "
              f"{r['w1'] * 1e3:8.2f}ms "
              f"{r['w2'] * 1e3:8.2f}ms   {r['w2_max_abs_err']:.2e}")
        print(f"{'':<12} last 2-worker step: " + ", ".join(
            f"{k} {v * 1e3:.2f}ms" for k, v in r["w2_parts"].items()))
    print(f"step latency, tiny program: 1 worker {consts['latency'] * 1e3:.2f} ms, "
          f"2 workers {consts['latency_2w'] * 1e3:.2f} ms")
    print(f"shard bandwidth driver -> worker: {consts['bandwidth'] / 1e9:.2f} GB/s")
    print(f"reduction: {consts['reduce_per_byte'] * 1e9:.3f} ns per byte per worker")
    print(f"IR text {consts['ir_text_bytes'] / 1e3:.1f} kB, first contact: " + ", ".join(
        f"{k} {v:.2f} s" for k, v in consts["ir_ship"].items()))
    mlp = rows[0]
    compute = mlp["local_1thread"]
    for label, bw in (("this machine", None), ("10 Gbit/s", 1.25e9), ("100 Gbit/s", 12.5e9)):
        preds = {w: predict(consts, compute, mlp["batch_bytes"], mlp["param_bytes"], w, bw)
                 for w in (1, 2, 8, 64)}
        print(f"model, mlp b=4096, {label}: " + ", ".join(
            f"{w}w {t * 1e3:.1f}ms" for w, t in preds.items()))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"rows": rows, "constants": consts}, f, indent=1)


if __name__ == "__main__":
    main()
