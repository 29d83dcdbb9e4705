"""The tiny call's fast path (tracer/call_fast.py, runtime/fastcall.py): which calls take it
(counted, never timed), that every argument its guards refuse goes the general way with the
same answer or the same error, that it equals the slow path and the interpreter, and that
no output array is ever handed out twice."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradjit as gj
from runtime import config, threads
from runtime.executable import Executable
from tracer.call_plan import unflattener
from tracer.pytree import tree_flatten
from tracer.staging import Staged


class Paths:
    """Counts, per call of a warmed jitted function, which way it went: `fast` (the builtin
    trampoline of the generated call), `run` (Executable.run: the plan's general path and
    the slow path) and `slow` (the signature machinery)."""

    def __init__(self, monkeypatch):
        self.fast = self.run = self.slow = 0
        real_run, real_sig = Executable.run, Staged.signature

        def run(exe, arrays):
            self.run += 1
            return real_run(exe, arrays)

        def signature(staged, args, kwargs):
            self.slow += 1
            return real_sig(staged, args, kwargs)
        monkeypatch.setattr(Executable, "run", run)
        monkeypatch.setattr(Staged, "signature", signature)

    def watch(self, plan):
        """Counts the fast calls of plan (wraps the builtin its generated code calls), from
        zero on."""
        self.fast = self.run = self.slow = 0
        env = plan.call_fast.__globals__
        real = env["fast"]

        def fast(*buffers):
            self.fast += 1
            return real(*buffers)
        env["fast"] = fast

    def counts(self) -> tuple:
        return self.fast, self.run, self.slow


@pytest.fixture
def paths(monkeypatch):
    return Paths(monkeypatch)


def warmed(fun, *args):
    """jit(fun) called twice on args (trace, then plan): its plan for them has a fast call."""
    g = gj.jit(fun)
    g(*args)
    g(*args)
    plan = g.quick
    assert plan is not None and plan.fast is not None
    return g, plan


def values(result) -> list:
    return [np.array(x._expr.data) for x in tree_flatten(result)[0]]


def assert_same(a, b):
    for x, y in zip(values(a), values(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


def fresh_answer(fun, *args):
    """The slow path's answer (a new jitted function has no plan)."""
    return gj.jit(fun)(*args)


def poly(x, w):
    return x * w + 1, (x - w) * 2


X = np.arange(6, dtype=np.float32).reshape(2, 3)
W = np.full((2, 3), 0.5, np.float32)


def test_a_warmed_call_takes_the_fast_path_and_equals_the_slow_one(paths):
    g, plan = warmed(poly, X, W)
    paths.watch(plan)
    out = g(X, W)
    assert paths.counts() == (1, 0, 0)
    assert_same(out, fresh_answer(poly, X, W))
    assert isinstance(out, tuple) and all(isinstance(t, gj.Tensor) for t in out)


def test_the_tiny_benchmark_call_is_fast(paths):
    vg = gj.jit(gj.value_and_grad(lambda x: 3 * x ** 2))
    x = np.float32(1.5)
    vg(x)
    vg(x)
    paths.watch(vg.quick)
    value, grad = vg(x)
    assert paths.counts() == (1, 0, 0)
    assert float(value) == 6.75 and float(grad) == 9.0
    assert np.asarray(grad).dtype == np.float32


def one(x):
    return x * 2 + 1, (x - 1) * 2


@pytest.mark.parametrize("make", [
    lambda: X.astype(np.float64),                         # dtype
    lambda: X[:, :2].copy(),                              # shape
    lambda: np.asfortranarray(X),                         # layout: Fortran order
    lambda: np.repeat(X, 2, axis=1)[:, ::2],              # layout: strided
    lambda: X.astype(">f4"),                              # byte order (an error)
    lambda: gj.tensor(X),                                 # a Tensor
    lambda: gj.tensor(X) * 1.0,                           # a pending Tensor
])
def test_each_refused_argument_goes_the_general_way_with_the_same_answer(make, paths):
    g, plan = warmed(one, X)
    paths.watch(plan)
    arg = make()
    outcomes = []
    for fun in (g, gj.jit(one)):
        try:
            outcomes.append(values(fun(arg)))
        except Exception as e:                          # noqa: BLE001 (compared below)
            outcomes.append((type(e), str(e)))
        if fun is g:
            assert paths.fast == 0
    assert str(outcomes[0]) == str(outcomes[1])
    assert_same(g(X), fresh_answer(one, X))             # and the fast path still serves
    assert paths.fast == 1


def test_odd_strides_on_a_length_one_axis_go_the_general_way(paths):
    g, plan = warmed(lambda x: x * 3, np.ones((1, 4), np.float32))
    paths.watch(plan)
    odd = np.lib.stride_tricks.as_strided(np.arange(8, dtype=np.float32), (1, 4), (64, 4))
    assert odd.flags.c_contiguous and odd.strides != (16, 4)
    np.testing.assert_array_equal(np.asarray(g(odd)), np.arange(4, dtype=np.float32)[None] * 3)
    assert paths.fast == 0 and paths.run == 1 and paths.slow == 0


