"""Sample rows of the bit primitives: bitwise and/or/xor, the shifts, bitcast_convert."""
from __future__ import annotations

import numpy as np

from tests.prim_samples.cases import (COMPILED_SHAPES, FLOATS, INTS, CompiledCase, F, Row,
                                      away_from_zero, binary, grad_cases, index, unary)

ROWS: dict[str, Row] = {}
SHIFTS = ("shift_left", "shift_right_logical", "shift_right_arithmetic")


def _bit_patterns(rng, types):
    """Full-range integers (signs and high bits set) for the bitwise ops."""
    out = []
    for t in types:
        info = np.iinfo(t.np_dtype)
        out.append(rng.integers(info.min, info.max, t.shape, dtype=t.np_dtype, endpoint=True))
    return out


def _shift_operands(rng, types):
    """Pairs (value, amount): amounts cover 0, bits - 1, bits and beyond, and negatives."""
    values = _bit_patterns(rng, types[::2])
    bits = types[0].np_dtype.itemsize * 8
    amounts = [rng.integers(-3, bits + 4, t.shape).astype(t.np_dtype) for t in types[1::2]]
    return [a for pair in zip(values, amounts) for a in pair]


def _route_around(name):
    """The op has no derivative: its int result scales a float, so it contributes zeros."""
    return grad_cases(name, "int-operands", lambda b, x, k: b.mul(x, b.convert(
        b.emit(name, k, b.full_like(3, k)), dtype=x.dtype)), F(4), index(4, bound=8))


for _n in ("bitwise_and", "bitwise_or", "bitwise_xor"):
    ROWS[_n] = Row(_route_around(_n), [CompiledCase(binary(_n), INTS, sample=_bit_patterns)])
for _n in SHIFTS:
    ROWS[_n] = Row(_route_around(_n), [CompiledCase(binary(_n), INTS, sample=_shift_operands)])


def _bitcast_build(dt):
    to = {"f32": "i32", "f64": "i64", "i32": "f32", "i64": "f64"}[dt]
    return unary("bitcast_convert", COMPILED_SHAPES, dtype=to)(dt)


ROWS["bitcast_convert"] = Row(
    # the sign of a float's bits read as an int: piecewise constant, so zero derivative
    grad_cases("bitcast_convert", "sign-of-bits", lambda b, x: b.mul(x, b.convert(b.gt(
        b.bitcast_convert(x, dtype={"f32": "i32", "f64": "i64"}[x.dtype]),
        b.full_like(0, b.bitcast_convert(x, dtype={"f32": "i32", "f64": "i64"}[x.dtype]))),
        dtype=x.dtype)), away_from_zero(5)),
    [CompiledCase(_bitcast_build, FLOATS), CompiledCase(_bitcast_build, INTS,
                                                         sample=_bit_patterns)])
