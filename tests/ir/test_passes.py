"""dce, cse, simplify, fold and optimize: the expected text after each pass (FileCheck), value
identity, no mutation of the input, and agreement with the reference interpreter."""
import numpy as np
import pytest
from hypothesis import given, settings

from ir.interpret import interpret
from ir.parser import parse
from ir.passes import cse, dce, fold, optimize, simplify
from ir.printer import print_function
from tests.filecheck import filecheck
from tests.ir.helpers import assert_same_results, make_fn, run_pass
from tests.ir.test_ir_roundtrip import IR_FILES, elementwise_programs

PASSES = [dce, cse, simplify, fold, optimize]


F3 = ("f32", (3,))
D3 = ("f64", (3,))
I3 = ("i32", (3,))


# ---- dce ---------------------------------------------------------------------------------

def test_dce_drops_unused_ops_and_keeps_result_values():
    def body(b, x):
        b.exp(x)
        b.reduce_sum(b.log(x), axes=(0,))
        return b.tanh(x)
    fn = make_fn([F3], body)
    out = run_pass(dce, fn)
    filecheck(print_function(out), """
        CHECK-LABEL: func @f(%x: f32[3])
        CHECK-NEXT:  %0 = tanh %x
        CHECK-NEXT:  return %0
    """)
    assert out.body[0].results[0] is fn.body[3].results[0]


def test_dce_recurses_into_regions_and_drops_unused_control_flow():
    def branch(b, a):
        b.exp(a)                       # dead inside the region
        return b.neg(a)
    t = make_fn([F3], branch, hints="a")
    f = make_fn([F3], lambda b, a: b.sin(a), hints="a")

    def body(b, x, p):
        b.emit("cond", p, x, regions=(f, t))          # unused: dropped whole
        return b.emit("cond", p, x, regions=(t, f))
    out = run_pass(dce, make_fn([F3, ("bool", ())], body, hints="xp"))
    filecheck(print_function(out), """
        CHECK:      = cond %p, %x
        CHECK-NEXT: func @f(%a: f32[3])
        CHECK-NEXT: %0 = neg %a
        CHECK-NOT:  exp
        CHECK:      func @f(%a: f32[3])
        CHECK-NEXT: sin %a
        CHECK-NOT:  cond
    """)
    assert print_function(t).count("exp") == 1            # the region itself is untouched


# ---- cse ---------------------------------------------------------------------------------

def test_cse_merges_repeated_ops_and_renames_later_uses_and_results():
    def body(b, x, y):
        e1, e2 = b.exp(x), b.exp(x)
        return b.add(b.tanh(e1), b.tanh(e2)), e2, b.add(x, y), b.add(y, x), b.sub(x, y), \
            b.sub(y, x)
    fn = make_fn([F3, F3], body)
    out = run_pass(cse, fn)
    filecheck(print_function(out), """
        CHECK:      %0 = exp %x
        CHECK-NEXT: %1 = tanh %0
        CHECK-NEXT: %2 = add %1, %1
        CHECK-NEXT: %3 = add %x, %y
        CHECK-NEXT: %4 = sub %x, %y
        CHECK-NEXT: %5 = sub %y, %x
        CHECK-NEXT: return %2, %0, %3, %3, %4, %5
    """)
    assert out.results[1] is fn.body[0].results[0]
    assert_same_results(fn, out)


def test_cse_merges_equal_constants_only():
    def body(b):
        return (b.const(1.0, "f32", (2,)), b.const(1.0, "f32", (2,)), b.const(1.0, "f64", (2,)),
                b.const(1.0, "f32", (3,)), b.const(0.0, "f32"), b.const(-0.0, "f32"),
                b.const(float("nan"), "f32"), b.const(float("nan"), "f32"),
                b.const([1.0, 2.0], "f32", (2,)), b.const([1.0, 2.0], "f32", (2,)))
    out = run_pass(cse, make_fn([], body))
    assert len(out.body) == 7
    r = out.results
    assert r[0] is r[1] and r[6] is r[7] and r[8] is r[9]
    assert len({id(v) for v in r[1:6]}) == 5            # dtype, shape, sign of zero differ


def test_cse_keeps_ops_with_regions_and_works_inside_them():
    t = make_fn([F3], lambda b, a: b.add(b.exp(a), b.exp(a)), hints="a")

    def body(b, x, p):
        return b.emit("cond", p, x, regions=(t, t))[0], b.emit("cond", p, x, regions=(t, t))[0]
    out = run_pass(cse, make_fn([F3, ("bool", ())], body, hints="xp"))
    assert [op.prim.name for op in out.body] == ["cond", "cond"]
    for region in out.body[0].regions:
        filecheck(print_function(region), """
            CHECK:      %0 = exp %a
            CHECK-NEXT: %1 = add %0, %0
            CHECK-NEXT: return %1
        """)