@pytest.mark.parametrize("arg", [np.float64(1.5), np.array(1.5, np.float32), 1.5,
                                 np.int32(2), True])
def test_scalars_are_told_apart_by_type(arg, paths):
    g, plan = warmed(lambda x: x * 2 + 1, np.float32(1.5))
    paths.watch(plan)
    out = g(arg)
    assert paths.fast == 0
    assert_same(out, fresh_answer(lambda x: x * 2 + 1, arg))


def test_bad_calls_raise_the_errors_of_a_fresh_function():
    def f(x, w):
        return x * w

    g, _ = warmed(f, X, W)
    for args in [(X,), (X, W, W), (X, np.array(["a"] * 6).reshape(2, 3)),
                 (X, np.arange(3, dtype=">f4"))]:
        errors = []
        for fun in (g, gj.jit(f)):
            with pytest.raises(Exception) as info:
                fun(*args)
            errors.append((type(info.value), str(info.value)))
        assert errors[0] == errors[1]


def test_keywords_and_static_arguments_take_no_fast_path(paths):
    g, plan = warmed(poly, X, W)
    paths.watch(plan)
    out = g(x=X, w=W)
    assert paths.fast == 0 and paths.slow == 1
    assert_same(out, fresh_answer(poly, X, W))
    s = gj.jit(lambda x, k: x * k, static_argnums=(1,))
    s(X, 2)
    s(X, 2)
    assert s.quick is None and not s.plans


def test_closures_are_read_on_every_call(paths):
    """A closed-over array or Tensor is owned by a Tensor (tracer/captures.py) and read on
    every call: updated in place, the next call sees it; requiring grad, the call is
    recorded for autograd (the slow path)."""
    scale = np.arange(6, dtype=np.float32).reshape(2, 3)
    g, plan_g = warmed(lambda x: x * scale, X)
    weight = gj.tensor(scale)
    h, plan_h = warmed(lambda x: x * weight, X)
    paths.watch(plan_g)
    paths.watch(plan_h)
    for k in range(3):
        np.testing.assert_array_equal(np.asarray(g(X)), X * scale)
        np.testing.assert_array_equal(np.asarray(h(X)), X * (scale + k))
        with gj.no_grad():
            weight.add_(1.0)                      # pending: the next call computes it first
    assert paths.fast == 4                        # g thrice, h once (its first call)
    weight.requires_grad_()
    out = h(X).sum()
    out.backward()
    np.testing.assert_array_equal(np.asarray(weight.grad), X)
    assert paths.fast == 4


def test_the_fast_path_honours_the_settings_on_every_call(paths, gradjit_env, caplog):
    g, plan = warmed(poly, X, W)
    paths.watch(plan)
    gradjit_env("GRADJIT_BACKEND", "interpret")
    assert_same(g(X, W), fresh_answer(poly, X, W))
    assert paths.fast == 0
    gradjit_env("GRADJIT_BACKEND", "native")
    gradjit_env("GRADJIT_LOG", "1")
    with caplog.at_level("INFO", logger="gradjit"):
        g(X, W)
    assert "cache hit" in caplog.text and paths.fast == 0


def test_bounds_check_mode_has_no_fast_call(gradjit_env):
    gradjit_env("GRADJIT_BOUNDS_CHECK", "1")
    g = gj.jit(lambda x: x * 5)
    g(X)
    g(X)
    assert g.quick is None
    np.testing.assert_array_equal(np.asarray(g(X)), X * 5)


def test_a_new_thread_count_renews_the_workspace():
    g, plan = warmed(poly, X, W)
    before = plan.exe.shared_workspace()
    old = threads.num_threads()
    try:
        threads.set_num_threads(1 if old != 1 else 2)
        assert plan.exe.shared_workspace() is not before
        assert_same(g(X, W), fresh_answer(poly, X, W))
    finally:
        threads.set_num_threads(None)


# ---- outputs are never aliased -----------------------------------------------------------

def test_outputs_are_fresh_read_only_arrays_that_later_calls_never_touch():
    g, _ = warmed(poly, X, W)
    kept = [(g(X + k, W), X + k) for k in range(4)]
    arrays = [x._expr.data for out, _ in kept for x in out]
    for i, a in enumerate(arrays):
        assert not a.flags.writeable and a.flags.owndata
        with pytest.raises(ValueError):
            a[0, 0] = 1.0
        assert not any(np.shares_memory(a, b) for b in arrays[i + 1:])
    for out, x in kept:                          # every earlier result still holds its value
        np.testing.assert_array_equal(np.asarray(out[0]), x * W + 1)
    assert not np.shares_memory(arrays[0], X)


