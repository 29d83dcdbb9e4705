"""Printer/parser round trip: every primitive, every tests/ir_files fixture, random programs;
parse details (names, locs, params), FileCheck on printed IR, and parse errors."""
import math
import pathlib
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from ir import PRIMITIVES, Builder, Function, TensorType, Value, walk_ops
from ir.parser import ParseError, _Parser, parse
from ir.printer import print_function
from ir.verify import verify
from tests.filecheck import filecheck
from tests.prim_samples import SAMPLES

IR_FILES = sorted((pathlib.Path(__file__).parent.parent / "ir_files").glob("*.ir"))


def make_fn(param_types, body, name="f", hints=None, loc="case.py:7") -> Function:
    """@name with params of param_types ((dtype, shape) pairs); body(b, *params) -> result(s)."""
    hints = hints or [None] * len(param_types)
    params = [Value(TensorType(d, s), h) for (d, s), h in zip(param_types, hints)]
    b = Builder(loc)
    out = body(b, *params)
    results = list(out) if isinstance(out, (list, tuple)) else [out]
    return Function(name, params, b.ops, results)


def _fixture(name: str) -> str:
    return next(p for p in IR_FILES if p.name == name).read_text()


def roundtrip(fn: Function) -> str:
    text = print_function(fn)
    again = print_function(parse(text))
    assert again == text, f"round trip changed the text:\n{text}\n---\n{again}"
    return text


F = ("f32", (2, 3))


# ---- every primitive: the compiled cases of its sample row, in each of their dtypes -----------

@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_every_primitive_round_trips(name):
    row = SAMPLES.get(name)
    assert row is not None and row.compiled, (f"primitive '{name}' has no sample row: add one "
                                              "to tests/prim_samples")
    for case in row.compiled:
        for dtype in case.dtypes:
            fn = verify(case.build(dtype))
            parsed = parse(roundtrip(fn))
            assert name in {op.prim.name for op in walk_ops(parsed)}
            assert [r.type for r in parsed.results] == [r.type for r in fn.results]


def test_special_constants_and_locations_round_trip():
    fn = verify(make_fn([("f32", (2,))], lambda b, x: (
        b.mul(x, b.const(float("-inf"), "f32", (2,))),
        b.const([[1.5, float("nan")], [-0.0, 1e300]], "f64", (2, 2)), b.const(True, "bool", (3,)))))
    text = roundtrip(fn)
    assert "case.py:7" in text and "-inf" in text and "nan" in text and "-0.0" in text


@pytest.mark.parametrize("path", IR_FILES, ids=lambda p: p.name)
def test_ir_file_is_canonical_and_round_trips(path):
    text = path.read_text()
    body = "".join(line + "\n" for line in text.splitlines()
                   if line.strip() and not line.lstrip().startswith("#"))
    fn = verify(parse(text))
    assert print_function(fn) == body
    roundtrip(fn)


def test_fixtures_cover_the_brief():
    names = {op.prim.name for p in IR_FILES for op in walk_ops(parse(p.read_text()))}
    want = {"dot_general", "reduce_sum", "broadcast_in_dim", "slice", "pad", "concatenate",
            "gather", "scatter_add", "scan", "cond", "tanh"}
    assert want <= names


# ---- random elementwise programs -------------------------------------------------------

UNARY = ("exp", "log", "tanh", "neg", "abs", "sqrt", "logistic", "sin")
BINARY = ("add", "sub", "mul", "div", "max", "min", "pow")
HINTS = st.one_of(st.none(), st.sampled_from(["x", "y", "x_1", "tmp", "a.b", "1st", "v1st", "0"]))
LOCS = st.one_of(st.none(), st.sampled_from(["m.py:1", "dir/a b.py:22", "x#y:3"]))


