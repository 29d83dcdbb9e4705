"""Executable: argument checking and conversion, fresh outputs, both call paths, threads, and
the bounds-check mode."""
import threading

import numpy as np
import pytest
from llvmlite import ir as llir

import runtime
from codegen.buffers import Buffer, KernelContext
from codegen.emit import KernelSource
from codegen.loops import I32, PTR, i64
from ir.interpret import interpret
from runtime.executable import Executable
from tests.prim_samples import SAMPLES, T, make_fn, sample_args
from tests.codegen.test_codegen_primitives import assert_same


def scaled():
    fn = make_fn("scaled", [T("f32", (2, 3)), T("i32", ())],
                 lambda b, x, k: [b.mul(x, b.broadcast_in_dim(b.convert(k, dtype="f32"),
                                                              shape=(2, 3), dims=()))])
    fn.params[0].name_hint = "x"
    return fn


def test_arguments_are_converted_when_the_cast_is_same_kind():
    exe = runtime.compile(scaled())
    x64 = np.arange(6.0).reshape(2, 3)                            # f64 -> f32
    fortran = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    for x in (x64, fortran, x64.tolist()):
        (y,) = exe(x, 3)                                          # Python int -> i32
        assert y.dtype == np.float32
        np.testing.assert_array_equal(y, np.asarray(x, np.float32) * 3)


def test_bad_arguments_raise_clear_errors():
    exe = runtime.compile(scaled())
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"argument #0 '%x' has shape \[3, 2\].*f32\[2,3\]"):
        exe(np.zeros((3, 2), np.float32), 1)
    with pytest.raises(ValueError, match=r"argument #1 '%p1' has dtype float64.*i32\[\]"):
        exe(x, 1.5)
    with pytest.raises(ValueError, match="argument #0"):
        exe(np.array(["a"] * 6).reshape(2, 3), 1)
    with pytest.raises(TypeError, match="takes 2 arguments, got 1"):
        exe(x)


def test_outputs_are_new_arrays_on_every_call():
    exe = runtime.compile(scaled())
    x = np.ones((2, 3), np.float32)
    first, second = exe(x, 2)[0], exe(x, 2)[0]
    assert first is not second and not np.shares_memory(first, second)


def test_pointer_array_call_path_matches_the_trampoline():
    fn = scaled()
    exe = runtime.compile(fn)
    address = runtime.create_execution_engine().addresses[exe.kernel.entry]
    plain = Executable(fn, exe.kernel, address)
    x = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)
    np.testing.assert_array_equal(plain(x, 4)[0], exe(x, 4)[0])


def test_concurrent_calls_from_threads_are_independent():
    fn = make_fn("big", [T("f64", (200_000,))], lambda b, x: [b.reduce_sum(b.sin(x), axes=(0,))])
    exe = runtime.compile(fn)
    inputs = [np.full(200_000, 0.001 * k) for k in range(8)]
    want = [exe(x)[0] for x in inputs]
    got = [None] * len(inputs)

    def work(k):
        for _ in range(5):
            got[k] = exe(inputs[k])[0]
    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [float(g) for g in got] == [float(w) for w in want]


FIRST_CASES = [(name, SAMPLES[name].compiled[0]) for name in sorted(SAMPLES)]


@pytest.mark.parametrize("name,case", FIRST_CASES, ids=[n for n, _ in FIRST_CASES])
def test_valid_programs_pass_under_bounds_check(name, case, gradjit_env):
    gradjit_env("GRADJIT_BOUNDS_CHECK", "1")
    fn = case.build(case.dtypes[0])
    exe = runtime.compile(fn)
    assert exe.bounds_check and "icmp ult" in exe.llvm_ir
    args = sample_args(case, fn, np.random.default_rng(0))
    assert_same(exe(*args), interpret(fn, *args))


