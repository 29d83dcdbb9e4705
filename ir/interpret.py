"""The reference interpreter: runs a Function on NumPy arrays, one primitive at a time.

It is the oracle that compiled code is checked against, so every rule is the plainest
NumPy that states the primitive's meaning (ir/primitives.py documents the cases NumPy leaves
to the platform or refuses: integer division by zero, float to int conversion, empty
reductions, negative integer powers). Results are cast to the op's result dtype; their
shape must already be the op's.
"""
from __future__ import annotations

import math

import numpy as np

from ir import debug_print
from ir.core import DTYPES, Function, Op, dot_free_axes
from ir.linalg.impl import IMPL_RULES as LINALG_RULES
from ir.cumulative.impl import IMPL_RULES as CUMULATIVE_RULES

impl_rules: dict = {}


for _name, _np in {
    "neg": np.negative, "exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1,
    "sqrt": np.sqrt, "abs": np.abs, "sign": np.sign, "sin": np.sin, "cos": np.cos,
    "tan": np.tan, "tanh": np.tanh, "logical_not": np.logical_not,
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "pow": np.power,
    "max": np.maximum, "min": np.minimum, "logical_and": np.logical_and,
    "logical_or": np.logical_or, "lt": np.less, "le": np.less_equal, "gt": np.greater,
    "ge": np.greater_equal, "eq": np.equal, "ne": np.not_equal, "select": np.where,
}.items():
    impl_rules[_name] = lambda *xs, _f=_np: _f(*xs)


def _div(x, y):
    if x.dtype.kind in "iu":
        # C semantics (truncation toward zero), as the native code does; x/0 is defined as 0
        safe = np.where(y == 0, 1, y)
        q = x // safe
        # floor division rounds toward -inf; C truncates toward zero
        q = np.where((x % safe != 0) & ((x < 0) != (safe < 0)), q + 1, q)
        return np.where(y == 0, 0, q)
    return x / y


def _convert(x, *, dtype):
    """astype, but float -> int saturates and nan gives 0 (as LLVM's fptosi.sat): NumPy
    leaves those cases to the platform."""
    to = DTYPES[dtype]
    if x.dtype.kind != "f" or to.kind not in "iu":
        return x.astype(to)
    info = np.iinfo(to)
    # NOTE: float(info.max) rounds up to 2**63 for i64: x >= it is out of range exactly
    high, low = x >= float(info.max), x <= float(info.min)
    inside = np.where(high | low | np.isnan(x), 0, x).astype(to)
    return np.where(high, info.max, np.where(low, info.min, inside))


def _integer_pow(x, *, n):
    if n >= 0:
        return x ** n
    if x.dtype.kind == "f":
        return 1 / x ** (-n)
    # 1/x**k truncated: x**k survives for x = +-1, 0 for |x| > 1, the dtype's minimum at 0
    k = -n
    return np.where(np.abs(x) == 1, x ** k, np.where(x == 0, np.iinfo(x.dtype).min, 0))


def _reduce_extremum(numpy_reduce, lowest: bool):
    """np.max / np.min, with the identity of an empty reduction: -inf / +inf for floats and
    the dtype's bounds for integers (what the native loops start from)."""
    def rule(x, *, axes):
        if x.dtype.kind == "f":
            initial = -np.inf if lowest else np.inf
        else:
            initial = np.iinfo(x.dtype).min if lowest else np.iinfo(x.dtype).max
        return numpy_reduce(x, axis=tuple(axes), initial=initial)
    return rule


def _logistic(x):
    # split by sign so exp never overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _broadcast_in_dim(x, *, shape, dims):
    expanded = [1] * len(shape)
    for i, d in enumerate(dims):
        expanded[d] = x.shape[i]
    return np.broadcast_to(x.reshape(expanded), shape)


def _slice(x, *, start, limit, stride):
    return x[tuple(slice(s, l, st) for s, l, st in zip(start, limit, stride))]


def _pad(x, *, lo, hi, interior):
    shape = [a + b + d + max(d - 1, 0) * i for d, a, b, i in zip(x.shape, lo, hi, interior)]
    out = np.zeros(shape, x.dtype)
    index = tuple(slice(a, a + d + max(d - 1, 0) * i, i + 1)
                  for d, a, i in zip(x.shape, lo, interior))
    out[index] = x
    return out


def _dot_general(x, y, *, contract, batch):
    (xc, yc), (xb, yb) = contract, batch
    xfree, yfree = list(dot_free_axes(x.ndim, xc, xb)), list(dot_free_axes(y.ndim, yc, yb))
    xt = np.transpose(x, list(xb) + xfree + list(xc))
    yt = np.transpose(y, list(yb) + list(yc) + yfree)
    nb = len(xb)
    bshape, xf, yf = xt.shape[:nb], xt.shape[nb:nb + len(xfree)], yt.shape[nb + len(yc):]
    k = int(np.prod(xt.shape[nb + len(xfree):], dtype=np.int64))
    m, n = int(np.prod(xf, dtype=np.int64)), int(np.prod(yf, dtype=np.int64))
    out = np.matmul(xt.reshape(bshape + (m, k)), yt.reshape(bshape + (k, n)))
    return out.reshape(bshape + xf + yf)


def _clamped(idx, size):
    # same as native code: out-of-range indices clamp, so nothing reads out of bounds
    return np.clip(idx, 0, max(size - 1, 0))


def _gather(x, idx, *, axis):
    return np.take(x, _clamped(idx, x.shape[axis]), axis=axis)


