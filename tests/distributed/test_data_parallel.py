"""data_parallel on a local 2-worker Ray cluster: equal to the one-process result."""
import hashlib

import numpy as np
import pytest

import gradjit as gj
from gradjit import distributed as dist

RTOL = {np.float32: 2e-6, np.float64: 1e-13}


def mse(w, x, y):
    return ((gj.tanh(x @ w) - y) ** 2).mean()


def data(dtype, n=11, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((5, 3)).astype(dtype)
    x = rng.standard_normal((n, 5)).astype(dtype)
    y = rng.standard_normal((n, 3)).astype(dtype)
    return w, x, y


def close(a, b, dtype):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL[dtype],
                               atol=RTOL[dtype] * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [2, 11, 64])          # 11: uneven shards (6 and 5)
def test_value_and_grad_equals_one_process(cluster, dtype, n):
    w, x, y = data(dtype, n)
    vg = gj.value_and_grad(mse)
    value, grad = dist.data_parallel(vg, batch_argnums=(1, 2))(w, x, y)
    value0, grad0 = vg(w, x, y)
    assert np.asarray(grad).dtype == dtype and np.asarray(grad).shape == w.shape
    close(value, value0, dtype)
    close(grad, grad0, dtype)


def test_grad_over_a_pytree_of_parameters(cluster):
    rng = np.random.default_rng(1)
    params = {"w1": rng.standard_normal((4, 6)), "b1": np.zeros(6),
              "w2": rng.standard_normal((6, 1))}
    x, y = rng.standard_normal((9, 4)), rng.standard_normal((9, 1))

    def loss(p, x, y):
        h = gj.relu(x @ p["w1"] + p["b1"])
        return ((h @ p["w2"] - y) ** 2).mean()

    g = gj.grad(loss)
    got = dist.data_parallel(g, batch_argnums=(1, 2))(params, x, y)
    want = g(params, x, y)
    assert set(got) == set(want)
    for k in want:
        close(got[k], want[k], np.float64)
    # the numbers themselves: finite differences of the full-batch loss
    eps, k, idx = 1e-6, "w1", (2, 3)
    plus = {**params, k: params[k].copy()}
    plus[k][idx] += eps
    minus = {**params, k: params[k].copy()}
    minus[k][idx] -= eps
    fd = (float(gj.jit(loss)(plus, x, y)) - float(gj.jit(loss)(minus, x, y))) / (2 * eps)
    assert abs(float(np.asarray(got[k])[idx]) - fd) < 1e-6


def test_batch_as_a_pytree_and_two_argnums(cluster):
    w, x, y = data(np.float64, 7)
    b = np.zeros(3)

    def loss(w, b, batch):
        return ((gj.tanh(batch["x"] @ w + b) - batch["y"]) ** 2).mean()

    vg = gj.value_and_grad(loss, argnums=(0, 1))
    (value, (gw, gb)) = dist.data_parallel(vg, batch_argnums=2)(w, b, {"x": x, "y": y})
    value0, (gw0, gb0) = vg(w, b, {"x": x, "y": y})
    close(value, value0, np.float64)
    close(gw, gw0, np.float64)
    close(gb, gb0, np.float64)


def test_sum_and_concat_reductions(cluster):
    w, x, y = data(np.float64, 10)

    def total(w, x, y):
        return ((gj.tanh(x @ w) - y) ** 2).sum()

    got = dist.data_parallel(gj.grad(total), (1, 2), reduce="sum")(w, x, y)
    close(got, gj.grad(total)(w, x, y), np.float64)
    per_example = dist.data_parallel(gj.jit(lambda w, x: gj.tanh(x @ w)), 1, reduce="concat")
    close(per_example(w, x), np.tanh(x @ w), np.float64)


def test_one_reduction_per_output(cluster):
    # chain-like: a summed value, and gradients per element (concatenated, not reduced)
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal(9), rng.standard_normal(9)

    def f(x, w):
        return (gj.tanh(x * w) ** 2).sum()

    vg = gj.value_and_grad(f, argnums=(0, 1))
    step = dist.data_parallel(vg, batch_argnums=(0, 1), reduce=("sum", ("concat", "concat")))
    value, (gx, gw) = step(x, w)
    value0, (gx0, gw0) = vg(x, w)
    close(value, value0, np.float64)
    close(gx, gx0, np.float64)
    close(gw, gw0, np.float64)
    with pytest.raises(ValueError, match="names 2 reductions; the function has 3 outputs"):
        dist.data_parallel(vg, batch_argnums=(0, 1), reduce=("sum", "concat"))(x, w)


def test_closure_constants_travel_as_broadcast_arguments(cluster):
    w, x, y = data(np.float32, 8)
    scale = np.linspace(0.5, 2.0, 3).astype(np.float32)       # captured, not an argument

    def loss(w, x, y):
        return (((gj.tanh(x @ w) - y) * scale) ** 2).mean()

    vg = gj.value_and_grad(loss)
    step = dist.data_parallel(vg, batch_argnums=(1, 2))
    value, grad = step(w, x, y)
    value0, grad0 = vg(w, x, y)
    close(value, value0, np.float32)
    close(grad, grad0, np.float32)
    prog = next(iter(step.programs.values()))
    assert len(prog.captures) == 1 and np.array_equal(prog.captures[0], scale)


def test_plain_function_is_jitted(cluster):
    w, x, _ = data(np.float64, 6)
    got = dist.data_parallel(lambda w, x: (x @ w).mean(), batch_argnums=1)(w, x)
    close(got, (x @ w).mean(), np.float64)


def test_bitwise_reproducible_and_ir_shipped_once(cluster):
    w, x, y = data(np.float32, 21, seed=5)
    step = dist.data_parallel(gj.value_and_grad(mse), batch_argnums=(1, 2))
    first = step(w, x, y)
    for _ in range(3):
        again = step(w, x, y)
        assert np.asarray(again[1]).tobytes() == np.asarray(first[1]).tobytes()
        assert np.asarray(again[0]).tobytes() == np.asarray(first[0]).tobytes()
    # 21 examples over 2 workers: shards of 11 and 10, one program each, each sent once
    assert step.stats["texts_sent"] == 2 and step.stats["calls"] == 4
    import ray
    for rank, prog in enumerate(step.programs.values()):
        assert prog.digest == hashlib.sha256(prog.text.encode()).hexdigest()
        assert gj.ir.parse(prog.text) is not None
        assert prog.digest in ray.get(cluster.workers[rank].held.remote(), timeout=60)


def test_local_instance_uses_loopback_only(cluster):
    import os

    import ray
    if os.environ.get("RAY_ADDRESS"):
        pytest.skip("the tests joined an existing Ray cluster (RAY_ADDRESS is set)")
    assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]


def test_workers_run_ir_not_user_code(cluster):
    import ray
    info = ray.get(cluster.workers[0].info.remote(), timeout=60)
    assert "tracer.staging" not in info["modules"] and "gradjit" not in info["modules"]
    assert info["modules"] == []          # the worker (runtime/worker.py) imports no tracer module
