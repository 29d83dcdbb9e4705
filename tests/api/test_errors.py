"""Bad input to the functional API: a clear Python exception naming the user's line."""
from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

import gradjit as gj

HERE = os.path.basename(__file__)


def _line_of(fn, marker: str) -> int:
    """The line number of the source line of fn containing marker."""
    lines, start = inspect.getsourcelines(fn)
    for k, line in enumerate(lines):
        if marker in line:
            return start + k
    raise AssertionError(marker)


def branchy(x):
    if x.sum() > 0:                               # MARK-if
        return x
    return -x


def loopy(x):
    while x.sum() < 10:                           # MARK-while
        x = x * 2
    return x


def as_python_float(x):
    return float(x.sum()) * x                     # MARK-float


@pytest.mark.parametrize("fn, marker, transform", [
    (branchy, "MARK-if", gj.jit),
    (branchy, "MARK-if", lambda f: gj.grad(lambda x: f(x).sum())),
    (loopy, "MARK-while", gj.jit),
    (as_python_float, "MARK-float", gj.vmap),
])
def test_python_control_flow_on_traced_values(fn, marker, transform):
    with pytest.raises(gj.TracerError) as info:
        transform(fn)(np.ones(3))
    msg = str(info.value)
    assert f"{HERE}:{_line_of(fn, marker)}" in msg
    assert "cond" in msg and "fori_loop" in msg and "while_loop" in msg and "scan" in msg


def test_traced_if_inside_a_scan_body_names_the_line():
    def body(c, x):
        if x > 0:                                  # MARK-body
            c = c + x
        return c, None

    with pytest.raises(gj.TracerError, match=f"{HERE}:{_line_of(body, 'MARK-body')}"):
        gj.scan(body, 0.0, np.ones(3))


def test_grad_of_non_scalar_output():
    with pytest.raises(TypeError) as info:
        gj.grad(lambda x: gj.exp(x))(np.ones(3, np.float32))           # MARK-call
    msg = str(info.value)
    assert "grad requires a scalar output, got f32[3]" in msg
    assert f"{HERE}:{_line_of(test_grad_of_non_scalar_output, 'MARK-call')}" in msg
    with pytest.raises(TypeError, match="requires a scalar output, got a pytree"):
        gj.grad(lambda x: (x.sum(), x.sum()))(np.ones(3))


def test_grad_of_integer_output_or_integer_input():
    with pytest.raises(TypeError, match="requires a float output, got i64"):
        gj.grad(lambda x: x.argmax())(np.ones(3))
    # an integer input is reported as such, even though the output is integer too
    with pytest.raises(TypeError, match=r"float inputs, got i64\[3\] for argument 0"):
        gj.grad(lambda x: x.sum())(np.arange(3))
    with pytest.raises(TypeError, match="integer inputs cannot be differentiated"):
        gj.grad(lambda x, n: (x * n).sum(), argnums=1)(np.ones(3), np.arange(3))
    with pytest.raises(TypeError, match="not a float array"):
        gj.grad(lambda x, n: x.sum() * n, argnums=1)(np.ones(3), 2)


def test_has_aux_needs_a_pair():
    with pytest.raises(TypeError, match=r"has_aux=True requires .* to return a pair"):
        gj.grad(lambda x: x.sum(), has_aux=True)(np.ones(2))


def test_bad_argnums():
    with pytest.raises(ValueError, match="argnums 3 is out of range"):
        gj.grad(lambda x: x.sum(), argnums=3)(np.ones(2))
    with pytest.raises(ValueError, match="static_argnums 2 is out of range"):
        gj.jit(lambda x: x, static_argnums=2)(np.ones(2))


def test_shape_mismatch_at_trace_time_names_the_line():
    def f(a, b):
        return a @ b                                # MARK-matmul

    with pytest.raises(Exception) as info:
        gj.jit(f)(np.ones((2, 3)), np.ones((2, 3)))
    assert f"{HERE}:{_line_of(f, 'MARK-matmul')}" in str(info.value)
    assert not isinstance(info.value, gj.TracerError)


def test_unsupported_dtype_and_unhashable_static_argument():
    with pytest.raises(TypeError, match="unsupported dtype float16"):
        gj.jit(lambda x: x * 2)(np.ones(2, np.float16))
    with pytest.raises(TypeError, match="must be hashable"):
        gj.jit(lambda x, opts: x, static_argnums=1)(np.ones(2), {1, 2})


def test_returning_a_non_array():
    with pytest.raises(TypeError, match="returned str"):
        gj.jit(lambda x: "hello")(np.ones(2))


def test_jvp_and_vjp_argument_errors():
    with pytest.raises(TypeError, match="tuples"):
        gj.jvp(lambda x: x, np.ones(2), np.ones(2))
    with pytest.raises(TypeError, match="2 primals and 1 tangents"):
        gj.jvp(lambda x, y: x * y, (np.ones(2), np.ones(2)), (np.ones(2),))
    _, vjp_fn = gj.vjp(lambda x: (x, x), np.ones(2))
    with pytest.raises(TypeError, match="cotangent structure"):
        vjp_fn(np.ones(2))
