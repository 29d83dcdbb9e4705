"""runtime/fastcall.py: a small kernel called as a builtin function (METH_FASTCALL)."""
import functools
import sys

import numpy as np
import pytest

import runtime
from ir import Builder, Function, TensorType, Value
from runtime import fastcall
from runtime.engine import fresh_execution_engine
from runtime import trampoline
from runtime.executable import Executable

pytestmark = pytest.mark.skipif(not fastcall.OK, reason="the layout probes failed here")

DTYPES = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64,
          "bool": np.bool_}


def affine(dtype: str, shape=()) -> Function:
    """x * y + x (for bool: x and y, by select)."""
    b = Builder()
    x, y = Value(TensorType(dtype, shape), "x"), Value(TensorType(dtype, shape), "y")
    out = b.select(x, y, x) if dtype == "bool" else b.add(b.mul(x, y), x)
    return Function("affine", [x, y], list(b.ops), [out])


def test_small_kernels_get_the_builtin_and_run_through_it():
    exe = runtime.compile(affine("f32", (3,)))
    assert exe._fast is not None
    x = np.arange(3, dtype=np.float32)
    out = exe(x, x)[0]
    np.testing.assert_array_equal(out, x * x + x)
    assert out.flags.writeable                   # Executable's own outputs stay writable


@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_numpy_scalars_are_read_in_place(dtype):
    exe = runtime.compile(affine(dtype))
    t = DTYPES[dtype]
    fast = exe.fast_caller(bytes([fastcall.INLINE, 0, fastcall.READ_ONLY]))
    assert fast is not None
    for a, b in [(t(3), t(2)), (t(0), t(1)), (t(-5) if dtype != "bool" else t(1), t(1))]:
        out = np.empty((), t)
        fast(a, np.asarray(b), out, exe.shared_workspace())
        assert out.tobytes() == exe(np.asarray(a), np.asarray(b))[0].tobytes()
        assert not out.flags.writeable


def test_read_only_outputs_can_be_made_writable_again():
    exe = runtime.compile(affine("f64", (2,)))
    fast = exe.fast_caller(bytes([0, 0, fastcall.READ_ONLY]))
    x, out = np.ones(2), np.empty(2)
    fast(x, x, out, exe.shared_workspace())
    assert not out.flags.writeable and out.flags.owndata
    out.setflags(write=True)
    out[0] = 7.0
    assert out.tolist() == [7.0, 2.0]


def test_a_wrong_argument_count_is_an_error_not_a_crash():
    exe = runtime.compile(affine("f32", (3,)))
    fast = exe.fast_caller(bytes(3))
    x = np.ones(3, np.float32)
    with pytest.raises(SystemError):
        fast(x, x)
    assert exe.fast_caller(bytes(2)) is None           # modes must match the buffers


def test_the_builtin_keeps_its_state_alive_and_balances_references():
    exe = runtime.compile(affine("f32", (3,)))
    fast = exe.fast_caller(bytes(3))
    state = fast.__self__
    before = sys.getrefcount(state)
    x, out = np.ones(3, np.float32), np.empty(3, np.float32)
    for _ in range(1000):
        assert fast(x, x, out, exe.shared_workspace()) is state
    assert sys.getrefcount(state) == before
    np.testing.assert_array_equal(out, np.full(3, 2.0, np.float32))


def test_large_kernels_release_the_gil_through_ctypes():
    n = 10_000
    b = Builder()
    x = Value(TensorType("f32", (n,)), "x")
    y = b.exp(x)
    fn = Function("big", [x], list(b.ops), [y])
    exe = runtime.compile(fn)
    assert exe._fast is None and exe.fast_caller(bytes(2)) is None
    arg = np.linspace(-1, 1, n, dtype=np.float32)
    np.testing.assert_allclose(exe(arg)[0], np.exp(arg), rtol=2e-7)


def test_kernels_with_temporaries_have_no_shared_fast_caller():
    """fast_caller is only for kernels that share one workspace (header-only)."""
    exe = runtime.compile(affine("f32", (3,)))
    assert isinstance(exe, Executable) and exe._shares_ws
    exe._shares_ws = False
    assert exe.fast_caller(bytes(3)) is None


def test_object_code_from_the_disk_cache_has_the_builtin(tmp_path, gradjit_env):
    gradjit_env("GRADJIT_CACHE_DIR", str(tmp_path / "objects"))
    gradjit_env("GRADJIT_SECRET_FILE", str(tmp_path / "config" / "secret"))
    gradjit_env("GRADJIT_DISK_CACHE", None)
    runtime.clear_cache()
    fn = affine("f64", (4,))
    try:
        runtime.compile(fn)
        runtime.clear_cache()
        fresh_execution_engine()                   # no live code to share: load the object
        exe = runtime.compile(fn)
        assert "disk cache" in exe.origin and exe._fast is not None
        x = np.arange(4.0)
        np.testing.assert_array_equal(exe(x, x)[0], x * x + x)
    finally:
        runtime.clear_cache()


def sum_of(n: int, dtype: str = "f32") -> Function:
    """n inputs of shape (2,) and n outputs: input k times (k + 1), then their sum."""
    b = Builder()
    xs = [Value(TensorType(dtype, (2,)), f"x{k}") for k in range(n)]
    outs = [b.mul(x, b.full_like(float(k + 1), x)) for k, x in enumerate(xs)]
    total = outs[0]
    for o in outs[1:]:
        total = b.add(total, o)
    return Function(f"sum_of_{n}", xs, list(b.ops), outs + [total])


@pytest.mark.parametrize("n", [1, 3, 40, 300])
def test_one_shared_trampoline_serves_every_arity(n):
    """The trampolines loop over the buffers: a program of 300 inputs and 301 outputs (which
    the per-kernel trampolines refused: their code grew with the buffers) is called through
    both the builtin and the ctypes path, and neither is compiled again for it."""
    trampoline.addresses(tuple.__basicsize__)
    before = trampoline.builds
    exe = runtime.compile(sum_of(n))
    assert exe.has_trampoline and exe._fast is not None
    xs = [np.array([k, -k], np.float32) for k in range(n)]
    want = [x * np.float32(k + 1) for k, x in enumerate(xs)]
    got = exe(*xs)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(got[-1], functools.reduce(np.add, want))
    exe._fast = None                                   # the ctypes trampoline, same bits
    assert [g.tobytes() for g in exe(*xs)] == [g.tobytes() for g in got]
    assert trampoline.builds == before


def test_the_kernels_object_code_carries_no_trampoline():
    """Each program's module holds its kernel alone: the trampolines are not emitted into it."""
    low = runtime.lower(sum_of(3))
    assert "gj_call" not in low.llvm_ir and ".fast" not in low.llvm_ir
    assert "gj_call_fast" in trampoline.module_text(tuple.__basicsize__)
