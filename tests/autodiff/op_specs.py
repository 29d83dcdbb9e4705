"""Sample programs for every primitive, with the input domains their derivatives are
checked on. CASES[name] lists the cases of primitive `name`; the rule tests iterate the
registry, so a new primitive without an entry here fails them.

A case's build(b, *params) uses only its params' dtypes (x.dtype), so the same case also
runs in f32 (Case.fn("f32")).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from hypothesis import strategies as st

from ir.core import Function, TensorType
from ir.interpret import interpret
from tests.gradcheck import make_fn

SHAPES = [(), (3,), (2, 1, 3)]


@dataclass
class Arg:
    """One parameter: kind 'float' (uniform in [low, high], with a random sign if signed),
    'index' (integers in [0, high)) or 'bool'."""
    shape: tuple
    kind: str = "float"
    low: float = -2.0
    high: float = 2.0
    signed: bool = False
    value: object = None     # a fixed value instead of a random one

    def type(self, float_dtype: str) -> TensorType:
        dtype = {"float": float_dtype, "index": "i64", "bool": "bool"}[self.kind]
        return TensorType(dtype, self.shape)

    def sample(self, rng) -> np.ndarray:
        if self.value is not None:
            return np.asarray(self.value)
        if self.kind == "index":
            return rng.integers(0, int(self.high), self.shape)
        if self.kind == "bool":
            return rng.random(self.shape) < 0.5
        x = rng.uniform(self.low, self.high, self.shape)
        return x * rng.choice([-1.0, 1.0], self.shape) if self.signed else x


def F(*shape, low=-2.0, high=2.0, signed=False) -> Arg:
    return Arg(tuple(shape), "float", low, high, signed)


def away_from_zero(*shape) -> Arg:
    return F(*shape, low=0.3, high=2.0, signed=True)


def index(*shape, bound) -> Arg:
    return Arg(tuple(shape), "index", high=bound)


def pred(value: bool) -> Arg:
    return Arg((), "bool", value=value)


@dataclass
class Case:
    prim: str
    label: str
    build: Callable
    args: list
    modes: tuple = ("fwd", "rev")
    params: dict = field(default_factory=dict)

    def fn(self, dtype: str = "f64") -> Function:
        return make_fn(self.build, *(a.type(dtype) for a in self.args), name=self.prim)

    def sample(self, seed: int = 0) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [a.sample(rng) for a in self.args]

    @property
    def id(self) -> str:
        return f"{self.prim}-{self.label}"

    def assert_f32_agrees_with_f64(self, transform):
        """Rules build constants and converts in their operands' dtype, so transform of the
        f32 function is all f32 and matches that of the f64 one to f32 precision."""
        fn32, fn64 = transform(self.fn("f32")), transform(self.fn("f64"))
        args = self.sample()
        extra = [np.random.default_rng(1).standard_normal(p.type.shape)
                 for p in fn64.params[len(args):]]
        for got, want in zip(interpret(fn32, *args, *extra), interpret(fn64, *args, *extra)):
            assert got.dtype in (np.float32, np.int64, np.bool_)
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


CASES: dict[str, list[Case]] = {}


def case(prim, label, build, *args, modes=("fwd", "rev")):
    CASES.setdefault(prim, []).append(Case(prim, label, build, list(args), modes))


def _shape_label(shape) -> str:
    return "x".join(map(str, shape)) or "scalar"


# ---- elementwise -------------------------------------------------------------------------

UNARY_DOMAINS = {
    "exp": F, "expm1": F, "sin": lambda *s: F(*s, low=-3, high=3),
    "cos": lambda *s: F(*s, low=-3, high=3), "tanh": F, "neg": F,
    "logistic": lambda *s: F(*s, low=-4, high=4), "tan": lambda *s: F(*s, low=-1.2, high=1.2),
    "log": lambda *s: F(*s, low=0.5, high=3), "sqrt": lambda *s: F(*s, low=0.5, high=3),
    "rsqrt": lambda *s: F(*s, low=0.5, high=3), "log1p": lambda *s: F(*s, low=-0.5, high=2),
    "abs": away_from_zero,
}
for _name, _domain in UNARY_DOMAINS.items():
    for _s in SHAPES:
        case(_name, _shape_label(_s), lambda b, x, _n=_name: b.emit(_n, x), _domain(*_s))

# stop_gradient: finite differences see the identity, so the checked case is one where the
# blocked path is flat anyway (sign); tests/autodiff/test_stop_gradient.py checks the blocking
for _s in SHAPES:
    case("stop_gradient", _shape_label(_s),
         lambda b, x: b.mul(b.stop_gradient(b.sign(x)), x), away_from_zero(*_s))

for _n in (0, 1, 2, 3, -2):
    for _s in ((), (2, 3)):
        case("integer_pow", f"n{_n}-{_shape_label(_s)}",
             lambda b, x, _n=_n: b.integer_pow(x, n=_n), away_from_zero(*_s))

for _name in ("add", "sub", "mul", "max", "min"):
    for _s in SHAPES:
        case(_name, _shape_label(_s), lambda b, x, y, _n=_name: b.emit(_n, x, y), F(*_s), F(*_s))
    case(_name, "same-operand", lambda b, x, _n=_name: b.emit(_n, x, x), F(3))
for _s in SHAPES:
    case("div", _shape_label(_s), lambda b, x, y: b.div(x, y), F(*_s), away_from_zero(*_s))
    case("pow", _shape_label(_s), lambda b, x, y: b.pow(x, y),
         F(*_s, low=0.5, high=2), F(*_s, low=-2, high=2))
case("pow", "constant-exponent", lambda b, x: b.pow(x, b.full_like(2.5, x)), F(3, low=0.5))

# sign, comparisons and logical ops have no derivative: their cases route the gradient
# around them, checking that they contribute zeros and do not break the transforms.
case("sign", "times-sin", lambda b, x: b.mul(b.sign(x), b.sin(x)), away_from_zero(2, 3))
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    case(_name, "select", lambda b, x, y, _n=_name: b.select(
        b.emit(_n, x, y), b.sin(x), b.mul(x, y)), F(2, 3), F(2, 3))
    case(_name, "int-operands", lambda b, x, k, _n=_name: b.mul(x, b.convert(
        b.emit(_n, k, b.full_like(2, k)), dtype=x.dtype)), F(4), index(4, bound=4))
for _name in ("logical_and", "logical_or"):
    case(_name, "select", lambda b, x, y, _n=_name: b.select(b.emit(
        _n, b.gt(x, b.full_like(0, x)), b.lt(y, b.full_like(0, y))), x, b.exp(y)), F(5), F(5))
case("logical_not", "select",
     lambda b, x, y: b.select(b.logical_not(b.gt(x, y)), b.tanh(x), y), F(2, 2), F(2, 2))

for _s in SHAPES:
    case("select", _shape_label(_s), lambda b, p, x, y: b.select(p, x, y),
         Arg(_s, "bool"), F(*_s), F(*_s))
case("select", "shared-operand", lambda b, p, x: b.select(p, x, b.mul(x, x)),
     Arg((4,), "bool"), F(4))

case("convert", "same-dtype", lambda b, x: b.convert(x, dtype=x.dtype), F(2, 3))
case("convert", "through-int", lambda b, x: b.mul(x, b.convert(
    b.convert(x, dtype="i64"), dtype=x.dtype)), F(5, low=-3, high=3))
case("convert", "from-int", lambda b, x, k: b.mul(x, b.convert(k, dtype=x.dtype)),
     F(3), index(3, bound=5))

# ---- shape ops ---------------------------------------------------------------------------

for _label, _x, _shape, _dims in (("vector-to-matrix", (3,), (2, 3), (1,)),
                                  ("scalar", (), (2, 3), ()),
                                  ("stretch-size-1", (1, 3), (4, 3), (0, 1)),
                                  ("stretch-and-add", (2, 1), (2, 5, 3), (0, 1)),
                                  ("identity", (2, 3), (2, 3), (0, 1))):
    case("broadcast_in_dim", _label, lambda b, x, _s=_shape, _d=_dims: b.broadcast_in_dim(
        x, shape=_s, dims=_d), F(*_x))
for _x, _shape in (((2, 3), (3, 2)), ((6,), (1, 6, 1)), ((), (1, 1))):
    case("reshape", _shape_label(_x), lambda b, x, _s=_shape: b.reshape(x, shape=_s), F(*_x))
for _x, _perm in (((2, 3, 4), (2, 0, 1)), ((2, 3), (1, 0)), ((1, 3), (1, 0))):
    case("transpose", _shape_label(_x), lambda b, x, _p=_perm: b.transpose(x, perm=_p), F(*_x))
for _label, _x, _start, _limit, _stride in (("strided", (7,), (1,), (6,), (2,)),
                                            ("2d", (4, 5), (0, 1), (3, 5), (2, 3)),
                                            ("full", (2, 3), (0, 0), (2, 3), (1, 1)),
                                            ("empty", (3,), (1,), (1,), (1,))):
    case("slice", _label, lambda b, x, _a=_start, _l=_limit, _s=_stride: b.slice(
        x, start=_a, limit=_l, stride=_s), F(*_x))
for _label, _x, _lo, _hi, _in in (("interior", (3,), (1,), (2,), (1,)),
                                  ("2d", (2, 3), (0, 1), (1, 0), (0, 2)),
                                  ("size-1", (1, 2), (2, 0), (0, 1), (3, 1))):
    case("pad", _label, lambda b, x, _a=_lo, _h=_hi, _i=_in: b.pad(
        x, lo=_a, hi=_h, interior=_i), F(*_x))
case("concatenate", "rows", lambda b, x, y: b.concatenate(x, y, axis=0), F(2, 3), F(1, 3))
case("concatenate", "three", lambda b, x, y, z: b.concatenate(x, y, z, axis=0),
     F(2), F(3), F(1))
case("concatenate", "columns-same-operand", lambda b, x, y: b.concatenate(x, y, x, axis=1),
     F(2, 1), F(2, 2))

# ---- reductions --------------------------------------------------------------------------

for _name in ("reduce_sum", "reduce_max", "reduce_min"):
    for _x, _axes in (((2, 3, 4), (0, 2)), ((5,), (0,)), ((2, 3), ()), ((1, 3), (0,)),
                      ((3, 4), (1,))):
        case(_name, f"{_shape_label(_x)}-axes{''.join(map(str, _axes))}",
             lambda b, x, _n=_name, _a=_axes: b.emit(_n, x, axes=_a), F(*_x))
for _name in ("argmax", "argmin"):
    case(_name, "vector", lambda b, x, _n=_name: b.gather(
        x, b.emit(_n, x, axis=0), axis=0), F(5))
    case(_name, "matrix", lambda b, x, _n=_name: b.gather(
        x, b.emit(_n, x, axis=1), axis=1), F(3, 4))

# ---- linear algebra and indexing -----------------------------------------------------------

for _label, _x, _y, _contract, _batch in (
        ("matmul", (2, 3), (3, 4), ((1,), (0,)), ((), ())),
        ("batched", (2, 3, 4), (2, 4, 5), ((2,), (1,)), ((0,), (0,))),
        ("inner", (3,), (3,), ((0,), (0,)), ((), ())),
        ("outer", (2,), (3,), ((), ()), ((), ())),
        ("batch-in-middle", (3, 2, 4), (4, 2, 5), ((2,), (0,)), ((1,), (1,))),
        ("two-contractions", (2, 3, 4), (4, 3, 5), ((1, 2), (1, 0)), ((), ())),
        ("matrix-vector", (3, 4), (4,), ((1,), (0,)), ((), ()))):
    case("dot_general", _label, lambda b, x, y, _c=_contract, _b=_batch: b.dot_general(
        x, y, contract=_c, batch=_b), F(*_x), F(*_y))
case("gather", "duplicates", lambda b, x, i: b.gather(x, i, axis=0), F(5), index(6, bound=5))
case("gather", "axis1", lambda b, x, i: b.gather(x, i, axis=1), F(3, 4), index(2, 2, bound=4))
case("gather", "scalar-index", lambda b, x, i: b.gather(x, i, axis=0), F(4), index(bound=4))
case("scatter_add", "vector", lambda b, x, i, u: b.scatter_add(x, i, u, axis=0),
     F(5), index(4, bound=5), F(4))
case("scatter_add", "axis1", lambda b, x, i, u: b.scatter_add(x, i, u, axis=1),
     F(3, 4), index(2, bound=4), F(3, 2))
case("iota", "int", lambda b, x: b.mul(x, b.convert(
    b.iota(dtype="i64", shape=x.shape, dim=1), dtype=x.dtype)), F(2, 3))
case("iota", "float", lambda b, x: b.add(x, b.iota(dtype=x.dtype, shape=x.shape, dim=0)), F(3))
case("constant", "splat", lambda b, x: b.mul(x, b.full_like(2.5, x)), F(2, 3))
case("constant", "nested", lambda b, x: b.mul(x, b.const([1.0, -2.0, 0.5], x.dtype, (3,))),
     F(3))

# ---- control flow --------------------------------------------------------------------------


def _cond(b, p, x, y, k):
    """Two results of each branch depend on different operands; the third is an integer."""
    true_fn = make_fn(lambda b, x, y, k: (b.mul(x, y), b.sin(x), b.add(k, k)),
                      x.type, y.type, k.type, name="on_true")
    false_fn = make_fn(lambda b, x, y, k: (b.add(x, b.convert(k, dtype=x.dtype)),
                                           b.mul(b.cos(y), x), k),
                       x.type, y.type, k.type, name="on_false")
    return b.emit("cond", p, x, y, k, regions=(true_fn, false_fn))


def _cond_one_sided(b, p, x, y):
    """Each branch reads only one operand, so each branch's VJP returns a zero for the other."""
    true_fn = make_fn(lambda b, x, y: b.mul(x, x), x.type, y.type, name="on_true")
    false_fn = make_fn(lambda b, x, y: b.exp(y), x.type, y.type, name="on_false")
    return b.emit("cond", p, x, y, regions=(true_fn, false_fn))


