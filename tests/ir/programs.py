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
BINARY = ("add", "sub", "mul", "div", "max", "min")
SPLATS = (0.0, -0.0, 1.0, -1.0, 2.0, 0.5, float("inf"), float("nan"))
DIMS = st.sampled_from([1, 2, 3, 3, 0])


class _Program:
    """The values built so far, and the draw function of the current example."""

    def __init__(self, draw, dtype: str):
        self.draw, self.dtype = draw, dtype
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
    value = p.draw(st.sampled_from(SPLATS))
    return p.b.const(value, x.dtype, x.shape)


def _elementwise(p: _Program) -> Value:
    x = p.pick()
    kind = p.draw(st.sampled_from(["unary", "binary", "binary", "select", "convert"]))
    if kind == "unary":
        return p.b.emit(p.draw(st.sampled_from(UNARY)), x)
    y = _same_type(p, x)
    if kind == "binary":
        return p.b.emit(p.draw(st.sampled_from(BINARY)), *p.draw(st.permutations([x, y])))
    if kind == "select":
        cmp = p.draw(st.sampled_from(["lt", "le", "eq", "ne"]))
        return p.b.select(p.b.emit(cmp, x, y), y, x)
    other = "f64" if x.dtype == "f32" else "f32"
    return p.b.convert(p.b.convert(x, dtype=other), dtype=x.dtype)


def _broadcast(p: _Program) -> Value:
    x = p.pick()
    rank = p.draw(st.integers(x.ndim, min(x.ndim + 2, 4)))
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
    return p.b.emit(prim, x, axes=p.subset(x.ndim, min_size=1))


def _reshape(p: _Program) -> Value:
    x = p.pick()
    options = [(x.type.size,), tuple(reversed(x.shape)), x.shape + (1,), (1,) + x.shape]
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
    free = [p.draw(DIMS) for _ in range(p.draw(st.integers(0, 1)))]
    sizes = [x.shape[a] for a in xb + xc] + free
    order = list(p.draw(st.permutations(range(len(sizes)))))
    y = p.param(tuple(sizes[k] for k in order))
    yb = tuple(order.index(k) for k in range(nb))
    yc = tuple(order.index(nb + k) for k in range(nc))
    return p.b.dot_general(x, y, contract=(xc, yc), batch=(xb, yb))


STEPS = [_elementwise, _elementwise, _broadcast, _reduce, _reshape, _transpose, _slice,
         _pad, _concatenate, _dot_general]


@st.composite
def structured_programs(draw, max_steps: int = 8) -> Function:
    """A random valid Function: 1-2 parameters, up to max_steps ops (and their helpers),
    returning 1-3 of the values built (the last one always)."""
    p = _Program(draw, draw(st.sampled_from(["f32", "f64"])))
    for _ in range(draw(st.integers(1, 2))):
        p.param(p.shape())
    for _ in range(draw(st.integers(1, max_steps))):
        p.values.append(draw(st.sampled_from(STEPS))(p))
    extra = draw(st.lists(st.sampled_from(p.values), max_size=2))
    return Function("rand", p.params, p.b.ops, [p.values[-1]] + extra)
