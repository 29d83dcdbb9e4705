"""dot_general through the BLAS gemm: every dimension-number layout against the interpreter.

Layouts whose free and contracted axes collapse into strided matrices become gemm calls with
transpose flags and leading dimensions (no copies); others get one operand transposed first;
a dot whose only use is a transpose writes the transposed layout itself.
"""
import numpy as np
import pytest

import runtime
from codegen import dots, lower_function
from codegen.dots import Externals
from codegen.fusion import KernelStep, plan_function
from ir.autodiff import grad
from ir.interpret import interpret
from ir.passes import optimize
from tests.prim_samples import T, make_fn

FAKE = Externals(gemm=lambda module, dtype: None)    # planning only looks at availability


def dot_fn(xs, ys, contract, batch=((), ()), dtype="f64", out_perm=None):
    def body(b, x, y):
        r = b.dot_general(x, y, contract=contract, batch=batch)
        return [r if out_perm is None else b.transpose(r, perm=out_perm)]
    return make_fn("dot", [T(dtype, xs), T(dtype, ys)], body)


# (x shape, y shape, contract, batch, output perm or None, transposes materialised)
LAYOUTS = {
    "nn": ((40, 30), (30, 20), ((1,), (0,)), ((), ()), None, 0),
    "tn": ((30, 40), (30, 20), ((0,), (0,)), ((), ()), None, 0),
    "nt": ((40, 30), (20, 30), ((1,), (1,)), ((), ()), None, 0),
    "tt": ((30, 40), (20, 30), ((0,), (1,)), ((), ()), None, 0),
    "matvec": ((300, 40), (40,), ((1,), (0,)), ((), ()), None, 0),
    "vecmat": ((40,), (40, 300), ((0,), (0,)), ((), ()), None, 0),
    "inner": ((9000,), (9000,), ((0,), (0,)), ((), ()), None, 0),
    "outer_free_axes": ((4, 10, 30), (30, 5, 8), ((2,), (0,)), ((), ()), None, 0),
    "two_contract_axes": ((20, 6, 5), (6, 5, 30), ((1, 2), (0, 1)), ((), ()), None, 0),
    "contract_pairs_reversed": ((20, 5, 6), (6, 5, 30), ((2, 1), (0, 1)), ((), ()), None, 1),
    "batch_leading": ((3, 20, 30), (3, 30, 25), ((2,), (1,)), ((0,), (0,)), None, 0),
    "batch_inside": ((20, 3, 30), (30, 3, 25), ((2,), (0,)), ((1,), (1,)), None, 0),
    "batch_last": ((20, 30, 3), (30, 25, 3), ((1,), (0,)), ((2,), (2,)), None, 2),
    "two_batch_axes": ((2, 3, 20, 30), (3, 2, 30, 25), ((3,), (2,)), ((0, 1), (1, 0)), None, 0),
    "free_split_by_contract": ((10, 30, 4), (30, 20), ((1,), (0,)), ((), ()), None, 1),
    "out_transposed": ((40, 30), (30, 20), ((1,), (0,)), ((), ()), (1, 0), 0),
    "out_batch_moved": ((25, 10, 10), (100, 25, 10), ((2,), (2,)), ((0,), (1,)), (2, 0, 1), 0),
    "out_batch_inside": ((3, 40, 30), (3, 30, 20), ((2,), (1,)), ((0,), (0,)), (1, 0, 2), 0),
    "out_perm_not_a_view": ((3, 40, 30), (3, 30, 20), ((2,), (1,)), ((0,), (0,)), (2, 1, 0), 0),
}


def _plan_counts(fn):
    plan = plan_function(fn, FAKE)
    names = [op.prim.name for op in plan.ops]
    return names.count("gemm"), names.count("transpose"), plan


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_plan_uses_gemm_with_few_copies(name):
    xs, ys, contract, batch, perm, copies = LAYOUTS[name]
    gemms, transposes, plan = _plan_counts(dot_fn(xs, ys, contract, batch, out_perm=perm))
    assert gemms == 1
    absorbed = perm is not None and name != "out_perm_not_a_view"
    assert transposes == copies + (perm is not None and not absorbed)
    assert sum(isinstance(s, KernelStep) for s in plan.steps) == 1