for _p in (True, False):
    case("cond", f"pred-{_p}", _cond, pred(_p), F(3), F(3), index(3, bound=4))
    case("cond", f"one-sided-{_p}", _cond_one_sided, pred(_p), F(2, 2), F(2, 2))


def _rnn(reverse):
    """carry (h, w), xs x: h <- tanh(h * w + x), w passes through; ys h * x."""
    def build(b, h, w, xs):
        def body(b, h, w, x):
            h_new = b.tanh(b.add(b.mul(h, w), x))
            return h_new, w, b.mul(h_new, x)
        region = make_fn(body, h.type, w.type, h.type, name="rnn_step")
        return b.emit("scan", h, w, xs, num_carry=2, length=xs.shape[0], reverse=reverse,
                      regions=(region,))
    return build


def _counter_scan(b, h, xs):
    """An integer carry counts iterations and feeds the float computation."""
    def body(b, i, h, x):
        scale = b.broadcast_to(b.convert(b.add(i, b.full_like(1, i)), dtype=h.dtype), h.shape)
        count = b.convert(i, dtype=h.dtype)
        return b.add(i, b.full_like(1, i)), b.sin(b.mul(b.mul(h, x), scale)), count
    i0 = b.const(0, "i64")
    region = make_fn(body, i0.type, h.type, h.type.with_shape(xs.shape[1:]), name="count_step")
    return b.emit("scan", i0, h, xs, num_carry=2, length=xs.shape[0], reverse=False,
                  regions=(region,))


