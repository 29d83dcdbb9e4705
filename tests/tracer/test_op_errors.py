"""Bad calls raise a clear exception whose message names the user's file:line, eagerly and
while tracing."""
from __future__ import annotations

import os

import numpy as np
import pytest

import tracer.ops as gj
from ir.core import TensorType
from ir.primitives import ShapeError
from tests.tracer.tracing import trace
from tracer.errors import TracerError
from tracer.tensor import tensor_from_array

X = tensor_from_array(np.arange(12.0).reshape(3, 4))
V = tensor_from_array(np.arange(5.0))
I = tensor_from_array(np.array([0, 1, 2]))
HERE = os.path.basename(__file__)

# (exception, message pattern, the bad call): each call is on its own line, which the
# message must name
BAD_CALLS = [
    (ShapeError, r"shapes \[3, 4\] and \[5\] cannot be broadcast",
     lambda: X + V),
    (ShapeError, r"matmul: shapes \[3, 4\] and \[5\] cannot be multiplied",
     lambda: X @ V),
    (ShapeError, r"mat1 and mat2 shapes cannot be multiplied \(3x4 and 3x4\)",
     lambda: gj.mm(X, X)),
    # gj.dot of a matrix is numpy.dot (tracer/ops/numpy_spellings.py); vdot keeps torch's check
    (ShapeError, "1D tensors expected",
     lambda: gj.vdot(X, V)),
    (IndexError, r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)",
     lambda: X.sum(2)),
    (IndexError, "Dimension out of range",
     lambda: gj.softmax(X, dim=-3)),
    (IndexError, "Dimension out of range",
     lambda: gj.cat([X, X], dim=2)),
    (IndexError, "index 3 is out of bounds for dimension 0 with size 3",
     lambda: X[3]),
    (IndexError, "index -5 is out of bounds for dimension 1 with size 4",
     lambda: X[0, -5]),
    (IndexError, "too many indices for tensor of dimension 2",
     lambda: X[0, 0, 0]),
    (IndexError, "tensors used as indices must be long, int, byte or bool tensors",
     lambda: X[np.array([0.5, 1.0])]),
    (IndexError, "tensors used as indices must be long, int, byte or bool tensors",
     lambda: gj.gather(X, 1, np.ones((3, 1)))),
    (IndexError, "index 7 is out of bounds for dimension 0 with size 3",
     lambda: X[[0, 7]]),
    (RuntimeError, "index 4 is out of bounds for dimension 1 with size 4",   # (as PyTorch)
     lambda: X.gather(1, np.array([[4], [0], [0]]))),
    (IndexError, r"The shape of the mask \[4\] at index 0 does not match",
     lambda: X[np.ones(4, bool)]),
    (IndexError, "shape mismatch: indexing tensors could not be broadcast",
     lambda: X[[0, 1], [0, 1, 2]]),
    (ValueError, "step must be greater than zero",
     lambda: X[::-1]),
    (ShapeError, r"einsum\(\): subscript j has size 3 for operand 1 which does not broadcast",
     lambda: gj.einsum("ij,jk->ik", X, X)),
    (ValueError, r"einsum\(\): the number of subscripts in 'ijk' does not match",
     lambda: gj.einsum("ijk,jk->i", X, X)),
    (ValueError, r"einsum\(\): output subscript z does not appear",
     lambda: gj.einsum("ij,jk->iz", X, X.T)),
    (ValueError, r"einsum\(\): 'ij' has 1 operand subscripts but 2 operands",
     lambda: gj.einsum("ij", X, X)),
    (ShapeError, r"shape '\[5, 3\]' is invalid for input of size 12",
     lambda: X.reshape(5, 3)),
    (ShapeError, "sizes of tensors must match except in dimension 0",
     lambda: gj.cat([X, V])),
    (ShapeError, "stack expects each tensor to be equal size",
     lambda: gj.stack([X, X.T])),
    (ShapeError, "cannot broadcast shape",
     lambda: gj.broadcast_to(X, (4, 4))),
    (RuntimeError, "where expected condition to be a boolean tensor",
     lambda: gj.where(X, X, 0.0)),
    (RuntimeError, r"mean\(\): could not infer output dtype",   # PyTorch 2.13's class
     lambda: I.mean()),
    (RuntimeError, "Integers to negative integer powers are not allowed",
     lambda: I ** -1),
    (RuntimeError, "negation .* is not supported on bool tensors",
     lambda: -(X > 1)),
    (NotImplementedError, "\"bitwise_and_cpu\" not implemented for 'Double'",
     lambda: X & X),
    (TypeError, r"~ \(operator.invert\) is only implemented on integer and Boolean-type",
     lambda: ~X),
    (IndexError, "Target 4 is out of bounds",
     lambda: gj.cross_entropy(X, np.array([0, 4, 1]))),
    (RuntimeError, "expected target dtype to be Long or Byte, but got Double",
     lambda: gj.cross_entropy(X, np.array([0.0, 1.0, 1.0]))),
    (ValueError, "mean_all is not a valid value for reduction",
     lambda: gj.mse_loss(X, X, reduction="mean_all")),
    (ValueError, "At least one of 'min' or 'max' must not be None",
     lambda: X.clamp()),
    (TypeError, "unsupported dtype",
     lambda: X.to(np.complex64)),
    (ValueError, "split_with_sizes expects split_sizes to sum exactly to 4",
     lambda: X.split([1, 2], 1)),
]


@pytest.mark.parametrize("exc,pattern,call", BAD_CALLS, ids=[p[:40] for _, p, _ in BAD_CALLS])
def test_bad_call_raises_a_clear_error_naming_the_line(exc, pattern, call):
    with pytest.raises(exc, match=pattern) as info:
        call()
    assert f"{HERE}:{call.__code__.co_firstlineno}" in str(info.value)


def test_errors_while_tracing_name_the_line_too():
    def f(x, y):
        return (x @ y).sum()       # the offending line
    line = f.__code__.co_firstlineno + 1
    with pytest.raises(ShapeError, match=f"{HERE}:{line}"):
        trace(f, TensorType("f32", (3, 4)), TensorType("f32", (3, 4)))


def test_boolean_mask_of_traced_data_is_a_tracer_error():
    with pytest.raises(TracerError, match=r"boolean mask indexing.*test_op_errors.py:\d+"):
        trace(lambda x: x[x > 0], TensorType("f64", (3,)))


def test_boolean_mask_on_concrete_data_works_inside_a_trace():
    mask = np.array([True, False, True])
    fn, captured = trace(lambda x: x[mask] * 2, TensorType("f64", (3,)))
    from ir.interpret import interpret
    np.testing.assert_array_equal(interpret(fn, np.array([1.0, 2.0, 3.0]), *captured)[0],
                                  [2.0, 6.0])
