"""The hot path of a cached call (CallPlan) and the cheap structural key of the pipeline:
same results as the full path, and every case the plan cannot serve falls back to it."""
from __future__ import annotations

import numpy as np
import pytest

import gradjit as gj
import runtime
from ir import Builder, Function, TensorType, Value
from runtime.executable import SMALL_ELEMENTS, _is_small
from tracer import pipeline
from tracer.staging import CallPlan, fast_key


def f(x, w):
    return (gj.tanh(x * w) ** 2).sum()


def fresh():
    return gj.jit(gj.value_and_grad(f, argnums=(0, 1)))


def slow(staged, *args):
    """The full path's answer: a new Staged object has no plan for its first call."""
    g = gj.jit(gj.value_and_grad(staged.__wrapped__, argnums=(0, 1)))
    return g(*args)


def flat(result) -> list:
    value, grads = result
    return [np.asarray(value)] + [np.asarray(g) for g in grads]


def same(a, b):
    for x, y in zip(flat(a), flat(b)):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()


@pytest.fixture
def xw():
    rng = np.random.default_rng(0)
    return rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)


def test_second_call_uses_a_plan_and_gives_the_same_results(xw):
    vg = fresh()
    first = vg(*xw)
    assert len(vg.plans) == 1 and vg.trace_count == 1
    second = vg(*xw)
    same(first, second)
    same(second, slow(vg, *xw))
    value, grads = second
    assert isinstance(value, gj.Tensor) and all(isinstance(g, gj.Tensor) for g in grads)
    assert not np.shares_memory(np.asarray(first[1][0]), np.asarray(second[1][0]))
    assert not value._expr.data.flags.writeable          # results are never written later


def test_numpy_scalars_and_tensors_take_the_fast_path():
    vg = gj.jit(gj.value_and_grad(lambda x: 3 * x ** 2))
    for arg in (np.float32(1.5), gj.tensor(np.float32(1.5))):
        want = vg(arg)
        assert fast_key((arg,)) in vg.plans
        same((want[0], (want[1],)), (vg(arg)[0], (vg(arg)[1],)))
        assert float(vg(arg)[1]) == pytest.approx(9.0)


def test_new_dtype_or_shape_is_a_new_plan(xw):
    vg = fresh()
    vg(*xw)
    vg(*(a.astype(np.float64) for a in xw))
    vg(xw[0][:4], xw[1][:4])
    assert vg.trace_count == 3 and len(vg.plans) == 3


def test_arguments_the_plan_cannot_take_go_the_full_way(xw):
    vg = fresh()
    vg(*xw)
    strided = (np.repeat(xw[0], 2)[::2], np.repeat(xw[1], 2)[::2])     # not contiguous
    same(vg(*strided), vg(*xw))
    pending = gj.tensor(xw[0]) * 1.0                                  # not computed yet
    same(vg(pending, xw[1]), vg(*xw))
    g = gj.jit(f)
    assert float(g(x=xw[0], w=xw[1])) == float(g(x=xw[0], w=xw[1])) == float(g(*xw))
    assert len(g.plans) == 1                                          # keywords: none


def test_pytree_arguments_have_no_fast_key(xw):
    g = gj.jit(lambda p: p["a"] * p["b"])
    for _ in range(2):
        np.testing.assert_array_equal(np.asarray(g({"a": xw[0], "b": xw[1]})), xw[0] * xw[1])
    assert not g.plans


def test_environment_switches_are_honoured_on_every_call(xw, monkeypatch, caplog, gradjit_env):
    vg = fresh()
    want = vg(*xw)
    plan = next(iter(vg.plans.values()))

    def refuse(*args):
        raise AssertionError("the compiled code must not run")
    monkeypatch.setattr(plan, "exe", refuse)
    gradjit_env("GRADJIT_BACKEND", "interpret")
    got = vg(*xw)
    for a, b in zip(flat(got), flat(want)):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    gradjit_env("GRADJIT_BACKEND", "native")
    gradjit_env("GRADJIT_LOG", "1")
    with caplog.at_level("INFO", logger="gradjit"):
        vg(*xw)                                   # the full path, which logs the hit
    assert "cache hit" in caplog.text


