"""The verifier: valid IR passes, and each broken invariant is reported with the printed op."""
import pathlib

import pytest

from ir import Builder, Function, Op, TensorType, Value
from ir.parser import parse
from ir.primitives import Primitive, get
from ir.verify import VerifyError, verify

IR_FILES = sorted((pathlib.Path(__file__).parent.parent / "ir_files").glob("*.ir"))
T = TensorType("f32", (3,))


def chain():
    """@f(%x) = tanh(exp(%x)), returning the Function and its pieces."""
    x = Value(T, "x")
    b = Builder()
    e = b.exp(x)
    e.name_hint = "e"
    t = b.tanh(e)
    return Function("f", [x], b.ops, [t]), x, e, t


def test_valid_functions_pass_and_are_returned():
    fn = chain()[0]
    assert verify(fn) is fn


@pytest.mark.parametrize("path", IR_FILES, ids=lambda p: p.name)
def test_fixtures_verify(path):
    fn = parse(path.read_text())
    assert verify(fn) is fn


def test_use_before_definition():
    fn, *_ = chain()
    fn.body.reverse()
    with pytest.raises(VerifyError, match="used before definition") as info:
        verify(fn)
    assert "tanh %e : f32[3]" in str(info.value) and "@f" in str(info.value)


def test_use_of_a_value_defined_nowhere():
    fn, x, e, t = chain()
    stray = Value(T, "stray")
    fn.body[1] = Op(get("tanh"), (stray,), (t,))
    with pytest.raises(VerifyError, match="used before definition(.|\n)*tanh %stray"):
        verify(fn)


def test_value_defined_twice():
    fn, x, e, t = chain()
    fn.body.append(Op(get("exp"), (x,), (e,)))
    with pytest.raises(VerifyError, match="defined twice(.|\n)*%e = exp %x"):
        verify(fn)


def test_op_redefining_a_parameter():
    fn, x, e, t = chain()
    fn.body[0] = Op(get("exp"), (x,), (x,))
    with pytest.raises(VerifyError, match="defined twice"):
        verify(fn)


def test_result_type_disagrees_with_the_rule():
    fn, x, e, t = chain()
    fn.body[0].results[0].type = TensorType("f64", (3,))
    with pytest.raises(VerifyError, match="disagree with the rule of 'exp'") as info:
        verify(fn)
    assert "%e = exp %x : f64[3]" in str(info.value)


def test_shape_rule_rejecting_the_operands():
    x, y = Value(T, "x"), Value(TensorType("f32", (4,)), "y")
    out = Value(T)
    fn = Function("f", [x, y], [Op(get("add"), (x, y), (out,))], [out])
    with pytest.raises(VerifyError, match="rejects the op: add needs operands of one type"):
        verify(fn)


def test_wrong_number_of_results():
    fn, x, e, t = chain()
    fn.body[0] = Op(get("exp"), (x,), (e, Value(T)))
    with pytest.raises(VerifyError, match="disagree with the rule"):
        verify(fn)


def test_function_result_not_defined():
    fn, x, e, t = chain()
    fn.results.append(Value(T, "ghost"))
    with pytest.raises(VerifyError, match="result 1 .*ghost.* is not defined in @f"):
        verify(fn)


def test_unknown_primitive():
    fn, x, e, t = chain()
    fn.body[0] = Op(Primitive("exp", lambda x: x, "unary"), (x,), (e,))
    with pytest.raises(VerifyError, match="unknown primitive"):
        verify(fn)


def test_constant_value_must_fit_its_type():
    out = Value(T)
    op = Op(get("constant"), (), (out,), {"value": (1.0, 2.0), "dtype": "f32", "shape": (3,)})
    with pytest.raises(VerifyError, match="does not fit f32\\[3\\]"):
        verify(Function("f", [], [op], [out]))


def test_unprintable_param():
    fn, x, e, t = chain()
    fn.body[0].params["junk"] = object()
    with pytest.raises(VerifyError, match="cannot be printed"):
        verify(fn)


