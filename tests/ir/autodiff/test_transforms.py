"""The vjp / jvp / grad transforms: signatures, what they emit (FileCheck), errors, IR
validity, and random elementwise programs against finite differences."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.autodiff import grad, jvp, jvp_rules, vjp, vjp_rules
from ir.core import walk_ops
from ir.interpret import interpret
from ir.printer import print_function
from tests.ir.autodiff.helpers import PROGRAM_STEP, random_program
from tests.prim_samples import SAMPLES
from tests.filecheck import filecheck
from tests.gradcheck import check_grads, f64, i64, make_fn
from tests.ir.programs import structured_programs

ALL_CASES = [c for row in SAMPLES.values() for c in row.grad]


def _sum(b, v):
    return b.reduce_sum(v, axes=tuple(range(v.ndim)))


def _names(fn):
    return [op.prim.name for op in fn.body]


# ---- signatures -------------------------------------------------------------------------------

def test_vjp_signature_and_name():
    fn = make_fn(lambda b, x, k, y: (b.mul(x, y), b.add(k, k), _sum(b, y)),
                 f64[3], i64[3], f64[3])
    out = vjp(fn)
    assert out.name == "f_vjp"
    # one cotangent per float result (the i64 one gets none), one per float param
    assert [str(t) for t in out.param_types] == ["f64[3]", "i64[3]", "f64[3]", "f64[3]", "f64[]"]
    assert [str(t) for t in out.result_types] == ["f64[3]", "i64[3]", "f64[]", "f64[3]", "f64[3]"]


def test_vjp_wrt_selects_and_orders_the_cotangents():
    fn = make_fn(lambda b, x, y: _sum(b, b.mul(b.exp(x), y)), f64[2], f64[2])
    x, y, g = np.array([0.5, 1.0]), np.array([2.0, 3.0]), np.array(1.5)
    out = interpret(vjp(fn, wrt=(1, 0)), x, y, g)
    np.testing.assert_allclose(out[1], g * np.exp(x))
    np.testing.assert_allclose(out[2], g * np.exp(x) * y)
    assert len(vjp(fn, wrt=(1,)).results) == 2


def test_wrt_must_name_float_params():
    fn = make_fn(lambda b, x, k: _sum(b, b.mul(x, b.convert(k, dtype="f64"))), f64[2], i64[2])
    for transform in (vjp, jvp, grad):
        with pytest.raises(TypeError, match="%k of type i64"):
            transform(fn, wrt=(1,))
    with pytest.raises(ValueError, match="out of range"):
        vjp(fn, wrt=(2,))
    with pytest.raises(ValueError, match="repeated"):
        jvp(fn, wrt=(0, 0))


def test_results_that_are_params_or_repeated_get_all_their_cotangents():
    """f(x) = (x, s, s) with s = sin(x): x's cotangent is g0 + (g1 + g2) cos(x)."""
    def build(b, x):
        s = b.sin(x)
        return x, s, s
    fn = make_fn(build, f64[2])
    x, g0, g1, g2 = np.array([0.2, 1.0]), np.ones(2), np.full(2, 2.0), np.full(2, -0.5)
    *primal, ct = interpret(vjp(fn), x, g0, g1, g2)
    np.testing.assert_allclose(ct, g0 + (g1 + g2) * np.cos(x))
    tangents = interpret(jvp(fn), x, np.full(2, 3.0))[3:]
    np.testing.assert_allclose(tangents, [np.full(2, 3.0)] + [3.0 * np.cos(x)] * 2)


def test_jvp_signature_and_name():
    fn = make_fn(lambda b, x, k, y: (b.mul(x, y), b.add(k, k)), f64[3], i64[3], f64[3])
    out = jvp(fn, wrt=(2,))
    assert out.name == "f_jvp"
    assert [p.name_hint for p in out.params] == ["x", "k", "y", "t_y"]
    assert [str(t) for t in out.result_types] == ["f64[3]", "i64[3]", "f64[3]"]
    x, k, y, t = np.arange(3.0), np.arange(3), np.ones(3), np.full(3, 2.0)
    np.testing.assert_allclose(interpret(out, x, k, y, t)[2], 2 * x)


