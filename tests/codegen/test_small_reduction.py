"""A reduction of a few elements per output, its operand's first and last loop axes kept (a
tiling pool's window), is computed per output element with its loop written out
(codegen.fusion.small_reduction, elemental's unrolled reduce) instead of accumulating in
memory over its operand's space. Checked: the plan takes it and refuses the other cases, the
bits equal those of the memory accumulation (NaN, infinities and signed zeros included;
hypothesis over shapes, kinds and dtypes), the reference interpreter agrees, bounds-check
mode agrees, and max/avg pooling through the PyTorch-style API still matches NumPy.
"""
import gc

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradjit as gj
import runtime
from codegen import elemental, fusion
from codegen.fusion import LoopNest, plan_function
from ir.interpret import interpret
from runtime.engine import create_execution_engine
from tests.prim_samples import T, make_fn

NP = {"f32": np.float32, "f64": np.float64, "i32": np.int32}
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0]
KINDS = {"sum": "reduce_sum", "max": "reduce_max", "min": "reduce_min"}


def _pool_fn(kind: str, dtype: str, lead: tuple, out: tuple, window: tuple, perm: str):
    """relu-free pool of x (lead + out*window): tiles laid out as the tracer's `_tiles`
    ("kernel_first": lead, K, O, the reduced axes in the middle) or kept in reading order
    with the window axes innermost ("window_last")."""
    nd = len(out)
    shape = lead + tuple(o * k for o, k in zip(out, window))
    tiled = lead + tuple(d for o, k in zip(out, window) for d in (o, k))
    n = len(lead)
    if perm == "kernel_first":
        order = tuple(range(n)) + tuple(n + 2 * i + 1 for i in range(nd)) \
            + tuple(n + 2 * i for i in range(nd))
        axes = tuple(range(n, n + nd))
    else:
        order = tuple(range(n)) + tuple(n + 2 * i for i in range(nd)) \
            + tuple(n + 2 * i + 1 for i in range(nd))
        axes = tuple(range(n + nd, n + 2 * nd))

    def body(b, x, bias):
        y = b.add(x, b.broadcast_in_dim(bias, dims=(len(shape) - 1,), shape=shape))
        t = b.transpose(b.reshape(y, shape=tiled), perm=order)
        return [getattr(b, KINDS[kind])(t, axes=axes)]
    return make_fn("pool", [T(dtype, shape), T(dtype, shape[-1:])], body)


def _reduce_roots(fn) -> list:
    """(space, root kind) of every loop-nest root computing a reduction result."""
    plan = plan_function(fn)
    reduced = {op.results[0] for op in fn.body if op.prim.name in KINDS.values()}
    return [(step.space, root.kind) for step in plan.steps if isinstance(step, LoopNest)
            for root in step.roots if root.value in reduced]


def _run(fn, args, small: bool, bounds_check: bool = False):
    """fn's outputs and LLVM text built with or without the small-reduction path. The
    executable is freed before returning: a second build of the same symbol while the first
    lives would reuse its machine code (runtime.engine: compile's reuse)."""
    with pytest.MonkeyPatch.context() as m:
        if not small:
            m.setattr(fusion, "small_reduction", lambda op: False)
        exe = runtime.build_executable(fn, bounds_check=bounds_check)
    entry, text = exe.kernel.entry, exe.kernel.llvm_ir
    outs = exe.run([np.ascontiguousarray(a) for a in args])
    del exe
    gc.collect()
    assert entry not in create_execution_engine().addresses
    return outs, text


def _sample(rng, dtype: str, shape: tuple, special: bool):
    if dtype.startswith("i"):
        return rng.integers(-1000, 1000, shape).astype(NP[dtype])
    x = rng.standard_normal(shape).astype(NP[dtype])
    if special:
        flat = x.reshape(-1)
        at = rng.choice(flat.size, size=min(flat.size, 8), replace=False)
        flat[at] = rng.choice(SPECIAL, size=at.size)
    return x


def test_a_tiling_pool_is_computed_over_its_output():
    fn = _pool_fn("max", "f32", (4, 3), (8, 8), (2, 2), "kernel_first")
    assert _reduce_roots(fn) == [((4, 3, 8, 8), "store")]
    with pytest.MonkeyPatch.context() as m:
        m.setattr(fusion, "small_reduction", lambda op: False)
        assert _reduce_roots(fn) == [((4, 3, 2, 2, 8, 8), "reduce")]


