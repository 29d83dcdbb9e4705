"""The primitive registry: every IR operation, with its shape/dtype rule.

A shape rule takes the input TensorTypes positionally and the op's params as keywords
(control-flow primitives also get `regions=`), and returns the result TensorType, or a
tuple of them for multi-result ops. It raises ShapeError on bad input, with a reason that
names the primitive; Primitive.infer (ir/core.py) adds the operand types and params, and
checks the operand count and param names against the rule's signature.

A primitive's traits (elementwise, commutative, differentiable, linear, cost, fusion, ...:
see ir/core.py's Primitive) are given here, once; the passes build their sets of primitives
from them with `having`. Other layers keep their own rule tables keyed by primitive name
(impl_rules, vjp_rules, jvp_rules, lower_rules, batch_rules, the tracer's grad_fn names),
and tests/test_rules_complete.py checks that every primitive has an entry in each.

Adding a primitive: one _register call here, one rule in each of those tables, one row in
tests/prim_samples (CONTRIBUTING.md has the checklist).
"""
from __future__ import annotations

from ir.constants import constant_value_problem
from ir.core import (DTYPES, INT_DTYPES, Primitive, ShapeError, TensorType, dot_free_axes,
                     is_float)
from ir.linalg.shapes import SHAPE_RULES as LINALG_SHAPES, TRAITS as LINALG_TRAITS
from ir.cumulative.shapes import SHAPE_RULES as CUMULATIVE_SHAPES, TRAITS as CUMULATIVE_TRAITS

__all__ = ["PRIMITIVES", "Primitive", "ShapeError", "FLOAT_UNARY", "get", "having"]


PRIMITIVES: dict[str, Primitive] = {}
COSTS = ("cheap", "divide", "transcendental", "power")
FUSIONS = ("inline", "materialize", "kernel")


def _register(name: str, rule, kind: str, **traits) -> Primitive:
    prim = Primitive(name, rule, kind, **traits)
    if prim.cost not in COSTS or prim.fusion not in FUSIONS:
        raise ValueError(f"primitive {name}: cost {prim.cost!r} not in {COSTS} or fusion "
                         f"{prim.fusion!r} not in {FUSIONS}")
    PRIMITIVES[name] = prim
    return prim


def having(**traits) -> frozenset[str]:
    """The names of the primitives whose traits have the given values, e.g.
    having(elementwise=True) (read when a pass's module is imported: the registry is full)."""
    return frozenset(name for name, p in PRIMITIVES.items()
                     if all(getattr(p, t) == v for t, v in traits.items()))


def _check(cond: bool, msg: str):
    if not cond:
        raise ShapeError(msg)


def _axis_list(axes, ndim: int, what: str) -> tuple[int, ...]:
    axes = tuple(axes)
    for a in axes:
        _check(0 <= a < ndim, f"{what}: axis {a} out of range for rank {ndim}")
    _check(len(set(axes)) == len(axes), f"{what}: repeated axis in {list(axes)}")
    return axes


# ---- elementwise ---------------------------------------------------------------------

def _float_unary(name):
    def rule(x):
        _check(is_float(x.dtype), f"{name} needs a floating operand, got {x}")
        return x
    return rule


def _numeric_unary(name):
    def rule(x):
        _check(x.dtype != "bool", f"{name} needs a numeric operand, got {x}")
        return x
    return rule


def _same_types(name, result_dtype=None, allowed=None):
    def rule(x, y):
        _check(x == y, f"{name} needs operands of one type, got {x} and {y}")
        if allowed is not None:
            _check(x.dtype in allowed, f"{name} does not take {x.dtype} operands")
        return x if result_dtype is None else x.with_dtype(result_dtype)
    return rule


FLOAT_UNARY = ("exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tan",
               "tanh", "logistic", "erf")
for _n in FLOAT_UNARY:
    _register(_n, _float_unary(_n), "unary", elementwise=True,
              cost="divide" if _n in ("sqrt", "rsqrt") else "transcendental")
_register("neg", _numeric_unary("neg"), "unary", elementwise=True, linear=True)
_register("abs", _numeric_unary("abs"), "unary", elementwise=True)
_register("sign", _numeric_unary("sign"), "unary", elementwise=True, differentiable=False)