def _fori_scan(b, h, w):
    """No xs at all: a fori_loop of static length."""
    region = make_fn(lambda b, h, w: (b.sin(b.mul(h, w)), w), h.type, w.type, name="loop_step")
    return b.emit("scan", h, w, num_carry=2, length=3, reverse=False, regions=(region,))


def _scan_with_cond(b, h, xs):
    """Control flow nested in control flow: a cond on the iteration's parity inside a scan."""
    def body(b, i, h, x):
        even = b.eq(b.sub(i, b.mul(b.div(i, b.full_like(2, i)), b.full_like(2, i))),
                    b.full_like(0, i))
        on_even = make_fn(lambda b, h, x: b.mul(b.sin(h), x), h.type, x.type, name="even")
        on_odd = make_fn(lambda b, h, x: b.add(b.tanh(h), b.mul(x, x)), h.type, x.type,
                         name="odd")
        (h_new,) = b.emit("cond", even, h, x, regions=(on_even, on_odd))
        return b.add(i, b.full_like(1, i)), h_new, b.exp(h_new)
    i0 = b.const(0, "i64")
    region = make_fn(body, i0.type, h.type, h.type.with_shape(xs.shape[1:]), name="parity_step")
    return b.emit("scan", i0, h, xs, num_carry=2, length=xs.shape[0], reverse=False,
                  regions=(region,))


