"""A Hypothesis strategy for random well-typed programs over the structural primitives:
elementwise math, comparisons and select, broadcast_in_dim, reductions, reshape, transpose,
slice, pad, concatenate, dot_general and constants, on shapes with size-0 and size-1 axes.

Each step picks an op and operands from the values built so far and draws params that its
shape rule accepts; dot_general draws a fresh parameter shaped to fit. The programs are for
round trips (print, parse, verify), the optimizer and the autodiff transforms.
"""
from __future__ import annotations

from hypothesis import strategies as st

from ir import Builder, Function, TensorType, Value

UNARY = ("exp", "tanh", "neg", "abs", "sin", "logistic", "sqrt", "log")
TAME_UNARY = ("tanh", "neg", "sin", "logistic")          # finite on any finite input
BINARY = ("add", "sub", "mul", "div", "max", "min")
SPLATS = (0.0, -0.0, 1.0, -1.0, 2.0, 0.5, float("inf"), float("nan"))
DIMS = st.sampled_from([1, 2, 3, 3, 0])
MAX_RANK = 4        # ops that add axes stop here, so sizes stay small


class _Program:
    """The values built so far, and the draw function of the current example."""

    def __init__(self, draw, dtype: str, tame: bool):
        self.draw, self.dtype, self.tame = draw, dtype, tame
        self.b = Builder()
        self.params: list[Value] = []
        self.values: list[Value] = []

    def param(self, shape) -> Value:
        v = Value(TensorType(self.dtype, tuple(shape)), f"p{len(self.params)}")
        self.params.append(v)
        self.values.append(v)
        return v

    def pick(self, rank_at_least: int = 0) -> Value:
        pool = [v for v in self.values if v.ndim >= rank_at_least]
        return self.draw(st.sampled_from(pool)) if pool else self.param(self.shape(rank_at_least))

    def shape(self, rank_at_least: int = 0) -> tuple[int, ...]:
        rank = self.draw(st.integers(rank_at_least, max(rank_at_least, 3)))
        return tuple(self.draw(DIMS) for _ in range(rank))

    def subset(self, n: int, min_size: int = 0) -> tuple[int, ...]:
        chosen = self.draw(st.lists(st.integers(0, n - 1), min_size=min_size, max_size=n,
                                    unique=True)) if n else []
        return tuple(chosen)


def _same_type(p: _Program, x: Value) -> Value:
    """Another value of x's type: one from the pool, or a splat constant."""
    same = [v for v in p.values if v.type == x.type]
    if p.draw(st.booleans()) and len(same) > 1:
        return p.draw(st.sampled_from(same))
    value = p.draw(st.sampled_from(SPLATS[:6] if p.tame else SPLATS))
    return p.b.const(value, x.dtype, x.shape)


def _elementwise(p: _Program) -> Value:
    x = p.pick()
    kinds = ["unary", "binary", "binary", "select"] + ([] if p.tame else ["convert"])
    kind = p.draw(st.sampled_from(kinds))
    if kind == "unary":
        return p.b.emit(p.draw(st.sampled_from(TAME_UNARY if p.tame else UNARY)), x)
    y = _same_type(p, x)
    if kind == "binary":
        binary = [n for n in BINARY if not (p.tame and n == "div")]
        return p.b.emit(p.draw(st.sampled_from(binary)), *p.draw(st.permutations([x, y])))
    if kind == "select":
        cmp = p.draw(st.sampled_from(["lt", "le", "eq", "ne"]))
        return p.b.select(p.b.emit(cmp, x, y), y, x)
    other = "f64" if x.dtype == "f32" else "f32"
    return p.b.convert(p.b.convert(x, dtype=other), dtype=x.dtype)


def _broadcast(p: _Program) -> Value:
    x = p.pick()
    rank = p.draw(st.integers(x.ndim, max(x.ndim, min(x.ndim + 2, MAX_RANK))))
    dims = sorted(p.draw(st.lists(st.integers(0, rank - 1), min_size=x.ndim, max_size=x.ndim,
                                  unique=True))) if x.ndim else []
    shape = [p.draw(DIMS) for _ in range(rank)]
    for i, d in enumerate(dims):
        stretch = x.shape[i] == 1 and p.draw(st.booleans())
        shape[d] = shape[d] if stretch else x.shape[i]
    return p.b.broadcast_in_dim(x, shape=tuple(shape), dims=tuple(dims))


def _reduce(p: _Program) -> Value:
    x = p.pick(rank_at_least=1)
    prim = p.draw(st.sampled_from(["reduce_sum", "reduce_sum", "reduce_max", "reduce_min"]))
    axes = p.subset(x.ndim, min_size=1)
    if p.tame and any(x.shape[a] == 0 for a in axes):
        prim = "reduce_sum"                    # the max of nothing is -inf
    return p.b.emit(prim, x, axes=axes)


def _reshape(p: _Program) -> Value:
    x = p.pick()
    options = [(x.type.size,), tuple(reversed(x.shape))]
    if x.ndim < MAX_RANK:
        options += [x.shape + (1,), (1,) + x.shape]
    return p.b.reshape(x, shape=p.draw(st.sampled_from(options)))


