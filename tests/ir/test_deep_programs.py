"""Deep programs: nothing that walks IR recurses once per op, so a 100,000-op chain goes
through print, parse, verify, optimize, the interpreter and both autodiff transforms, and
a 10,000-op fused elementwise chain compiles (the elemental emitter generates a chain's
operands iteratively). Values are checked, not just the absence of RecursionError."""
import sys

import numpy as np
import pytest

import runtime
from ir import Builder, Function, TensorType, Value
from ir.autodiff import jvp, vjp
from ir.interpret import interpret
from ir.parser import parse
from ir.passes import optimize
from ir.printer import print_function
from ir.verify import verify


def chain(n: int, unary=("sin", "neg")) -> Function:
    """x -> n ops alternating `v + x` and a unary op: one long dependence chain."""
    x = Value(TensorType("f64", (3,)), "x")
    b, v = Builder(), x
    for i in range(n):
        v = b.emit(unary[(i // 2) % len(unary)], v) if i % 2 else b.add(v, x)
    return Function("chain", [x], b.ops, [v])


def chain_numpy(n: int, x, unary=("sin", "neg")):
    fns = {"sin": np.sin, "neg": np.negative, "abs": np.abs}
    v = x
    for i in range(n):
        v = fns[unary[(i // 2) % len(unary)]](v) if i % 2 else v + x
    return v


def test_the_recursion_limit_is_the_default():
    assert sys.getrecursionlimit() <= 3000      # so the tests below mean something


def test_a_100000_op_program_prints_parses_verifies_optimizes_and_interprets():
    n, x = 100_000, np.array([0.5, -1.0, 2.0])
    fn = chain(n)
    text = print_function(verify(fn))
    parsed = verify(parse(text))
    assert len(parsed.body) == n and print_function(parsed) == text
    want = chain_numpy(n, x)
    np.testing.assert_allclose(interpret(parsed, x)[0], want, rtol=1e-9)
    opt = optimize(parsed)
    np.testing.assert_allclose(interpret(opt, x)[0], want, rtol=1e-9)


def test_derivatives_of_a_20000_op_program():
    n, x, t = 20_000, np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.5, -2.0])
    fn = chain(n)
    primal, tangent = interpret(jvp(fn), x, t)
    eps = 1e-6
    fd = (chain_numpy(n, x + eps * t) - chain_numpy(n, x - eps * t)) / (2 * eps)
    np.testing.assert_allclose(primal, chain_numpy(n, x), rtol=1e-9)
    np.testing.assert_allclose(tangent, fd, rtol=1e-4, atol=1e-6)
    _, cot = interpret(vjp(fn), x, np.ones(3))
    np.testing.assert_allclose(np.dot(cot, t), np.sum(fd), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("n", [400, 10_000])
def test_a_long_fused_elementwise_chain_compiles(n):
    # neg/abs: cheap for LLVM, so the size is bounded by gradjit's own walks, not by O3
    unary = ("neg", "abs")
    fn = chain(n, unary)
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(runtime.compile(fn)(x)[0], chain_numpy(n, x, unary), rtol=1e-12)


def test_the_gradient_of_a_long_chain_compiles():
    fn = optimize(vjp(chain(2_000)))
    x, ct = np.array([0.5, -1.0, 2.0]), np.ones(3)
    for got, want in zip(runtime.compile(fn)(x, ct), interpret(fn, x, ct)):
        np.testing.assert_allclose(got, want, rtol=1e-9)