def test_cse_tells_params_apart():
    out = run_pass(cse, make_fn([("f32", (2, 3))], lambda b, x: (
        b.reduce_sum(x, axes=(0,)), b.reduce_sum(x, axes=(1,)), b.reduce_sum(x, axes=(1,)))))
    assert len(out.body) == 2 and out.results[1] is out.results[2]


# ---- simplify ----------------------------------------------------------------------------

def _zeros(b, x):
    return b.broadcast_to(b.const(0.0 if x.dtype[0] == "f" else 0, x.dtype), x.shape)


def _ones(b, x):
    return b.const(1.0 if x.dtype[0] == "f" else 1, x.dtype, x.shape)


# (id, param types, body, FileCheck text for the simplified function)
SIMPLIFY = [
    ("x+0", [F3], lambda b, x: b.add(x, _zeros(b, x)), "CHECK-NOT: add\nCHECK: return %x"),
    ("0+x", [I3], lambda b, x: b.add(_zeros(b, x), x), "CHECK-NOT: add\nCHECK: return %x"),
    ("x-0", [D3], lambda b, x: b.sub(x, _zeros(b, x)), "CHECK-NOT: sub\nCHECK: return %x"),
    ("0-x kept", [D3], lambda b, x: b.sub(_zeros(b, x), x), "CHECK: sub"),
    ("x*1", [F3], lambda b, x: b.mul(x, _ones(b, x)), "CHECK-NOT: mul\nCHECK: return %x"),
    ("1*x", [F3], lambda b, x: b.mul(_ones(b, x), x), "CHECK-NOT: mul\nCHECK: return %x"),
    ("float x*0 kept", [F3], lambda b, x: b.mul(x, _zeros(b, x)), "CHECK: mul %x"),
    ("int x*0", [I3], lambda b, x: b.mul(x, _zeros(b, x)),
     "CHECK: %0 = constant {value=0}\nCHECK: %1 = broadcast_in_dim %0\nCHECK-NOT: mul\n"
     "CHECK: return %1"),
    ("x/1", [F3], lambda b, x: b.div(x, _ones(b, x)), "CHECK-NOT: div\nCHECK: return %x"),
    ("1/x kept", [F3], lambda b, x: b.div(_ones(b, x), x), "CHECK: div"),
    ("neg neg", [F3], lambda b, x: b.neg(b.neg(x)), "CHECK: return %x"),
    ("not not", [("bool", (3,))], lambda b, x: b.logical_not(b.logical_not(x)),
     "CHECK: return %x"),
    ("x**1", [F3], lambda b, x: b.integer_pow(x, n=1), "CHECK-NOT: integer_pow\nCHECK: return %x"),
    ("x**0", [F3], lambda b, x: b.integer_pow(x, n=0),
     "CHECK: %0 = constant {value=1.0} : f32[3]\nCHECK-NOT: integer_pow\nCHECK: return %0"),
    ("pow 2.0", [F3], lambda b, x: b.pow(x, b.broadcast_to(b.const(2.0, "f32"), (3,))),
     "CHECK: %0 = integer_pow %x {n=2} : f32[3]\nCHECK-NOT: pow %x\nCHECK: return %0"),
    ("pow 1.0", [F3], lambda b, x: b.pow(x, _ones(b, x)), "CHECK-NOT: pow\nCHECK: return %x"),
    ("pow 3.0 kept", [F3], lambda b, x: b.pow(x, b.const(3.0, "f32", (3,))), "CHECK: pow %x"),
    ("broadcast same shape", [F3], lambda b, x: b.broadcast_in_dim(x, shape=(3,), dims=(0,)),
     "CHECK: return %x"),
    ("reshape same shape", [F3], lambda b, x: b.reshape(x, shape=(3,)), "CHECK: return %x"),
    ("reshape reshape", [("f32", (2, 3))],
     lambda b, x: b.reshape(b.reshape(x, shape=(6,)), shape=(3, 2)),
     "CHECK: %0 = reshape %x {shape=[3, 2]}\nCHECK-NEXT: return %0"),
    ("reshape back", [("f32", (2, 3))],
     lambda b, x: b.reshape(b.reshape(x, shape=(6,)), shape=(2, 3)), "CHECK: return %x"),
    ("transpose identity", [("f32", (2, 3))], lambda b, x: b.transpose(x, perm=(0, 1)),
     "CHECK: return %x"),
    ("transpose transpose", [("f32", (2, 3, 4))],
     lambda b, x: b.transpose(b.transpose(x, perm=(1, 2, 0)), perm=(1, 2, 0)),
     "CHECK: %0 = transpose %x {perm=[2, 0, 1]} : f32[4,2,3]\nCHECK-NEXT: return %0"),
    ("transpose back", [("f32", (2, 3, 4))],
     lambda b, x: b.transpose(b.transpose(x, perm=(1, 2, 0)), perm=(2, 0, 1)),
     "CHECK: return %x"),
    ("convert same", [F3], lambda b, x: b.convert(x, dtype="f32"), "CHECK: return %x"),
    ("convert other kept", [F3], lambda b, x: b.convert(x, dtype="f64"), "CHECK: convert %x"),
    ("select true", [F3, F3], lambda b, x, y: b.select(
        b.broadcast_to(b.const(True, "bool"), (3,)), x, y), "CHECK: return %x"),
    ("select false", [F3, F3], lambda b, x, y: b.select(
        b.const(False, "bool", (3,)), x, y), "CHECK: return %y"),
    ("select same", [F3, F3], lambda b, x, y: b.select(b.lt(x, y), y, y), "CHECK: return %y"),
    ("select unknown kept", [F3, F3], lambda b, x, y: b.select(b.lt(x, y), x, y),
     "CHECK: select"),
]