def _cond_with_branch(branch: Function, x: Value) -> Function:
    b = Builder()
    pred = b.lt(b.reduce_sum(x, axes=(0,)), b.const(0.0, "f32"))
    ok = Function("ok", [Value(T, "a")], [], [])
    ok.results = [ok.params[0]]
    (out,) = b.emit("cond", pred, x, regions=(branch, ok))
    return Function("main", [x], b.ops, [out])


def test_region_may_not_use_a_value_of_the_enclosing_function():
    x = Value(T, "x")
    a = Value(T, "a")
    b = Builder()
    leak = b.exp(x)                         # x belongs to @main, not to the region
    fn = _cond_with_branch(Function("leaky", [a], b.ops, [leak]), x)
    with pytest.raises(VerifyError, match="regions are closed(.|\n)*exp %x") as info:
        verify(fn)
    assert "@leaky" in str(info.value)


def test_region_result_from_the_enclosing_function():
    x = Value(T, "x")
    fn = _cond_with_branch(Function("leaky", [Value(T, "a")], [], [x]), x)
    with pytest.raises(VerifyError, match="not defined.*regions are closed"):
        verify(fn)


def test_errors_inside_regions_are_found():
    x, a = Value(T, "x"), Value(T, "a")
    bad = Value(T)                          # reduce_sum over axis 0 gives f32[], not f32[3]
    op = Op(get("reduce_sum"), (a,), (bad,), {"axes": (0,)})
    fn = _cond_with_branch(Function("bad", [a], [op], [bad]), x)
    with pytest.raises(VerifyError, match="disagree with the rule of 'reduce_sum' .* in @bad"):
        verify(fn)


def test_a_region_shared_by_two_ops_is_valid():
    x = Value(T, "x")
    region = Function("id", [Value(T, "a")], [], [])
    region.results = [region.params[0]]
    b = Builder()
    pred = b.const(True, "bool")
    (one,) = b.emit("cond", pred, x, regions=(region, region))
    (two,) = b.emit("cond", pred, one, regions=(region, region))
    verify(Function("main", [x], b.ops, [two]))


def test_value_defined_twice_inside_a_region():
    a = Value(T, "a")
    e = Value(T, "e")
    ops = [Op(get("exp"), (a,), (e,)), Op(get("neg"), (a,), (e,))]
    fn = _cond_with_branch(Function("dup", [a], ops, [e]), Value(T, "x"))
    with pytest.raises(VerifyError, match="defined twice in @dup(.|\n)*%e = neg %a"):
        verify(fn)


def test_regions_on_an_op_that_takes_none():
    fn, x, e, t = chain()
    fn.body[0].regions = (Function("r", [], [], []),)
    with pytest.raises(VerifyError, match="exp takes no regions(.|\n)*%e = exp %x : f32\\[3\\] {"):
        verify(fn)


def test_constant_elements_must_be_of_the_dtype():
    out = Value(TensorType("i32", (2,)))
    op = Op(get("constant"), (), (out,), {"value": (1, 2.5), "dtype": "i32", "shape": (2,)})
    with pytest.raises(VerifyError, match="constant value 2.5 is not an i32"):
        verify(Function("f", [], [op], [out]))
    op.params["value"] = (1, 2 ** 31)
    with pytest.raises(VerifyError, match="2147483648 does not fit i32"):
        verify(Function("f", [], [op], [out]))


def test_a_control_op_with_the_wrong_number_of_results():
    a = Value(T, "a")
    fn = _cond_with_branch(Function("id", [a], [], [a]), Value(T, "x"))
    fn.body[-1].results += (Value(T),)
    with pytest.raises(VerifyError, match="result types \\['f32\\[3\\]', 'f32\\[3\\]'\\] "
                                          "disagree with the rule of 'cond'"):
        verify(fn)


def test_the_message_names_the_reason_once_and_shows_the_op():
    x, y = Value(T, "x"), Value(TensorType("f32", (4,)), "y")
    out = Value(T)
    fn = Function("f", [x, y], [Op(get("add"), (x, y), (out,))], [out])
    with pytest.raises(VerifyError) as info:
        verify(fn)
    assert str(info.value) == ("shape rule of 'add' rejects the op: add needs operands of one "
                               "type, got f32[3] and f32[4] in @f:\n  %0 = add %x, %y : f32[3]")