def test_grad_returns_value_and_gradients():
    fn = make_fn(lambda b, x, y: _sum(b, b.mul(b.sin(x), y)), f64[3], f64[3])
    g = grad(fn)
    assert g.name == "f_grad" and len(g.params) == 2
    x, y = np.array([0.1, 0.2, 0.3]), np.array([1.0, -1.0, 2.0])
    value, gx, gy = interpret(g, x, y)
    np.testing.assert_allclose(value, np.sum(np.sin(x) * y))
    np.testing.assert_allclose(gx, np.cos(x) * y)
    np.testing.assert_allclose(gy, np.sin(x))
    assert len(grad(fn, wrt=(0,)).results) == 2


@pytest.mark.parametrize("types, build", [
    ((f64[3],), lambda b, x: b.sin(x)),                        # not a scalar
    ((f64[()],), lambda b, x: (b.sin(x), b.cos(x))),           # two results
    ((i64[()],), lambda b, x: b.add(x, x)),                    # not a float
])
def test_grad_needs_one_scalar_float_result(types, build):
    with pytest.raises(TypeError, match="grad needs a function returning one scalar float"):
        grad(make_fn(build, *types))


def test_transforms_do_not_modify_their_input():
    for case in ALL_CASES[::7]:
        fn = case.fn()
        before = print_function(fn)
        jvp(fn)
        if "rev" in case.modes:
            grad_fn = vjp(fn)
            assert grad_fn.body[0] is not fn.body[0]
        assert print_function(fn) == before


# ---- what is emitted ---------------------------------------------------------------------------

def test_vjp_of_mul_sum_reuses_the_forward_and_materialises_no_zeros():
    fn = make_fn(lambda b, x, y: _sum(b, b.mul(x, y)), f64[3], f64[3])
    text = print_function(vjp(fn))
    filecheck(text, """
        CHECK-LABEL: func @f_vjp(%x: f64[3], %y: f64[3], %g: f64[]) -> (f64[], f64[3], f64[3])
        CHECK:       mul %x, %y
        CHECK:       reduce_sum
        CHECK:       broadcast_in_dim %g {dims=[], shape=[3]}
        CHECK-NOT:   mul %x, %y
        CHECK:       return
    """)
    assert "constant" not in text


def test_unreachable_cotangents_are_never_materialised():
    """y only reaches the first result; x only the second: no zeros, no adds."""
    fn = make_fn(lambda b, x, y: (b.exp(y), _sum(b, b.sin(x))), f64[2], f64[2])
    out = vjp(fn)
    assert "constant" not in _names(out) and "add" not in _names(out)


def test_an_unreachable_wrt_cotangent_is_a_broadcast_zero():
    fn = make_fn(lambda b, x, y: _sum(b, b.exp(x)), f64[2], f64[2, 3])
    filecheck(print_function(vjp(fn)), """
        CHECK: = constant {value=0.0} : f64[]
        CHECK: = broadcast_in_dim
        CHECK: return
    """)
    zero = interpret(vjp(fn), np.ones(2), np.ones((2, 3)), np.array(1.0))[2]
    np.testing.assert_array_equal(zero, np.zeros((2, 3)))


def test_several_uses_sum_their_cotangents():
    fn = make_fn(lambda b, x: _sum(b, b.add(b.mul(x, x), b.sin(x))), f64[3])
    x = np.array([0.3, -1.0, 2.0])
    np.testing.assert_allclose(interpret(grad(fn), x)[1], 2 * x + np.cos(x))
    assert "add" in _names(vjp(fn))[4:]       # after the 4 primal ops


