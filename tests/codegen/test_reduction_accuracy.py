"""Compiled float sums stay accurate on long inputs (pairwise-like error), over any axes.

References are exact enough to judge: f32 inputs are summed pairwise in f64 by NumPy, f64
inputs in extended precision (np.longdouble) or with math.fsum. Integer-valued data sums
exactly in any order, so there the compiled code must equal the interpreter bit for bit,
which checks that every accumulation path (lanes, blocks, scratch, folds) reads the right
elements.
"""
import ctypes
import math

import llvmlite.binding as llvm
import numpy as np
import pytest

import gradjit as gj
import runtime
from codegen import nest, nest_plan, summation
from ir.interpret import interpret
from runtime import threads
from tests.prim_samples import T, make_fn

# relative error bounds: a few ulps, where sequential accumulation was off by 1e-4 (f32) and
# 1e-12 (f64) on these inputs
BOUND = {"f32": 5e-7, "f64": 1e-15}
NP = {"f32": np.float32, "f64": np.float64}
RNG = np.random.default_rng(11)


@pytest.fixture(autouse=True)
def default_threads():
    yield
    threads.set_num_threads(None)


def sum_fn(dt: str, shape: tuple, axes: tuple, square: bool = False):
    def body(b, x):
        return [b.reduce_sum(b.mul(x, x) if square else x, axes=axes)]
    return make_fn("total", [T(dt, shape)], body)


def exact_sum(x: np.ndarray, axes: tuple) -> np.ndarray:
    """Pairwise in f64 (f32 inputs) or extended precision: NumPy sums pairwise only along a
    contiguous last axis, so the reduced axes are moved there first."""
    moved = np.moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))
    rows = np.ascontiguousarray(moved).reshape(moved.shape[:x.ndim - len(axes)] + (-1,))
    if x.dtype == np.float32:
        return rows.astype(np.float64).sum(axis=-1)
    if np.finfo(np.longdouble).eps < np.finfo(np.float64).eps / 100:
        return rows.astype(np.longdouble).sum(axis=-1)
    return np.apply_along_axis(math.fsum, -1, rows)


def relative_error(got, want) -> float:
    want = np.asarray(want)
    return float(np.max(np.abs(got.astype(want.dtype) - want) / np.abs(want)))


def data(kind: str, shape: tuple, dt: str) -> np.ndarray:
    if kind == "tenths":          # the worst case for sequential sums: all terms equal
        return np.full(shape, 0.1, NP[dt])
    return RNG.uniform(0.5, 1.5, shape).astype(NP[dt])


CASES = [                                  # (shape, axes): inner, outer, middle, all, ...
    ((10 ** 7,), (0,)),
    ((10 ** 6, 1), (0,)),
    ((1000, 1000), (0,)),
    ((1000, 1000), (1,)),
    ((100, 1000, 100), (1,)),
    ((10 ** 6, 4), (0, 1)),
    ((10 ** 6, 4), (0,)),
    ((3, 10 ** 6), (1,)),
    ((64, 8, 40, 40), (0, 2, 3)),          # batch-norm statistics: outer and inner axes
    ((200, 3, 300, 5), (0, 2)),            # reduced axes between kept ones
]


@pytest.mark.parametrize("dt", ["f32", "f64"])
@pytest.mark.parametrize("shape, axes", CASES, ids=lambda c: str(c).replace(" ", ""))
def test_long_sums_are_accurate(dt, shape, axes):
    exe = runtime.compile(sum_fn(dt, shape, axes))
    for kind in ("tenths", "uniform"):
        x = data(kind, shape, dt)
        got = exe(x)[0]
        assert got.dtype == NP[dt]
        assert relative_error(got, exact_sum(x, axes)) < BOUND[dt], (kind, shape, axes)


@pytest.mark.parametrize("dt", ["f32", "f64"])
def test_error_does_not_grow_with_length(dt):
    errors = []
    for n in (10 ** 4, 10 ** 5, 10 ** 6, 10 ** 7):
        x = data("tenths", (n,), dt)
        errors.append(relative_error(runtime.compile(sum_fn(dt, (n,), (0,)))(x)[0],
                                     exact_sum(x, (0,))))
    # sequential lanes grew ~linearly (1e-5 -> 1e-4 in f32 from 1e5 to 1e6 elements)
    assert max(errors) < BOUND[dt]
    assert errors[-1] <= max(errors[0], np.finfo(NP[dt]).eps) * 8