case("scan", "rnn", _rnn(False), F(3), F(3), F(4, 3))
case("scan", "nested-cond", _scan_with_cond, F(2), F(3, 2))
case("scan", "rnn-reverse", _rnn(True), F(3), F(3), F(4, 3))
case("scan", "int-counter", _counter_scan, F(2), F(3, 2))
case("scan", "no-xs", _fori_scan, F(2, 2), F(2, 2))
case("scan", "length-0", _rnn(False), F(3), F(3), F(0, 3))


def _while(b, h, w):
    """i counts to 3 while h <- sin(h) * w. Forward mode only: reverse mode is refused."""
    i0 = b.const(0, "i64")
    cond_fn = make_fn(lambda b, i, h, w: b.lt(i, b.full_like(3, i)),
                      i0.type, h.type, w.type, name="below_3")
    body_fn = make_fn(lambda b, i, h, w: (b.add(i, b.full_like(1, i)), b.mul(b.sin(h), w), w),
                      i0.type, h.type, w.type, name="while_step")
    return b.emit("while", i0, h, w, regions=(cond_fn, body_fn))


case("while", "counted", _while, F(3), F(3), modes=("fwd",))


NOT_DIFFERENTIABLE = ("sign", "stop_gradient", "logical_not", "logical_and", "logical_or", "lt",
                      "le", "gt", "ge", "eq", "ne", "argmax", "argmin", "iota", "constant")


