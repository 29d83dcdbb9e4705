"""vmap: every batching rule (ir/batching.py) against a loop, and the tracer-level vmap."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import gradjit as gj
from ir.batching import BatchingError, batch_function, batch_rules
from ir.core import Function
from ir.interpret import interpret
from ir.primitives import PRIMITIVES
from ir.verify import verify
from tests.gradcheck import boolean, f64, i64, make_fn
from tests.prim_samples import custom as custom_samples

N = 3        # batch size


def _region(build, *types, name="r") -> Function:
    return make_fn(build, *types, name=name)


def _count_positive(b, x):
    return b.reduce_sum(b.convert(b.gt(x, b.const(0.0, "f64", (3,))), dtype="i64"), axes=(0,))


def _while_case():
    """Squares x as many times as it has positive entries."""
    cond = _region(lambda b, i, x: b.lt(i, _count_positive(b, x)), i64[()], f64[3], name="cond")
    body = _region(lambda b, i, x: (b.add(i, b.const(1, "i64")), b.mul(x, x)), i64[()], f64[3],
                   name="body")
    return lambda b, i, x: b.emit("while", i, x, regions=(cond, body)), (i64[()], f64[3])


def _scan_case():
    body = _region(lambda b, c, x: (b.add(c, x), b.mul(c, x)), f64[2], f64[2], name="step")
    return lambda b, c, xs: b.emit("scan", c, xs, regions=(body,), num_carry=1, length=4,
                                   reverse=False), (f64[2], f64[4, 2])


def _cond_case():
    t = _region(lambda b, x, y: b.exp(x), f64[3], f64[3], name="t")
    f = _region(lambda b, x, y: b.mul(x, y), f64[3], f64[3], name="f")
    return lambda b, p, x, y: b.emit("cond", p, x, y, regions=(t, f)), (boolean[()], f64[3],
                                                                        f64[3])


def _dot(contract, batch):
    return lambda b, x, y: b.dot_general(x, y, contract=contract, batch=batch)


CASES = {
    "exp": (lambda b, x: b.exp(x), (f64[2, 3],)),
    "integer_pow": (lambda b, x: b.integer_pow(x, n=3), (f64[3],)),
    "convert": (lambda b, x: b.convert(x, dtype="f32"), (f64[3],)),
    "add": (lambda b, x, y: b.add(x, y), (f64[2, 3], f64[2, 3])),
    "lt": (lambda b, x, y: b.lt(x, y), (f64[3], f64[3])),
    "select": (lambda b, p, x, y: b.select(p, x, y), (boolean[3], f64[3], f64[3])),
    "broadcast_in_dim": (lambda b, x: b.broadcast_in_dim(x, shape=(2, 3), dims=(1,)), (f64[3],)),
    "reshape": (lambda b, x: b.reshape(x, shape=(3, 2)), (f64[2, 3],)),
    "transpose": (lambda b, x: b.transpose(x, perm=(1, 0)), (f64[2, 3],)),
    "slice": (lambda b, x: b.slice(x, start=(1, 0), limit=(4, 3), stride=(2, 2)), (f64[4, 3],)),
    "pad": (lambda b, x: b.pad(x, lo=(1, 0), hi=(0, 2), interior=(1, 0)), (f64[2, 3],)),
    "concatenate": (lambda b, x, y: b.concatenate(x, y, axis=1), (f64[2, 3], f64[2, 1])),
    "reduce_sum": (lambda b, x: b.reduce_sum(x, axes=(1,)), (f64[2, 3],)),
    "reduce_max": (lambda b, x: b.reduce_max(x, axes=(0, 1)), (f64[2, 3],)),
    "reduce_min": (lambda b, x: b.reduce_min(x, axes=(0,)), (f64[2, 3],)),
    "argmax": (lambda b, x: b.argmax(x, axis=1), (f64[2, 3],)),
    "argmin": (lambda b, x: b.argmin(x, axis=0), (f64[2, 3],)),
    "matmul": (_dot(((1,), (0,)), ((), ())), (f64[2, 3], f64[3, 4])),
    "batched_matmul": (_dot(((2,), (1,)), ((0,), (0,))), (f64[5, 2, 3], f64[5, 3, 4])),
    "dot_transposed": (_dot(((0,), (1,)), ((), ())), (f64[3, 2], f64[4, 3])),
    "gather_axis0": (lambda b, x, i: b.gather(x, i, axis=0), (f64[4, 3], i64[2, 2])),
    "gather_axis1": (lambda b, x, i: b.gather(x, i, axis=1), (f64[2, 4, 3], i64[5])),
    "scatter_add_axis0": (lambda b, x, i, u: b.scatter_add(x, i, u, axis=0),
                          (f64[4, 3], i64[2], f64[2, 3])),
    "scatter_add_axis1": (lambda b, x, i, u: b.scatter_add(x, i, u, axis=1),
                          (f64[2, 4, 3], i64[2, 2], f64[2, 2, 2, 3])),
    "cond": _cond_case(),
    "while": _while_case(),
    "scan": _scan_case(),
    "custom_vjp_call": (custom_samples._sin_times, (f64[3], f64[3], i64[3])),
    "custom_jvp_call": (custom_samples._softplus, (f64[2, 3],)),
}


def _sample(t, rng):
    if t.dtype == "bool":
        return rng.random(t.shape) < 0.5
    if t.dtype in ("i32", "i64"):
        return rng.integers(0, 4, t.shape).astype(t.np_dtype)
    return rng.standard_normal(t.shape)


def _flag_sets(n: int):
    return [flags for flags in itertools.product([False, True], repeat=n) if any(flags)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_batching_rule_matches_a_loop(name):
    build, types = CASES[name]
    fn = make_fn(build, *types, name=name)
    rng = np.random.default_rng(sorted(CASES).index(name))
    for flags in _flag_sets(len(types)):
        args = [np.stack([_sample(t, rng) for _ in range(N)]) if f else _sample(t, rng)
                for t, f in zip(types, flags)]
        batched, out_flags = batch_function(fn, flags, N)
        verify(batched)
        got = interpret(batched, *args)
        per_example = [interpret(fn, *(a[k] if f else a for a, f in zip(args, flags)))
                       for k in range(N)]
        for r, (g, bflag) in enumerate(zip(got, out_flags)):
            want = np.stack([p[r] for p in per_example])
            np.testing.assert_allclose(g if bflag else np.broadcast_to(g, want.shape), want,
                                       rtol=1e-12, err_msg=f"{name} flags={flags} result {r}")


def test_every_primitive_has_a_batching_rule():
    assert set(PRIMITIVES) <= set(batch_rules)


def test_batched_predicate_of_cond_selects_per_element():
    build, types = CASES["cond"]
    fn = make_fn(build, *types)
    batched, flags = batch_function(fn, [True, False, False], N)
    assert flags == [True] and "select" in str(batched) and "cond" not in str(batched)


def test_unbatched_values_are_computed_once():
    fn = make_fn(lambda b, w, x: b.mul(b.exp(w), x), f64[3], f64[3])
    batched, _ = batch_function(fn, [False, True], N)
    exp_op = next(op for op in batched.body if op.prim.name == "exp")
    assert exp_op.results[0].shape == (3,)


def test_forcing_an_unbatched_result_is_an_error():
    fn = make_fn(lambda b, x: b.exp(x), f64[3])
    with pytest.raises(BatchingError, match="required to be unbatched"):
        batch_function(fn, [True], N, out_batched=[False])


# ---- the tracer-level vmap --------------------------------------------------------------

def test_vmap_of_grad_equals_a_loop_of_grads():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 2))
    xs = rng.standard_normal((6, 5, 4))

    def loss(w, x):
        return (gj.tanh(x @ w) ** 2).mean()

    per_example = gj.vmap(gj.grad(loss), in_axes=(None, 0))(w, xs)
    assert per_example.shape == (6, 4, 2)
    loop = np.stack([np.asarray(gj.grad(loss)(w, x)) for x in xs])
    np.testing.assert_allclose(np.asarray(per_example), loop, rtol=1e-12)


def test_vmap_axes_pytrees_and_out_axes():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 3))

    def f(p, s):
        return {"dot": (p["a"] * p["b"]).sum(), "scaled": p["a"] * s}

    out = gj.vmap(f, in_axes=({"a": 0, "b": 1}, None), out_axes={"dot": 0, "scaled": 1})(
        {"a": a, "b": b}, 2.0)
    np.testing.assert_allclose(np.asarray(out["dot"]), (a * b.T).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(out["scaled"]), (a * 2.0).T, rtol=1e-12)


def test_vmap_unbatched_outputs_and_out_axes_none():
    w = np.arange(3.0)
    f = gj.vmap(lambda x, w: (x * w, w.sum()), in_axes=(0, None), out_axes=(0, None))
    scaled, total = f(np.ones((2, 3)), w)
    assert scaled.shape == (2, 3) and total.shape == () and float(total) == 3.0
    with pytest.raises(BatchingError, match="required to be unbatched"):
        gj.vmap(lambda x: x * 2, out_axes=None)(np.ones((2, 3)))


def test_vmap_composes_with_jit_grad_and_itself():
    rng = np.random.default_rng(2)
    m = rng.standard_normal((2, 3, 4))
    v = rng.standard_normal(4)
    mv = gj.vmap(gj.vmap(lambda row, v: (row * v).sum(), in_axes=(0, None)), in_axes=(0, None))
    np.testing.assert_allclose(np.asarray(gj.jit(mv)(m, v)), m @ v, rtol=1e-12)
    g = gj.grad(lambda v: (gj.vmap(lambda row: gj.sin(row @ v))(m[0]) ** 2).sum())(v)
    eps, fd = 1e-6, []
    for i in range(4):
        d = np.eye(4)[i] * eps
        fd.append((np.sum(np.sin(m[0] @ (v + d)) ** 2) - np.sum(np.sin(m[0] @ (v - d)) ** 2))
                  / (2 * eps))
    np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-6, atol=1e-9)


def test_vmap_errors():
    with pytest.raises(ValueError, match="inconsistent sizes"):
        gj.vmap(lambda x, y: x + y)(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="at least one input"):
        gj.vmap(lambda x: x, in_axes=None)(np.ones(3))
    with pytest.raises(ValueError, match="out of range"):
        gj.vmap(lambda x: x, in_axes=2)(np.ones((3, 2)))


# ---- vmap of grad ----------------------------------------------------------------------------

@pytest.mark.parametrize("in_axes", [(None, 0), (0, None), (0, 0)])
def test_vmap_of_grad_with_in_axes_tuples(in_axes):
    rng = np.random.default_rng(99)
    w = rng.standard_normal((5, 3)) if in_axes[0] == 0 else rng.standard_normal(3)
    xs = rng.standard_normal((5, 3)) if in_axes[1] == 0 else rng.standard_normal(3)

    def loss(w, x):
        return gj.tanh(x @ w).sum() * (w * w).sum()

    got = np.asarray(gj.vmap(gj.grad(loss), in_axes=in_axes)(w, xs))
    for i in range(5):
        wi = w[i] if in_axes[0] == 0 else w
        xi = xs[i] if in_axes[1] == 0 else xs
        t = np.tanh(xi @ wi)
        want = (1 - t ** 2) * xi * (wi * wi).sum() + t * 2 * wi
        np.testing.assert_allclose(got[i], want, rtol=1e-10)
