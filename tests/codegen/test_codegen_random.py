"""Random fused programs (hypothesis): chains of elementwise, broadcast, layout and reduction
ops with several results, compiled == interpreted.

Every op keeps values bounded (squashing unary ops, additive growth only), so f32 and f64
compare at tight tolerances without overflow deciding the outcome.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import runtime
from ir.interpret import interpret
from tests.prim_samples import T, make_fn

SHAPE = (3, 4)
UNARY = ("tanh", "sin", "logistic", "neg", "abs", "exp_tanh", "log1p_abs", "sqrt_abs")
BINARY = ("add", "sub", "max", "min", "mul_tanh", "div_safe", "select_gt")
REDUCE = (("reduce_sum", (0,)), ("reduce_sum", (1,)), ("reduce_max", (1,)),
          ("reduce_min", (0,)), ("reduce_sum", (0, 1)))
LAYOUT = ("transpose", "reshape", "slice_pad", "concat")


def _unary(b, name, x):
    if name == "exp_tanh":
        return b.exp(b.tanh(x))
    if name == "log1p_abs":
        return b.log1p(b.abs(x))
    if name == "sqrt_abs":
        return b.sqrt(b.abs(x))
    return b.emit(name, x)


def _binary(b, name, x, y):
    if name == "mul_tanh":
        return b.mul(x, b.tanh(y))
    if name == "div_safe":
        return b.div(x, b.add(b.abs(y), b.const(1.0, x.dtype, x.shape)))
    if name == "select_gt":
        return b.select(b.gt(x, y), x, b.neg(y))
    return b.emit(name, x, y)


def _reduce(b, kind, axes, x):
    r = b.emit(kind, x, axes=axes)
    kept = tuple(a for a in range(2) if a not in axes)
    return r, b.broadcast_in_dim(r, shape=SHAPE, dims=kept)


def _layout(b, name, x):
    if name == "transpose":
        return b.transpose(b.tanh(b.transpose(x, perm=(1, 0))), perm=(1, 0))
    if name == "reshape":
        return b.reshape(b.sin(b.reshape(x, shape=(12,))), shape=SHAPE)
    if name == "slice_pad":
        part = b.slice(x, start=(1, 0), limit=(3, 4), stride=(1, 1))
        return b.pad(b.neg(part), lo=(1, 0), hi=(0, 0), interior=(0, 0))
    top = b.slice(x, start=(0, 0), limit=(1, 4), stride=(1, 1))
    return b.concatenate(b.abs(top), b.slice(x, start=(1, 0), limit=(3, 4), stride=(1, 1)),
                         axis=0)


def _broadcast(b, v):
    dims = {(4,): (1,), (3,): (0,), (): ()}.get(v.shape)
    return v if dims is None else b.broadcast_in_dim(v, shape=SHAPE, dims=dims)


step = st.one_of(
    st.tuples(st.just("unary"), st.sampled_from(UNARY), st.integers(0, 99)),
    st.tuples(st.just("binary"), st.sampled_from(BINARY), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("reduce"), st.sampled_from(REDUCE), st.integers(0, 99)),
    st.tuples(st.just("layout"), st.sampled_from(LAYOUT), st.integers(0, 99)))


def build(dtype, steps, picks):
    types = [T(dtype, SHAPE), T(dtype, SHAPE), T(dtype, (4,)), T(dtype, (3,)), T(dtype, ())]

    def body(b, *params):
        pool, extra = [_broadcast(b, p) for p in params], []
        for s in steps:
            pick = lambda k: pool[k % len(pool)]     # noqa: E731
            if s[0] == "unary":
                pool.append(_unary(b, s[1], pick(s[2])))
            elif s[0] == "binary":
                pool.append(_binary(b, s[1], pick(s[2]), pick(s[3])))
            elif s[0] == "reduce":
                small, full = _reduce(b, *s[1], pick(s[2]))
                extra.append(small)
                pool.append(full)
            else:
                pool.append(_layout(b, s[1], pick(s[2])))
        chosen = [pool[k % len(pool)] for k in picks]
        return [pool[-1]] + chosen + extra[:1]
    return make_fn("random", types, body)


@settings(max_examples=30, deadline=None)
@given(dtype=st.sampled_from(["f32", "f64"]), steps=st.lists(step, min_size=1, max_size=8),
       picks=st.lists(st.integers(0, 99), max_size=2), seed=st.integers(0, 2**16))
def test_random_fused_program_matches_interpreter(dtype, steps, picks, seed):
    fn = build(dtype, steps, picks)
    rng = np.random.default_rng(seed)
    args = [rng.uniform(-2, 2, p.shape).astype(p.type.np_dtype) for p in fn.params]
    got, want = runtime.compile(fn)(*args), interpret(fn, *args)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == "f32" else {"rtol": 1e-10, "atol": 1e-12}
    for k, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, err_msg=f"result {k}\n{fn}", **tol)
