"""Scan rewrites and pruning in the optimizer: accumulators hoisted out of the loop (one
stacked dot_general / reduce_sum after it), unused results of scan and cond dropped.
Expected text (FileCheck) and agreement with the interpreter, reverse and empty scans too."""
import pytest

from ir.passes import dce, optimize
from ir.printer import print_function
from tests.filecheck import filecheck
from tests.ir.helpers import assert_same_results, make_fn, run_pass

T, B, N, M = 5, 2, 3, 4


def _accumulating_scan(reverse=False, length=T, read_acc=False, extra_dim=1):
    """carry (h, dw, db), xs (x, g): h <- tanh(h + x @ w), dw += x^T g, db += sum_b g."""
    def step(b, h, dw, db, w, x, g):
        h_new = b.tanh(b.add(h, b.dot_general(x, w, contract=((1,), (0,)), batch=((), ()))))
        prod = b.dot_general(x, g, contract=((0,), (0,)), batch=((), ()))
        new_dw = b.add(dw, prod)
        if read_acc:                        # the accumulator feeds h: not hoistable
            h_new = b.add(h_new, b.broadcast_to(b.reduce_sum(new_dw, axes=(0,)), (B, M)))
        return h_new, new_dw, b.add(b.reduce_sum(g, axes=(0,)), db), w, b.mul(h_new, h_new)
    types = [("f64", (B, M)), ("f64", (N * extra_dim, M)), ("f64", (M,)),
             ("f64", (N * extra_dim, M)), ("f64", (B, N * extra_dim)), ("f64", (B, M))]
    region = make_fn(types, step, hints=["h", "dw", "db", "w", "x", "g"])
    region.name = "step"

    def body(b, h, w, xs, gs):
        dw0 = b.const(0.0, "f64", w.shape)
        db0 = b.const(1.5, "f64", (M,))
        return b.emit("scan", h, dw0, db0, w, xs, gs, num_carry=4, length=length,
                      reverse=reverse, regions=(region,))
    return make_fn([("f64", (B, M)), types[3], ("f64", (length,) + types[4][1]),
                    ("f64", (length, B, M))], body, hints=["h", "w", "xs", "gs"])


@pytest.mark.parametrize("reverse", [False, True])
def test_accumulators_become_one_stacked_product_and_sum(reverse):
    fn = _accumulating_scan(reverse)
    out = run_pass(optimize, fn)
    filecheck(print_function(out), f"""
        CHECK:      = scan %h, %w, %xs {{length=5, num_carry=2, reverse={str(reverse).lower()}}}
        CHECK-NOT:  dot_general %x, %g
        CHECK:      return
        CHECK:      %4 = dot_general %xs, %gs {{batch=[[], []], contract=[[0, 1], [0, 1]]}}
        CHECK-NEXT: %5 = reduce_sum %gs {{axes=[0, 1]}} : f64[4]
        CHECK-NEXT: %6 = add %0, %5 : f64[4]
        CHECK-NEXT: return %1, %4, %6,
    """)
    assert_same_results(fn, out)
    assert_same_results(fn, out, special=True)


def test_an_empty_scan_keeps_the_initial_accumulators():
    fn = _accumulating_scan(length=0)
    out = run_pass(optimize, fn)
    assert "contract=[[0, 1], [0, 1]]" in print_function(out)
    assert_same_results(fn, out)


def test_an_accumulator_read_inside_the_loop_stays_a_carry():
    """dw feeds h: it stays a carry; db is still hoisted."""
    fn = _accumulating_scan(read_acc=True)
    out = run_pass(optimize, fn)
    filecheck(print_function(out), """
        CHECK:      = scan %h, %0, %w, %xs, %gs {length=5, num_carry=3
        CHECK:      %3 = dot_general %x, %g
        CHECK-NEXT: %4 = add %dw, %3
        CHECK-NOT:  contract=[[0, 1], [0, 1]]
        CHECK:      = reduce_sum %gs {axes=[0, 1]}
    """)
    assert_same_results(fn, out)


def test_operands_bigger_than_the_accumulator_are_not_stacked():
    """A product of two (2 x 3k) slices into a (3k x 4) accumulator: hoisting would stack
    more than it saves, so only the sum of g (stacked anyway, it is an xs) moves out."""
    def step(b, acc, y):
        a = b.exp(y)
        return b.add(acc, b.dot_general(a, b.sin(y), contract=((0,), (0,)), batch=((), ()))), a
    region = make_fn([("f64", (3, 3)), ("f64", (40, 3))], step, hints=["acc", "y"])
    fn = make_fn([("f64", (T, 40, 3))], lambda b, ys: b.emit(
        "scan", b.const(0.0, "f64", (3, 3)), ys, num_carry=1, length=T, reverse=False,
        regions=(region,)), hints=["ys"])
    out = run_pass(optimize, fn)
    filecheck(print_function(out), "CHECK: num_carry=1\nCHECK: dot_general")
    assert_same_results(fn, out)