def _check(fn, seed=0):
    rng = np.random.default_rng(seed)
    args = [(rng.standard_normal(p.shape) * 4).astype(p.type.np_dtype) for p in fn.params]
    got = runtime.compile(fn)(*args)[0]
    want = interpret(fn, *args)[0]
    if got.dtype.kind != "f":
        np.testing.assert_array_equal(got, want)
        return
    # error bound of any summation order: eps * K * sum |x||y| (here via |want| scale)
    bound = interpret(fn, *[np.abs(a) for a in args])[0]
    eps = np.finfo(got.dtype).eps * 64
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.all(np.abs(got - want) <= eps * bound + 1e-30), np.max(np.abs(got - want))


@pytest.mark.skipif(not runtime.externals().gemm, reason="no BLAS found in NumPy")
@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_runs_through_blas_like_the_interpreter(name, dtype):
    xs, ys, contract, batch, perm, _ = LAYOUTS[name]
    fn = dot_fn(xs, ys, contract, batch, dtype, perm)
    src = lower_function(fn, externals=runtime.externals())
    assert {"f32": "gradjit_sgemm", "f64": "gradjit_dgemm"}[dtype] in src.llvm_ir
    _check(fn)


def test_small_or_integer_products_stay_loop_nests():
    tiny = dot_fn((8, 8), (8, 8), ((1,), (0,)))
    ints = dot_fn((64, 64), (64, 64), ((1,), (0,)), dtype="i64")
    for fn in (tiny, ints):
        gemms, _, plan = _plan_counts(fn)
        assert gemms == 0 and [op.prim.name for op in plan.ops].count("dot_general") == 1
        assert "gemm" not in lower_function(fn, externals=runtime.externals()).llvm_ir
    _check(ints)


def test_without_externals_big_products_are_loop_nests_in_canonical_layout():
    fn = dot_fn((30, 40), (20, 30), ((0,), (1,)))
    plan = plan_function(fn)
    names = [op.prim.name for op in plan.ops]
    assert names.count("dot_general") == 1 and names.count("transpose") == 2
    assert "gemm" not in lower_function(fn).llvm_ir


def test_matrix_view_strides_and_transpose_flags():
    shape = (4, 5, 6)
    strides = dots.c_strides(shape)
    assert strides == [30, 6, 1]
    assert dots.matrix_view(shape, strides, [0, 1], [2], []) == dots.View(False, 6, ())
    assert dots.matrix_view(shape, strides, [2], [0, 1], []) == dots.View(True, 6, ())
    assert dots.matrix_view(shape, strides, [1], [2], [0]) == dots.View(False, 6, (30,))
    assert dots.matrix_view(shape, strides, [0], [1], [2]) is None      # no unit stride
    assert dots.matrix_view(shape, strides, [0, 2], [1], []) is None   # rows do not collapse
    assert dots.matrix_view((1, 6), [6, 1], [0], [1], []) == dots.View(False, 6, ())


