"""Bad input: a clear Python exception naming the caller's file:line (never a crash, a hang
or a silent wrong number)."""
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


# ---- one bad call per row: the exception, its text, and the caller's line ----------------
A = np.ones((2, 3), np.float32)
V3 = np.ones(3)


def _jit_matmul():
    gj.jit(lambda x, y: x @ y)(A, np.ones((4, 5), np.float32))


# (name, call, exception type, a regex the message must contain)
CASES = [
    ("matmul shapes", _jit_matmul, RuntimeError, r"cannot be multiplied \(3 != 4\)"),
    ("axis out of range", lambda: gj.jit(lambda x: x.sum(axis=-3))(A), IndexError,
     r"Dimension out of range"),
    ("bad einsum", lambda: gj.einsum("ij,jk->ik", gj.tensor(A), gj.tensor(A)), RuntimeError,
     r"einsum\(\): subscript j"),
    ("static index out of range", lambda: gj.jit(lambda x: x[5])(A), IndexError,
     r"index 5 is out of bounds for dimension 0 with size 2"),
    ("non-scalar grad", lambda: gj.grad(lambda x: x * 2)(A), TypeError,
     r"grad requires a scalar output, got f32\[2,3\]"),
    ("grad of while", lambda: gj.grad(lambda x: gj.while_loop(
        lambda c: c < 10.0, lambda c: c * 2.0, x))(np.float32(1.0)), TypeError,
     r"reverse-mode differentiation of while is not supported"),
    ("grad of a Python int", lambda: gj.grad(lambda x: x ** 2)(3), TypeError,
     r"argument 0: 3 is not a float array but a Python int"),
    ("argnums out of range", lambda: gj.grad(lambda x: x.sum(), argnums=2)(A), ValueError,
     r"argnums 2 is out of range"),
    ("has_aux without a pair", lambda: gj.grad(lambda x: x.sum(), has_aux=True)(A),
     TypeError, r"has_aux=True requires"),
    ("jacobian of an integer output", lambda: gj.jacobian(lambda x: x.argmax())(V3),
     TypeError, r"jacobian requires float outputs"),
    ("jvp tangent shape", lambda: gj.jvp(lambda x: x * 2, (V3,), (np.ones(2),)), TypeError,
     r"tangent f64\[2\] does not match primal f64\[3\]"),
    ("jvp not tuples", lambda: gj.jvp(lambda x: x * 2, V3, V3), TypeError,
     r"jvp expects primals and tangents as tuples"),
    ("vjp cotangent shape", lambda: gj.vjp(lambda x: x * 2, V3)[1](np.ones(2)), TypeError,
     r"cotangent f64\[2\] does not match output f64\[3\]"),
    ("cond branch types", lambda: gj.cond(True, lambda x: x, lambda x: x.sum(), V3),
     TypeError, r"false_fn's results differ from true_fn's"),
    ("cond predicate shape", lambda: gj.jit(lambda x: gj.cond(
        x > 0, lambda v: v, lambda v: -v, x))(V3), TypeError,
     r"cond predicate must be a scalar, got bool\[3\]"),
    ("scan carry types", lambda: gj.scan(lambda c, x: (c.sum(), x), V3, np.ones((4, 3))),
     TypeError, r"scan body must return the carry's types"),
    ("scan lengths", lambda: gj.scan(lambda c, x: (c, x), 0.0, (np.ones(3), np.ones(4))),
     ValueError, r"inconsistent lengths \[3, 4\]"),
    ("scan body result", lambda: gj.scan(lambda c, x: c, 0.0, V3), TypeError,
     r"must return a pair \(carry, y\)"),
    ("fori bounds", lambda: gj.fori_loop(0, np.ones(2), lambda i, c: c, 1.0), TypeError,
     r"fori_loop bounds must be integer scalars"),
    ("while predicate shape", lambda: gj.while_loop(
        lambda c: c < 10.0, lambda c: c * 2.0, np.ones(3, np.float32)), TypeError,
     r"cond_fun must be a scalar"),
    ("vmap sizes", lambda: gj.vmap(lambda x, y: x + y)(np.ones((3, 2)), np.ones((4, 2))),
     ValueError, r"inconsistent sizes 3 and 4"),
    ("vmap axis", lambda: gj.vmap(lambda x: x, in_axes=2)(np.ones((3, 2))), ValueError,
     r"vmap axis 2 is out of range"),
    ("vmap in_axes length", lambda: gj.vmap(lambda x, y: x, in_axes=(0,))(A, A), ValueError,
     r"one entry per positional argument"),
    ("vmap nothing mapped", lambda: gj.vmap(lambda x: x, in_axes=None)(A), ValueError,
     r"at least one input with a mapped axis"),
    ("run_ir shapes", lambda: gj.run_ir(gj.make_ir(lambda x: x * 2)(A), V3), TypeError,
     r"argument 0 has shape \[3\], parameter 0 is f32\[2,3\]"),
    ("empty max", lambda: gj.zeros(0, 3).amax(0), IndexError,
     r"Expected reduction dim 0 to have non-zero size"),
]


@pytest.mark.parametrize("name, call, exc, pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_call_names_the_callers_line(name, call, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        call()
    assert f"{HERE}:" in str(info.value), str(info.value)


@pytest.mark.parametrize("what, fn", [
    ("np.asarray()", lambda x: np.asarray(x) * 2),
    ("format()", lambda x: f"{x.sum():.2f}" and x),
    ("bool()", lambda x: x if x.sum() > 0 else -x),
    ("float()", lambda x: float(x.sum()) * x),
])
def test_reading_traced_data_is_a_tracer_error_with_the_line(what, fn):
    with pytest.raises(gj.TracerError) as info:
        gj.jit(fn)(V3)
    msg = str(info.value)
    assert what in msg and f"{HERE}:" in msg and "gj.cond" in msg


def test_truth_value_of_an_empty_tensor():
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with no values is ambiguous"):
        bool(gj.tensor([]))
    with pytest.raises(RuntimeError, match="with more than one value is ambiguous"):
        bool(gj.ones(2))
    assert f"{gj.tensor(2.5):.2f}" == "2.50"


def test_traced_index_out_of_range_clamps_as_in_jax():
    # a traced index cannot be checked at trace time: it clamps, never reads out of bounds
    got = gj.jit(lambda x, i: x[i])(np.arange(5.0), np.array([-1, 9, -9]))
    np.testing.assert_allclose(np.asarray(got), [4.0, 4.0, 0.0])