@st.composite
def elementwise_programs(draw) -> Function:
    dtype = draw(st.sampled_from(["f32", "f64"]))
    t = TensorType(dtype, draw(st.sampled_from([(), (3,), (2, 3)])))
    params = [Value(t, draw(HINTS)) for _ in range(draw(st.integers(1, 3)))]
    b = Builder()
    values = list(params)
    for _ in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(["unary", "binary", "binary", "const", "select"]))
        b.loc = draw(LOCS)
        pick = st.sampled_from(values)
        if kind == "unary":
            v = b.emit(draw(st.sampled_from(UNARY)), draw(pick))
        elif kind == "binary":
            v = b.emit(draw(st.sampled_from(BINARY)), draw(pick), draw(pick))
        elif kind == "const":
            value = draw(st.sampled_from([0.0, 1.0, 2.0, -0.0]) | st.floats(width=32))
            v = b.const(value, dtype, t.shape)
        else:
            v = b.select(b.lt(draw(pick), draw(pick)), draw(pick), draw(pick))
        v.name_hint = draw(HINTS)
        values.append(v)
    results = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3))
    return Function("rand", params, b.ops, results)


@settings(max_examples=60, deadline=None)
@given(elementwise_programs())
def test_random_elementwise_programs_round_trip(fn):
    text = roundtrip(verify(fn))
    parsed = verify(parse(text))
    assert [op.loc for op in parsed.body] == [op.loc for op in fn.body]
    assert len(parsed.body) == len(fn.body)


# ---- what parsing produces -------------------------------------------------------------

def test_names_become_hints_and_numbers_do_not():
    fn = parse("func @f(%x: f32[2], %0: f32[2]) -> (f32[2]) {\n"
               "  %s_1 = add %x, %0 : f32[2]\n  %7 = exp %s_1 : f32[2]\n  return %7\n}\n")
    assert [p.name_hint for p in fn.params] == ["x", None]
    assert [op.results[0].name_hint for op in fn.body] == ["s_1", None]
    assert fn.body[0].inputs == tuple(fn.params)
    assert fn.body[1].inputs[0] is fn.body[0].results[0]
    assert fn.results[0] is fn.body[1].results[0]


def test_param_syntax_parses_to_python_values():
    attrs = _Parser('{a=[1, [2.5, -inf], []], s="q\\"#\\\\", t=true, f=false, u=nan, i=-3, '
                    'e=1e-05}').parse_attrs()
    assert attrs["a"] == (1, (2.5, -math.inf), ())
    assert attrs["s"] == 'q"#\\'
    assert (attrs["t"], attrs["f"], attrs["i"], attrs["e"]) == (True, False, -3, 1e-05)
    assert math.isnan(attrs["u"])
    assert [type(attrs[k]) for k in "tfie"] == [bool, bool, int, float]


def test_string_params_round_trip():
    fn = make_fn([F], lambda b, x: b.convert(x, dtype="f64"))
    text = print_function(fn)
    assert 'dtype="f64"' in text
    op = parse(text).body[0]
    assert op.params == {"dtype": "f64"} and op.loc == "case.py:7"


def test_float_params_keep_their_kind_and_value():
    fn = make_fn([], lambda b: (b.const(float("nan"), "f64"), b.const(float("inf"), "f64"),
                                b.const(float("-inf"), "f64"), b.const(-0.0, "f64"),
                                b.const(1e-45, "f64"), b.const(3, "i64"), b.const(False, "bool")))
    values = [op.params["value"] for op in parse(print_function(fn)).body]
    assert math.isnan(values[0]) and values[1:3] == [math.inf, -math.inf]
    assert math.copysign(1.0, values[3]) == -1.0 and values[4] == 1e-45
    assert [type(v) for v in values] == [float] * 5 + [int, bool]


