"""cond / while / scan lowered to native branches and loops: nesting, temporaries, kernels."""
import re

import numpy as np
import pytest

import runtime
from ir.interpret import interpret
from tests.prim_samples import T, make_fn
from tests.codegen.test_codegen_primitives import assert_same


def run(fn, args, bounds_check=False):
    exe = runtime.compile(fn, bounds_check=bounds_check)
    assert_same(exe(*args), interpret(fn, *args))
    return exe


def scan_with_cond(length=5):
    """A scan whose body branches on a reduction of its slice."""
    v = T("f64", (3,))
    then = make_fn("then", [v, v], lambda b, c, x: [b.add(c, x)])
    other = make_fn("other", [v, v], lambda b, c, x: [b.mul(c, b.const(0.5, "f64", (3,)))])

    def step(b, c, x):
        p = b.gt(b.reduce_sum(x, axes=(0,)), b.const(0.0, "f64"))
        (c2,) = b.emit("cond", p, c, x, regions=(then, other))
        return [c2, b.tanh(c2), b.reduce_max(c2, axes=(0,))]
    body = make_fn("step", [v, v], step)
    return make_fn("f", [v, T("f64", (length, 3))], lambda b, c, xs: list(
        b.emit("scan", c, xs, num_carry=1, length=length, reverse=False, regions=(body,))))


@pytest.mark.parametrize("bounds_check", [False, True])
def test_scan_with_nested_cond_and_reductions(bounds_check):
    rng = np.random.default_rng(0)
    run(scan_with_cond(), [rng.normal(size=3), rng.normal(size=(5, 3))], bounds_check)


def test_while_whose_body_has_a_matmul_and_temporaries():
    """Power iteration: carry (k, v), the matrix passes through the carry unchanged."""
    i, m, v = T("i64", ()), T("f64", (4, 4)), T("f64", (4,))
    test = make_fn("test", [i, m, v], lambda b, k, a, x: [b.lt(k, b.const(6, "i64"))])

    def step(b, k, a, x):
        y = b.dot_general(a, x, contract=((1,), (0,)), batch=((), ()))
        norm = b.sqrt(b.reduce_sum(b.mul(y, y), axes=(0,)))
        y = b.div(y, b.broadcast_in_dim(norm, shape=(4,), dims=()))
        return [b.add(k, b.const(1, "i64")), a, y]
    body = make_fn("step", [i, m, v], step)
    fn = make_fn("power", [m, v], lambda b, a, x: list(
        b.emit("while", b.const(0, "i64"), a, x, regions=(test, body))))
    rng = np.random.default_rng(1)
    exe = run(fn, [rng.normal(size=(4, 4)), rng.normal(size=4)])
    assert exe.kernel.workspace_bytes > 64             # the carries ping-pong in the workspace


def test_scan_with_two_carries_two_xs_reverse():
    a, x = T("f32", (2,)), T("f32", (2,))

    def step(b, c1, c2, u, w):
        return [b.add(c1, u), b.mul(c2, w), b.sub(c1, c2), b.add(u, w)]
    body = make_fn("step", [a, a, x, x], step)
    fn = make_fn("f", [a, a, T("f32", (6, 2)), T("f32", (6, 2))], lambda b, c1, c2, u, w: list(
        b.emit("scan", c1, c2, u, w, num_carry=2, length=6, reverse=True, regions=(body,))))
    rng = np.random.default_rng(2)
    run(fn, [rng.uniform(0.5, 1.5, s.shape).astype(np.float32) for s in fn.params])


def test_long_scan_is_a_native_loop_not_unrolled():
    fn = scan_with_cond(length=1000)
    low = runtime.lower(fn)
    assert len(re.findall(r'^"?step\.head"?:', low.llvm_ir, flags=re.M)) == 1
    body_defs = re.findall(r"^define internal void .*\.body\.r0\.0\"\(", low.llvm_ir, flags=re.M)
    assert len(body_defs) == 1
    rng = np.random.default_rng(3)
    run(fn, [rng.normal(size=3), rng.normal(size=(1000, 3))])


def test_cond_on_a_computed_predicate_with_kernel_operand():
    v = T("f32", (2, 2))
    then = make_fn("then", [v], lambda b, x: [b.dot_general(x, x, contract=((1,), (0,)),
                                                            batch=((), ()))])
    other = make_fn("other", [v], lambda b, x: [b.transpose(x, perm=(1, 0))])

    def body(b, x):
        p = b.gt(b.reduce_sum(x, axes=(0, 1)), b.const(0.0, "f32"))
        return list(b.emit("cond", p, b.exp(x), regions=(then, other)))
    fn = make_fn("f", [v], body)
    for sign in (1, -1):
        run(fn, [sign * np.array([[1.0, 2.0], [0.5, 0.25]], np.float32)])