def _integer_pow(x, *, n):
    """x**n for an int n; for integer x and n < 0 it is 1/x**-n truncated: x**-k is x**k for
    x = 1 or -1, 0 for |x| > 1, and the dtype's minimum for x = 0 (what the native code and
    the interpreter compute; the tracer refuses such powers, as NumPy and PyTorch do)."""
    _check(isinstance(n, int) and not isinstance(n, bool),
           f"integer_pow needs an int exponent, got {n!r}")
    _check(x.dtype != "bool", f"integer_pow needs a numeric operand, got {x}")
    return x


_register("integer_pow", _integer_pow, "unary", elementwise=True, cost="power")


def _logical_not(x):
    _check(x.dtype == "bool", f"logical_not needs a bool operand, got {x}")
    return x


_register("logical_not", _logical_not, "unary", elementwise=True, differentiable=False)
# identity whose derivative is zero (JAX's stop_gradient, PyTorch's detach under a trace);
# it survives optimisation before autodiff (but for a constant operand, which is folded:
# its derivative is zero anyway) and lowers to nothing
_register("stop_gradient", lambda x: x, "unary", elementwise=True, differentiable=False)

_NUMERIC = ("f32", "f64", "i32", "i64")
# Integer arithmetic wraps; integer div truncates toward zero, with x / 0 = 0 and
# INT_MIN / -1 = INT_MIN (C leaves both undefined). max and min propagate nan.
# NOTE: max/min are not commutative: of two equal-comparing operands (-0.0, 0.0) they
# return one by position
for _n in ("add", "sub", "mul", "div", "max", "min"):
    _register(_n, _same_types(_n, allowed=_NUMERIC), "binary", elementwise=True,
              commutative=_n in ("add", "mul"), cost="divide" if _n == "div" else "cheap")
_register("pow", _same_types("pow", allowed=("f32", "f64")), "binary", elementwise=True,
          cost="transcendental")
for _n in ("logical_and", "logical_or"):
    _register(_n, _same_types(_n, allowed=("bool",)), "binary", elementwise=True,
              commutative=True, differentiable=False)
for _n in ("lt", "le", "gt", "ge", "eq", "ne"):
    _register(_n, _same_types(_n, result_dtype="bool"), "compare", elementwise=True,
              commutative=_n in ("eq", "ne"), differentiable=False)


def _select(pred, x, y):
    _check(pred.dtype == "bool", f"select needs a bool predicate, got {pred}")
    _check(x == y, f"select needs branches of one type, got {x} and {y}")
    _check(pred.shape == x.shape, f"select predicate shape {pred.shape} != {x.shape}")
    return x


_register("select", _select, "other", elementwise=True)


def _convert(x, *, dtype):
    """Float to integer saturates (nan gives 0, out-of-range values the dtype's bounds); to
    bool is `x != 0` (nan is true); from bool gives 0 and 1."""
    _check(dtype in DTYPES, f"convert: unknown dtype {dtype!r}")
    return x.with_dtype(dtype)


_register("convert", _convert, "unary", elementwise=True)


# ---- shape ops -----------------------------------------------------------------------

def _broadcast_in_dim(x, *, shape, dims):
    """dims[i] is the output axis that operand axis i maps to (XLA's broadcast_in_dim)."""
    shape, dims = tuple(shape), tuple(dims)
    _check(len(dims) == x.ndim, f"broadcast_in_dim: {len(dims)} dims for rank {x.ndim}")
    _check(list(dims) == sorted(set(dims)), f"broadcast_in_dim: dims {list(dims)} not increasing")
    for i, d in enumerate(dims):
        _check(0 <= d < len(shape), f"broadcast_in_dim: dim {d} out of range for rank "
                                    f"{len(shape)}")
        _check(x.shape[i] in (1, shape[d]),
               f"broadcast_in_dim: cannot broadcast {x} to {list(shape)}")
    return x.with_shape(shape)


def _reshape(x, *, shape):
    out = x.with_shape(shape)
    _check(out.size == x.size, f"reshape: cannot reshape {x} to {list(shape)}")
    return out


def _transpose(x, *, perm):
    _check(sorted(perm) == list(range(x.ndim)), f"transpose: bad perm {list(perm)} for {x}")
    return x.with_shape([x.shape[p] for p in perm])


