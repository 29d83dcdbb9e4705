"""The rewrites that clean up gradients: splat folding, negations absorbed, transposes folded
into dot_general, sums of broadcasts, reshape/broadcast chains, sums of padded pieces.
Each: the expected text (FileCheck) and agreement with the interpreter, nan/inf included."""
import numpy as np
import pytest

from ir.interpret import interpret
from ir.passes import optimize, simplify
from ir.printer import print_function
from tests.filecheck import filecheck
from tests.ir.helpers import assert_same_results, make_fn, run_pass

F3 = ("f32", (3,))
D3 = ("f64", (3,))
D23 = ("f64", (2, 3))
D34 = ("f64", (3, 4))


def _c(b, value, like):
    """A splat constant shaped like `like`, built the tracer's way (scalar + broadcast)."""
    return b.broadcast_to(b.const(value, like.dtype), like.shape)


def _tr(b, x):
    return b.transpose(x, perm=(1, 0))


def _dot(b, x, y, contract, batch=((), ())):
    return b.dot_general(x, y, contract=contract, batch=batch)


# (id, param types, body, FileCheck text for optimize's output)
REWRITES = [
    # ---- splats ----
    ("broadcast of a splat is a bigger splat", [D3],
     lambda b, x: b.add(x, b.broadcast_in_dim(b.const(2.0, "f64"), shape=(3,), dims=())),
     "CHECK: %0 = constant {value=2.0} : f64[3]\nCHECK-NOT: broadcast_in_dim\n"
     "CHECK: add %x, %0"),
    ("ops on big splats fold to a splat", [("f64", (40,))],
     lambda b, x: b.mul(x, b.exp(b.add(_c(b, 1.0, x), _c(b, -1.0, x)))),
     "CHECK-NOT: exp\nCHECK-NOT: mul\nCHECK: return %x"),
    ("splat compare and select", [("f32", (20,))],
     lambda b, x: b.select(b.lt(_c(b, 1.0, x), _c(b, 2.0, x)), x, _c(b, 0.0, x)),
     "CHECK-NOT: select\nCHECK: return %x"),
    # ---- negations ----
    ("x + -y is x - y", [D3, D3], lambda b, x, y: b.add(x, b.neg(y)),
     "CHECK: %0 = sub %x, %y\nCHECK-NEXT: return %0"),
    ("-x + y is y - x", [D3, D3], lambda b, x, y: b.add(b.neg(x), y),
     "CHECK: %0 = sub %y, %x\nCHECK-NEXT: return %0"),
    ("x - -y is x + y", [D3, D3], lambda b, x, y: b.sub(x, b.neg(y)),
     "CHECK: %0 = add %x, %y\nCHECK-NEXT: return %0"),
    ("x * -1 is -x", [D3], lambda b, x: b.mul(x, _c(b, -1.0, x)),
     "CHECK: %0 = neg %x\nCHECK-NEXT: return %0"),
    ("x / -1 is -x", [D3], lambda b, x: b.div(x, _c(b, -1.0, x)),
     "CHECK: %0 = neg %x\nCHECK-NEXT: return %0"),
    ("-x * -y", [D3, D3], lambda b, x, y: b.mul(b.neg(x), b.neg(y)),
     "CHECK: %0 = mul %x, %y\nCHECK-NEXT: return %0"),
    ("-x / -y", [D3, D3], lambda b, x, y: b.div(b.neg(x), b.neg(y)),
     "CHECK: %0 = div %x, %y\nCHECK-NEXT: return %0"),
    ("-(x * -y) (the sigmoid VJP)", [D3, D3], lambda b, x, y: b.neg(b.mul(x, b.neg(y))),
     "CHECK: %0 = mul %x, %y\nCHECK-NEXT: return %0"),
    ("-(-x / y)", [D3, D3], lambda b, x, y: b.neg(b.div(b.neg(x), y)),
     "CHECK: %0 = div %x, %y\nCHECK-NEXT: return %0"),
    ("-(c * x) is (-c) * x", [D3], lambda b, x: b.neg(b.mul(_c(b, 0.25, x), x)),
     "CHECK: %0 = constant {value=-0.25} : f64[3]\nCHECK-NEXT: %1 = mul %0, %x\n"
     "CHECK-NEXT: return %1"),
    ("-x * c is x * (-c)", [D3], lambda b, x: b.mul(b.neg(x), _c(b, 3.0, x)),
     "CHECK: %0 = constant {value=-3.0} : f64[3]\nCHECK-NEXT: %1 = mul %x, %0"),
    ("-x / c is x / (-c)", [D3], lambda b, x: b.div(b.neg(x), _c(b, 3.0, x)),
     "CHECK: %0 = constant {value=-3.0} : f64[3]\nCHECK-NEXT: %1 = div %x, %0"),
    ("-(x * y) kept", [D3, D3], lambda b, x, y: b.neg(b.mul(x, y)), "CHECK: neg"),
    ("-(x - y) kept: -0.0 vs +0.0", [D3, D3], lambda b, x, y: b.neg(b.sub(x, y)),
     "CHECK: sub %x, %y\nCHECK-NEXT: neg"),
    ("select on a negated predicate swaps", [D3, D3],
     lambda b, x, y: b.select(b.logical_not(b.lt(x, y)), x, y),
     "CHECK: %0 = lt %x, %y\nCHECK-NEXT: %1 = select %0, %y, %x\nCHECK-NEXT: return %1"),
    ("a select under the same predicate is decided", [D3, D3, D3],
     lambda b, x, y, z: b.select(b.lt(x, y), b.select(b.lt(x, y), x, y),
                                 b.select(b.lt(x, y), y, z)),
     "CHECK: %0 = lt %x, %y\nCHECK-NEXT: %1 = select %0, %x, %z\nCHECK-NEXT: return %1"),
    ("complementary selects add up to one (leaky relu's VJP)", [D3, D3],
     lambda b, x, g: b.add(b.select(b.gt(x, _c(b, 0.0, x)), g, _c(b, 0.0, x)),
                           b.select(b.gt(x, _c(b, 0.0, x)), _c(b, 0.0, x),
                                    b.mul(g, _c(b, 0.01, x)))),
     "CHECK: %1 = gt %x, %0\nCHECK-NEXT: %2 = constant {value=0.01}\nCHECK-NEXT: %3 = mul %y, %2\n"
     "CHECK-NEXT: %4 = select %1, %y, %3\nCHECK-NEXT: return %4"),
    ("selects under different predicates kept", [D3, D3],
     lambda b, x, y: b.add(b.select(b.lt(x, y), x, _c(b, 0.0, x)),
                           b.select(b.gt(x, y), _c(b, 0.0, x), y)),
     "CHECK: add"),
    # ---- reshape / broadcast chains ----
    ("broadcast of a broadcast", [D3],
     lambda b, x: b.broadcast_in_dim(b.broadcast_in_dim(x, shape=(2, 3), dims=(1,)),
                                     shape=(4, 2, 3), dims=(1, 2)),
     "CHECK: %0 = broadcast_in_dim %x {dims=[2], shape=[4, 2, 3]}\nCHECK-NEXT: return %0"),
    ("broadcast of a unit reshape", [D23],
     lambda b, x: b.broadcast_in_dim(b.reshape(x, shape=(1, 2, 1, 3)), shape=(5, 2, 4, 3),
                                     dims=(0, 1, 2, 3)),
     "CHECK: %0 = broadcast_in_dim %x {dims=[1, 3], shape=[5, 2, 4, 3]}\nCHECK-NEXT: return %0"),
    ("broadcast of a real reshape kept", [("f64", (6,))],
     lambda b, x: b.broadcast_in_dim(b.reshape(x, shape=(2, 3)), shape=(4, 2, 3), dims=(1, 2)),
     "CHECK: reshape %x\nCHECK: broadcast_in_dim"),
    ("unit reshape of a broadcast", [D3],
     lambda b, x: b.reshape(b.broadcast_in_dim(x, shape=(2, 3), dims=(1,)), shape=(2, 1, 3)),
     "CHECK: %0 = broadcast_in_dim %x {dims=[2], shape=[2, 1, 3]}\nCHECK-NEXT: return %0"),
    # ---- transposes and dot_general ----
    ("transpose of a dot swaps its operands", [D23, D34],
     lambda b, x, y: _tr(b, _dot(b, x, y, ((1,), (0,)))),
     "CHECK: %0 = dot_general %y, %x {batch=[[], []], contract=[[0], [1]]} : f64[4,2]\n"
     "CHECK-NOT: transpose"),
    ("a transposed operand folds into the dims", [("f64", (3, 2)), D34],
     lambda b, x, y: _dot(b, _tr(b, x), y, ((1,), (0,))),
     "CHECK: %0 = dot_general %x, %y {batch=[[], []], contract=[[0], [0]]} : f64[2,4]\n"
     "CHECK-NOT: transpose"),
    ("both operands transposed (the weight gradient)", [("f64", (5, 2)), ("f64", (3, 5))],
     lambda b, x, y: _dot(b, _tr(b, x), _tr(b, y), ((1,), (0,))),
     "CHECK: dot_general %x, %y {batch=[[], []], contract=[[0], [1]]} : f64[2,3]\n"
     "CHECK-NOT: transpose"),
    ("a batched transpose folds", [("f64", (2, 4, 3)), ("f64", (4, 3, 5))],
     lambda b, x, y: _dot(b, b.transpose(x, perm=(1, 0, 2)), y, ((2,), (1,)), ((0,), (0,))),
     "CHECK: dot_general %x, %y {batch=[[1], [0]], contract=[[2], [1]]} : f64[4,2,5]\n"
     "CHECK-NOT: transpose"),
    ("a transpose reordering free axes is kept", [("f64", (2, 3, 4)), ("f64", (4, 5))],
     lambda b, x, y: _dot(b, b.transpose(x, perm=(1, 0, 2)), y, ((2,), (0,))),
     "CHECK: transpose %x\nCHECK: dot_general"),
    ("transpose of a dot used twice is kept", [D23, D34],
     lambda b, x, y: (lambda d: (_tr(b, d), d))(_dot(b, x, y, ((1,), (0,)))),
     "CHECK: dot_general %x, %y\nCHECK: transpose"),
    # ---- sums ----
    ("sum over nothing", [D23], lambda b, x: b.reduce_sum(x, axes=()), "CHECK: return %x"),
    ("sum of a splat", [], lambda b: b.reduce_sum(b.const(0.5, "f64", (4, 3)), axes=(0,)),
     "CHECK: %0 = constant {value=2.0} : f64[3]\nCHECK-NEXT: return %0"),
    ("sum of an empty splat", [],
     lambda b: b.reduce_sum(b.const(float("inf"), "f64", (0, 3)), axes=(0,)),
     "CHECK: %0 = constant {value=0.0} : f64[3]\nCHECK-NEXT: return %0"),
    ("sum of a broadcast is a product", [D3],
     lambda b, x: b.reduce_sum(b.broadcast_in_dim(x, shape=(5, 3), dims=(1,)), axes=(0,)),
     "CHECK: %0 = constant {value=5.0} : f64[3]\nCHECK-NEXT: %1 = mul %x, %0\n"
     "CHECK-NEXT: return %1"),
    ("sum over a stretched unit axis", [("f64", (1, 3))],
     lambda b, x: b.reduce_sum(b.broadcast_in_dim(x, shape=(4, 3), dims=(0, 1)), axes=(0,)),
     "CHECK: %0 = reshape %x {shape=[3]}\nCHECK: mul %0,\nCHECK-NOT: reduce_sum"),
    ("sum of part of a broadcast", [D3],
     lambda b, x: b.reduce_sum(b.broadcast_in_dim(x, shape=(5, 2, 3), dims=(2,)), axes=(0,)),
     "CHECK: broadcast_in_dim %x {dims=[1], shape=[2, 3]}\nCHECK: mul\nCHECK-NOT: reduce_sum"),
    ("sum of an empty broadcast", [D3],
     lambda b, x: b.reduce_sum(b.broadcast_in_dim(x, shape=(0, 3), dims=(1,)), axes=(0,)),
     "CHECK: %0 = constant {value=0.0} : f64[3]\nCHECK-NEXT: return %0"),
    ("sum over broadcast data kept", [D23],
     lambda b, x: b.reduce_sum(b.broadcast_in_dim(x, shape=(4, 2, 3), dims=(1, 2)), axes=(1,)),
     "CHECK: reduce_sum"),
    ("sum of a negation", [D23], lambda b, x: b.reduce_sum(b.neg(x), axes=(1,)),
     "CHECK: %0 = reduce_sum %x {axes=[1]} : f64[2]\nCHECK-NEXT: %1 = neg %0"),
    # ---- sums of padded pieces (the VJP of splitting a value) ----
    ("padded pieces tiling an axis", [D23, ("f64", (2, 1))],
     lambda b, x, y: b.add(b.pad(x, lo=(0, 0), hi=(0, 1), interior=(0, 0)),
                           b.pad(y, lo=(0, 3), hi=(0, 0), interior=(0, 0))),
     "CHECK: %0 = concatenate %x, %y {axis=1} : f64[2,4]\nCHECK-NEXT: return %0"),
    ("padded pieces with a gap", [D23, ("f64", (2, 1))],
     lambda b, x, y: b.add(b.pad(y, lo=(0, 5), hi=(0, 0), interior=(0, 0)),
                           b.pad(x, lo=(0, 1), hi=(0, 2), interior=(0, 0))),
     "CHECK: %0 = constant {value=0.0} : f64[2,1]\n"
     "CHECK-NEXT: concatenate %0, %x, %0, %y {axis=1} : f64[2,6]"),
    ("four gates' cotangents", [D3, D3, D3, D3],
     lambda b, p, q, r, s: b.add(b.add(b.add(
         b.pad(p, lo=(9,), hi=(0,), interior=(0,)), b.pad(q, lo=(0,), hi=(9,), interior=(0,))),
         b.pad(r, lo=(3,), hi=(6,), interior=(0,))), b.pad(s, lo=(6,), hi=(3,), interior=(0,))),
     "CHECK: %0 = concatenate %y, %z, %w, %x {axis=0} : f64[12]\nCHECK-NEXT: return %0"),
    ("overlapping pads kept", [D3, D3],
     lambda b, x, y: b.add(b.pad(x, lo=(0,), hi=(1,), interior=(0,)),
                           b.pad(y, lo=(1,), hi=(0,), interior=(0,))),
     "CHECK: pad\nCHECK: pad\nCHECK: add"),
    ("pads along two axes kept", [("f64", (1, 2)), ("f64", (2, 1))],
     lambda b, x, y: b.add(b.pad(x, lo=(0, 0), hi=(1, 0), interior=(0, 0)),
                           b.pad(y, lo=(0, 1), hi=(0, 0), interior=(0, 0))),
     "CHECK: add"),
]