@pytest.mark.parametrize("shape, axes", [((10 ** 7,), (0,)), ((1000, 1000), (0,)),
                                         ((1000, 1000), (1,)), ((4000, 300), (0,)),
                                         ((16, 100000), (0, 1)), ((64, 8, 40, 40), (0, 2, 3))])
@pytest.mark.parametrize("dt", ["f32", "f64"])
def test_bitwise_the_same_for_one_and_two_threads_and_every_run(shape, axes, dt):
    fn = sum_fn(dt, shape, axes, square=True)
    exe = runtime.compile(fn)
    assert 'call void @"gj.parallel_for"' in exe.llvm_ir        # the test means something
    x = RNG.standard_normal(shape).astype(NP[dt])
    runs = []
    for n in (1, 2, 1, 2):
        threads.set_num_threads(n)
        runs.append(exe(x)[0].tobytes())
    assert len(set(runs)) == 1
    got = np.frombuffer(runs[0], NP[dt]).reshape(fn.results[0].shape)
    assert relative_error(got, exact_sum(x * x, axes)) < BOUND[dt] * 2


# shapes whose extents straddle the lane (16), block (256) and fold (16 rows) sizes
SWEEP = [((1, 300), (1,)), ((300, 1), (0,)), ((5, 257), (1,)), ((5, 257), (0,)),
         ((5, 257), (0, 1)), ((33, 7), (0,)), ((33, 7), (0, 1)), ((1000, 3), (0,)),
         ((2, 17, 300), (0, 2)), ((2, 17, 300), (1,)), ((40, 3, 20, 17), (0, 2)),
         ((40, 3, 20, 17), (0, 2, 3)), ((17, 1, 5, 1, 40), (0, 2)), ((17, 2, 3), (0, 1, 2)),
         ((300, 2, 1), (0, 2)), ((0, 5), (0,)), ((5, 0), (1,)), ((40, 0, 3), (0,)), ((7,), ())]


@pytest.mark.parametrize("dt", ["f32", "f64"])
@pytest.mark.parametrize("shape, axes", SWEEP, ids=lambda c: str(c).replace(" ", ""))
def test_every_accumulation_path_equals_the_interpreter_on_exact_data(dt, shape, axes):
    fn = sum_fn(dt, shape, axes)
    x = RNG.integers(-8, 9, shape).astype(NP[dt])       # integer sums: exact in any order
    want = interpret(fn, x)[0]
    for bounds_check in (False, True):
        np.testing.assert_array_equal(runtime.compile(fn, bounds_check=bounds_check)(x)[0], want)


@pytest.mark.parametrize("dt", ["f32", "f64"])
def test_random_data_matches_the_interpreter(dt):
    for shape, axes in SWEEP[:15]:
        fn = sum_fn(dt, shape, axes, square=True)
        x = RNG.standard_normal(shape).astype(NP[dt])
        np.testing.assert_allclose(runtime.compile(fn)(x)[0], interpret(fn, x)[0],
                                   rtol=1e-5 if dt == "f32" else 1e-13, atol=1e-6)