@pytest.mark.parametrize("shape, axes", [
    ((4, 3, 40), (1,)),          # 3 per output, the last axis kept: taken
    ((4, 40), (0,)),             # the first loop axis reduced (threads may split there)
    ((5, 6, 4), (2,)),           # the last loop axis reduced: a register accumulator
    ((2, 17, 40), (1,)),         # 17 per output: more than UNROLLED_REDUCTION
    ((1, 8, 1, 40), (1,)),       # extent-1 axes are not loops: axis 1 is the first loop
])
def test_which_reductions_are_taken(shape, axes):
    fn = make_fn("r", [T("f32", shape)], lambda b, x: [b.reduce_sum(x, axes=axes)])
    taken = shape == (4, 3, 40)
    out = tuple(n for a, n in enumerate(shape) if a not in axes)
    (root,) = _reduce_roots(fn)
    assert root == ((out, "store") if taken else (shape, "reduce"))
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    got, _ = _run(fn, [x], True)
    np.testing.assert_allclose(got[0], x.sum(axis=axes), rtol=1e-5, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(list(KINDS)), dtype=st.sampled_from(list(NP)),
       lead=st.sampled_from([(2,), (3, 2), (2, 1, 3)]),
       out=st.lists(st.integers(1, 9), min_size=1, max_size=2).map(tuple),
       window=st.sampled_from([(2,), (3,), (4,), (2, 2), (3, 2), (1, 3), (4, 4)]),
       perm=st.sampled_from(["kernel_first", "window_last"]), special=st.booleans(),
       seed=st.integers(0, 2**16))
def test_bits_equal_the_memory_accumulation(kind, dtype, lead, out, window, perm, special,
                                            seed):
    window = window[:len(out)] + (1,) * (len(out) - len(window))
    fn = _pool_fn(kind, dtype, lead, out, window, perm)
    rng = np.random.default_rng(seed)
    args = [_sample(rng, dtype, p.type.shape, special) for p in fn.params]
    fast, fast_ir = _run(fn, args, True)
    plain, plain_ir = _run(fn, args, False)
    checked, _ = _run(fn, args, True, bounds_check=True)
    assert fast[0].tobytes() == plain[0].tobytes() == checked[0].tobytes()
    ref = np.asarray(interpret(fn, *args)[0])
    if kind == "sum" and dtype != "i32":
        np.testing.assert_allclose(fast[0], ref, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(fast[0], ref)      # NaN in the same places
    (op,) = [op for op in fn.body if op.prim.name == KINDS[kind]]
    taken = fusion.small_reduction(op)
    assert (fast_ir != plain_ir) == taken
    if perm == "kernel_first" and min(out) > 1 and np.prod(window) > 1:
        assert taken                     # window_last: the window innermost, never taken


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_signed_zeros_and_nan_payloads_of_a_max_window(dtype):
    """Windows holding only zeros of both signs, or a NaN beside -inf: the unrolled combine
    gives the memory accumulation's bits (max(-0, +0) = +0; NaN propagates)."""
    fn = _pool_fn("max", dtype, (2,), (4, 4), (2, 2), "kernel_first")
    x = np.zeros((2, 8, 8), NP[dtype])
    x[0, ::2, ::2] = -0.0
    x[1, 0, 0], x[1, 0, 1], x[1, 1, 1] = np.nan, -np.inf, np.inf
    bias = np.zeros(8, NP[dtype])
    bias[3] = -0.0
    fast, _ = _run(fn, [x, bias], True)
    plain, _ = _run(fn, [x, bias], False)
    assert fast[0].tobytes() == plain[0].tobytes()
    assert np.isnan(fast[0][1, 0, 0]) and not np.signbit(fast[0][0, 0, 0])


def test_the_unrolled_inline_reduce_gives_the_loops_bits():
    """elemental's reduce written out (UNROLLED_REDUCTION) against its loop (limit 0)."""
    fn = _pool_fn("sum", "f32", (3,), (5, 6), (3, 2), "kernel_first")
    rng = np.random.default_rng(7)
    args = [_sample(rng, "f32", p.type.shape, True) for p in fn.params]
    fast, _ = _run(fn, args, True)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(elemental, "UNROLLED_REDUCTION", 0)
        looped, _ = _run(fn, args, True)
    assert fast[0].tobytes() == looped[0].tobytes()


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_pooling_through_the_api_matches_numpy(pool, gradjit_env):
    """max_pool2d / avg_pool2d with windows that tile the input (the tracer's `_tiles`), and
    the input gradient, against NumPy: ties share the max's gradient evenly."""
    gradjit_env("GRADJIT_DISK_CACHE", "0")      # compiled here, so the counter sees it
    runtime.clear_cache()
    before = fusion.STATS["small_reductions"]
    rng = np.random.default_rng(11)
    x = np.round(rng.standard_normal((2, 3, 8, 6)) * 2) / 2        # ties happen
    windows = x.reshape(2, 3, 4, 2, 3, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 4, 3, 4)
    t = gj.tensor(x, requires_grad=True)
    f = gj.nn.functional.max_pool2d if pool == "max" else gj.nn.functional.avg_pool2d
    y = f(t, 2)
    want = windows.max(-1) if pool == "max" else windows.mean(-1)
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-12)
    (y * gj.tensor(np.arange(want.size, dtype=np.float64).reshape(want.shape))).sum().backward()
    w = np.arange(want.size, dtype=np.float64).reshape(want.shape)
    if pool == "max":
        hit = windows == windows.max(-1, keepdims=True)
        share = hit * (w / hit.sum(-1))[..., None]
    else:
        share = np.broadcast_to((w / 4)[..., None], windows.shape)
    grad = share.reshape(2, 3, 4, 3, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(x.shape)
    np.testing.assert_allclose(t.grad.numpy(), grad, rtol=1e-12)
    assert fusion.STATS["small_reductions"] > before