@pytest.mark.skipif(not runtime.externals().gemm, reason="no BLAS found in NumPy")
def test_gemm_in_bounds_check_mode_and_inside_a_scan_body():
    m = T("f64", (32, 32))
    step = make_fn("step", [m, m], lambda b, c, x: [
        b.tanh(b.dot_general(c, x, contract=((1,), (0,)), batch=((), ()))), c])
    fn = make_fn("f", [m, T("f64", (3, 32, 32))], lambda b, c, xs: list(
        b.emit("scan", c, xs, num_carry=1, length=3, reverse=False, regions=(step,))))
    rng = np.random.default_rng(0)
    args = [rng.standard_normal((32, 32)) * 0.2, rng.standard_normal((3, 32, 32)) * 0.2]
    want = interpret(fn, *args)
    for bc in (False, True):
        exe = runtime.compile(fn, bounds_check=bc)
        assert "gradjit_dgemm" in exe.kernel.llvm_ir
        for g, w in zip(exe(*args), want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def mlp(batch=64, inp=48, hidden=32, out=8):
    """sum(tanh(relu(x @ w1 + b1) @ w2) ** 2): gradients need x^T and w2^T products."""
    def body(b, w1, b1, w2, x):
        pre = b.add(b.dot_general(x, w1, contract=((1,), (0,)), batch=((), ())),
                    b.broadcast_in_dim(b1, shape=(batch, hidden), dims=(1,)))
        h = b.max(pre, b.const(0.0, "f32", (batch, hidden)))
        y = b.tanh(b.dot_general(h, w2, contract=((1,), (0,)), batch=((), ())))
        return [b.reduce_sum(b.mul(y, y), axes=(0, 1))]
    return make_fn("mlp", [T("f32", (inp, hidden)), T("f32", (hidden,)),
                           T("f32", (hidden, out)), T("f32", (batch, inp))], body)


@pytest.mark.skipif(not runtime.externals().gemm, reason="no BLAS found in NumPy")
def test_mlp_gradient_is_gemm_calls_with_transpose_flags_and_no_copies():
    g = optimize(grad(mlp(), wrt=(0, 1, 2)))
    gemms, transposes, plan = _plan_counts(g)
    assert gemms == 5 and transposes == 0       # 2 forward; dW2 = h^T d, dh = d w2^T, dW1 = x^T e
    kernels = [s.op.prim.name for s in plan.steps if isinstance(s, KernelStep)]
    assert kernels.count("gemm") == 5 and "dot_general" not in kernels
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(p.shape).astype(np.float32) * 0.3 for p in g.params]
    for got, want in zip(runtime.compile(g)(*args), interpret(g, *args)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)


def transposed_operand_fn(xs, perm, ys, contract, batch=((), ()), dtype="f32"):
    def body(b, s, y):
        return [b.dot_general(b.transpose(s, perm=perm), y, contract=contract, batch=batch)]
    return make_fn("dot_t", [T(dtype, xs), T(dtype, ys)], body)


# (source shape, perm, y shape, contract, batch, transposes left in the plan)
TRANSPOSED_OPERANDS = {
    "a.T @ b": ((50, 40), (1, 0), (50, 30), ((1,), (0,)), ((), ()), 0),
    "batched swap": ((3, 50, 40), (0, 2, 1), (3, 50, 30), ((2,), (1,)), ((0,), (0,)), 0),
    "free axes reorder": ((6, 5, 40), (1, 0, 2), (40, 30), ((2,), (0,)), ((), ()), 1),
}


@pytest.mark.skipif(not runtime.externals().gemm, reason="no BLAS found in NumPy")
@pytest.mark.parametrize("name", sorted(TRANSPOSED_OPERANDS))
def test_transposed_operands_become_transpose_flags(name):
    xs, perm, ys, contract, batch, left = TRANSPOSED_OPERANDS[name]
    fn = transposed_operand_fn(xs, perm, ys, contract, batch)
    gemms, transposes, _ = _plan_counts(fn)
    assert gemms == 1 and transposes == left
    _check(fn)


def test_linear_layer_x_times_w_transposed_reads_w_in_place():
    """nn.Linear's x @ w.T: the gemm reads w itself (transpose flag), nothing is copied."""
    def body(b, x, w):
        return [b.dot_general(x, b.transpose(w, perm=(1, 0)), contract=((1,), (0,)),
                              batch=((), ()))]
    fn = make_fn("linear", [T("f64", (64, 48)), T("f64", (32, 48))], body)
    gemms, transposes, plan = _plan_counts(fn)
    assert (gemms, transposes) == (1, 0)
    gemm = next(op for op in plan.ops if op.prim.name == "gemm")
    assert gemm.inputs[1] is fn.params[1] and gemm.params["plan"].b.trans
    if runtime.externals().gemm:
        _check(fn)