def special_columns(dt: str, rows: int) -> np.ndarray:
    """Columns whose sums are inf, -inf, nan (inf - inf, nan), an overflow, and finite."""
    x = np.full((rows, 6), 1.0, NP[dt])
    x[3, 0] = np.inf
    x[5, 1] = -np.inf
    x[2, 2], x[rows - 1, 2] = np.inf, -np.inf
    x[rows // 2, 3] = np.nan
    x[:, 4] = np.finfo(NP[dt]).max / 4
    return x


@pytest.mark.parametrize("dt", ["f32", "f64"])
@pytest.mark.parametrize("rows", [20, 1000])          # folded blocks; one block per row
def test_infinities_and_nans_propagate_like_numpy(dt, rows):
    x = special_columns(dt, rows)
    with np.errstate(over="ignore", invalid="ignore"):
        want = x.sum(axis=0)
    shapes = [((rows, 6), (0,)), ((rows, 1, 6), (0, 1))]
    if rows == 1000:                      # a middle reduced axis too long to fold
        shapes.append(((20, 50, 6), (0, 1)))
    for shape, axes in shapes:
        got = runtime.compile(sum_fn(dt, shape, axes))(x.reshape(shape))[0]
        np.testing.assert_array_equal(got, want)
    inner = runtime.compile(sum_fn(dt, (6, rows), (1,)))(np.ascontiguousarray(x.T))[0]
    np.testing.assert_array_equal(inner, want)


def test_mean_and_var_of_long_f32_inputs(gradjit_env):
    gradjit_env("GRADJIT_BACKEND", None)
    x = (RNG.random((2000, 600)) * 0.01 + 3).astype(np.float32)
    ref = x.astype(np.float64)
    for axis in (0, 1, None):
        mean = np.asarray(gj.jit(lambda a: a.mean(axis))(x))  # noqa: B023  called at once
        np.testing.assert_allclose(mean, ref.mean(axis=axis), rtol=3e-7)
    var = np.asarray(gj.jit(lambda a: a.var(0))(x))
    np.testing.assert_allclose(var, ref.var(axis=0, ddof=1), rtol=1e-4)


def build(fn):
    """Compiled without any cache, so module constants patched by a test take effect."""
    return runtime.build_executable(fn)


def test_big_scratch_comes_from_the_heap(monkeypatch):
    small = runtime.lower(sum_fn("f32", (3000, 51), (0,))).llvm_ir
    assert '%"scratch" = alloca' in small and "malloc" not in small
    monkeypatch.setattr(nest, "STACK_SCRATCH_BYTES", 0)
    for dt in ("f32", "f64"):
        fn = sum_fn(dt, (3000, 50), (0,))
        exe = build(fn)
        assert 'call ptr @"malloc"' in exe.llvm_ir and 'call void @"free"' in exe.llvm_ir
        x = data("tenths", (3000, 50), dt)
        assert relative_error(exe(x)[0], exact_sum(x, (0,))) < BOUND[dt]


_NULL_ALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_int64)(lambda n: None)


def test_failed_heap_allocation_falls_back_to_summing_in_place(monkeypatch):
    llvm.add_symbol("gj_test_null_malloc", ctypes.cast(_NULL_ALLOC, ctypes.c_void_p).value)
    monkeypatch.setattr(nest, "STACK_SCRATCH_BYTES", 0)
    monkeypatch.setattr(nest, "ALLOCATOR", ("gj_test_null_malloc", "free"))
    for dt in ("f32", "f64"):
        fn = sum_fn(dt, (300, 3, 40, 7), (0, 2))
        x = RNG.integers(-8, 9, (300, 3, 40, 7)).astype(NP[dt])
        np.testing.assert_array_equal(build(fn)(x)[0], interpret(fn, x)[0])


def test_support_functions_are_emitted_once_per_module():
    """Every nest calls the same cascade and fold functions (compile time is per function)."""
    def body(b, x, y):
        return [b.reduce_sum(b.exp(x), axes=(1,)), b.reduce_sum(b.exp(y), axes=(0, 1)),
                b.reduce_sum(b.sin(x), axes=(0,)), b.reduce_sum(b.cos(y), axes=(0,))]
    fn = make_fn("two", [T("f32", (300, 400)), T("f32", (500, 7))], body)
    text = runtime.lower(fn).llvm_ir
    for name in ("gj.cascade.float", "gj.wide.fold.f32"):
        assert text.count(f'define internal void @"{name}"(') == 1
        assert text.count(f'@"{name}"(') >= 3         # the definition and two nests' calls
    x, y = RNG.standard_normal((300, 400)), RNG.standard_normal((500, 7))
    args = [x.astype(np.float32), y.astype(np.float32)]
    for got, want in zip(runtime.compile(fn)(*args), interpret(fn, *args)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)     # NumPy: sequential


def test_cascade_levels_cover_any_loop():
    # a loop of 2^52 elements (the blocks of one accumulator are BLOCK / LANES long) would
    # run for days; the stack must never overflow before that
    assert summation.BLOCK % nest_plan.LANES == 0 and nest_plan.LANES % 2 == 0
    assert 2 ** summation.LEVELS * summation.BLOCK // nest_plan.LANES >= 2 ** 52