def test_broadcasting_is_undone_by_reduce_sum():
    fn = make_fn(lambda b, x, y: _sum(b, b.mul(b.broadcast_in_dim(x, shape=(4, 3), dims=(1,)), y)),
                 f64[3], f64[4, 3])
    filecheck(print_function(vjp(fn)), """
        CHECK: broadcast_in_dim %x {dims=[1], shape=[4, 3]}
        CHECK: mul
        CHECK: reduce_sum
        CHECK: {axes=[0]} : f64[3]
    """)


def test_adjoint_ops_carry_the_source_location_of_their_primal_op():
    fn = make_fn(lambda b, x: _sum(b, b.exp(x)), f64[3])
    fn.body[0].loc = "model.py:7"
    out = vjp(fn)
    exp_adjoint = [op for op in out.body[2:] if op.prim.name == "mul"]
    assert exp_adjoint and all(op.loc == "model.py:7" for op in exp_adjoint)


def test_vjp_of_scan_tapes_the_forward_instead_of_recomputing_it():
    case = next(c for c in SAMPLES["scan"].grad if c.label == "rnn")
    out = vjp(case.fn())
    filecheck(print_function(out), """
        CHECK-LABEL: func @scan_vjp(
        CHECK:       = scan %h, %w, %xs {length=4, num_carry=2, reverse=false}
        CHECK:       func @rnn_step_taped(
        CHECK:       = scan %g, %g_1,
        CHECK:       reverse=true
        CHECK:       func @rnn_step_adjoint(
    """)
    assert _names(out) == ["scan", "scan"]


def test_cotangents_nobody_asked_for_are_pruned_from_control_flow():
    """Only w is differentiated: the adjoint scan does not stack the xs' cotangents (it
    carries h's cotangent, which w's needs, w's, and w itself, loop-invariant); only y is
    differentiated: the adjoint cond drops x's."""
    case = next(c for c in SAMPLES["scan"].grad if c.label == "rnn")
    adjoint = vjp(case.fn(), wrt=(1,)).body[-1]
    assert adjoint.prim.name == "scan" and adjoint.params["num_carry"] == 3
    assert [str(r.type) for r in adjoint.results] == ["f64[3]"] * 3
    case = next(c for c in SAMPLES["cond"].grad if c.label == "pred-True")
    adjoint = vjp(case.fn(), wrt=(2,)).body[-1]
    assert adjoint.prim.name == "cond" and len(adjoint.results) == 1
    # x's cotangent would need cos(x) (true branch) or cos(y) (false branch)
    assert all("cos" not in _names(r) for r in adjoint.regions)


def test_grad_seeds_the_vjp_with_a_constant_one():
    fn = make_fn(lambda b, x: _sum(b, b.exp(x)), f64[3])
    filecheck(print_function(grad(fn)), """
        CHECK-LABEL: func @f_grad(%x: f64[3]) -> (f64[], f64[3])
        CHECK:       = constant {value=1.0} : f64[]
        CHECK:       exp %x
        CHECK-NOT:   exp %x
        CHECK:       return
    """)


# ---- errors --------------------------------------------------------------------------------------

def test_a_missing_rule_is_named_with_the_op(monkeypatch):
    fn = make_fn(lambda b, x: _sum(b, b.sin(x)), f64[3])
    monkeypatch.delitem(vjp_rules, "sin")
    with pytest.raises(NotImplementedError, match=r"no VJP rule for primitive 'sin' \(in: .*sin"):
        vjp(fn)
    monkeypatch.delitem(jvp_rules, "sin")
    with pytest.raises(NotImplementedError, match="no JVP rule for primitive 'sin'"):
        jvp(fn)


def test_a_rule_returning_a_wrong_type_is_caught(monkeypatch):
    fn = make_fn(lambda b, x: _sum(b, b.sin(x)), f64[3])
    monkeypatch.setitem(vjp_rules, "sin", lambda b, g, out, x: (b.reduce_sum(g, axes=(0,)),))
    with pytest.raises(TypeError, match="VJP rule of 'sin' gave a f64\\[\\] cotangent"):
        vjp(fn)