def _scatter_add(x, idx, upd, *, axis):
    out = np.array(x, copy=True)
    idx = _clamped(idx, x.shape[axis])
    moved = np.moveaxis(out, axis, 0)
    upd = upd.reshape(x.shape[:axis] + (idx.size,) + x.shape[axis + 1:])
    np.add.at(moved, idx.reshape(-1), np.moveaxis(upd, axis, 0))
    return out


def _iota(*, dtype, shape, dim):
    along = np.arange(shape[dim], dtype=DTYPES[dtype])
    view = [1] * len(shape)
    view[dim] = shape[dim]
    return np.broadcast_to(along.reshape(view), shape)


def _constant(*, value, dtype, shape):
    return np.broadcast_to(np.asarray(value, dtype=DTYPES[dtype]), shape)


# NumPy has no erf: the libm one, element by element (within 1 ulp in f64; f32 rounds it once)
_erf = np.vectorize(math.erf, otypes=[np.float64])

impl_rules.update({
    "div": _div,
    "erf": lambda x: _erf(x),
    "logistic": _logistic,
    "rsqrt": lambda x: 1 / np.sqrt(x),
    "stop_gradient": lambda x: x,
    "integer_pow": _integer_pow,
    "convert": _convert,
    "broadcast_in_dim": _broadcast_in_dim,
    "reshape": lambda x, *, shape: x.reshape(shape),
    "transpose": lambda x, *, perm: np.transpose(x, perm),
    "slice": _slice,
    "pad": _pad,
    "concatenate": lambda *xs, axis: np.concatenate(xs, axis=axis),
    "reduce_sum": lambda x, *, axes: np.sum(x, axis=tuple(axes)),
    "reduce_max": _reduce_extremum(np.max, lowest=True),
    "reduce_min": _reduce_extremum(np.min, lowest=False),
    "argmax": lambda x, *, axis: np.argmax(x, axis=axis),
    "argmin": lambda x, *, axis: np.argmin(x, axis=axis),
    "dot_general": _dot_general,
    "gather": _gather,
    "scatter_add": _scatter_add,
    "iota": _iota,
    "constant": _constant,
})


# ---- control flow ----------------------------------------------------------------------

def _cond(pred, *operands, regions):
    branch = regions[0] if bool(pred) else regions[1]
    return interpret(branch, *operands)


def _while(*carry, regions):
    cond_fn, body_fn = regions
    while bool(interpret(cond_fn, *carry)[0]):
        carry = interpret(body_fn, *carry)
    return list(carry)


def _scan(*operands, num_carry, length, reverse, regions):
    (body,) = regions
    carry, xs = list(operands[:num_carry]), operands[num_carry:]
    ys = [np.empty((length,) + t.shape, t.np_dtype) for t in body.result_types[num_carry:]]
    steps = range(length - 1, -1, -1) if reverse else range(length)
    for i in steps:
        out = interpret(body, *carry, *(x[i] for x in xs))
        carry = out[:num_carry]
        for y, v in zip(ys, out[num_carry:]):
            y[i] = v
    return carry + ys


impl_rules.update({"cond": _cond, "while": _while, "scan": _scan})
# a call with custom derivative rules computes its body (region 0)
for _n in ("custom_vjp_call", "custom_jvp_call"):
    impl_rules[_n] = lambda *operands, regions: interpret(regions[0], *operands)


def _debug_print(*xs, fmt, names, batch_dims):
    debug_print.emit(fmt, names, batch_dims, xs)
    return list(xs)


impl_rules["debug_print"] = _debug_print


def eval_op(op: Op, args: list) -> list[np.ndarray]:
    """Applies one op to NumPy inputs; returns its results cast to their IR dtypes."""
    kwargs = dict(op.params)
    if op.regions:
        kwargs["regions"] = op.regions
    with np.errstate(all="ignore"):
        out = impl_rules[op.prim.name](*args, **kwargs)
    outs = out if isinstance(out, (list, tuple)) else [out]
    results = []
    for o, r in zip(outs, op.results):
        o = np.asarray(o)
        # NOTE: a shape is checked, never reshaped into place: that would hide a wrong rule
        assert o.shape == r.type.shape, \
            f"interpreter rule of '{op.prim.name}' gave shape {o.shape} for {r.type}"
        results.append(o.astype(r.type.np_dtype, copy=False))
    return results


def interpret(fn: Function, *args) -> list[np.ndarray]:
    """Runs fn on NumPy arrays; returns its results (fresh arrays of the result types).

    Args:
        fn: a verified Function.
        args: one array (or scalar, nested list) per parameter, converted to its dtype.
    Raises:
        TypeError: the number of arguments is not the number of parameters.
        ValueError: an argument's shape is not its parameter's.
    """
    if len(args) != len(fn.params):
        raise TypeError(f"@{fn.name} takes {len(fn.params)} arguments, got {len(args)}")
    env = {}
    for p, a in zip(fn.params, args):
        a = np.asarray(a)
        if a.shape != p.type.shape:
            raise ValueError(f"@{fn.name}: argument of shape {a.shape} for parameter {p.type}")
        env[p] = a.astype(p.type.np_dtype, copy=False)
    for op in fn.body:
        for r, v in zip(op.results, eval_op(op, [env[x] for x in op.inputs])):
            env[r] = v
    return [np.array(env[r]) for r in fn.results]


impl_rules.update(LINALG_RULES)     # the linear-algebra primitives' rules (ir/linalg)
impl_rules.update(CUMULATIVE_RULES)     # cumsum, cumprod, ... (ir/cumulative)
