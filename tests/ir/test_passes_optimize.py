"""optimize as a whole: idempotent (optimizing an optimized program changes nothing), in
agreement with the interpreter on random programs and their gradients (nan/inf inputs too),
and a fixed point reached in a few rounds on programs of thousands of ops."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ir import Builder, Function, TensorType, Value
from ir.autodiff import vjp
from ir.interpret import interpret
from ir.passes import optimize
from ir.passes.dce import dce_changed
from ir.passes.pipeline import canonicalize_changed
from ir.parser import parse
from ir.printer import print_function
from tests.ir.test_ir_roundtrip import IR_FILES
from tests.ir.helpers import assert_same_results, make_fn, run_pass, unsigned_zeros

N = 3
UNARY = ["neg", "exp", "tanh", "sin", "logistic"]
BINARY = ["add", "sub", "mul", "div", "max"]


def _grow(draw, b: Builder, values: list[Value], dtype: str) -> Value:
    """One more (N, N) value from the earlier ones, through the ops gradients are made of."""
    pick = lambda: draw(st.sampled_from(values))            # noqa: E731
    kind = draw(st.sampled_from(["unary", "binary", "binary", "splat", "transpose", "dot",
                                 "sum", "reshape", "pads", "select"]))
    if kind == "unary":
        return b.emit(draw(st.sampled_from(UNARY)), pick())
    if kind == "binary":
        return b.emit(draw(st.sampled_from(BINARY)), pick(), pick())
    if kind == "splat":
        value = draw(st.sampled_from([0.0, 1.0, -1.0, 2.0, 0.5, -0.0]))
        return b.broadcast_in_dim(b.const(value, dtype), shape=(N, N), dims=())
    if kind == "transpose":
        return b.transpose(pick(), perm=(1, 0))
    if kind == "dot":
        x, y = pick(), pick()
        x = b.transpose(x, perm=(1, 0)) if draw(st.booleans()) else x
        contract = draw(st.sampled_from([((1,), (0,)), ((0,), (0,)), ((1,), (1,))]))
        return b.dot_general(x, y, contract=contract, batch=((), ()))
    if kind == "sum":
        axis = draw(st.sampled_from([0, 1]))
        return b.broadcast_in_dim(b.reduce_sum(pick(), axes=(axis,)), shape=(N, N),
                                  dims=(1 - axis,))
    if kind == "reshape":
        return b.reshape(b.reshape(pick(), shape=(1, N * N)), shape=(N, N))
    if kind == "pads":
        x = pick()
        pieces = [b.slice(x, start=(0, k), limit=(N, k + 1), stride=(1, 1)) for k in range(N)]
        padded = [b.pad(p, lo=(0, k), hi=(0, N - 1 - k), interior=(0, 0))
                  for k, p in enumerate(pieces)]
        return b.add(b.add(padded[2], padded[0]), padded[1])
    return b.select(b.logical_not(b.lt(pick(), pick())), pick(), pick())


@st.composite
def gradient_like_programs(draw) -> Function:
    dtype = draw(st.sampled_from(["f32", "f64"]))
    t = TensorType(dtype, (N, N))
    params = [Value(t, h) for h in "xyz"[:draw(st.integers(1, 3))]]
    b = Builder()
    values = list(params)
    for _ in range(draw(st.integers(1, 8))):
        values.append(_grow(draw, b, values, dtype))
    result = b.reduce_sum(values[-1], axes=(0, 1))
    return Function("rand", params, b.ops, [result, values[draw(st.integers(0, len(values) - 1))]])


def _assert_idempotent(out: Function):
    again = optimize(out)
    assert print_function(again) == print_function(out)
    assert not canonicalize_changed(out)[1] and not dce_changed(out)[1]


@settings(max_examples=40, deadline=None)
@given(gradient_like_programs())
def test_optimize_is_idempotent_and_agrees_with_the_interpreter(fn):
    out = run_pass(optimize, fn)
    _assert_idempotent(out)
    assert print_function(parse(print_function(out))) == print_function(out)
    assert_same_results(fn, out, signed_zeros=False)
    assert_same_results(fn, out, special=True, signed_zeros=False)


@settings(max_examples=25, deadline=None)
@given(gradient_like_programs())
def test_optimized_gradients_are_idempotent_and_agree(fn):
    grad = vjp(fn)
    out = run_pass(optimize, grad)
    _assert_idempotent(out)
    assert_same_results(grad, out, signed_zeros=False)
    assert_same_results(grad, out, special=True, signed_zeros=False)


def test_optimize_is_idempotent_on_every_fixture():
    for path in IR_FILES:
        _assert_idempotent(optimize(parse(path.read_text())))


def test_a_long_unrolled_gradient_settles_in_few_rounds(monkeypatch):
    """2000+ ops: each round is one walk; the fixed point comes after a handful."""
    b = Builder()
    w, h = Value(TensorType("f64", (4, 4)), "w"), Value(TensorType("f64", (2, 4)), "h")
    x = h
    for _ in range(160):
        x = b.tanh(b.add(b.dot_general(x, w, contract=((1,), (0,)), batch=((), ())),
                         b.broadcast_in_dim(b.const(0.5, "f64"), shape=(2, 4), dims=())))
    fn = vjp(Function("rnn", [w, h], b.ops, [b.reduce_sum(x, axes=(0, 1))]))
    assert len(fn.body) > 2000
    rounds = []
    original = canonicalize_changed

    def counted(f):
        rounds.append(1)
        return original(f)
    monkeypatch.setattr("ir.passes.pipeline.canonicalize_changed", counted)
    out = optimize(fn)
    assert len(rounds) <= 4
    _assert_idempotent(out)
    args = [np.random.default_rng(0).normal(size=p.type.shape) * 0.3 for p in fn.params]
    for want, got in zip(interpret(fn, *args), interpret(out, *args)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_the_sign_of_a_zero_is_the_only_thing_optimize_may_change():
    """Sums of zero-padded pieces become one concatenate (x + 0.0 -> x, as in XLA), which keeps
    a -0.0 that the sum made +0.0; dividing by it then flips the sign of an infinity."""
    def body(b, x, z):
        pieces = [b.slice(z, start=(k,), limit=(k + 1,), stride=(1,)) for k in range(2)]
        padded = [b.pad(p, lo=(k,), hi=(1 - k,), interior=(0,)) for k, p in enumerate(pieces)]
        return b.div(x, b.add(padded[0], padded[1]))
    fn = make_fn([("f64", (2,)), ("f64", (2,))], body, hints="xz")
    out = run_pass(optimize, fn)
    assert [op.prim.name for op in out.body] == ["slice", "slice", "concatenate", "div"]
    x, z = np.array([1.0, 1.0]), np.array([-0.0, 2.0])
    assert interpret(fn, x, z)[0].tolist() == [np.inf, 0.5]
    assert interpret(out, x, z)[0].tolist() == [-np.inf, 0.5]
    for f in (fn, out):
        assert interpret(unsigned_zeros(f), x, z)[0].tolist() == [np.inf, 0.5]