@pytest.mark.parametrize("types, body, checks", [s[1:] for s in SIMPLIFY],
                         ids=[s[0] for s in SIMPLIFY])
def test_simplify(types, body, checks):
    fn = make_fn(types, body)
    out = dce(run_pass(simplify, fn))
    filecheck(print_function(out), checks)
    assert_same_results(fn, out, special=True)
    assert_same_results(fn, out)


def test_simplify_rewrites_in_place_keeping_the_result_value():
    fn = make_fn([F3], lambda b, x: b.pow(x, b.const(2.0, "f32", (3,))))
    fn.results[0].name_hint = "sq"
    out = run_pass(simplify, fn)
    (sq_op,) = [op for op in out.body if op.prim.name == "integer_pow"]
    assert sq_op.results[0] is fn.results[0] is out.results[0]
    assert "%sq = integer_pow %x {n=2}" in print_function(out)


def test_simplify_chains_through_replaced_values_and_regions():
    def inner(b, a):
        return b.neg(b.neg(b.mul(a, _ones(b, a))))
    region = make_fn([F3], inner, hints="a")

    def body(b, x, p):
        y = b.add(b.transpose(b.transpose(x, perm=(0,)), perm=(0,)), _zeros(b, x))
        return b.emit("cond", p, y, regions=(region, region))[0]
    fn = make_fn([F3, ("bool", ())], body, hints="xp")
    out = dce(run_pass(simplify, fn))
    filecheck(print_function(out), """
        CHECK:      %0 = cond %p, %x : f32[3] {
        CHECK-NEXT: func @f(%a: f32[3]) -> (f32[3]) {
        CHECK-NEXT: return %a
    """)
    assert_same_results(fn, out)


# ---- fold --------------------------------------------------------------------------------

def test_fold_computes_constants_with_ieee_semantics():
    def body(b):
        one, zero = b.const(1.0, "f32"), b.const(0.0, "f32")
        return (b.div(one, zero), b.div(zero, zero), b.sqrt(b.neg(one)),
                b.add(b.const(2.0, "f64", (2, 2)), b.const(3.0, "f64", (2, 2))),
                b.lt(one, zero), b.neg(zero))
    fn = make_fn([], body)
    out = dce(run_pass(fold, fn))
    filecheck(print_function(out), """
        CHECK-NOT:  div
        CHECK:      = constant {value=inf} : f32[]
        CHECK-NEXT: = constant {value=nan} : f32[]
        CHECK:      = constant {value=nan} : f32[]
        CHECK-NEXT: = constant {value=5.0} : f64[2,2]
        CHECK-NEXT: = constant {value=false} : bool[]
        CHECK-NEXT: = constant {value=-0.0} : f32[]
    """)
    assert_same_results(fn, out)


def test_fold_rounds_in_the_result_dtype():
    fn = make_fn([], lambda b: (b.add(b.const(0.1, "f32"), b.const(0.2, "f32")),
                                b.convert(b.const(0.1, "f64"), dtype="f32"),
                                b.convert(b.const(2.7, "f64"), dtype="i32"),
                                b.div(b.const(-7, "i32"), b.const(2, "i32"))))
    out = dce(run_pass(fold, fn))
    values = [op.params["value"] for op in out.body]
    assert values[0] == float(np.float32(0.1) + np.float32(0.2))
    assert values[1] == float(np.float32(0.1)) != 0.1
    assert values[2:] == [2, -3]                         # truncation, as the interpreter does
    assert_same_results(fn, out)


