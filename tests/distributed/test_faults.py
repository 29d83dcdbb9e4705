"""Faults and bad input: dead workers are replaced and their shard rerun exactly once;
workers that cannot compile, hangs and bad batches give clear errors."""
import numpy as np
import pytest

import gradjit as gj
from gradjit import distributed as dist
from tracer.distributed.cluster import Cluster


def mse(w, x, y):
    return ((gj.tanh(x @ w) - y) ** 2).mean()


def data(n=13):
    rng = np.random.default_rng(2)
    return (rng.standard_normal((4, 2)).astype(np.float32),
            rng.standard_normal((n, 4)).astype(np.float32),
            rng.standard_normal((n, 2)).astype(np.float32))


def call_counts(cluster):
    import ray
    return [ray.get(w.call_count.remote(), timeout=60) for w in cluster.workers]


def test_killed_worker_is_replaced_and_its_shard_retried(cluster):
    import ray
    w, x, y = data()
    step = dist.data_parallel(gj.value_and_grad(mse), batch_argnums=(1, 2))
    before = step(w, x, y)
    dead = cluster.workers[0]
    survivor_calls = call_counts(cluster)[1]
    replacements = cluster.replacements
    ray.kill(dead)                      # no_restart by default: Ray will not bring it back
    after = step(w, x, y)
    # the same bits: each shard's result was used exactly once
    assert np.asarray(after[0]).tobytes() == np.asarray(before[0]).tobytes()
    assert np.asarray(after[1]).tobytes() == np.asarray(before[1]).tobytes()
    assert cluster.replacements == replacements + 1 and step.stats["retries"] == 1
    assert cluster.workers[0] is not dead
    # the replacement ran shard 0 once (after receiving the IR text); worker 1 ran shard 1 once
    assert call_counts(cluster) == [1, survivor_calls + 1]
    assert step.stats["texts_sent"] == 2 + 1
    _, grad0 = gj.value_and_grad(mse)(w, x, y)
    np.testing.assert_allclose(np.asarray(after[1]), np.asarray(grad0), rtol=2e-6, atol=1e-7)


def test_worker_killed_during_a_step(cluster, monkeypatch):
    import ray
    # shards big enough (several GFLOP each) that the kill lands while the worker computes
    rng = np.random.default_rng(4)
    w = rng.standard_normal((800, 800)).astype(np.float32) * 0.03
    x = rng.standard_normal((2400, 800)).astype(np.float32)
    y = rng.standard_normal((2400, 800)).astype(np.float32)
    step = dist.data_parallel(gj.grad(mse), batch_argnums=(1, 2))
    want = np.asarray(step(w, x, y))
    submit, killed = type(step)._submit, []

    def submit_then_kill(self, cluster, rank, *args):
        ref = submit(self, cluster, rank, *args)
        if rank == 1 and not killed:          # shard 1 was sent: its worker dies under it
            killed.append(cluster.workers[1])
            ray.kill(cluster.workers[1])
        return ref

    monkeypatch.setattr(type(step), "_submit", submit_then_kill)
    replacements = cluster.replacements
    got = np.asarray(step(w, x, y))
    assert killed and cluster.workers[1] is not killed[0]
    assert cluster.replacements == replacements + 1
    assert got.tobytes() == want.tobytes()


def test_worker_that_cannot_compile_names_itself_and_the_reason(cluster):
    # a worker whose gradjit is misconfigured (an unknown backend) cannot compile anything
    bad = Cluster(1, timeout=300, cpus_per_worker=0, env={"GRADJIT_BACKEND": "bogus"})
    try:
        w, x, y = data()
        step = dist.data_parallel(gj.grad(mse), batch_argnums=(1, 2), cluster=bad)
        pid = bad.infos[0]["pid"]
        with pytest.raises(dist.DistributedError,
                           match=rf"worker 0 \(pid {pid} on .*\) could not compile mse_grad .*"
                                 r"GRADJIT_BACKEND='bogus'"):
            step(w, x, y)
    finally:
        bad.close()


def test_timeout_is_a_clear_error_not_a_hang(cluster):
    w, x, y = data(17)

    def slow(w, x, y):                  # a new program: the workers must compile it first
        return (gj.sin(x @ w) * y).mean()

    step = dist.data_parallel(gj.grad(slow), batch_argnums=(1, 2), timeout=1e-4)
    with pytest.raises(TimeoutError, match=r"worker \d .* did not finish slow_grad .* within "
                                           r"0.0001 s"):
        step(w, x, y)
    step.timeout = None                 # the cluster's own timeout: the call completes
    np.testing.assert_allclose(np.asarray(step(w, x, y)), np.asarray(gj.grad(slow)(w, x, y)),
                               rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("args, error, match", [
    (lambda w, x, y: (w, x[:1], y[:1]), ValueError,
     r"a batch of 1 examples cannot be split over 2 workers"),
    (lambda w, x, y: (w, x, y[:-1]), ValueError,
     r"same leading dimension .*x: 13, y: 12"),
    (lambda w, x, y: (w, x, 0.5), TypeError,
     r"batch argument 2 \(y\) must be an array .* got float"),
    (lambda w, x, y: (w, x, np.float32(1.0)), TypeError,
     r"batch argument 2 \(y\) must be an array .* got float32"),
    (lambda w, x, y: (w, x, np.array(1.0, np.float32)), ValueError,
     r"batch argument 2 \(y\) is a 0-d array"),
])
def test_bad_batches_fail_before_any_work_is_sent(cluster, args, error, match):
    w, x, y = data()
    step = dist.data_parallel(gj.grad(mse), batch_argnums=(1, 2))
    counts = call_counts(cluster)
    with pytest.raises(error, match=match + r".*\(at test_faults.py:\d+\)"):
        step(*args(w, x, y))
    assert call_counts(cluster) == counts and step.stats["calls"] == 0 and not step.programs


def test_bad_arguments_to_data_parallel():
    with pytest.raises(ValueError, match="reduce='max'"):
        dist.data_parallel(gj.grad(mse), 1, reduce="max")
    with pytest.raises(ValueError, match="batch_argnums is empty"):
        dist.data_parallel(gj.grad(mse), ())


def test_batch_argnums_out_of_range(cluster):
    w, x, y = data()
    with pytest.raises(ValueError, match="batch_argnums 5 is out of range for 3"):
        dist.data_parallel(gj.grad(mse), batch_argnums=5)(w, x, y)
