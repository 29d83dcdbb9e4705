"""Sample rows of the cumulative primitives (ir/cumulative): derivative cases along each
axis and both directions, and compiled cases over empty, size-1 and 3-d operands. Every
derivative case is also checked to second order, so the points where a rule switches branch
(cumprod's zeros, cummax's ties) are not sampled here: tests/api/test_cumulative.py checks
them against PyTorch's recorded values."""
from __future__ import annotations

from tests.prim_samples.cases import FLOATS, NUMERIC, CompiledCase, F, Row, T, grad_cases, make_fn

ROWS: dict[str, Row] = {}
_SHAPES = [((3, 4), 0), ((3, 4), 1), ((2, 3, 4), 1), ((5,), 0), ((1,), 0), ((0, 3), 0),
           ((3, 0), 1), ((2, 1, 3), 2)]


def _compiled(prim, dtypes, **params):
    def build(dt):
        def body(b, *xs):
            out = []
            for x, (_, axis) in zip(xs, _SHAPES):
                r = b.emit(prim, x, axis=axis, **params)
                out.extend(r if isinstance(r, tuple) else (r,))
            return out
        return make_fn(prim, [T(dt, s) for s, _ in _SHAPES], body)
    return CompiledCase(build, dtypes, quantize=True)


def _grad(prim, **params):
    def build(axis):
        return lambda b, x: b.emit(prim, x, axis=axis, **params)
    return (grad_cases(prim, "rows", build(1), F(3, 4))
            + grad_cases(prim, "cols", build(0), F(3, 4))
            + grad_cases(prim, "3d", build(2), F(2, 1, 3)))


for _rev in (False, True):
    _name = "reverse" if _rev else "forward"
    for _p in ("cumsum", "cumlogsumexp"):
        _row = ROWS.setdefault(_p, Row())
        _row.grad += [c for c in _grad(_p, reverse=_rev)
                      if not _rev or c.label == "rows"]
        _row.compiled.append(_compiled(_p, NUMERIC if _p == "cumsum" else FLOATS,
                                       reverse=_rev))
ROWS["cumprod"] = Row(_grad("cumprod"), [_compiled("cumprod", NUMERIC)])


def _values(prim):
    return lambda b, x: b.emit(prim, x, axis=1)[0]


for _p in ("cummax", "cummin"):
    ROWS[_p] = Row(
        grad_cases(_p, "rows", _values(_p), F(3, 4))
        + grad_cases(_p, "cols", lambda b, x, _p=_p: b.emit(_p, x, axis=0)[0], F(3, 4)),
        [_compiled(_p, NUMERIC)])


def _sort_values(axis, descending):
    return lambda b, x: b.sort(x, axis=axis, descending=descending)[0]


def _sort_compiled(descending):
    # rows of 300 and 260 take the radix sort (codegen/radix.py), the others the merge sort
    shapes = [((3, 4), 1), ((3, 4), 0), ((2, 5, 3), 1), ((5,), 0), ((1,), 0), ((0, 3), 1),
              ((3, 0), 1), ((37,), 0), ((300,), 0), ((2, 260), 1)]

    def build(dt):
        def body(b, *xs):
            out = []
            for x, (_, axis) in zip(xs, shapes):
                out.extend(b.sort(x, axis=axis, descending=descending))
            return out
        return make_fn("sort", [T(dt, s) for s, _ in shapes], body)
    return CompiledCase(build, NUMERIC, quantize=True)


ROWS["sort"] = Row(
    grad_cases("sort", "rows", _sort_values(1, False), F(3, 4))
    + grad_cases("sort", "cols-descending", _sort_values(0, True), F(3, 4))
    + grad_cases("sort", "3d", _sort_values(2, False), F(2, 1, 5)),
    [_sort_compiled(False), _sort_compiled(True)])