def _slice(x, *, start, limit, stride):
    _check(len(start) == len(limit) == len(stride) == x.ndim, f"slice: rank mismatch for {x}")
    shape = []
    for s, l, st, d in zip(start, limit, stride, x.shape):
        _check(st >= 1 and 0 <= s <= l <= d,
               f"slice: bad range {s}:{l}:{st} for a dimension of size {d} of {x}")
        shape.append(max(0, -(-(l - s) // st)))
    return x.with_shape(shape)


def _pad(x, *, lo, hi, interior):
    """Zero padding: lo/hi elements at each end, interior zeros between elements."""
    _check(len(lo) == len(hi) == len(interior) == x.ndim, f"pad: rank mismatch for {x}")
    shape = []
    for d, a, b, i in zip(x.shape, lo, hi, interior):
        _check(a >= 0 and b >= 0 and i >= 0, f"pad: negative padding of {x}")
        shape.append(a + b + d + max(d - 1, 0) * i)
    return x.with_shape(shape)


def _concatenate(*xs, axis):
    _check(len(xs) >= 1, "concatenate needs at least one operand")
    first = xs[0]
    _check(0 <= axis < first.ndim, f"concatenate: axis {axis} out of range for {first}")
    for x in xs[1:]:
        same = x.dtype == first.dtype and x.ndim == first.ndim and all(
            a == b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != axis)
        _check(same, f"concatenate: {x} does not fit {first} along axis {axis}")
    size = sum(x.shape[axis] for x in xs)
    return first.with_shape(first.shape[:axis] + (size,) + first.shape[axis + 1:])


_register("broadcast_in_dim", _broadcast_in_dim, "shape", linear=True, rearranges=True,
          expands=True)
_register("reshape", _reshape, "shape", linear=True, rearranges=True)
_register("transpose", _transpose, "shape", linear=True, rearranges=True)
_register("slice", _slice, "shape", linear=True)
_register("pad", _pad, "shape", linear=True, expands=True)
_register("concatenate", _concatenate, "shape", expands=True)


# ---- reductions ----------------------------------------------------------------------
# Over an empty axis, reduce_sum gives 0 and reduce_max / reduce_min the lowest / highest
# value of the dtype (-inf / inf for floats): the identities the native loops start from.

def _reduce(name, out_dtype=None):
    def rule(x, *, axes):
        axes = _axis_list(axes, x.ndim, name)
        _check(x.dtype != "bool" or out_dtype, f"{name} needs a numeric operand, got {x}")
        shape = [d for i, d in enumerate(x.shape) if i not in axes]
        return TensorType(out_dtype or x.dtype, tuple(shape))
    return rule


for _n in ("reduce_sum", "reduce_max", "reduce_min"):
    _register(_n, _reduce(_n), "reduce", linear=_n == "reduce_sum", fusion="materialize")


def _arg_reduce(name):
    def rule(x, *, axis):
        _axis_list((axis,), x.ndim, name)
        _check(x.shape[axis] > 0, f"{name} of an empty axis")
        return TensorType("i64", x.shape[:axis] + x.shape[axis + 1:])
    return rule


_register("argmax", _arg_reduce("argmax"), "other", differentiable=False, fusion="materialize")
_register("argmin", _arg_reduce("argmin"), "other", differentiable=False, fusion="materialize")


# ---- linear algebra, indexing, creation ----------------------------------------------

def _dot_general(x, y, *, contract, batch):
    """Result axes: batch axes, then x's free axes, then y's free axes (XLA's order)."""
    for what, pair in (("contract", contract), ("batch", batch)):
        _check(len(pair) == 2, f"dot_general: {what} must be a pair (lhs axes, rhs axes), "
                               f"got {pair!r}")
    (xc, yc), (xb, yb) = contract, batch
    _check(x.dtype == y.dtype, f"dot_general needs operands of one dtype, got {x} and {y}")
    _check(x.dtype != "bool", "dot_general does not take bool operands")
    _check(len(xc) == len(yc) and len(xb) == len(yb), "dot_general: dimension lists differ")
    _axis_list(tuple(xc) + tuple(xb), x.ndim, "dot_general lhs")
    _axis_list(tuple(yc) + tuple(yb), y.ndim, "dot_general rhs")
    for a, b in zip(tuple(xc) + tuple(xb), tuple(yc) + tuple(yb)):
        _check(x.shape[a] == y.shape[b],
               f"dot_general: size mismatch {x.shape[a]} vs {y.shape[b]} ({x} @ {y})")
    xfree = [x.shape[a] for a in dot_free_axes(x.ndim, xc, xb)]
    yfree = [y.shape[a] for a in dot_free_axes(y.ndim, yc, yb)]
    return TensorType(x.dtype, tuple(x.shape[a] for a in xb) + tuple(xfree) + tuple(yfree))


_register("dot_general", _dot_general, "other", fusion="kernel")


def _gather(x, idx, *, axis):
    """numpy.take(x, idx, axis): out shape x.shape[:axis] + idx.shape + x.shape[axis+1:].

    Indices must lie in [0, x.shape[axis]); the tracer wraps negatives, and the kernels
    clamp out-of-range ones so native code never reads out of bounds.
    """
    _check(idx.dtype in INT_DTYPES, f"gather needs integer indices, got {idx}")
    _check(0 <= axis < x.ndim, f"gather: axis {axis} out of range for {x}")
    # NOTE: every index into an empty axis is out of range: there is nothing to clamp to
    _check(x.shape[axis] > 0 or idx.size == 0, f"gather of {idx.size} indices from the empty "
                                               f"axis {axis} of {x}")
    return x.with_shape(x.shape[:axis] + idx.shape + x.shape[axis + 1:])


def _scatter_add(x, idx, upd, *, axis):
    """x with upd added at idx along axis (duplicates accumulate): the transpose of gather."""
    _check(idx.dtype in INT_DTYPES, f"scatter_add needs integer indices, got {idx}")
    _check(0 <= axis < x.ndim, f"scatter_add: axis {axis} out of range for {x}")
    _check(x.shape[axis] > 0 or idx.size == 0, f"scatter_add of {idx.size} indices into the "
                                               f"empty axis {axis} of {x}")
    want = x.shape[:axis] + idx.shape + x.shape[axis + 1:]
    _check(upd.dtype == x.dtype and upd.shape == want,
           f"scatter_add: updates {upd} do not fit {x} with indices {idx} (want {list(want)})")
    return x


def _iota(*, dtype, shape, dim):
    """0, 1, 2, ... along axis dim, the same across the other axes."""
    out = TensorType(dtype, tuple(shape))
    _check(dtype != "bool", "iota needs a numeric dtype, got bool")
    _check(0 <= dim < len(shape), f"iota: dim {dim} out of range for rank {len(shape)}")
    return out


def _constant(*, value, dtype, shape):
    """value is a Python scalar (splat) or a nested list matching shape (ir/constants.py)."""
    out = TensorType(dtype, tuple(shape))
    problem = constant_value_problem(value, out)
    _check(problem is None, problem)
    return out


_register("gather", _gather, "other", expands=True)
_register("scatter_add", _scatter_add, "other", fusion="kernel")
_register("iota", _iota, "other", differentiable=False)
_register("constant", _constant, "other", differentiable=False)


# ---- structured control flow -----------------------------------------------------------

def _types_match(got, want, what):
    got, want = list(got), list(want)
    _check(got == want, f"{what}: types {[str(t) for t in got]} != {[str(t) for t in want]}")


def _cond(pred, *operands, regions):
    """cond(pred, *operands): regions (true_fn, false_fn) each map operands -> results."""
    _check(pred.dtype == "bool" and pred.shape == (), f"cond needs a bool[] predicate, got {pred}")
    _check(len(regions) == 2, "cond needs two regions")
    for r in regions:
        _types_match(r.param_types, operands, "cond branch parameters")
    _types_match(regions[1].result_types, regions[0].result_types, "cond branch results")
    return tuple(regions[0].result_types)


def _while(*init, regions):
    """while(*init): regions (cond_fn: carry -> bool[], body_fn: carry -> carry)."""
    _check(len(regions) == 2, "while needs two regions")
    cond_fn, body_fn = regions
    _types_match(cond_fn.param_types, init, "while cond parameters")
    _types_match(cond_fn.result_types, [TensorType("bool", ())], "while cond result")
    _types_match(body_fn.param_types, init, "while body parameters")
    _types_match(body_fn.result_types, init, "while body results")
    return tuple(init)


def _scan(*operands, num_carry, length, reverse, regions):
    """scan(*carry, *xs): body (carry, x slices) -> (carry, y slices); ys stacked on axis 0."""
    _check(len(regions) == 1, "scan needs one region")
    _check(0 <= num_carry <= len(operands),
           f"scan: num_carry {num_carry} out of range for {len(operands)} operands")
    _check(length >= 0, f"scan: negative length {length}")
    _check(isinstance(reverse, bool), f"scan: reverse must be a bool, got {reverse!r}")
    (body,) = regions
    carry, xs = operands[:num_carry], operands[num_carry:]
    for x in xs:
        _check(x.ndim >= 1 and x.shape[0] == length, f"scan: xs {x} not of length {length}")
    slices = [x.with_shape(x.shape[1:]) for x in xs]
    _types_match(body.param_types, list(carry) + slices, "scan body parameters")
    _types_match(body.result_types[:num_carry], carry, "scan body carry results")
    ys = [t.with_shape((length,) + t.shape) for t in body.result_types[num_carry:]]
    return tuple(carry) + tuple(ys)


for _n, _r in (("cond", _cond), ("while", _while), ("scan", _scan)):
    _register(_n, _r, "control", fusion="kernel")


# ---- calls with user-defined derivative rules (jax.custom_vjp / custom_jvp) ---------------

def _custom_vjp_call(*operands, regions):
    """custom_vjp_call(*operands): regions (body: operands -> outs, fwd: operands -> outs +
    residuals, bwd: residuals + one cotangent per out -> one cotangent per operand)."""
    _check(len(regions) == 3, "custom_vjp_call needs three regions (body, fwd, bwd)")
    body, fwd, bwd = regions
    outs = body.result_types
    _types_match(body.param_types, operands, "custom_vjp_call body parameters")
    _types_match(fwd.param_types, operands, "custom_vjp_call fwd parameters")
    _types_match(fwd.result_types[:len(outs)], outs, "custom_vjp_call fwd results")
    _types_match(bwd.param_types, fwd.result_types[len(outs):] + outs,
                 "custom_vjp_call bwd parameters (residuals, cotangents)")
    _types_match(bwd.result_types, operands, "custom_vjp_call bwd results")
    return tuple(outs)


def _custom_jvp_call(*operands, regions):
    """custom_jvp_call(*operands): regions (body: operands -> outs, jvp: operands + one
    tangent per operand -> outs + one tangent per out)."""
    _check(len(regions) == 2, "custom_jvp_call needs two regions (body, jvp)")
    body, jvp = regions
    outs = body.result_types
    _types_match(body.param_types, operands, "custom_jvp_call body parameters")
    _types_match(jvp.param_types, list(operands) * 2, "custom_jvp_call jvp parameters")
    _types_match(jvp.result_types, outs * 2, "custom_jvp_call jvp results")
    return tuple(outs)


for _n, _r in (("custom_vjp_call", _custom_vjp_call), ("custom_jvp_call", _custom_jvp_call)):
    _register(_n, _r, "control", fusion="kernel")


def _debug_print(*xs, fmt, names, batch_dims):
    """debug_print(*xs): xs unchanged; prints fmt with their values when run (ir/debug_print)."""
    _check(isinstance(fmt, str), f"debug_print: fmt must be a string, got {fmt!r}")
    _check(len(names) <= len(xs), f"debug_print: {len(names)} names for {len(xs)} operands")
    _check(all(x.ndim >= batch_dims for x in xs), "debug_print: batch_dims beyond a rank")
    return tuple(xs)


_register("debug_print", _debug_print, "other", fusion="kernel")


def get(name: str) -> Primitive:
    """The primitive called name.

    Raises:
        KeyError: no primitive has that name.
    """
    try:
        return PRIMITIVES[name]
    except KeyError:
        raise KeyError(f"unknown primitive '{name}'") from None


# ---- linear algebra: decompositions and solves (ir/linalg) --------------------------------
for _name, _rule in LINALG_SHAPES.items():
    _register(_name, _rule, "other", **LINALG_TRAITS)

# ---- cumulative: running sums, products, log-sum-exps, extremes (ir/cumulative) ------------
for _name, _rule in CUMULATIVE_SHAPES.items():
    _register(_name, _rule, "other", **CUMULATIVE_TRAITS)