def cases_of(name: str) -> list[Case]:
    assert name in CASES, (f"no derivative-test case for primitive '{name}': "
                           f"add one to tests/autodiff/op_specs.py")
    return CASES[name]


def op_of(fn: Function, name: str):
    """The first op of primitive `name` in fn's body."""
    return next(op for op in fn.body if op.prim.name == name)


def rule_kwargs(op) -> dict:
    """The keyword arguments a VJP or JVP rule gets for op: its params, and its regions."""
    return dict(op.params, regions=op.regions) if op.regions else dict(op.params)


def assert_typed_derivatives(op, derivatives, values):
    """A rule's derivatives (tangents of op's results, or cotangents of its operands) are
    None for a non-differentiable primitive, x**0 and integer or bool values, and else of
    the value's type."""
    zero = op.prim.name in NOT_DIFFERENTIABLE or op.params.get("n") == 0
    for d, v in zip(derivatives, values, strict=True):
        if zero or v.dtype not in ("f32", "f64"):
            assert d is None, (op.prim.name, d)
        else:
            assert d is not None and d.type == v.type, (op.prim.name, d, v)


# ---- random elementwise programs (for hypothesis) ---------------------------------------------

PROGRAM_UNARY = {
    "sin": lambda b, v: b.sin(v),
    "tanh": lambda b, v: b.tanh(v),
    "logistic": lambda b, v: b.logistic(v),
    "neg": lambda b, v: b.neg(v),
    "square": lambda b, v: b.integer_pow(v, n=2),
    "log1p_sq": lambda b, v: b.log1p(b.mul(v, v)),
    "exp_tanh": lambda b, v: b.exp(b.tanh(v)),
    "sqrt_1p": lambda b, v: b.sqrt(b.add(b.full_like(1, v), b.mul(v, v))),
}
PROGRAM_BINARY = {
    "add": lambda b, u, v: b.add(u, v),
    "sub": lambda b, u, v: b.sub(u, v),
    "mul": lambda b, u, v: b.mul(u, v),
    "div_1p": lambda b, u, v: b.div(u, b.add(b.full_like(1, v), b.mul(v, v))),
    "pow_pos": lambda b, u, v: b.pow(b.add(b.full_like(1.5, u), b.sin(u)), b.tanh(v)),
}
PROGRAM_STEP = st.one_of(
    st.tuples(st.just("unary"), st.sampled_from(sorted(PROGRAM_UNARY)), st.integers(0, 99)),
    st.tuples(st.just("binary"), st.sampled_from(sorted(PROGRAM_BINARY)), st.integers(0, 99),
              st.integers(0, 99)))


def random_program(steps):
    """Each step applies an op to earlier values (chosen modulo how many exist); the result
    is the sum of the last two values, so most of the program is reachable."""
    def build(b, *params):
        values = list(params)
        for kind, name, *picks in steps:
            operands = [values[p % len(values)] for p in picks]
            table = PROGRAM_UNARY if kind == "unary" else PROGRAM_BINARY
            values.append(table[name](b, *operands))
        return b.reduce_sum(b.add(values[-1], values[-2]), axes=tuple(range(params[0].ndim)))
    return build
