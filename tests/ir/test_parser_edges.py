"""Printer and parser at their edges: unicode names, extreme numbers, signed zeros and nans,
strings that need escapes, deep nesting and huge constants, params the verifier lets through,
and the regions and constants the parser must refuse."""
import math
import struct

import numpy as np
import pytest

from ir import Builder, Function, Op, TensorType, Value
from ir.interpret import interpret
from ir.parser import ParseError, _Parser, parse
from ir.primitives import get
from ir.printer import print_function
from ir.verify import verify


def roundtrip(fn: Function) -> Function:
    text = print_function(verify(fn))
    parsed = verify(parse(text))
    assert print_function(parsed) == text
    return parsed


def constants(*values, dtype="f64") -> Function:
    b = Builder()
    return Function("c", [], b.ops, [b.const(v, dtype) for v in values])


def test_unicode_names_round_trip():
    x = Value(TensorType("f32", (2,)), "π")
    b = Builder()
    y = b.exp(x)
    y.name_hint = "ёж_2"
    z = b.neg(y)
    z.name_hint = "a b→c"                  # not an identifier: spelled with '_'
    fn = roundtrip(Function("größe", [x], b.ops, [z]))
    assert [x.name_hint, y.name_hint] == [fn.params[0].name_hint, fn.body[0].results[0].name_hint]
    assert fn.body[1].results[0].name_hint == "a_b_c" and fn.name == "größe"


def test_extreme_floats_keep_their_exact_value_and_sign():
    values = [1e-300, 5e-324, -0.0, 0.0, 1.7976931348623157e308, -2.2250738585072014e-308,
              0.1, float("inf"), float("-inf")]
    fn = roundtrip(constants(*values))
    got = [op.params["value"] for op in fn.body]
    assert [struct.pack("<d", v) for v in got] == [struct.pack("<d", v) for v in values]


def test_nan_prints_as_nan_whatever_its_sign_or_payload():
    """No primitive can observe a nan's sign or payload, so the text keeps neither."""
    negative = -float("nan")
    payload = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_DEAD_BEEF))[0]
    fn = roundtrip(constants(negative, payload, float("nan")))
    assert print_function(fn).count("{value=nan}") == 3
    assert all(math.isnan(op.params["value"]) for op in fn.body)


def test_very_large_integers():
    big = np.iinfo(np.int64)
    fn = roundtrip(constants(big.max, big.min, 0, dtype="i64"))
    assert [op.params["value"] for op in fn.body] == [big.max, big.min, 0]
    assert [int(v) for v in interpret(fn)] == [big.max, big.min, 0]
    text = print_function(fn).replace(str(big.max), str(big.max + 1))
    with pytest.raises(ParseError, match="does not fit i64"):
        parse(text)


def test_float_subclass_params_print_as_plain_floats():
    """np.float64 is a float, so the verifier accepts it; it must print as one too."""
    out = Value(TensorType("f32", ()))
    op = Op(get("constant"), (), (out,), {"value": np.float64(1.5), "dtype": "f32", "shape": ()})
    fn = roundtrip(Function("f", [], [op], [out]))
    assert fn.body[0].params["value"] == 1.5 and type(fn.body[0].params["value"]) is float


@pytest.mark.parametrize("text", ['a\nb', 'tab\tq"uote\\', "é\u2028", "\\n", "\x00\x7f"])
def test_string_params_with_any_characters_round_trip(text):
    x = Value(TensorType("f32", (2,)), "x")
    b = Builder()
    y = b.convert(x, dtype="f64")
    b.ops[0].params["dtype"] = text           # printing does not need a valid dtype
    printed = print_function(Function("f", [x], b.ops, [y]))
    assert printed.count("\n") == 4           # one line per op: escapes, not raw newlines
    token = printed.split("dtype=")[1].split("}")[0]
    assert _Parser("{dtype=" + token + "}").parse_attrs()["dtype"] == text


def test_deep_region_nesting_round_trips_and_too_deep_is_a_parse_error():
    fn = _nested_conds(40)
    roundtrip(fn)
    assert interpret(fn, True, np.ones(2, np.float32))[0].tolist() == [1.0, 1.0]
    deep = "func @f() -> (f32[1]) {\n  %0 = constant {value=" + "[" * 5000 + "1.0" + \
        "]" * 5000 + "} : f32[1]\n  return %0\n}\n"
    with pytest.raises(ParseError, match="nested too deeply") as info:
        parse(deep)
    assert info.value.line == 2


def _nested_conds(depth: int) -> Function:
    """cond(p, x) whose true branch is again such a cond, depth times; every branch is x."""
    t = TensorType("f32", (2,))
    fn = _identity(t)
    for k in range(depth):
        p, x = Value(TensorType("bool", ()), "p"), Value(t, "x")
        b = Builder()
        (out,) = b.emit("cond", p, p, x, regions=(fn, _identity(t)))
        fn = Function(f"level{k}", [p, x], b.ops, [out])
    return fn


def _identity(t: TensorType) -> Function:
    p, x = Value(TensorType("bool", ())), Value(t)
    return Function("id", [p, x], [], [x])


def test_huge_constants_round_trip():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(200, 100))
    b = Builder()
    c = b.const(table.tolist(), "f64", table.shape)
    fn = roundtrip(Function("big", [], b.ops, [c]))
    np.testing.assert_array_equal(interpret(fn)[0], table)


def test_only_control_flow_ops_may_have_regions():
    text = ("func @f(%x: f32[2]) -> (f32[2]) {\n  %0 = exp %x : f32[2] {\n"
            "    func @r() -> () {\n      return\n    }\n  }\n  return %0\n}\n")
    with pytest.raises(ParseError, match="exp takes no regions") as info:
        parse(text)
    assert (info.value.line, info.value.column) == (2, 8)


CONSTANT_ERRORS = [
    ("1.5", "i32", "1.5 is not an i32"),
    ("true", "i32", "True is not an i32"),
    ("2147483648", "i32", "2147483648 does not fit i32"),
    ("2", "bool", "2 is not a bool"),
    ("[1, 2.5]", "i64", "2.5 is not an i64"),
    ('"a"', "f32", "neither a scalar nor a nested list"),
    ("1" + "0" * 400, "f64", "does not fit f64"),
]


@pytest.mark.parametrize("value, dtype, msg", CONSTANT_ERRORS, ids=[c[2] for c in CONSTANT_ERRORS])
def test_constant_values_must_be_of_their_dtype(value, dtype, msg):
    shape = "2" if value.startswith("[") else ""
    text = (f"func @f() -> ({dtype}[{shape}]) {{\n  %0 = constant {{value={value}}} : "
            f"{dtype}[{shape}]\n  return %0\n}}\n")
    with pytest.raises(ParseError, match="constant") as info:
        parse(text)
    assert msg in str(info.value)


def test_ints_and_bools_are_valid_float_constants():
    b = Builder()
    c = b.emit("constant", value=(1, True, 2.5), dtype="f32", shape=(3,))
    fn = roundtrip(Function("f", [], b.ops, [c]))
    assert interpret(fn)[0].tolist() == [1.0, 1.0, 2.5]