def test_fold_means_what_running_means_where_numpy_alone_would_not():
    """Folding uses the interpreter's rules: saturating float -> int conversion (nan is 0),
    integer division truncating, and by zero giving 0."""
    def body(b):
        floats = b.const([float("nan"), float("inf"), -1e20, -2.5], "f64", (4,))
        ints = b.const([7, -7, 5], "i32", (3,))
        return b.convert(floats, dtype="i32"), b.div(ints, b.const([2, 2, 0], "i32", (3,)))
    out = dce(run_pass(fold, make_fn([], body)))
    assert [op.prim.name for op in out.body] == ["constant"] * 2
    i32 = np.iinfo(np.int32)
    assert [op.params["value"] for op in out.body] == [(0, i32.max, i32.min, -2), (3, -3, 0)]


def test_fold_makes_nested_constants_for_small_non_uniform_results():
    fn = make_fn([], lambda b: b.mul(b.const([[1.0, 2.0], [3.0, 4.0]], "f64", (2, 2)),
                                     b.const(2.0, "f64", (2, 2))))
    out = dce(run_pass(fold, fn))
    filecheck(print_function(out), """
        CHECK:      %0 = constant {value=[[2.0, 4.0], [6.0, 8.0]]} : f64[2,2]
        CHECK-NEXT: return %0
    """)
    assert out.results[0] is fn.results[0]              # same Value, now a constant
    roundtrip = parse(print_function(out))
    np.testing.assert_array_equal(interpret(roundtrip)[0], interpret(fn)[0])


def test_fold_leaves_large_results_and_non_constant_operands():
    def body(b, x):
        big = b.exp(b.const([float(i) for i in range(17)], "f32", (17,)))
        return big, b.add(x, b.const(1.0, "f32", (3,)))
    fn = make_fn([F3], body)
    out = run_pass(fold, fn)
    assert [op.prim.name for op in out.body] == [op.prim.name for op in fn.body]


def test_fold_works_inside_regions_and_keeps_locs():
    body = make_fn([F3], lambda b, a: b.add(a, b.exp(b.const(0.0, "f32", (3,)))), hints="a")
    body.body[1].loc = "m.py:3"

    def outer(b, x, p):
        return b.emit("cond", p, x, regions=(body, body))[0]
    out = run_pass(fold, make_fn([F3, ("bool", ())], outer, hints="xp"))
    region = out.body[0].regions[0]
    assert [(op.prim.name, op.loc) for op in region.body][:2] == [("constant", None),
                                                                  ("constant", "m.py:3")]
    assert region.body[1].params["value"] == 1.0


# ---- optimize ----------------------------------------------------------------------------

def test_optimize_reaches_a_fixed_point():
    def body(b, x):
        two = b.add(b.const(1.0, "f32"), b.const(1.0, "f32"))        # fold -> 2.0
        p = b.pow(x, b.broadcast_to(two, (3,)))                       # simplify -> integer_pow
        q = b.pow(x, b.broadcast_to(b.const(2.0, "f32"), (3,)))       # cse with p
        s = b.mul(b.add(p, q), _ones(b, x))
        return b.neg(b.neg(s))
    fn = make_fn([F3], body)
    out = run_pass(optimize, fn)
    filecheck(print_function(out), """
        CHECK-LABEL: func @f(%x: f32[3]) -> (f32[3]) {
        CHECK-NEXT:  %0 = integer_pow %x {n=2} : f32[3]
        CHECK-NEXT:  %1 = add %0, %0 : f32[3]
        CHECK-NEXT:  return %1
    """)
    assert print_function(optimize(out)) == print_function(out)
    assert_same_results(fn, out)


@pytest.mark.parametrize("path", IR_FILES, ids=lambda p: p.name)
def test_every_pass_keeps_fixtures_valid_and_equivalent(path):
    fn = parse(path.read_text())
    for p in PASSES:
        out = run_pass(p, fn)
        assert print_function(parse(print_function(out))) == print_function(out)
        assert_same_results(fn, out)


@settings(max_examples=40, deadline=None)
@given(elementwise_programs())
def test_optimize_agrees_with_the_interpreter_on_random_programs(fn):
    out = run_pass(optimize, fn)
    assert len(out.body) <= len(fn.body)
    assert print_function(parse(print_function(out))) == print_function(out)
    assert_same_results(fn, out, signed_zeros=False)
    assert_same_results(fn, out, special=True, signed_zeros=False)


@pytest.mark.parametrize("p", [dce, cse, simplify, fold], ids=lambda p: p.__name__)
def test_passes_keep_shared_regions_shared(p):
    region = make_fn([F3], lambda b, a: b.neg(b.neg(a)), hints="a")

    def body(b, x, q):
        (one,) = b.emit("cond", q, x, regions=(region, region))
        return b.emit("cond", q, one, regions=(region, region))[0]
    out = run_pass(p, make_fn([F3, ("bool", ())], body, hints="xq"))
    first, second = out.body
    assert first.regions[0] is first.regions[1] is second.regions[0] is second.regions[1]
    assert first.regions[0] is not region
