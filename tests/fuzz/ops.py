"""The fuzzer's steps: each is `make(rng, pool) -> (operand indices, params) | None` (None:
no operand in the pool fits) and `apply(m, *operands, **params)`, written once for NumPy and
gradjit (tests/fuzz/namespaces.py). Every step maps bounded float values to bounded float
values (squashing where a primitive's domain or growth asks for it), so f32 and f64 compare
at fixed tolerances and finite differences stay meaningful.

`ROUGH` steps are discontinuous (rounding, comparisons, data-dependent branches): their
derivatives are checked only where the function is smooth (see check.py).
"""
from __future__ import annotations

import itertools

import numpy as np

STEPS: dict = {}
ROUGH = {"round_ops", "compare_where", "int_path", "cond", "while", "sign_mul", "relu_ops",
         "minmax", "reduce_max"}
REVERSE_UNSUPPORTED = {"while"}          # reverse mode through while_loop is a clear error


def step(name, weight=1):
    def register(fns):
        make, apply = fns()
        STEPS[name] = (make, apply, weight)
        return fns
    return register


def _pick(rng, pool, ok=lambda v: True):
    idx = [i for i, v in enumerate(pool) if ok(v)]
    return int(rng.choice(idx)) if idx else None


def _broadcastable(a, b) -> bool:
    try:
        np.broadcast_shapes(a.shape, b.shape)
        return True
    except ValueError:
        return False


# ---- elementwise ---------------------------------------------------------------------------

UNARY = {
    "exp_tanh": lambda m, x: m.exp(m.tanh(x)),
    "tanh": lambda m, x: m.tanh(x),
    "sin": lambda m, x: m.sin(x),
    "cos": lambda m, x: m.cos(x),
    "tan_tanh": lambda m, x: m.tan(m.tanh(x)),
    "sigmoid": lambda m, x: m.sigmoid(x),
    "neg": lambda m, x: -x,
    "square_tanh": lambda m, x: m.tanh(x) ** 2,
    "cube_tanh": lambda m, x: m.tanh(x) ** 3,
    "sqrt1p": lambda m, x: m.sqrt(x * x + 1.0),
    "log1p_sq": lambda m, x: m.log(x * x + 1.0),
    "log1p_abs": lambda m, x: m.log1p(m.abs(x)),
    "expm1_tanh": lambda m, x: m.expm1(m.tanh(x)),
    "rsqrt1p": lambda m, x: m.rsqrt(x * x + 1.0),
    "recip1p": lambda m, x: 1.0 / (x * x + 1.0),
    "pow_frac": lambda m, x: (x * x + 1.0) ** 0.75,
    "affine": lambda m, x: x * 0.5 - 0.25,
    "scalar_first": lambda m, x: 1.5 - x,
}


@step("unary", weight=6)
def _unary():
    def make(rng, pool):
        return [_pick(rng, pool)], {"f": str(rng.choice(sorted(UNARY)))}
    return make, lambda m, x, f: UNARY[f](m, x)


BINARY = {
    "add": lambda m, x, y: x + y,
    "sub": lambda m, x, y: x - y,
    "mul": lambda m, x, y: x * m.tanh(y),
    "div": lambda m, x, y: x / (y * y + 1.0),
    "pow": lambda m, x, y: (x * x + 0.5) ** m.tanh(y),
    "hypot": lambda m, x, y: m.sqrt(x * x + y * y + 0.1),
}


@step("binary", weight=6)
def _binary():
    def make(rng, pool):
        i = _pick(rng, pool)
        j = _pick(rng, pool, lambda v: _broadcastable(v, pool[i]))
        return [i, j], {"f": str(rng.choice(sorted(BINARY))), "swap": bool(rng.random() < 0.3)}

    def apply(m, x, y, f, swap):
        out = BINARY[f](m, y, x) if swap else BINARY[f](m, x, y)
        return m.tanh(out) if f in ("add", "sub", "div", "hypot") else out
    return make, apply


@step("minmax", weight=2)
def _minmax():
    def make(rng, pool):
        i = _pick(rng, pool)
        j = _pick(rng, pool, lambda v: _broadcastable(v, pool[i]))
        return [i, j], {"kind": str(rng.choice(["max", "min", "clamp"]))}

    def apply(m, x, y, kind):
        if kind == "clamp":
            return m.clamp(x, -0.5, 0.75)
        return m.maximum(x, y) if kind == "max" else m.minimum(x, y)
    return make, apply