def test_inputs_are_only_read():
    g, _ = warmed(poly, X, W)
    x = X.copy()
    x.setflags(write=False)
    g(x, W)
    np.testing.assert_array_equal(x, X)


def test_calls_from_threads_are_independent():
    g, _ = warmed(lambda x: x * x, np.float64(0.0))
    errors = []

    def work(k):
        for i in range(200):
            v = np.float64(k * 1000 + i)
            if float(g(v)) != float(v) ** 2:
                errors.append((k, i))
    workers = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors


# ---- the fast path equals the slow path and the interpreter, for any shapes -------------

DTYPES = [np.float32, np.float64, np.int32, np.int64]
FUNCTIONS = {
    "affine": lambda x, y: x * y + x,
    "sum_and_max": lambda x, y: ((x - y).sum(), gj.maximum(x, y)),
    "nested": lambda x, y: [x + 1, (y * 2, None), x * y],
}


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(0, 4), max_size=3), dtype=st.sampled_from(DTYPES),
       scalar=st.booleans(), name=st.sampled_from(sorted(FUNCTIONS)), seed=st.integers(0, 99))
def test_fast_path_equals_slow_path_and_interpreter(shape, dtype, scalar, name, seed):
    fun = FUNCTIONS[name]
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    y = dtype(rng.standard_normal() * 10) if scalar else (
        rng.standard_normal(shape) * 10).astype(dtype)
    g = gj.jit(fun)
    slow = g(x, y)
    fast = g(x, y)
    plan = g.quick
    assert plan is not None and plan.fast is not None
    assert_same(fast, slow)
    assert tree_flatten(fast)[1] == tree_flatten(slow)[1]
    with _interpreted():
        interpreted = gj.jit(fun)(x, y)
    for a, b in zip(values(fast), values(interpreted), strict=True):
        if a.dtype.kind != "f":
            np.testing.assert_array_equal(a, b)
            continue
        # compiled code may contract x * y + x into one FMA, the interpreter rounds twice
        eps = np.finfo(a.dtype).eps
        scale = 1.0 + float(np.abs(x).max(initial=0.0)) * (1.0 + np.abs(y).max(initial=0.0))
        np.testing.assert_allclose(a, b, rtol=4 * eps, atol=8 * eps * scale)


class _interpreted:
    """GRADJIT_BACKEND=interpret for a with block (hypothesis runs without fixtures)."""

    def __enter__(self):
        self.saved = config.value("GRADJIT_BACKEND")
        config.set_value("GRADJIT_BACKEND", "interpret")

    def __exit__(self, *exc):
        config.set_value("GRADJIT_BACKEND", self.saved)


# ---- result trees ------------------------------------------------------------------------

@pytest.mark.parametrize("tree", [
    (1, (2,)), [1, (2, [3, None])], ((1,),), (), [], (1, 2, 3), 7,
])
def test_generated_rebuilds_equal_the_tree(tree):
    leaves, treedef = tree_flatten(tree)
    assert unflattener(treedef)(leaves) == tree


# ---- Tensor arguments --------------------------------------------------------------------

def test_computed_tensors_take_the_fast_path_and_others_do_not(paths):
    t = gj.tensor(X)
    g, plan = warmed(one, t)
    paths.watch(plan)
    assert_same(g(gj.tensor(X + 1)), fresh_answer(one, X + 1))
    assert paths.fast == 1
    refused = [gj.tensor(X) * 1.0,                               # pending
               gj.tensor(X.astype(np.float64)),                  # another dtype
               gj.nn.Parameter(gj.tensor(X))]                    # a subclass, requires grad
    for arg in refused:
        out = g(arg)
        assert paths.fast == 1
        assert_same(out, fresh_answer(one, np.asarray(arg.detach())))
    leaf = gj.tensor(X, requires_grad=True)
    value, _ = g(leaf)
    assert paths.fast == 1 and value.grad_fn is not None       # recorded for autograd
    value.sum().backward()
    np.testing.assert_array_equal(np.asarray(leaf.grad), np.full_like(X, 2.0))
    with gj.no_grad():
        out = g(leaf)
    assert paths.fast == 2                    # no autograd to record: the fast path
    assert out[0].grad_fn is None and not out[0].requires_grad
    assert_same(out, fresh_answer(one, X))


def test_a_profiling_session_sees_every_tiny_call():
    g, plan = warmed(one, X)           # not the `paths` fixture: it swaps Executable.run too
    env, calls = plan.call_fast.__globals__, []
    real = env["fast"]
    env["fast"] = lambda *buffers: calls.append(1) or real(*buffers)
    with gj.profile(kernels=False) as prof:
        for _ in range(5):
            g(X)
    assert [p.calls for p in prof.programs.values()] == [5] and not calls
    assert_same(g(X), fresh_answer(one, X))
    assert len(calls) == 1                       # and the fast path is back afterwards