def test_implied_params_of_constant_and_iota_come_from_the_type():
    fn = parse("func @f() -> (f32[2,2], i32[3]) {\n  %0 = constant {value=[[1.0, 2.0], "
               "[3.0, 4.0]]} : f32[2,2]\n  %1 = iota {dim=0} : i32[3]\n  return %0, %1\n}\n")
    const, iota = fn.body
    assert const.params == {"value": ((1.0, 2.0), (3.0, 4.0)), "dtype": "f32", "shape": (2, 2)}
    assert iota.params == {"dim": 0, "dtype": "i32", "shape": (3,)}


def test_regions_have_their_own_scope_and_locs():
    fn = parse(_fixture("scan.ir"))
    (scan,) = fn.body
    (body,) = scan.regions
    assert scan.loc == "rnn.py:9" and body.body[0].loc == "rnn.py:5"
    assert [p.name_hint for p in body.params] == ["c", "x"]
    assert body.body[0].inputs == tuple(body.params)
    assert scan.params == {"length": 4, "num_carry": 1, "reverse": False}


def test_comments_and_blank_lines_are_skipped():
    text = ("# header\n\nfunc @f(%x: f32[]) -> (f32[]) {\n  # a note\n\n"
            "  %y = exp %x : f32[]   #  loc with spaces.py:3  \n  return %y\n}\n# trailer\n")
    fn = parse(text)
    assert fn.body[0].loc == " loc with spaces.py:3"
    assert len(fn.body) == 1


def test_zero_result_ops_empty_functions_and_odd_function_names():
    empty = make_fn([F], lambda b, a: [], name="nothing")

    def body(b, p, x):
        assert b.emit("cond", p, x, regions=(empty, empty)) == ()
        return []
    fn = make_fn([("bool", ()), F], body, name="<lambda>")
    text = roundtrip(fn)
    filecheck(text, """
        CHECK-LABEL: func @<lambda>(%0: bool[], %1: f32[2,3]) -> () {
        CHECK-NEXT:  = cond %0, %1 :  {
        CHECK-NEXT:  func @nothing(%0: f32[2,3]) -> () {
        CHECK-NEXT:  return
    """)
    parsed = parse(text)
    assert parsed.name == "<lambda>" and parsed.body[0].results == ()
    assert [r.name for r in parsed.body[0].regions] == ["nothing", "nothing"]
    roundtrip(Function("g", [], [], []))


def test_importing_the_parser_imports_nothing_outside_ir():
    code = ("import sys, ir.parser\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('tracer', 'runtime', 'codegen', 'gradjit', 'tests')]\nprint(bad)")
    root = pathlib.Path(__file__).parent.parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# ---- FileCheck ----------------------------------------------------------------------------

def test_printed_ir_filecheck():
    fn = make_fn([F, F], lambda b, x, y: b.reduce_sum(b.mul(x, y), axes=(0, 1)), name="loss",
                 hints=["x", "y"], loc="model.py:4")
    fn.body[0].results[0].name_hint = "m"
    filecheck(print_function(fn), """
        CHECK-LABEL: func @loss(%x: f32[2,3], %y: f32[2,3]) -> (f32[]) {
        CHECK-NEXT:  %m = mul %x, %y : f32[2,3]
        CHECK:       # model.py:4
        CHECK-NEXT:  %0 = reduce_sum %m {axes=[0, 1]} : f32[]
        CHECK-NOT:   mul
        CHECK-NEXT:  return %0
    """)


def test_filecheck_reports_a_failure_with_the_whole_text():
    text = "a = 1\nb = 2\nc = 3\n"
    with pytest.raises(AssertionError, match="(?s)CHECK-NEXT.*c = 3.*--- text ---\na = 1"):
        filecheck(text, "CHECK: a = 1\nCHECK-NEXT: c = 3")
    with pytest.raises(AssertionError, match="CHECK-NOT: 'b'"):
        filecheck(text, "CHECK: a\nCHECK-NOT: b\nCHECK: c")
    with pytest.raises(AssertionError, match="CHECK-NOT: 'c'"):
        filecheck(text, "CHECK: b\nCHECK-NOT: c")
    with pytest.raises(AssertionError, match="not found"):
        filecheck(text, "CHECK: c\nCHECK: a")
    with pytest.raises(ValueError, match="malformed"):
        filecheck(text, "CHECK-NXT: a")