@step("relu_ops")
def _relu():
    return (lambda rng, pool: ([_pick(rng, pool)], {"k": int(rng.integers(3))}),
            lambda m, x, k: [m.relu(x), m.abs(x), m.abs(x) * x][k])


@step("sign_mul")
def _sign_mul():
    return (lambda rng, pool: ([_pick(rng, pool)], {}), lambda m, x: m.sign(x) * m.tanh(x))


@step("compare_where", weight=2)
def _compare_where():
    def make(rng, pool):
        i = _pick(rng, pool)
        j = _pick(rng, pool, lambda v: _broadcastable(v, pool[i]))
        return [i, j], {"op": str(rng.choice(["lt", "le", "gt", "ne"]))}

    def apply(m, x, y, op):
        pred = {"lt": x < y, "le": x <= y, "gt": x > y, "ne": x != y}[op]
        return m.where(pred, x * 2.0, m.sin(y))
    return make, apply


@step("round_ops")
def _round():
    return (lambda rng, pool: ([_pick(rng, pool)], {"k": int(rng.integers(3))}),
            lambda m, x, k: [m.floor(x * 2.0), m.round(x * 3.0), m.trunc(x * 2.5)][k] * 0.5 + x)


@step("int_path")
def _int_path():
    """float -> int32, integer arithmetic (no division by zero), back to float."""
    def apply(m, x, k):
        i = m.to_int(m.floor(x * 3.0))
        j = [i * 2 + 1, i * i - i, m.maximum(i, -i)][k]
        return m.to_float_like(j, x) * 0.25 + x
    return lambda rng, pool: ([_pick(rng, pool)], {"k": int(rng.integers(3))}), apply


# ---- reductions ----------------------------------------------------------------------------

def _axes(rng, ndim):
    options = [None] + list(range(ndim)) + ([tuple(range(ndim))] if ndim > 1 else [])
    return options[int(rng.integers(len(options)))]


@step("reduce", weight=3)
def _reduce():
    def make(rng, pool):
        i = _pick(rng, pool)
        return [i], {"kind": str(rng.choice(["sum", "mean", "prod"])),
                     "axis": _axes(rng, pool[i].ndim), "keepdims": bool(rng.random() < 0.4)}

    def apply(m, x, kind, axis, keepdims):
        out = m.reduce(kind, m.tanh(x) if kind == "prod" else x, axis, keepdims)
        return m.tanh(out) if kind == "sum" else out
    return make, apply


@step("reduce_max", weight=2)
def _reduce_max():
    def make(rng, pool):
        i = _pick(rng, pool, lambda v: v.size > 0)
        if i is None:
            return None
        axis = _axes(rng, pool[i].ndim)
        return [i], {"kind": str(rng.choice(["amax", "amin"])), "axis": axis,
                     "keepdims": bool(rng.random() < 0.4)}
    return make, lambda m, x, kind, axis, keepdims: m.reduce(kind, x, axis, keepdims)


@step("softmax", weight=2)
def _softmax():
    def make(rng, pool):
        i = _pick(rng, pool, lambda v: v.ndim >= 1 and v.size > 0)
        if i is None:
            return None
        return [i], {"kind": int(rng.integers(4)), "axis": int(rng.integers(pool[i].ndim))}

    def apply(m, x, kind, axis):
        if kind == 0:
            return m.softmax(x, axis)
        if kind == 1:
            return m.log_softmax(x, axis)
        if kind == 2:
            return m.logsumexp(x, axis, False)
        return m.tanh(m.var(x, axis, True)) if x.shape[axis] > 1 else m.softmax(x, axis)
    return make, apply


# ---- shapes, views, indexing ---------------------------------------------------------------