def test_closures_over_arrays_are_fed_on_the_fast_path(xw):
    scale = np.full(6, 2.0, np.float32)
    vg = gj.jit(gj.value_and_grad(lambda x: (x * scale).sum()))
    vg(xw[0])
    np.testing.assert_array_equal(np.asarray(vg(xw[0])[1]), scale)


def test_static_argnums_never_use_a_plan(xw):
    g = gj.jit(lambda x, k: x * k, static_argnums=(1,))
    np.testing.assert_allclose(np.asarray(g(xw[0], 2)), xw[0] * 2)
    np.testing.assert_allclose(np.asarray(g(xw[0], 3)), xw[0] * 3)
    assert not g.plans


def test_fast_key_kinds():
    a = np.zeros((2, 3), np.float32)
    assert fast_key((a,)) == fast_key((np.ones((2, 3), np.float32),))
    assert fast_key((a,)) != fast_key((a.astype(np.float64),))
    assert fast_key((np.float32(1),)) != fast_key((np.float64(1),))
    assert fast_key((1.0,)) is None and fast_key(([1.0],)) is None
    t = gj.tensor(a)
    assert fast_key((t,)) == (t._expr.value.type,)
    assert fast_key((gj.nn.Parameter(t),)) not in (None, fast_key((t,)))
    # Python scalars, for a plain jit: by type and exact value (-0.0 is not 0.0, 1 not True)
    keys = [fast_key((v,), statics=True) for v in (1.0, -0.0, 0.0, 1, True, 2 ** 80)]
    assert None not in keys and len(set(keys)) == len(keys)
    assert fast_key((1.0,), statics=True) == fast_key((float("1"),), statics=True)


def test_call_plan_returns_none_for_pending_tensors(xw):
    vg = fresh()
    vg(*xw)
    plan: CallPlan = next(iter(vg.plans.values()))
    pending = gj.tensor(xw[0]) + 0.0
    assert plan((pending, xw[1])) is None


# ---- the pipeline's compact structural key ----------------------------------------------

def const_fn(value, dtype="f32") -> Function:
    """x * constant(value): functions that differ only in a constant's spelling."""
    b = Builder()
    x = Value(TensorType(dtype, (3,)), "x")
    out = b.mul(x, b.const(value, dtype, (3,)))
    return Function("k", [x], list(b.ops), [out])


def test_compact_keys_are_equal_exactly_when_the_printed_texts_are():
    fns = [const_fn(v) for v in (0.0, -0.0, 1.0, 2.0, 2.0, float("inf"))]
    fns += [const_fn(v, "i32") for v in (1, True, 2)] + [const_fn(1.0, "f64")]
    for a in fns:
        for b in fns:
            same_text = pipeline.structural_key(a) == pipeline.structural_key(b)
            assert (pipeline.compact_key(a) == pipeline.compact_key(b)) == same_text


def test_compile_function_reuses_executables_across_spellings():
    pipeline.clear_cache()
    first = pipeline.compile_function(const_fn(3.0))
    assert pipeline.compile_function(const_fn(3.0)) is first
    other = pipeline.compile_function(const_fn(-0.0))
    assert other is not first
    x = np.array([1.0, -2.0, 0.0], np.float32)
    np.testing.assert_array_equal(first(x)[0], x * 3)
    assert np.signbit(other(x)[0]).tolist() == np.signbit(x * -0.0).tolist()


# ---- executables ------------------------------------------------------------------------

def test_small_kernels_keep_the_gil_and_large_ones_release_it():
    small = const_fn(2.0)
    assert _is_small(small, 64)
    b = Builder()
    x = Value(TensorType("f32", (SMALL_ELEMENTS,)), "x")
    y = b.exp(x)
    assert not _is_small(Function("big", [x], list(b.ops), [y]), 64)
    exe = runtime.compile(small)
    np.testing.assert_array_equal(exe(np.ones(3, np.float32))[0], np.full(3, 2.0, np.float32))
