"""A light expression (a few cheap ops reading a few buffers, no product) used by several
consumers is recomputed in each instead of stored (codegen.fusion._light). Checked: the
CNN's max pool with its gradient stores no window-order copy, heavier expressions (a
transcendental, a product, too many ops or buffers) are still stored, and the results are
bitwise those of the plan that stores them (NaN, infinities and signed zeros included;
hypothesis over shapes and expression DAGs), the reference interpreter agrees, and
bounds-check mode agrees.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from codegen import fusion
from codegen.fusion import LoopNest, plan_function
from ir.autodiff import grad
from ir.interpret import interpret
from ir.passes import optimize
from tests.codegen.plan_run import pool_step, run_freed, sprinkle_specials
from tests.prim_samples import T, make_fn


def _stored(fn) -> set:
    """The values some loop nest of fn's plan writes to a buffer."""
    plan = plan_function(fn)
    return {root.value for step in plan.steps if isinstance(step, LoopNest)
            for root in step.roots}


def _run(fn, args, light: bool, bounds_check: bool = False):
    """fn's outputs built with or without the light rule (plan_run.run_freed)."""
    patches = () if light else ((fusion, "_light", lambda *a: None),)
    return run_freed(fn, args, patches, bounds_check)


def _sample(rng, t, special: bool):
    x = rng.standard_normal(t.shape).astype(t.np_dtype)
    x = np.round(x * 2) / 2                         # ties, as a relu's zeros make
    if special and x.size:
        sprinkle_specials(rng, x)
    return x.astype(t.np_dtype)


def _check_bits(fn, seed: int, special: bool):
    rng = np.random.default_rng(seed)
    args = [_sample(rng, p.type, special) for p in fn.params]
    light = _run(fn, args, True)
    stored = _run(fn, args, False)
    checked = _run(fn, args, True, bounds_check=True)
    want = interpret(fn, *args)
    # the interpreter sums in another order and takes NumPy's exp: close there, else equal
    inexact = any(op.prim.name in ("reduce_sum", "exp") for op in fn.body)
    for a, b, c, w in zip(light, stored, checked, want):
        assert a.tobytes() == b.tobytes() == c.tobytes()
        if inexact:
            np.testing.assert_allclose(a, np.asarray(w), rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(a, np.asarray(w))    # NaN in the same places


def test_the_pool_step_stores_no_window_order_copy():
    fn = pool_step("f32", 2, 3, 4)
    win = (2, 3, 2, 2, 4, 4)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(fusion, "_light", lambda *a: None)
        before = {v.shape for v in _stored(fn)}
    assert win in before                        # relu in window order, the hits: stored
    assert win not in {v.shape for v in _stored(fn)}


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("special", [False, True])
def test_the_pool_step_keeps_its_bits(dtype, special):
    _check_bits(pool_step(dtype, 2, 3, 4), seed=3, special=special)


def test_signed_zeros_ties_and_nan_in_a_window():
    fn = pool_step("f32", 1, 2, 2)
    conv = np.zeros((1, 2, 4, 4), np.float32)
    conv[0, 0, 0, 0], conv[0, 0, 0, 1] = -0.0, 0.0            # a tie at zero, both signs
    conv[0, 1, 0, 0], conv[0, 1, 1, 1] = np.nan, np.inf
    conv[0, 1, 2, 2], conv[0, 1, 2, 3] = -np.inf, 1.5
    bias = np.array([-0.0, 0.0], np.float32)
    g = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2) - 3
    light = _run(fn, [conv, bias, g], True)
    stored = _run(fn, [conv, bias, g], False)
    for a, b in zip(light, stored):
        assert a.tobytes() == b.tobytes()
    assert np.isnan(light[0][0, 1, 0, 0])


def _light_values(fn) -> set:
    return {op.results[0] for op in fn.body if op.results[0] not in _stored(fn)}


