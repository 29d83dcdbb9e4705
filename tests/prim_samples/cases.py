"""The two kinds of sample a primitive's row holds, and the helpers that build them.

- GradCase: a small program around the primitive, with the input domain its derivatives are
  checked on (finite differences, VJP against JVP, f32 against f64). Its build(b, *params)
  uses only its params' dtypes (x.dtype), so the same case also runs in f32.
- CompiledCase: one Function per dtype applying the primitive to several operand shapes at
  once (0-d, size-1 axes, empty where it makes sense), so one compile checks all of them
  against the reference interpreter.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ir.builder import Builder, function_from
from ir.core import Function, TensorType, Value
from ir.interpret import interpret
from tests.gradcheck import make_fn as grad_fn

FLOATS = ("f32", "f64")
INTS = ("i32", "i64")
NUMERIC = FLOATS + INTS
ALL = NUMERIC + ("bool",)
GRAD_SHAPES = [(), (3,), (2, 1, 3)]
COMPILED_SHAPES = [(), (1,), (5,), (2, 1, 3), (3, 4)]


@dataclass
class Row:
    """A primitive's samples: derivative cases and compiled-vs-interpreter cases."""
    grad: list = field(default_factory=list)
    compiled: list = field(default_factory=list)


# ---- derivative cases -------------------------------------------------------------------------

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
class GradCase:
    prim: str
    label: str
    build: Callable
    args: list
    modes: tuple = ("fwd", "rev")

    def fn(self, dtype: str = "f64") -> Function:
        return grad_fn(self.build, *(a.type(dtype) for a in self.args), name=self.prim)

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


def shape_label(shape) -> str:
    return "x".join(map(str, shape)) or "scalar"


def grad_cases(prim, label, build, *args, modes=("fwd", "rev")) -> list[GradCase]:
    """A one-case list (rows are lists of cases)."""
    return [GradCase(prim, label, build, list(args), modes)]


def per_shape(prim, build, domain, shapes=GRAD_SHAPES) -> list[GradCase]:
    """build(b, x) on a parameter of each shape, drawn from domain(*shape)."""
    return [GradCase(prim, shape_label(s), build, [domain(*s)]) for s in shapes]


# ---- compiled cases ---------------------------------------------------------------------------

@dataclass
class CompiledCase:
    build: Callable[[str], Function]       # dtype -> Function
    dtypes: tuple
    low: float = -3.0
    high: float = 3.0
    quantize: bool = False                 # floats on a 0.5 grid, so ties and zeros happen
    sample: Callable | None = None         # (rng, param types) -> arrays, overriding the rest


def make_fn(name: str, types, body) -> Function:
    """@name with params p0, p1, ... of types; body(b, *params) returns the results."""
    params = [Value(t, f"p{i}") for i, t in enumerate(types)]
    b = Builder()
    results = body(b, *params)
    return function_from(name, params, b, list(results))


def T(dtype, shape) -> TensorType:
    return TensorType(dtype, tuple(shape))


def sample_args(case: CompiledCase, fn: Function, rng) -> list:
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


def unary(prim, shapes=COMPILED_SHAPES, **params):
    return lambda dt: make_fn(prim, [T(dt, s) for s in shapes],
                              lambda b, *xs: [b.emit(prim, x, **params) for x in xs])


def binary(prim, shapes=COMPILED_SHAPES):
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
