"""A BLAS product whose operand is a reshape reads the reshape's source buffer: no copy.

codegen.dots.read_reshape_sources: a reshape keeps the C-order layout, so the same gemm
plan applies to the source's buffer. Checked by counting the plan's loop nests and by
bitwise equality with the same product of the operand handed in already reshaped.
"""
import numpy as np
from hypothesis import given, settings, strategies as st

import runtime
from codegen.fusion import KernelStep, LoopNest, plan_function
from ir.interpret import interpret
from tests.prim_samples import T, make_fn


def _dot(b, x, w, side):
    """x @ w contracting x's last axis (side 0) or x^T @ w contracting x's first axis."""
    contract = ((1,), (0,)) if side == 0 else ((0,), (0,))
    return b.dot_general(x, w, contract=contract, batch=((), ()))


def test_pool_then_flatten_then_linear_stores_no_copy():
    """reduce_max -> reshape -> dot: the reduction's buffer is the gemm's operand."""
    def body(b, x, w):
        pooled = b.reduce_max(x, axes=(3,))                       # (32, 16, 8)
        flat = b.reshape(pooled, shape=(32, 128))
        return [_dot(b, flat, w, 0)]
    fn = make_fn("pool_linear", [T("f32", (32, 16, 8, 2)), T("f32", (128, 24))], body)
    plan = plan_function(fn, runtime.externals())
    (gemm,) = [s for s in plan.steps if isinstance(s, KernelStep)]
    assert gemm.op.prim.name == "gemm"
    assert plan.producers[gemm.op.inputs[0]].prim.name == "reduce_max"
    stored = [r.value for s in plan.steps if isinstance(s, LoopNest) for r in s.roots]
    assert all(plan.producers[v].prim.name != "reshape" for v in stored)
    assert len([s for s in plan.steps if isinstance(s, LoopNest)]) == 1   # the reduction
    rng = np.random.default_rng(0)
    x, w = (rng.standard_normal(p.shape).astype(np.float32) for p in fn.params)
    (out,) = runtime.compile(fn)(x, w)
    (ref,) = interpret(fn, x, w)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(a=st.integers(2, 12), m=st.integers(2, 6), k=st.integers(8, 40),
       n=st.integers(16, 40), side=st.sampled_from([0, 1]), merge=st.booleans(),
       dtype=st.sampled_from(["f32", "f64"]))
def test_reshaped_operand_gives_the_bits_of_the_reshaped_array(a, m, k, n, side, merge,
                                                               dtype):
    """exp(x) reshaped (axes merged or split) as either side of a product: bitwise the
    product of exp(x) reshaped by NumPy and passed in as a parameter."""
    rows = a * m
    flat = (rows, k) if side == 0 else (k, rows)
    src = ((a, m, k) if side == 0 else (k, a, m)) if merge else (rows * k,)
    wt = T(dtype, (k, n) if side == 0 else (k, n))

    def body(b, x, w):
        e = b.exp(x)
        return [e, _dot(b, b.reshape(e, shape=flat), w, side)]
    fn = make_fn("reshaped", [T(dtype, src), wt], body)

    def direct(b, p, w):
        return [_dot(b, p, w, side)]
    ref_fn = make_fn("direct", [T(dtype, flat), wt], direct)
    rng = np.random.default_rng(a * 1000 + k)
    npd = np.float32 if dtype == "f32" else np.float64
    x = rng.uniform(-1, 1, src).astype(npd)
    w = rng.uniform(-1, 1, wt.shape).astype(npd)
    e, out = runtime.compile(fn)(x, w)
    (ref,) = runtime.compile(ref_fn)(e.reshape(flat), w)
    assert out.tobytes() == ref.tobytes()
    plan = plan_function(fn, runtime.externals())
    gemms = [s for s in plan.steps if isinstance(s, KernelStep) and s.op.prim.name == "gemm"]
    if gemms:
        assert all(plan.producers[v].prim.name != "reshape" for v in gemms[0].op.inputs
                   if v in plan.producers)