@step("reshape", weight=2)
def _reshape():
    def make(rng, pool):
        i = _pick(rng, pool)
        n = pool[i].size
        options = [(n,), (1, n), (n, 1), ()] if n == 1 else [(n,), (1, n), (n, 1)]
        options += [(a, n // a) for a in range(2, n) if n % a == 0]
        return [i], {"shape": options[int(rng.integers(len(options)))]}
    return make, lambda m, x, shape: m.reshape(x, shape)


@step("permute", weight=2)
def _permute():
    def make(rng, pool):
        i = _pick(rng, pool, lambda v: v.ndim >= 1)
        if i is None:
            return None
        perms = list(itertools.permutations(range(pool[i].ndim)))
        return [i], {"perm": perms[int(rng.integers(len(perms)))]}
    return make, lambda m, x, perm: m.permute(x, perm) * 1.0


@step("expand")
def _expand():
    def make(rng, pool):
        i = _pick(rng, pool, lambda v: v.ndim <= 2)
        shape = pool[i].shape
        new = tuple(3 if d == 1 and rng.random() < 0.7 else d for d in shape)
        lead = (2,) if rng.random() < 0.5 else ()
        return [i], {"shape": lead + new}
    return make, lambda m, x, shape: m.tanh(m.expand(x, shape))


@step("slice", weight=3)
def _slice():
    def make(rng, pool):
        i = _pick(rng, pool, lambda v: v.ndim >= 1)
        if i is None:
            return None
        x = pool[i]
        axis = int(rng.integers(x.ndim))
        n = x.shape[axis]
        start = int(rng.integers(0, n + 1))
        stop = int(rng.integers(start, n + 1))
        return [i], {"axis": axis, "start": start, "stop": stop, "stride": int(rng.integers(1, 3)),
                     "neg": bool(rng.random() < 0.3)}

    def apply(m, x, axis, start, stop, stride, neg):
        n = x.shape[axis]
        sl = slice(start - n if neg and start < n else start, stop, stride)
        return x[(slice(None),) * axis + (sl,)]
    return make, apply


@step("index", weight=2)
def _index():
    """Integer indexing (x[k] drops an axis) and integer-array indexing (x[[2, 0, 2]])."""
    def make(rng, pool):
        i = _pick(rng, pool, lambda v: v.ndim >= 1 and v.shape[0] > 0)
        if i is None:
            return None
        n = pool[i].shape[0]
        if rng.random() < 0.5:
            return [i], {"k": int(rng.integers(-n, n)), "ids": None}
        ids = rng.integers(0, n, rng.integers(1, 4))
        return [i], {"k": None, "ids": tuple(int(k) for k in ids)}

    def apply(m, x, k, ids):
        return x[k] if ids is None else x[m.int_array(list(ids))]
    return make, apply


@step("gather")
def _gather():
    def make(rng, pool):
        i = _pick(rng, pool, lambda v: v.ndim >= 1 and v.size > 0)
        if i is None:
            return None
        x = pool[i]
        axis = int(rng.integers(x.ndim))
        shape = list(x.shape)
        shape[axis] = int(rng.integers(1, 4))
        ids = rng.integers(0, x.shape[axis], shape)
        return [i], {"axis": axis, "ids": ids.tolist(), "add": bool(rng.random() < 0.5)}

    def apply(m, x, axis, ids, add):
        ids = np.asarray(ids, np.int64)
        got = m.take_along(x, ids, axis)
        if not add:
            return got
        flat = ids.reshape(-1) if axis == 0 and x.ndim == 1 else None
        if flat is None:
            return got
        return m.index_add(x, 0, flat, m.sin(got))
    return make, apply


@step("concat", weight=2)
def _concat():
    def make(rng, pool):
        i = _pick(rng, pool, lambda v: v.ndim >= 1)
        if i is None:
            return None
        x = pool[i]
        axis = int(rng.integers(x.ndim))
        same = lambda v: v.ndim == x.ndim and all(     # noqa: E731
            a == b for k, (a, b) in enumerate(zip(v.shape, x.shape)) if k != axis)
        j = _pick(rng, pool, same)
        stacked = rng.random() < 0.3 and pool[j].shape == x.shape
        return [i, j], {"axis": axis, "stack": bool(stacked)}

    def apply(m, x, y, axis, stack):
        return m.stack([x, m.sin(y)], axis) if stack else m.cat([x, m.sin(y)], axis)
    return make, apply


@step("matmul", weight=2)
def _matmul():
    def make(rng, pool):
        i = _pick(rng, pool, lambda v: v.ndim >= 1)
        if i is None:
            return None
        k = pool[i].shape[-1]
        j = _pick(rng, pool, lambda v: v.ndim in (1, 2) and v.shape[0] == k)
        if j is None:
            j = _pick(rng, pool, lambda v: v.ndim == 1)
            return None if j is None else ([i, j], {"outer": True})
        return [i, j], {"outer": False}

    def apply(m, x, y, outer):
        if outer:
            return m.tanh(m.outer(m.reshape(x, (-1,)) if x.ndim != 1 else x, y))
        return m.tanh(m.matmul(x, y))
    return make, apply


# ---- in-place sequences (PyTorch style; NumPy spells them the same) ----------------------

@step("inplace", weight=3)
def _inplace():
    def make(rng, pool):
        i = _pick(rng, pool, lambda v: v.ndim >= 1 and v.shape[-1] > 0)
        j = _pick(rng, pool, lambda v: v.ndim == 0)
        return [i] + ([j] if j is not None else []), {"k": int(rng.integers(5))}

    def apply(m, x, *rest, k):
        # a 0-d tensor of x's dtype (a Python float in m.tanh would be float32, as in torch)
        s = rest[0] if rest else m.reduce("sum", x, None, False) * 0.0 + 0.5
        y = m.clone(x)
        if k == 0:
            y += s                              # whole-tensor update
            y *= 0.5
        elif k == 1:
            v = y[..., 1:]                      # a view: writes reach y
            v *= m.tanh(s)
            v -= 0.25
        elif k == 2:
            y[..., 0] = m.sin(x[..., -1])       # setitem from another element
        elif k == 3:
            t = y[..., ::2]
            t += y[..., ::2] * 2.0
        else:
            y[..., :1] = s                      # fill a slice with a scalar tensor
            y += x
        return y
    return make, apply


# ---- control flow --------------------------------------------------------------------------

@step("cond", weight=2)
def _cond():
    def make(rng, pool):
        i = _pick(rng, pool)
        j = _pick(rng, pool, lambda v: v.shape == pool[i].shape)
        return [i, j], {"f": str(rng.choice(sorted(UNARY))), "g": str(rng.choice(sorted(UNARY)))}

    def apply(m, x, y, f, g):
        pred = m.reduce("sum", x, None, False) > 0
        return m.cond(pred, lambda a, b: UNARY[f](m, a) * b, lambda a, b: UNARY[g](m, b) - a,
                      x, m.tanh(y))
    return make, apply


@step("fori", weight=2)
def _fori():
    def make(rng, pool):
        i = _pick(rng, pool)
        j = _pick(rng, pool, lambda v: _broadcastable(v, pool[i]) and
                  np.broadcast_shapes(v.shape, pool[i].shape) == pool[i].shape)
        return [i, j], {"n": int(rng.integers(0, 4)), "f": str(rng.choice(sorted(UNARY)))}

    def apply(m, x, w, n, f):
        # w is captured by the body: a closure over a value of the enclosing program
        return m.fori_loop(0, n, lambda i, c: m.tanh(UNARY[f](m, c) * 0.5 + w * 0.5), x)
    return make, apply


@step("scan", weight=2)
def _scan():
    def make(rng, pool):
        i = _pick(rng, pool, lambda v: v.ndim >= 1)
        if i is None:
            return None
        per_step = pool[i].shape[1:]
        j = _pick(rng, pool, lambda v: v.shape == per_step)
        return [i] + ([j] if j is not None else []), {"f": str(rng.choice(sorted(UNARY)))}

    def apply(m, xs, *init, f):
        c0 = init[0] if init else m.reduce("sum", xs, 0, False) * 0.0

        def body(c, x):
            c = m.tanh(c * 0.5 + UNARY[f](m, x))
            return c, c * x
        c, ys = m.scan(body, c0, xs)
        return ys + c
    return make, apply


@step("while")
def _while():
    def make(rng, pool):
        return [_pick(rng, pool)], {"n": int(rng.integers(0, 4))}

    def apply(m, x, n):
        k, y = m.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, m.sin(c[1]) + 0.5),
                            (0, x))
        return y
    return make, apply
