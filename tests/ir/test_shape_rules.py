"""Shape rules at their edges: what each primitive accepts (empty ranges, size-0 dims, size-1
stretching) and what it rejects, with errors that name the primitive, the operand types and
the op. Through Builder.emit, the way the tracer, autodiff and the passes build IR."""
import pytest

from ir import Builder, Function, Primitive, TensorType, Value
from ir.primitives import ShapeError


def T(spec: str) -> TensorType:
    """'f32[2,3]' -> TensorType('f32', (2, 3))."""
    dtype, dims = spec[:-1].split("[")
    return TensorType(dtype, tuple(int(d) for d in dims.split(",") if d))


def emit(prim: str, *specs: str, regions=(), **params):
    """The result types of prim applied to fresh values of the given types."""
    b = Builder()
    out = b.emit(prim, *(Value(T(s)) for s in specs), regions=regions, **params)
    outs = out if isinstance(out, tuple) else (out,)
    return [str(v.type) for v in outs]


def _region(in_specs, out_specs) -> Function:
    """A closed Function of the given types, returning constants (or its own params)."""
    params = [Value(T(s)) for s in in_specs]
    b = Builder()
    results = []
    for s in out_specs:
        t = T(s)
        same = [p for p in params if p.type == t]
        results.append(same[0] if same else b.const(0, t.dtype, t.shape))
    return Function("r", params, b.ops, results)


# (prim, operand types, params, result types): inputs at the edges that are valid
ACCEPTED = [
    ("broadcast_in_dim", ["f32[1,3]"], dict(shape=(4, 2, 3), dims=(1, 2)), ["f32[4,2,3]"]),
    ("broadcast_in_dim", ["f32[]"], dict(shape=(0, 2), dims=()), ["f32[0,2]"]),
    ("broadcast_in_dim", ["f32[1]"], dict(shape=(0,), dims=(0,)), ["f32[0]"]),
    ("slice", ["f32[5]"], dict(start=(2,), limit=(2,), stride=(1,)), ["f32[0]"]),
    ("slice", ["f32[5]"], dict(start=(5,), limit=(5,), stride=(3,)), ["f32[0]"]),
    ("slice", ["f32[0,4]"], dict(start=(0, 1), limit=(0, 4), stride=(1, 2)), ["f32[0,2]"]),
    ("slice", ["f32[7]"], dict(start=(1,), limit=(7,), stride=(3,)), ["f32[2]"]),
    ("pad", ["f32[0,2]"], dict(lo=(1, 0), hi=(2, 0), interior=(5, 1)), ["f32[3,3]"]),
    ("pad", ["f32[1]"], dict(lo=(0,), hi=(0,), interior=(4,)), ["f32[1]"]),
    ("concatenate", ["f32[2,0]", "f32[2,3]"], dict(axis=1), ["f32[2,3]"]),
    ("concatenate", ["i32[3]"], dict(axis=0), ["i32[3]"]),
    ("reshape", ["f32[0,3]"], dict(shape=(3, 0, 5)), ["f32[3,0,5]"]),
    ("reduce_sum", ["f32[2,0,3]"], dict(axes=(1,)), ["f32[2,3]"]),
    ("reduce_max", ["i64[0,3]"], dict(axes=(0,)), ["i64[3]"]),
    ("reduce_min", ["f64[2,3]"], dict(axes=()), ["f64[2,3]"]),
    ("dot_general", ["f32[2,3,4]", "f32[4,2,5]"], dict(contract=((2,), (0,)), batch=((0,), (1,))),
     ["f32[2,3,5]"]),
    ("dot_general", ["f32[3]", "f32[4]"], dict(contract=((), ()), batch=((), ())),
     ["f32[3,4]"]),
    ("dot_general", ["i32[0,3]", "i32[3,2]"], dict(contract=((1,), (0,)), batch=((), ())),
     ["i32[0,2]"]),
    ("gather", ["f32[4,3]", "i32[2,2]"], dict(axis=0), ["f32[2,2,3]"]),
    ("gather", ["f32[0,3]", "i64[0]"], dict(axis=0), ["f32[0,3]"]),
    ("gather", ["f32[3]", "i64[]"], dict(axis=0), ["f32[]"]),
    ("scatter_add", ["f32[4,3]", "i64[2]", "f32[2,3]"], dict(axis=0), ["f32[4,3]"]),
    ("scatter_add", ["f32[0,3]", "i64[0]", "f32[0,3]"], dict(axis=0), ["f32[0,3]"]),
    ("iota", [], dict(dtype="f32", shape=(0, 2), dim=1), ["f32[0,2]"]),
    ("integer_pow", ["i32[2]"], dict(n=3), ["i32[2]"]),
    ("argmax", ["bool[3,2]"], dict(axis=0), ["i64[2]"]),
    ("constant", [], dict(value=(1, True, 2.5), dtype="f32", shape=(3,)), ["f32[3]"]),
    ("constant", [], dict(value=-7, dtype="i64", shape=(0, 2)), ["i64[0,2]"]),
]


