"""What the derivative tests share: finding an op, a rule's keyword arguments, the check
that derivatives are typed (or None where the primitive has none), and random elementwise
programs for hypothesis. The per-primitive samples are in tests/prim_samples."""
from __future__ import annotations

from hypothesis import strategies as st

from ir.core import Function
from ir.primitives import having

NOT_DIFFERENTIABLE = having(differentiable=False)


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