def _transpose(p: _Program) -> Value:
    x = p.pick()
    return p.b.transpose(x, perm=tuple(p.draw(st.permutations(range(x.ndim)))))


def _slice(p: _Program) -> Value:
    x = p.pick(rank_at_least=1)
    start, limit, stride = [], [], []
    for d in x.shape:
        lo = p.draw(st.integers(0, d))
        start.append(lo)
        limit.append(p.draw(st.integers(lo, d)))
        stride.append(p.draw(st.integers(1, 3)))
    return p.b.slice(x, start=tuple(start), limit=tuple(limit), stride=tuple(stride))


def _pad(p: _Program) -> Value:
    x = p.pick(rank_at_least=1)
    small = st.integers(0, 2)
    pads = [tuple(p.draw(small) for _ in x.shape) for _ in range(3)]
    return p.b.pad(x, lo=pads[0], hi=pads[1], interior=pads[2])


def _concatenate(p: _Program) -> Value:
    x = p.pick(rank_at_least=1)
    axis = p.draw(st.integers(0, x.ndim - 1))
    parts = [x]
    for _ in range(p.draw(st.integers(0, 2))):
        cut = p.draw(st.integers(0, x.shape[axis]))
        start = tuple(0 for _ in x.shape)
        limit = tuple(cut if a == axis else d for a, d in enumerate(x.shape))
        parts.append(p.b.slice(x, start=start, limit=limit, stride=(1,) * x.ndim))
    return p.b.concatenate(*p.draw(st.permutations(parts)), axis=axis)


def _dot_general(p: _Program) -> Value:
    """x from the pool; y a fresh parameter: batch axes, contracted axes and free axes of
    x's sizes (for the first two) in a random order."""
    x = p.pick()
    axes = list(p.draw(st.permutations(range(x.ndim))))
    nb = p.draw(st.integers(0, len(axes)))
    nc = p.draw(st.integers(0, len(axes) - nb))
    xb, xc = tuple(axes[:nb]), tuple(axes[nb:nb + nc])
    free = [p.draw(DIMS) for _ in range(p.draw(st.integers(0, int(x.ndim < MAX_RANK))))]
    sizes = [x.shape[a] for a in xb + xc] + free
    order = list(p.draw(st.permutations(range(len(sizes)))))
    y = p.param(tuple(sizes[k] for k in order))
    yb = tuple(order.index(k) for k in range(nb))
    yc = tuple(order.index(nb + k) for k in range(nc))
    return p.b.dot_general(x, y, contract=(xc, yc), batch=(xb, yb))


def _scan_body(p: _Program, t: TensorType) -> Function:
    """The step of _scan: carries (h, acc, w), x slices of h's type t; returns
    (tanh(h + x), acc + sum(x * h'), w, h' * w), where w is a loop-invariant carry and acc
    an accumulator of the kind the optimizer hoists out of the loop."""
    h, acc, w, x = (Value(t, "h"), Value(TensorType(t.dtype, ()), "acc"), Value(t, "w"),
                    Value(t, "x"))
    b = Builder()
    h_new = b.tanh(b.add(h, x)) if p.draw(st.booleans()) else b.mul(h, x)
    total = b.reduce_sum(b.mul(x, h_new), axes=tuple(range(t.ndim)))
    acc_new = b.add(acc, total) if p.draw(st.booleans()) else b.add(total, acc)
    return Function("step", [h, acc, w, x], b.ops, [h_new, acc_new, w, b.mul(h_new, w)])


def _scan(p: _Program) -> Value:
    """A scan over a fresh xs parameter (length 0 to 3, either direction), carrying a pool
    value. Its results join the pool; those no later step reads are pruned by dce."""
    h = p.pick()
    length = p.draw(st.integers(0, 3))
    xs = p.param((length,) + h.shape)
    acc = p.b.const(p.draw(st.sampled_from([0.0, 1.5])), h.dtype)
    w = _same_type(p, h)
    results = p.b.emit("scan", h, acc, w, xs, num_carry=3, length=length,
                       reverse=p.draw(st.booleans()), regions=(_scan_body(p, h.type),))
    order = p.draw(st.permutations(results))
    p.values.extend(order[1:])
    return order[0]


STEPS = [_elementwise, _elementwise, _broadcast, _reduce, _reshape, _transpose, _slice,
         _pad, _concatenate, _dot_general, _scan]


@st.composite
def structured_programs(draw, max_steps: int = 8, dtypes=("f32", "f64"),
                        tame: bool = False) -> Function:
    """A random valid Function: 1-2 parameters, up to max_steps ops (and their helpers),
    returning 1-3 of the values built (the last one always). tame=True leaves out what
    makes a finite input give inf or nan (exp, sqrt, log, div, inf and nan constants) or
    round it to f32 (converts), for exact comparisons of derivatives."""
    p = _Program(draw, draw(st.sampled_from(dtypes)), tame)
    for _ in range(draw(st.integers(1, 2))):
        p.param(p.shape())
    for _ in range(draw(st.integers(1, max_steps))):
        p.values.append(draw(st.sampled_from(STEPS))(p))
    extra = draw(st.lists(st.sampled_from(p.values), max_size=2))
    return Function("rand", p.params, p.b.ops, [p.values[-1]] + extra)