@pytest.mark.parametrize("prim, specs, params, want", ACCEPTED,
                         ids=[f"{c[0]}-{k}" for k, c in enumerate(ACCEPTED)])
def test_rule_accepts(prim, specs, params, want):
    assert emit(prim, *specs, **params) == want


# (prim, operand types, params, a fragment of the reason): inputs every rule must refuse
REJECTED = [
    ("add", ["f32[3]", "f32[4]"], {}, "add needs operands of one type"),
    ("add", ["bool[3]", "bool[3]"], {}, "add does not take bool operands"),
    ("exp", ["i32[3]"], {}, "exp needs a floating operand"),
    ("broadcast_in_dim", ["f32[2]"], dict(shape=(3,), dims=(0,)), "cannot broadcast"),
    ("broadcast_in_dim", ["f32[3,3]"], dict(shape=(3, 3), dims=(1, 0)), "not increasing"),
    ("broadcast_in_dim", ["f32[3]"], dict(shape=(3,), dims=(1,)), "dim 1 out of range"),
    ("broadcast_in_dim", ["f32[]"], dict(shape=(-3,), dims=()), "negative dimension"),
    ("reshape", ["f32[6]"], dict(shape=(-1,)), "negative dimension"),
    ("reshape", ["f32[6]"], dict(shape=(4,)), "cannot reshape"),
    ("reshape", ["f32[6]"], dict(shape=(2.5, 2)), "not an integer"),
    ("transpose", ["f32[2,3]"], dict(perm=(0, 0)), "bad perm"),
    ("slice", ["f32[5]"], dict(start=(3,), limit=(2,), stride=(1,)), "bad range 3:2:1"),
    ("slice", ["f32[5]"], dict(start=(0,), limit=(6,), stride=(1,)), "bad range 0:6:1"),
    ("slice", ["f32[5]"], dict(start=(0,), limit=(5,), stride=(0,)), "bad range 0:5:0"),
    ("slice", ["f32[5]"], dict(start=(0, 0), limit=(5, 5), stride=(1, 1)), "rank mismatch"),
    ("pad", ["f32[2]"], dict(lo=(-1,), hi=(0,), interior=(0,)), "negative padding"),
    ("concatenate", ["f32[]", "f32[]"], dict(axis=0), "axis 0 out of range"),
    ("concatenate", ["f32[2,3]", "f32[3,3]"], dict(axis=1), "does not fit"),
    ("concatenate", ["f32[2]", "f64[2]"], dict(axis=0), "does not fit"),
    ("reduce_sum", ["f32[2,3]"], dict(axes=(2,)), "axis 2 out of range"),
    ("reduce_sum", ["f32[2,3]"], dict(axes=(1, 1)), "repeated axis"),
    ("reduce_max", ["bool[2]"], dict(axes=(0,)), "needs a numeric operand"),
    ("argmax", ["f32[0,2]"], dict(axis=0), "empty axis"),
    ("dot_general", ["f32[3,4]", "f32[5,6]"], dict(contract=((1,), (0,)), batch=((), ())),
     "size mismatch 4 vs 5"),
    ("dot_general", ["f32[3,4]", "f64[4]"], dict(contract=((1,), (0,)), batch=((), ())),
     "operands of one dtype"),
    ("dot_general", ["f32[3,4]", "f32[4]"], dict(contract=((1, 0), (0,)), batch=((), ())),
     "dimension lists differ"),
    ("dot_general", ["f32[4,4]", "f32[4]"], dict(contract=((1,), (0,)), batch=((1,), (0,))),
     "repeated axis"),
    ("dot_general", ["f32[3,4]", "f32[4]"], dict(contract=((1,),), batch=((), ())),
     "dot_general: contract must be a pair"),
    ("gather", ["f32[3]", "f32[2]"], dict(axis=0), "integer indices"),
    ("gather", ["f32[0,3]", "i64[2]"], dict(axis=0), "empty axis"),
    ("scatter_add", ["f32[4,3]", "i64[2]", "f32[3,3]"], dict(axis=0), "do not fit"),
    ("scatter_add", ["f32[0]", "i64[2]", "f32[2]"], dict(axis=0), "empty axis"),
    ("iota", [], dict(dtype="bool", shape=(3,), dim=0), "iota needs a numeric dtype"),
    ("iota", [], dict(dtype="f16", shape=(3,), dim=0), "unknown dtype"),
    ("iota", [], dict(dtype="i32", shape=(), dim=0), "dim 0 out of range"),
    ("integer_pow", ["f32[2]"], dict(n=1.5), "int exponent"),
    ("integer_pow", ["f32[2]"], dict(n=True), "int exponent"),
    ("convert", ["f32[2]"], dict(dtype="f16"), "unknown dtype"),
    ("select", ["bool[3]", "f32[2]", "f32[2]"], {}, "predicate shape"),
    ("reduce_sum", ["f32[2]"], {}, "reduce_sum: missing param 'axes'"),
    ("reduce_sum", ["f32[2]"], dict(axis=0, axes=(0,)), "reduce_sum: unknown param 'axis'"),
    ("exp", ["f32[2]"], dict(n=2), "exp: unknown param 'n'"),
    ("constant", [], dict(value=1.5, dtype="i32", shape=()), "constant value 1.5 is not an i32"),
    ("constant", [], dict(value=(1.0, 2.0), dtype="f32", shape=(3,)), "shape [2] does not fit"),
    ("select", ["bool[2]", "f32[2]"], {}, "select takes 3 operands, got 2"),
    ("iota", ["f32[2]"], dict(dtype="i32", shape=(2,), dim=0), "iota takes 0 operands, got 1"),
]