@pytest.mark.parametrize("heavy", ["exp", "mul", "ops", "reads"])
def test_heavier_expressions_used_twice_are_still_stored(heavy):
    """A transcendental, a product (inlined into an add it could become an FMA: other
    bits), more than LIGHT_OPS ops or more than LIGHT_READS buffers: stored as before."""
    shape = (8, 16)

    def body(b, x, y, z, w):
        if heavy == "exp":
            v = b.exp(x)
        elif heavy == "mul":
            v = b.select(b.lt(x, y), b.mul(x, y), b.sub(z, x))
        elif heavy == "ops":
            v = x
            for _ in range(fusion.LIGHT_OPS + 1):
                v = b.sub(b.neg(v), y)
        else:
            v = b.select(b.lt(x, y), b.add(z, w), b.sub(x, w))
        # the second user reads v transposed: not in v's nest, so a stored v stays stored
        return [b.reduce_sum(v, axes=(1,)), b.transpose(b.add(v, w), perm=(1, 0))]
    fn = make_fn("heavy", [T("f32", shape)] * 4, body)
    (total,) = [op for op in fn.body if op.prim.name == "reduce_sum"]
    assert total.inputs[0] in _stored(fn)
    _check_bits(fn, seed=1, special=True)


def test_a_light_expression_used_twice_is_recomputed():
    def body(b, x, y):
        v = b.select(b.lt(x, y), b.neg(x), b.sub(y, x))
        return [b.reduce_max(v, axes=(1,)), b.transpose(b.add(v, y), perm=(1, 0))]
    fn = make_fn("light", [T("f32", (8, 16))] * 2, body)
    (select,) = [op.results[0] for op in fn.body if op.prim.name == "select"]
    assert select not in _stored(fn)
    _check_bits(fn, seed=2, special=True)


def test_the_gradient_of_a_relu_pool_chain_keeps_its_bits():
    """A whole derivative program (the optimiser's IR, as a compiled step is built)."""
    def body(b, x, bias):
        y = b.add(x, b.broadcast_in_dim(bias, dims=(1,), shape=(4, 6, 8)))
        y = b.max(y, b.const(0.0, "f64", (4, 6, 8)))
        t = b.transpose(b.reshape(y, shape=(4, 6, 4, 2)), perm=(0, 1, 3, 2))
        return [b.reduce_sum(b.integer_pow(b.reduce_max(t, axes=(2,)), n=2), axes=(0, 1, 2))]
    g = optimize(grad(make_fn("relu_pool", [T("f64", (4, 6, 8)), T("f64", (6,))], body)))
    _check_bits(g, seed=5, special=False)


_UNARY = ["neg", "abs", "relu", "sign"]
_BINARY = ["add", "sub", "max", "min", "where_lt", "where_eq"]


def _apply(b, name, args, shape):
    x = args[0]
    if name == "relu":
        return b.max(x, b.const(0.0, "f32", shape))
    if name == "where_lt":
        return b.select(b.lt(args[0], args[1]), args[0], args[1])
    if name == "where_eq":
        return b.select(b.eq(args[0], args[1]), args[1], b.neg(args[0]))
    if name in _UNARY:
        return getattr(b, name)(x)
    return getattr(b, name)(args[0], args[1])


@settings(max_examples=30, deadline=None)
@given(shape=st.sampled_from([(3, 5), (2, 4, 6), (17,), (2, 33)]),
       steps=st.lists(st.tuples(st.sampled_from(_UNARY + _BINARY), st.integers(0, 99),
                                st.integers(0, 99)), min_size=1, max_size=10),
       users=st.lists(st.sampled_from(["sum", "max", "add", "sub"]), min_size=2, max_size=4),
       seed=st.integers(0, 2**16), special=st.booleans())
def test_random_light_dags_keep_their_bits(shape, steps, users, seed, special):
    """Random DAGs of cheap ops over a few inputs, the last value read by several users
    (reductions over the last axis and elementwise ops): same bits with and without the
    light rule, as the interpreter's."""
    def body(b, *xs):
        vals = list(xs)
        for name, i, j in steps:
            args = [vals[i % len(vals)], vals[j % len(vals)]]
            vals.append(_apply(b, name, args, shape))
        v = vals[-1]
        outs = []
        for k, user in enumerate(users):
            other = xs[k % len(xs)]
            if user in ("sum", "max"):
                outs.append(getattr(b, f"reduce_{user}")(v, axes=(len(shape) - 1,)))
            else:
                outs.append(getattr(b, user)(v, other))
        return outs
    fn = make_fn("dag", [T("f32", shape)] * 3, body)
    _check_bits(fn, seed, special)