@pytest.mark.parametrize("mode, table", [("rev", vjp_rules), ("fwd", jvp_rules)])
def test_check_grads_catches_a_wrong_rule_and_shows_both_values(monkeypatch, mode, table):
    fn = make_fn(lambda b, x: _sum(b, b.sin(x)), f64[3])
    wrong = {"rev": lambda b, g, out, x: (b.mul(g, out),),        # sin' taken as sin
             "fwd": lambda b, ts, out, x: b.mul(ts[0], out)}
    monkeypatch.setitem(table, "sin", wrong[mode])
    with pytest.raises(AssertionError, match="(?s)analytic: .*numeric: "):
        check_grads(fn, [np.array([0.1, 0.5, 1.0])], modes=(mode,))


def test_check_grads_refuses_to_check_nothing():
    fn = make_fn(lambda b, k: b.add(k, k), i64[2])
    with pytest.raises(ValueError, match="no float parameter"):
        check_grads(fn, [np.arange(2)])


# ---- the output is valid, printable, parseable IR ---------------------------------------------

def _derived(case):
    fn = case.fn()
    yield jvp(fn)
    if "rev" in case.modes:
        yield vjp(fn)
        yield jvp(vjp(fn))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_output_verifies(name):
    """SSA and types hold, and every value is defined once in the whole tree (the
    transforms clone regions rather than share them)."""
    from ir.verify import verify
    for case in SAMPLES[name].grad:
        for fn in _derived(case):
            verify(fn)
            values = [r for op in walk_ops(fn) for r in op.results]
            assert len(values) == len(set(values))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_printed_output_round_trips_through_the_parser(name):
    from ir.parser import parse
    for case in SAMPLES[name].grad:
        for fn in _derived(case):
            text = print_function(fn)
            parsed = parse(text)
            assert print_function(parsed) == text
            args = case.sample()
            extra = [np.ones(p.type.shape) for p in fn.params[len(args):]]
            for got, want in zip(interpret(parsed, *args, *extra), interpret(fn, *args, *extra)):
                np.testing.assert_array_equal(got, want)


# ---- random elementwise programs ---------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(steps=st.lists(PROGRAM_STEP, min_size=1, max_size=8), nparams=st.integers(1, 3),
       shape=st.sampled_from([(), (3,), (2, 1)]), seed=st.integers(0, 2**16))
def test_random_elementwise_programs_match_finite_differences(steps, nparams, shape, seed):
    fn = make_fn(random_program(steps), *([f64[shape]] * nparams))
    args = [np.random.default_rng(seed + i).uniform(-1.5, 1.5, shape) for i in range(nparams)]
    check_grads(fn, args, order=1, modes=("fwd", "rev"), seed=seed)


@settings(max_examples=80, deadline=None)
@given(structured_programs(max_steps=8, dtypes=("f64",), tame=True), st.integers(0, 2 ** 16))
def test_jvp_and_vjp_are_transposes_on_random_structured_programs(fn, seed):
    """<u, J v> == <J^T u, v> exactly up to rounding: the two rule tables agree on programs
    mixing broadcasts, reductions, slices, pads, concatenates and dot_generals, size-0 axes
    included (no finite differences, so no tolerance games)."""
    rng = np.random.default_rng(seed)
    args = [rng.standard_normal(p.type.shape) for p in fn.params]
    v = [rng.standard_normal(p.type.shape) for p in fn.params]
    u = [rng.standard_normal(r.type.shape) for r in fn.results]
    n = len(fn.results)
    jv = interpret(jvp(fn), *args, *v)[n:]
    vj = interpret(vjp(fn), *args, *u)[n:]
    lhs = sum(float(np.vdot(a, c)) for a, c in zip(u, jv))
    rhs = sum(float(np.vdot(a, c)) for a, c in zip(vj, v))
    # rounding scales with the magnitudes summed, not with the (possibly cancelling) sums
    scale = sum(float(np.vdot(np.abs(a), np.abs(c))) for a, c in zip(u + vj, jv + v))
    assert abs(lhs - rhs) <= 1e-10 * scale + 1e-300, (lhs, rhs, print_function(fn))