@pytest.mark.parametrize("prim, specs, params, reason", REJECTED,
                         ids=[f"{c[0]}-{k}" for k, c in enumerate(REJECTED)])
def test_rule_rejects_with_a_message_naming_primitive_types_and_op(prim, specs, params, reason):
    with pytest.raises(ShapeError) as info:
        emit(prim, *specs, **params)
    msg = str(info.value)
    assert reason in msg
    assert prim in info.value.reason
    application = f"in: {prim}(" + ", ".join(specs) + ")"
    assert application in msg, msg


def test_the_error_shows_the_params_and_the_location():
    b = Builder("model.py:12")
    with pytest.raises(ShapeError) as info:
        b.reduce_sum(Value(T("f32[2,3]")), axes=(0, 2))
    assert str(info.value) == ("reduce_sum: axis 2 out of range for rank 2\n"
                               "  in: reduce_sum(f32[2,3]) {axes=[0, 2]} (at model.py:12)")


def test_regions_only_on_control_flow():
    with pytest.raises(ShapeError, match="exp takes no regions"):
        emit("exp", "f32[2]", regions=(_region([], []),))


# ---- control flow --------------------------------------------------------------------------

def test_scan_types():
    body = _region(["f32[3]", "f32[2]"], ["f32[3]", "i32[4]"])
    assert emit("scan", "f32[3]", "f32[5,2]", regions=(body,), num_carry=1, length=5,
                reverse=False) == ["f32[3]", "i32[5,4]"]
    empty = _region(["f32[3]"], ["f32[3]", "f32[2]"])
    assert emit("scan", "f32[3]", regions=(empty,), num_carry=1, length=0,
                reverse=True) == ["f32[3]", "f32[0,2]"]


