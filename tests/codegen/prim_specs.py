"""Sample programs for every primitive, used to check compiled code against the interpreter.

SPECS maps each primitive name to a list of Cases. A Case builds one Function per dtype that
applies the primitive to several operand shapes at once (0-d, size-1 axes, empty where it
makes sense), so one compile covers all of them. A primitive added to ir/primitives.py
without an entry here makes tests/codegen/test_codegen_primitives.py fail.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ir.builder import Builder, function_from
from ir.core import Function, TensorType, Value

FLOATS = ("f32", "f64")
INTS = ("i32", "i64")
NUMERIC = FLOATS + INTS
ALL = NUMERIC + ("bool",)
SHAPES = [(), (1,), (5,), (2, 1, 3), (3, 4)]


@dataclass
class Case:
    build: Callable[[str], Function]       # dtype -> Function
    dtypes: tuple
    low: float = -3.0
    high: float = 3.0
    quantize: bool = False                 # floats on a 0.5 grid, so ties and zeros happen
    sample: Callable | None = None         # (rng, param types) -> arrays, overriding the rest


def make_fn(name: str, types, body) -> Function:
    params = [Value(t, f"p{i}") for i, t in enumerate(types)]
    b = Builder()
    results = body(b, *params)
    return function_from(name, params, b, list(results))


def T(dtype, shape) -> TensorType:
    return TensorType(dtype, tuple(shape))


def sample_args(case: Case, fn: Function, rng) -> list:
    types = [p.type for p in fn.params]
    if case.sample is not None:
        return case.sample(rng, types)
    return [sample_array(rng, t, case.low, case.high, case.quantize) for t in types]


def sample_array(rng, t: TensorType, low=-3.0, high=3.0, quantize=False):
    if t.dtype == "bool":
        return rng.random(t.shape) < 0.5
    if t.dtype in INTS:
        return rng.integers(-5, 6, t.shape).astype(t.np_dtype)
    x = rng.uniform(low, high, t.shape)
    if quantize:
        x = np.round(x * 2) / 2
    return np.asarray(x, t.np_dtype)


def unary(prim, shapes=SHAPES, **params):
    return lambda dt: make_fn(prim, [T(dt, s) for s in shapes],
                              lambda b, *xs: [b.emit(prim, x, **params) for x in xs])


def binary(prim, shapes=SHAPES):
    def body(b, *xs):
        return [b.emit(prim, x, y) for x, y in zip(xs[::2], xs[1::2])]
    return lambda dt: make_fn(prim, [T(dt, s) for s in shapes for _ in (0, 1)], body)


def each(prim, cases):
    """One result per (operand shapes, params) pair: cases = [(shapes, params), ...]."""
    def build(dt):
        types = [T(dt, s) for shapes, _ in cases for s in shapes]

        def body(b, *xs):
            out, k = [], 0
            for shapes, params in cases:
                out.append(b.emit(prim, *xs[k:k + len(shapes)], **params))
                k += len(shapes)
            return out
        return make_fn(prim, types, body)
    return build


def _nonzero(rng, types):
    out = []
    for t in types:
        mag = rng.uniform(0.5, 3.0, t.shape) * rng.choice([-1.0, 1.0], t.shape)
        out.append(np.asarray(mag, t.np_dtype))
    return out


def _int_units(rng, types):
    return [rng.choice([1, -1, 2, -3], t.shape).astype(t.np_dtype) for t in types]


def _select(dt):
    shapes = SHAPES
    types = [T(d, s) for s in shapes for d in ("bool", dt, dt)]
    return make_fn("select", types, lambda b, *xs: [b.select(*xs[k:k + 3])
                                                    for k in range(0, len(xs), 3)])


def _convert(dt):
    return make_fn("convert", [T(dt, (2, 3)), T(dt, ())],
                   lambda b, x, s: [b.convert(v, dtype=d) for v in (x, s) for d in ALL])


def _integer_pow(dt):
    ns = (0, 1, 2, 3, 5, -1, -2) if dt in FLOATS else (0, 1, 2, 3, 5)
    return make_fn("integer_pow", [T(dt, (2, 3)), T(dt, ())],
                   lambda b, x, s: [b.integer_pow(v, n=n) for v in (x, s) for n in ns])


def _int_neg_pow(dt):
    return make_fn("integer_pow", [T(dt, (7,))],
                   lambda b, x: [b.integer_pow(x, n=-1), b.integer_pow(x, n=-2)])


def _creation(prim, cases):
    return lambda dt: make_fn(prim, [], lambda b: [b.emit(prim, dtype=dt, **p) for p in cases])


def _constants(dt):
    cast = {"bool": bool}.get(dt, float if dt in FLOATS else int)
    nested = [[cast(v) for v in row] for row in ((1, 0, 3), (-2, 5, 1))]

    def body(b, x):
        splat = b.const(cast(2), dt, (2, 3))
        table = b.emit("constant", value=nested, dtype=dt, shape=(2, 3))
        scalar = b.const(cast(1), dt)
        return [splat, table, scalar, b.select(b.ne(x, table), x, splat)]
    return make_fn("constant", [T(dt, (2, 3))], body)


def _gather(dt):
    def build(idt):
        cases = [((5, 3), (6,), 0), ((2, 5), (2, 2), 1), ((5,), (), 0), ((4, 1, 2), (3,), 2)]
        types = [t for xs, ids, _ in cases for t in (T(dt, xs), T(idt, ids))]
        return make_fn("gather", types, lambda b, *v: [
            b.gather(v[2 * k], v[2 * k + 1], axis=c[2]) for k, c in enumerate(cases)])
    return build


def _index_sample(rng, types):
    out = []
    for t in types:
        if t.dtype in INTS:
            out.append(rng.integers(-2, 8, t.shape).astype(t.np_dtype))   # some out of range
        else:
            out.append(sample_array(rng, t))
    return out


def _gather_cases():
    return [Case(lambda dt, idt=idt: _gather(dt)(idt), ALL, sample=_index_sample)
            for idt in INTS]


def _scatter(dt):
    cases = [((5, 3), (6,), (6, 3), 0), ((2, 5), (3,), (2, 3), 1), ((4,), (), (), 0)]
    types = [t for xs, ids, us, _ in cases for t in (T(dt, xs), T("i32", ids), T(dt, us))]
    return make_fn("scatter_add", types, lambda b, *v: [
        b.scatter_add(*v[3 * k:3 * k + 3], axis=c[3]) for k, c in enumerate(cases)])


def _dot(dt):
    cases = [((3, 4), (4, 5), ((1,), (0,)), ((), ())),
             ((2, 3, 4), (2, 4, 5), ((2,), (1,)), ((0,), (0,))),
             ((4,), (4,), ((0,), (0,)), ((), ())),
             ((3,), (2,), ((), ()), ((), ())),
             ((2, 3, 4), (3, 4, 2), ((1, 2), (0, 1)), ((), ())),
             ((4, 3), (4, 5), ((0,), (0,)), ((), ())),
             ((3, 2, 4), (4, 2, 1), ((2,), (0,)), ((1,), (1,)))]
    return each("dot_general", [((x, y), {"contract": c, "batch": bt})
                                for x, y, c, bt in cases])(dt)


SPECS: dict = {}
for _n, _lo, _hi in (("exp", -3, 3), ("log", 0.1, 3), ("log1p", -0.9, 3), ("expm1", -3, 3),
                     ("sqrt", 0, 4), ("rsqrt", 0.1, 4), ("sin", -5, 5), ("cos", -5, 5),
                     ("tan", -1.2, 1.2), ("tanh", -5, 5), ("logistic", -10, 10)):
    SPECS[_n] = [Case(unary(_n), FLOATS, _lo, _hi)]
for _n in ("neg", "abs", "sign", "stop_gradient"):
    SPECS[_n] = [Case(unary(_n), NUMERIC, quantize=True)]
SPECS["integer_pow"] = [Case(_integer_pow, NUMERIC, 0.5, 2.0),
                        Case(_int_neg_pow, INTS, sample=_int_units)]
SPECS["logical_not"] = [Case(unary("logical_not"), ("bool",))]
for _n in ("add", "sub", "mul", "max", "min"):
    SPECS[_n] = [Case(binary(_n), NUMERIC, quantize=True)]
SPECS["div"] = [Case(binary("div"), FLOATS, sample=_nonzero), Case(binary("div"), INTS)]
SPECS["pow"] = [Case(binary("pow"), FLOATS, 0.1, 3.0)]
for _n in ("logical_and", "logical_or"):
    SPECS[_n] = [Case(binary(_n), ("bool",))]
for _n in ("lt", "le", "gt", "ge", "eq", "ne"):
    SPECS[_n] = [Case(binary(_n), ALL, quantize=True)]
SPECS["select"] = [Case(_select, ALL)]
SPECS["convert"] = [Case(_convert, ALL, -100, 100, quantize=True)]
SPECS["broadcast_in_dim"] = [Case(each("broadcast_in_dim", [
    (((3,),), {"shape": (2, 3), "dims": (1,)}), (((3, 1),), {"shape": (3, 4), "dims": (0, 1)}),
    (((),), {"shape": (2, 2), "dims": ()}), (((1,),), {"shape": (4,), "dims": (0,)}),
    (((2, 3),), {"shape": (2, 5, 3), "dims": (0, 2)})]), ALL)]
SPECS["reshape"] = [Case(each("reshape", [
    (((2, 3),), {"shape": (6,)}), (((6,),), {"shape": (3, 2)}), (((2, 3, 4),), {"shape": (4, 6)}),
    (((4, 6),), {"shape": (2, 2, 6)}), (((),), {"shape": (1, 1)}), (((1, 1),), {"shape": ()}),
    (((2, 1, 3),), {"shape": (3, 2)}), (((12,),), {"shape": (2, 3, 2)}),
    (((0, 3),), {"shape": (3, 0)})]), ALL)]
SPECS["transpose"] = [Case(each("transpose", [
    (((2, 3),), {"perm": (1, 0)}), (((2, 3, 4),), {"perm": (2, 0, 1)}),
    (((1, 3),), {"perm": (1, 0)}), (((),), {"perm": ()})]), ALL)]
SPECS["slice"] = [Case(each("slice", [
    (((5,),), {"start": (1,), "limit": (4,), "stride": (2,)}),
    (((4, 6),), {"start": (1, 0), "limit": (3, 6), "stride": (1, 3)}),
    (((3,),), {"start": (0,), "limit": (3,), "stride": (1,)}),
    (((4,),), {"start": (2,), "limit": (2,), "stride": (1,)}),
    (((),), {"start": (), "limit": (), "stride": ()})]), ALL)]
SPECS["pad"] = [Case(each("pad", [
    (((3,),), {"lo": (1,), "hi": (2,), "interior": (0,)}),
    (((3,),), {"lo": (0,), "hi": (0,), "interior": (2,)}),
    (((2, 3),), {"lo": (1, 0), "hi": (0, 2), "interior": (1, 1)}),
    (((0,),), {"lo": (2,), "hi": (1,), "interior": (3,)}),
    (((),), {"lo": (), "hi": (), "interior": ()})]), ALL)]
SPECS["concatenate"] = [Case(each("concatenate", [
    (((2, 3), (1, 3)), {"axis": 0}), (((2, 3), (2, 1), (2, 2)), {"axis": 1}),
    (((3,), (0,), (2,)), {"axis": 0}), (((4,),), {"axis": 0})]), ALL)]
_REDUCE = [(((3, 4),), {"axes": (0,)}), (((3, 4),), {"axes": (1,)}), (((3, 4),), {"axes": (0, 1)}),
           (((2, 3, 4),), {"axes": (1,)}), (((2, 3, 4),), {"axes": (0, 2)}),
           (((5,),), {"axes": ()}), (((),), {"axes": ()}), (((2, 1, 3),), {"axes": (1, 2)})]
_EMPTY_REDUCE = [(((3, 0),), {"axes": (1,)}), (((0,),), {"axes": (0,)})]
for _n in ("reduce_sum", "reduce_max", "reduce_min"):
    SPECS[_n] = [Case(each(_n, _REDUCE), NUMERIC, quantize=True),
                 Case(each(_n, _EMPTY_REDUCE), FLOATS)]
SPECS["reduce_sum"].append(Case(each("reduce_sum", _EMPTY_REDUCE), INTS))
for _n in ("argmax", "argmin"):
    SPECS[_n] = [Case(each(_n, [(((3, 4),), {"axis": 0}), (((3, 4),), {"axis": 1}),
                               (((5,),), {"axis": 0}), (((2, 3, 4),), {"axis": 1})]),
                      ALL, quantize=True)]
SPECS["dot_general"] = [Case(_dot, NUMERIC)]
SPECS["gather"] = _gather_cases()
SPECS["scatter_add"] = [Case(_scatter, NUMERIC, sample=_index_sample)]
SPECS["iota"] = [Case(_creation("iota", [{"shape": (3, 4), "dim": 1}, {"shape": (5,), "dim": 0},
                                         {"shape": (2, 3), "dim": 0}]), NUMERIC)]
SPECS["constant"] = [Case(_constants, ALL)]


# ---- control flow ------------------------------------------------------------------------

def _cond(dt):
    v = T(dt, (3,))
    then = make_fn("then", [v, v], lambda b, x, y: [b.add(x, y), x])
    other = make_fn("other", [v, v], lambda b, x, y: [b.mul(x, y), b.sub(x, y)])

    def body(b, p, x, y):
        first = b.emit("cond", p, x, y, regions=(then, other))
        second = b.emit("cond", b.logical_not(p), x, y, regions=(then, other))
        return list(first) + list(second)
    return make_fn("cond", [T("bool", ()), v, v], body)


def _while(dt):
    i, v = T("i32", ()), T(dt, (3,))
    test = make_fn("test", [i, i, v], lambda b, k, n, x: [b.lt(k, n)])

    def step(b, k, n, x):
        one = b.const(1, "i32")
        return [b.add(k, one), n, b.add(b.mul(x, b.const(2, dt, (3,))), b.const(1, dt, (3,)))]
    body_fn = make_fn("step", [i, i, v], step)

    def body(b, n, x):
        zero = b.const(0, "i32")
        looped = b.emit("while", zero, n, x, regions=(test, body_fn))
        skipped = b.emit("while", n, zero, x, regions=(test, body_fn))
        return list(looped) + list(skipped)
    return make_fn("while", [i, v], body)


def _while_sample(rng, types):
    return [np.array(rng.integers(0, 5), np.int32), sample_array(rng, types[1], -1, 1)]


def _scan(dt):
    c, x = T(dt, (3,)), T(dt, (3,))
    step = make_fn("step", [c, x], lambda b, c, x: [b.add(c, x), b.mul(c, x), c])

    def body(b, c0, xs, empty):
        fwd = b.emit("scan", c0, xs, num_carry=1, length=4, reverse=False, regions=(step,))
        rev = b.emit("scan", c0, xs, num_carry=1, length=4, reverse=True, regions=(step,))
        none = b.emit("scan", c0, empty, num_carry=1, length=0, reverse=False, regions=(step,))
        return list(fwd) + list(rev) + list(none)
    return make_fn("scan", [c, T(dt, (4, 3)), T(dt, (0, 3))], body)


SPECS["cond"] = [Case(_cond, NUMERIC)]
SPECS["while"] = [Case(_while, NUMERIC, sample=_while_sample)]
SPECS["scan"] = [Case(_scan, NUMERIC, -1.5, 1.5)]
