"""dist.run, ctx.all_reduce and DistributedDataParallel on the session's local Ray.

The train functions live at module level: Ray ships them by reference, and the workers
import this module from the driver's working directory (the repository root)."""
import time

import numpy as np
import pytest

import gradjit as gj
from gradjit import distributed as dist

STEPS, LR = 5, 0.1


def make_model(seed: int):
    gj.manual_seed(seed)
    return gj.nn.Sequential(gj.nn.Linear(4, 8), gj.nn.Tanh(), gj.nn.Linear(8, 1))


def batch():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((16, 4)).astype(np.float32),
            rng.standard_normal((16, 1)).astype(np.float32))


def train(model, x, y, ddp=None):
    net = ddp or model
    opt = gj.optim.SGD(net.parameters(), lr=LR, momentum=0.5)
    for _ in range(STEPS):
        opt.zero_grad()
        loss = gj.nn.functional.mse_loss(net(gj.tensor(x)), gj.tensor(y))
        loss.backward()
        opt.step()
    return {name: p.detach().numpy().copy() for name, p in model.named_parameters()}


def train_ddp(ctx):
    model = make_model(seed=100 + ctx.rank)        # DDP starts every rank from rank 0's
    ddp = dist.DistributedDataParallel(model, ctx)
    x, y = batch()
    lo, hi = dist.shard_bounds(len(x), ctx.world_size)[ctx.rank]
    state = train(model, x[lo:hi], y[lo:hi], ddp)
    return state, ddp.syncs


def test_ddp_training_equals_one_process_full_batch(cluster):
    results = dist.run(train_ddp, num_workers=2, cpus_per_worker=0, timeout=300)
    want = train(make_model(seed=100), *batch())
    (state0, syncs0), (state1, syncs1) = results
    assert syncs0 == syncs1 == STEPS
    for name, value in want.items():
        np.testing.assert_allclose(state0[name], value, rtol=1e-5, atol=1e-6)
        # both ranks applied the same averaged gradients: identical parameters
        assert state0[name].tobytes() == state1[name].tobytes()
    # and training moved them: the comparison is not of two initial states
    assert not np.allclose(want["0.weight"], make_model(seed=100)[0].weight.detach().numpy())


def reduce_values(ctx):
    mine = {"a": np.full(3, ctx.rank + 1.0, np.float32), "b": gj.tensor([float(ctx.rank)])}
    total = ctx.all_reduce(mine, op="sum")
    mean = ctx.all_reduce(mine)
    return (ctx.rank, ctx.world_size, total["a"], type(total["b"]).__name__,
            np.asarray(total["b"]), mean["a"])


def test_all_reduce_sum_and_mean_over_three_ranks(cluster):
    out = dist.run(reduce_values, num_workers=3, cpus_per_worker=0, timeout=300)
    assert [o[:2] for o in out] == [(0, 3), (1, 3), (2, 3)]
    for _, _, total_a, b_type, total_b, mean_a in out:
        np.testing.assert_array_equal(total_a, [6.0, 6.0, 6.0])
        assert total_a.dtype == np.float32 and b_type == "Tensor"
        np.testing.assert_array_equal(total_b, [3.0])
        np.testing.assert_array_equal(mean_a, [2.0, 2.0, 2.0])


def fail_on_rank_one(ctx):
    if ctx.rank == 1:
        raise ValueError("boom on purpose")
    return ctx.all_reduce(np.ones(2))       # waits for rank 1, which never comes


def test_a_failing_rank_is_named_and_the_others_stopped(cluster):
    with pytest.raises(dist.DistributedError, match="rank 1 raised ValueError: boom on purpose"):
        dist.run(fail_on_rank_one, num_workers=2, cpus_per_worker=0, timeout=300)


def mismatched_calls(ctx):
    return ctx.all_reduce(np.ones(2 + ctx.rank))


def test_mismatched_all_reduce_is_an_error(cluster):
    with pytest.raises(dist.DistributedError, match="every rank must make the same calls"):
        dist.run(mismatched_calls, num_workers=2, cpus_per_worker=0, timeout=300)


def die_on_rank_one(ctx):
    if ctx.rank == 1:
        import os
        os._exit(3)                         # the process vanishes, as in a crash
    return ctx.all_reduce(np.ones(2))


def test_a_dead_rank_is_named(cluster):
    with pytest.raises(dist.DistributedError, match="rank 1 died"):
        dist.run(die_on_rank_one, num_workers=2, cpus_per_worker=0, timeout=300)


def sleep_on_rank_one(ctx):
    if ctx.rank == 1:
        for _ in range(600):                # 60 s of computing without a collective
            time.sleep(0.1)
    return ctx.rank


def test_max_seconds_stops_a_rank_still_computing(cluster):
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"ranks \[1\] did not finish within max_seconds=2"):
        dist.run(sleep_on_rank_one, num_workers=2, cpus_per_worker=0, max_seconds=2)
    assert time.monotonic() - start < 45       # cancelled, not waited out
    # the pool is still usable afterwards
    assert [o[:2] for o in dist.run(reduce_values, num_workers=2, cpus_per_worker=0)] == \
        [(0, 2), (1, 2)]


def test_repeated_failing_runs_leave_the_driver_alive(cluster):
    # Ray 2.60 aborted the driver when a cancel raced a rank's own end ("Tried to complete
    # task that was not pending"): the ranks waiting in all_reduce are no longer cancelled.
    cases = [(fail_on_rank_one, "raised ValueError"), (die_on_rank_one, "died")]
    for train_fn, reason in cases * 3:
        with pytest.raises(dist.DistributedError, match=f"rank 1 {reason}"):
            dist.run(train_fn, num_workers=2, cpus_per_worker=0, timeout=300)
    assert dist.run(reduce_values, num_workers=2, cpus_per_worker=0)[1][:2] == (1, 2)