# ---- parse errors -------------------------------------------------------------------------

GOOD = "func @f(%x: f32[3]) -> (f32[3]) {\n  %0 = exp %x : f32[3]\n  return %0\n}\n"

# (broken text, message fragment, line, the token the caret must point at)
ERRORS = [
    (GOOD.replace("exp", "expo"), "unknown primitive 'expo'", 2, "expo"),
    (GOOD.replace("exp %x", "exp %z"), "undefined value %z", 2, "%z"),
    (GOOD.replace("%0 = exp", "%x = exp"), "redefined value %x", 2, "%x ="),
    (GOOD.replace(": f32[3]\n  return", ": f16[3]\n  return"), "bad type", 2, "f16"),
    (GOOD.replace(": f32[3]\n  return", ": f32[4]\n  return"), "type mismatch", 2, "f32[4]"),
    (GOOD.replace(": f32[3]\n  return", ": f32[-3]\n  return"), "bad type", 2, "-3"),
    (GOOD.replace("  return %0\n", ""), "missing return", 3, "}"),
    (GOOD.replace("exp %x", "exp %x %x"), "expected ':'", 2, "%x :"),
    (GOOD + "garbage\n", "unexpected 'garbage' after the function", 5, "garbage"),
    (GOOD.replace("exp %x", "exp $x"), "unexpected character '$'", 2, "$"),
    (GOOD.replace("-> (f32[3])", "-> (f64[3])"), "do not match the declared", 3, "return"),
    (GOOD.replace("exp %x", "add %x"), "add takes 2 operands, got 1", 2, "add"),
    (GOOD.replace("exp %x :", "exp %x {n=} :"), "bad parameter value '}'", 2, "} :"),
    ("", "expected 'func'", 1, ""),
    (GOOD[:-3], "expected '}', found end of input", 3, ""),
]


@pytest.mark.parametrize("text, msg, line, token", ERRORS, ids=[e[1] for e in ERRORS])
def test_parse_error_names_line_and_column(text, msg, line, token):
    with pytest.raises(ParseError) as info:
        parse(text)
    err = info.value
    source = (text.split("\n") + [""])[line - 1]
    col = source.index(token) + 1 if token else len(source) + 1
    assert msg in err.msg
    assert (err.line, err.column) == (line, col)
    assert f"line {line}, column {col}" in str(err)
    assert f"\n  {source}\n  {' ' * (col - 1)}^" in str(err)


def test_parse_error_points_at_the_exact_column():
    text = "func @f(%x: f32[3]) -> (f32[3]) {\n  %0 = frobnicate %x : f32[3]\n  return %0\n}\n"
    with pytest.raises(ParseError) as info:
        parse(text)
    assert str(info.value) == ("line 2, column 8: unknown primitive 'frobnicate'\n"
                               "    %0 = frobnicate %x : f32[3]\n"
                               "         ^")


def test_regions_are_closed_when_parsing():
    text = _fixture("cond.ir").replace("%0 = exp %x", "%0 = exp %total")
    with pytest.raises(ParseError, match="undefined value %total") as info:
        parse(text)
    assert info.value.line == text.split("\n").index("      %0 = exp %total : f32[3]") + 1


def test_constant_value_must_fit_its_type():
    with pytest.raises(ParseError, match="does not fit f32\\[3\\]"):
        parse("func @f() -> (f32[3]) {\n  %0 = constant {value=[1.0, 2.0]} : f32[3]\n"
              "  return %0\n}\n")
    with pytest.raises(ParseError, match="ragged"):
        parse("func @f() -> (f32[2,2]) {\n  %0 = constant {value=[[1.0], [2.0, 3.0]]} : "
              "f32[2,2]\n  return %0\n}\n")