def test_the_sum_of_a_stacked_value_moves_out():
    def step(b, acc, x):
        return b.add(acc, x), b.exp(x)
    region = make_fn([("f64", (3,)), ("f64", (3,))], step, hints=["acc", "x"])
    fn = make_fn([("f64", (3,)), ("f64", (T, 3))], lambda b, a, xs: b.emit(
        "scan", a, xs, num_carry=1, length=T, reverse=True, regions=(region,)),
        hints=["a", "xs"])
    out = run_pass(optimize, fn)
    filecheck(print_function(out), """
        CHECK:      = scan %xs {length=5, num_carry=0, reverse=true}
        CHECK:      = reduce_sum %xs {axes=[0]} : f64[3]
        CHECK-NEXT: = add %a,
    """)
    assert_same_results(fn, out)
    assert_same_results(fn, out, special=True)


def test_dce_drops_unused_scan_results_and_carries():
    """Only ys is used: the carries that only fed themselves go, with their operands."""
    def step(b, h, c, x):
        return b.sin(h), b.add(c, b.cos(h)), b.mul(h, x)
    region = make_fn([("f64", (3,))] * 3, step, hints=["h", "c", "x"])

    def body(b, h, c, xs):
        return b.emit("scan", h, c, xs, num_carry=2, length=T, reverse=False,
                      regions=(region,))[2]
    fn = make_fn([("f64", (3,)), ("f64", (3,)), ("f64", (T, 3))], body, hints=["h", "c", "xs"])
    out = run_pass(dce, fn)
    filecheck(print_function(out), """
        CHECK:     = scan %h, %xs {length=5, num_carry=1, reverse=false}
        CHECK-NOT: cos
    """)
    assert_same_results(fn, out)


def test_dce_drops_unused_cond_results_and_operands():
    branch = make_fn([("f64", (3,)), ("f64", (3,))], lambda b, x, y: (b.exp(x), b.log(y)),
                     hints=["x", "y"])

    def body(b, p, x, y):
        return b.emit("cond", p, x, y, regions=(branch, branch))[0]
    fn = make_fn([("bool", ()), ("f64", (3,)), ("f64", (3,))], body, hints=["p", "x", "y"])
    out = run_pass(dce, fn)
    filecheck(print_function(out), "CHECK: = cond %p, %x :\nCHECK-NOT: log")
    assert_same_results(fn, out)


def test_a_product_with_a_loop_invariant_operand_sums_the_other_first():
    """acc += x_t @ w with w carried unchanged: sum_t x_t @ w = (sum_t x_t) @ w, without
    stacking length copies of w."""
    def step(b, acc, w, x):
        return b.add(acc, b.dot_general(x, w, contract=((1,), (0,)), batch=((), ()))), w
    region = make_fn([("f64", (B, M)), ("f64", (N, M)), ("f64", (B, N))], step,
                     hints=["acc", "w", "x"])
    fn = make_fn([("f64", (B, M)), ("f64", (N, M)), ("f64", (T, B, N))], lambda b, a, w, xs:
                 b.emit("scan", a, w, xs, num_carry=2, length=T, reverse=False,
                        regions=(region,)), hints=["a", "w", "xs"])
    out = run_pass(optimize, fn)
    filecheck(print_function(out), """
        CHECK-NOT:  scan
        CHECK:      %0 = reduce_sum %xs {axes=[0]} : f64[2,3]
        CHECK-NEXT: %1 = dot_general %0, %w {batch=[[], []], contract=[[1], [0]]} : f64[2,4]
        CHECK-NEXT: %2 = add %a, %1
        CHECK-NEXT: return %2, %w
    """)
    assert_same_results(fn, out)
    assert_same_results(fn, out, special=True)


def test_a_loop_invariant_carry_result_is_the_initial_value():
    def step(b, h, w, x):
        return b.sin(b.mul(h, w)), w, b.mul(h, x)
    region = make_fn([("f64", (3,))] * 3, step, hints=["h", "w", "x"])
    fn = make_fn([("f64", (3,)), ("f64", (3,)), ("f64", (T, 3))], lambda b, h, w, xs: b.emit(
        "scan", h, w, xs, num_carry=2, length=T, reverse=False, regions=(region,)),
        hints=["h", "w", "xs"])
    out = run_pass(optimize, fn)
    filecheck(print_function(out), """
        CHECK: %0, %1, %2 = scan %h, %w, %xs
        CHECK: return %0, %w, %2
    """)
    assert_same_results(fn, out)