def broken_kernel(fn, load_at: int, store_at: int) -> KernelSource:
    """A hand-written kernel for fn (f32[4] -> f32[4]) that indexes where it is told."""
    module = llir.Module("broken")
    name = f"gj_broken_{load_at}_{store_at}"
    entry = llir.Function(module, llir.FunctionType(llir.VoidType(), [PTR, PTR]), name)
    ctx = KernelContext(entry, entry.args[1], bounds_check=True)
    bld = ctx.bld
    bld.store(llir.Constant(I32, 0), entry.args[1])
    ptrs = [bld.load(bld.gep(entry.args[0], [i64(k)], source_etype=PTR), typ=PTR) for k in (0, 1)]
    x, y = Buffer(ptrs[0], T("f32", (4,)), ctx), Buffer(ptrs[1], T("f32", (4,)), ctx)
    y.store(i64(store_at), x.load(i64(load_at)))
    ctx.finish()
    return KernelSource(str(module), name, fn, list(fn.param_types), list(fn.result_types), 64)


@pytest.mark.parametrize("load_at,store_at,what", [(7, 0, "load"), (0, 4, "store"),
                                                   (-1, 9, "load and store")])
def test_bounds_check_turns_a_bad_index_into_an_exception(load_at, store_at, what):
    fn = make_fn("oob", [T("f32", (4,))], lambda b, x: [b.neg(x)])
    exe = runtime.build_executable(fn, broken_kernel(fn, load_at, store_at), bounds_check=True)
    with pytest.raises(runtime.BoundsError, match=f"out-of-bounds buffer {what}"):
        exe(np.arange(4, dtype=np.float32))
    (ok,) = runtime.compile(fn, bounds_check=True)(np.arange(4, dtype=np.float32))
    assert ok.tolist() == [0, -1, -2, -3]


def test_workspaces_are_shared_only_by_kernels_that_just_read_their_header():
    plain = runtime.compile(scaled())                      # one fused nest: no temporaries
    assert plain._shares_ws and plain.kernel.workspace_bytes <= 64
    temps = make_fn("temps", [T("f64", (3, 4))],        # exp(x) is stored for the matmul
                    lambda b, x: [b.dot_general(b.exp(x), b.transpose(x, perm=(1, 0)),
                                                contract=((1,), (0,)), batch=((), ()))])
    exe = runtime.compile(temps)
    assert not exe._shares_ws
    checked = runtime.compile(scaled(), bounds_check=True)
    assert not checked._shares_ws                          # the error flag is per call
    x = np.random.default_rng(1).normal(size=(3, 4))
    assert_same(exe(x), interpret(temps, x))
    assert_same(checked(np.ones((2, 3), np.float32), 2), plain(np.ones((2, 3), np.float32), 2))


def test_small_kernels_called_from_many_threads_while_holding_the_gil():
    exe = runtime.compile(scaled())                        # small: called without releasing
    xs = [np.full((2, 3), k, np.float32) for k in range(6)]
    got = [None] * len(xs)

    def work(k):
        for _ in range(200):
            got[k] = exe(xs[k], k)[0]
    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, g in enumerate(got):
        np.testing.assert_array_equal(g, xs[k] * k)


def test_large_outputs_are_reused_only_once_nobody_holds_them():
    import weakref
    n = runtime.executable.RECYCLE_BYTES // 8 + 10
    fn = make_fn("big_out", [T("f64", (n,)), T("f64", ())],
                 lambda b, x, k: [b.mul(x, b.broadcast_in_dim(k, shape=(n,), dims=())),
                                  b.reduce_sum(x, axes=(0,))])
    exe = runtime.compile(fn)
    x = np.arange(n, dtype=np.float64)
    held = exe(x, 1.0)[0]
    second = exe(x, 2.0)[0]
    assert not np.shares_memory(held, second)             # `held` is still referenced
    np.testing.assert_array_equal(held, x)
    address = second.ctypes.data
    del second
    third = exe(x, 3.0)[0]                                 # the dropped array is written again
    assert third.ctypes.data == address and third.flags.writeable
    np.testing.assert_array_equal(third, x * 3)
    view = third[1:]
    del third
    fourth = exe(x, 4.0)[0]
    assert not np.shares_memory(view, fourth)              # a view keeps its base
    np.testing.assert_array_equal(view, x[1:] * 3)
    ref, address = weakref.ref(fourth), fourth.ctypes.data
    del view, fourth
    fifth = exe(x, 5.0)[0]                                 # a weak reference: not reused
    assert fifth.ctypes.data != address and ref() is None
    np.testing.assert_array_equal(fifth, x * 5)