SCAN_REJECTED = [
    (dict(num_carry=2, length=2), ["f32[]"], "num_carry 2 out of range for 1 operands"),
    (dict(num_carry=-1, length=2), ["f32[]"], "num_carry -1 out of range"),
    (dict(num_carry=1, length=-1), ["f32[]"], "negative length -1"),
    (dict(num_carry=1, length=3), ["f32[]", "f32[2]"], "not of length 3"),
    (dict(num_carry=1, length=2, reverse=1), ["f32[]"], "reverse must be a bool"),
]


@pytest.mark.parametrize("params, specs, reason", SCAN_REJECTED, ids=[c[2] for c in SCAN_REJECTED])
def test_scan_rejects(params, specs, reason):
    body = _region(["f32[]"], ["f32[]"])
    params = {"reverse": False, **params}
    with pytest.raises(ShapeError, match="scan") as info:
        emit("scan", *specs, regions=(body,), **params)
    assert reason in str(info.value)


def test_scan_body_must_return_every_carry():
    body = _region(["f32[]", "f32[]"], ["f32[]"])
    with pytest.raises(ShapeError, match="scan body carry results"):
        emit("scan", "f32[]", "f32[]", regions=(body,), num_carry=2, length=1, reverse=False)


def test_cond_and_while_region_typing():
    pred = "bool[]"
    t, f = _region(["f32[2]"], ["f32[2]"]), _region(["f32[2]"], ["f64[2]"])
    assert emit("cond", pred, "f32[2]", regions=(t, t)) == ["f32[2]"]
    with pytest.raises(ShapeError, match="cond branch results"):
        emit("cond", pred, "f32[2]", regions=(t, f))
    with pytest.raises(ShapeError, match="cond branch parameters"):
        emit("cond", pred, "f64[2]", regions=(t, t))
    with pytest.raises(ShapeError, match="bool\\[\\] predicate"):
        emit("cond", "bool[1]", "f32[2]", regions=(t, t))
    with pytest.raises(ShapeError, match="cond needs two regions"):
        emit("cond", pred, "f32[2]", regions=(t,))
    check = _region(["f32[2]"], ["bool[]"])
    assert emit("while", "f32[2]", regions=(check, t)) == ["f32[2]"]
    with pytest.raises(ShapeError, match="while body results"):
        emit("while", "f32[2]", regions=(check, _region(["f32[2]"], ["f32[3]"])))
    with pytest.raises(ShapeError, match="while cond result"):
        emit("while", "f32[2]", regions=(_region(["f32[2]"], ["bool[2]"]), t))


# ---- TensorType ------------------------------------------------------------------------------

def test_tensor_type_size_does_not_overflow():
    assert TensorType("f32", (2 ** 40, 2 ** 40)).size == 2 ** 80


def test_tensor_type_rejects_non_integer_dims():
    with pytest.raises(TypeError, match="not an integer"):
        TensorType("f32", (2.5,))


def test_a_rule_taking_any_params_gets_them():
    """Other layers may declare private primitives whose rule reads **params."""
    prim = Primitive("tagged", lambda x, **params: params["out"], "other")
    out = TensorType("f32", (2,))
    assert prim.infer([T("f32[3]")], {"out": out, "note": "kept"}) == (out,)
    with pytest.raises(ShapeError, match="tagged takes 1 operand, got 2"):
        prim.infer([T("f32[3]"), T("f32[3]")], {"out": out})