@pytest.mark.parametrize("types, body, checks", [r[1:] for r in REWRITES],
                         ids=[r[0] for r in REWRITES])
def test_rewrite(types, body, checks):
    fn = make_fn(types, body)
    out = run_pass(optimize, fn)
    filecheck(print_function(out), checks)
    assert_same_results(fn, out)
    assert_same_results(fn, out, special=True)


EXACT = ["x + -y is x - y", "-x + y is y - x", "x - -y is x + y", "x * -1 is -x",
         "x / -1 is -x", "-x * -y", "-x / -y", "-(x * -y) (the sigmoid VJP)", "-(-x / y)",
         "-(c * x) is (-c) * x", "-x * c is x * (-c)", "-x / c is x / (-c)"]


@pytest.mark.parametrize("name", EXACT)
def test_negation_rewrites_are_exact_on_special_values(name):
    """Not just close: bit for bit, signed zeros, infinities and denormals included (a nan
    stays a nan; IEEE does not specify the sign of a nan result)."""
    (types, body), = [r[1:3] for r in REWRITES if r[0] == name]
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-310, -2.5, 3.0])
    args = [np.repeat(special, special.size), np.tile(special, special.size)][:len(types)]
    fn = make_fn([("f64", args[0].shape)] * len(types), body)
    out = optimize(fn)
    assert len(out.body) < len(fn.body)
    want, got = interpret(fn, *args)[0], interpret(out, *args)[0]
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    assert want[~nan].tobytes() == got[~nan].tobytes(), print_function(out)


def test_simplify_alone_leaves_constants_to_fold():
    """simplify does not fold (fold does): the broadcast constant stays a broadcast."""
    fn = make_fn([D3], lambda b, x: b.mul(x, _c(b, 1.0, x)))
    filecheck(print_function(run_pass(simplify, fn)), "CHECK: return %x")


@pytest.mark.parametrize("name", EXACT)
def test_negation_rewrites_are_exact_on_integers(name):
    """Integers wrap: -INT_MIN is INT_MIN, so (-a) / (-b) is not a / b for a = INT_MIN; the
    rewrites that rely on symmetric rounding are for floats only."""
    (types, body), = [r[1:3] for r in REWRITES if r[0] == name]
    info = np.iinfo(np.int32)
    edge = np.array([info.min, info.min + 1, -2, -1, 0, 1, 2, info.max], np.int32)
    args = [np.repeat(edge, edge.size), np.tile(edge, edge.size)][:len(types)]
    fn = make_fn([("i32", args[0].shape)] * len(types), body)
    out = run_pass(optimize, fn)
    np.testing.assert_array_equal(interpret(out, *args)[0], interpret(fn, *args)[0],
                                  err_msg=print_function(out))
