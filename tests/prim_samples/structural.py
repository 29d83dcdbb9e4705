"""Sample rows of the shape ops, reductions, linear algebra, indexing and creation ops."""
from __future__ import annotations

from tests.prim_samples.cases import (ALL, FLOATS, INTS, NUMERIC, CompiledCase, F, Row, T,
                                      each, grad_cases, index, make_fn, sample_array,
                                      shape_label)

ROWS: dict[str, Row] = {}


def _cases(prim, table, build) -> list:
    """grad cases build(b, x, *params) over a table of (label, operand shape, *params)."""
    return [c for label, x, *params in table
            for c in grad_cases(prim, label, lambda b, x, _p=params: build(b, x, *_p), F(*x))]


# ---- shape ops ---------------------------------------------------------------------------

ROWS["broadcast_in_dim"] = Row(
    _cases("broadcast_in_dim", (("vector-to-matrix", (3,), (2, 3), (1,)),
                                ("scalar", (), (2, 3), ()),
                                ("stretch-size-1", (1, 3), (4, 3), (0, 1)),
                                ("stretch-and-add", (2, 1), (2, 5, 3), (0, 1)),
                                ("identity", (2, 3), (2, 3), (0, 1))),
           lambda b, x, s, d: b.broadcast_in_dim(x, shape=s, dims=d)),
    [CompiledCase(each("broadcast_in_dim", [
        (((3,),), {"shape": (2, 3), "dims": (1,)}), (((3, 1),), {"shape": (3, 4), "dims": (0, 1)}),
        (((),), {"shape": (2, 2), "dims": ()}), (((1,),), {"shape": (4,), "dims": (0,)}),
        (((2, 3),), {"shape": (2, 5, 3), "dims": (0, 2)})]), ALL)])
ROWS["reshape"] = Row(
    _cases("reshape", [(shape_label(x), x, s) for x, s in (((2, 3), (3, 2)), ((6,), (1, 6, 1)),
                                                            ((), (1, 1)))],
           lambda b, x, s: b.reshape(x, shape=s)),
    [CompiledCase(each("reshape", [
        (((2, 3),), {"shape": (6,)}), (((6,),), {"shape": (3, 2)}),
        (((2, 3, 4),), {"shape": (4, 6)}), (((4, 6),), {"shape": (2, 2, 6)}),
        (((),), {"shape": (1, 1)}), (((1, 1),), {"shape": ()}), (((2, 1, 3),), {"shape": (3, 2)}),
        (((12,),), {"shape": (2, 3, 2)}), (((0, 3),), {"shape": (3, 0)})]), ALL)])
ROWS["transpose"] = Row(
    _cases("transpose", [(shape_label(x), x, p) for x, p in (((2, 3, 4), (2, 0, 1)),
                                                              ((2, 3), (1, 0)), ((1, 3), (1, 0)))],
           lambda b, x, p: b.transpose(x, perm=p)),
    [CompiledCase(each("transpose", [
        (((2, 3),), {"perm": (1, 0)}), (((2, 3, 4),), {"perm": (2, 0, 1)}),
        (((1, 3),), {"perm": (1, 0)}), (((),), {"perm": ()})]), ALL)])
ROWS["slice"] = Row(
    _cases("slice", (("strided", (7,), (1,), (6,), (2,)),
                     ("2d", (4, 5), (0, 1), (3, 5), (2, 3)),
                     ("full", (2, 3), (0, 0), (2, 3), (1, 1)),
                     ("empty", (3,), (1,), (1,), (1,))),
           lambda b, x, a, lim, s: b.slice(x, start=a, limit=lim, stride=s)),
    [CompiledCase(each("slice", [
        (((5,),), {"start": (1,), "limit": (4,), "stride": (2,)}),
        (((4, 6),), {"start": (1, 0), "limit": (3, 6), "stride": (1, 3)}),
        (((3,),), {"start": (0,), "limit": (3,), "stride": (1,)}),
        (((4,),), {"start": (2,), "limit": (2,), "stride": (1,)}),
        (((),), {"start": (), "limit": (), "stride": ()})]), ALL)])
ROWS["pad"] = Row(
    _cases("pad", (("interior", (3,), (1,), (2,), (1,)),
                   ("2d", (2, 3), (0, 1), (1, 0), (0, 2)),
                   ("size-1", (1, 2), (2, 0), (0, 1), (3, 1))),
           lambda b, x, lo, hi, i: b.pad(x, lo=lo, hi=hi, interior=i)),
    [CompiledCase(each("pad", [
        (((3,),), {"lo": (1,), "hi": (2,), "interior": (0,)}),
        (((3,),), {"lo": (0,), "hi": (0,), "interior": (2,)}),
        (((2, 3),), {"lo": (1, 0), "hi": (0, 2), "interior": (1, 1)}),
        (((0,),), {"lo": (2,), "hi": (1,), "interior": (3,)}),
        (((),), {"lo": (), "hi": (), "interior": ()})]), ALL)])
ROWS["concatenate"] = Row(
    grad_cases("concatenate", "rows", lambda b, x, y: b.concatenate(x, y, axis=0),
               F(2, 3), F(1, 3))
    + grad_cases("concatenate", "three", lambda b, x, y, z: b.concatenate(x, y, z, axis=0),
                 F(2), F(3), F(1))
    + grad_cases("concatenate", "columns-same-operand",
                 lambda b, x, y: b.concatenate(x, y, x, axis=1), F(2, 1), F(2, 2)),
    [CompiledCase(each("concatenate", [
        (((2, 3), (1, 3)), {"axis": 0}), (((2, 3), (2, 1), (2, 2)), {"axis": 1}),
        (((3,), (0,), (2,)), {"axis": 0}), (((4,),), {"axis": 0})]), ALL)])

# ---- reductions --------------------------------------------------------------------------

_REDUCE = [(((3, 4),), {"axes": (0,)}), (((3, 4),), {"axes": (1,)}), (((3, 4),), {"axes": (0, 1)}),
           (((2, 3, 4),), {"axes": (1,)}), (((2, 3, 4),), {"axes": (0, 2)}),
           (((5,),), {"axes": ()}), (((),), {"axes": ()}), (((2, 1, 3),), {"axes": (1, 2)})]
_EMPTY_REDUCE = [(((3, 0),), {"axes": (1,)}), (((0,),), {"axes": (0,)})]
for _n in ("reduce_sum", "reduce_max", "reduce_min"):
    ROWS[_n] = Row(
        _cases(_n, [(f"{shape_label(x)}-axes{''.join(map(str, a))}", x, a)
                    for x, a in (((2, 3, 4), (0, 2)), ((5,), (0,)), ((2, 3), ()),
                                 ((1, 3), (0,)), ((3, 4), (1,)))],
               lambda b, x, a, _n=_n: b.emit(_n, x, axes=a)),
        [CompiledCase(each(_n, _REDUCE), NUMERIC, quantize=True),
         CompiledCase(each(_n, _EMPTY_REDUCE), FLOATS)])
ROWS["reduce_sum"].compiled.append(CompiledCase(each("reduce_sum", _EMPTY_REDUCE), INTS))
for _n in ("argmax", "argmin"):
    ROWS[_n] = Row(
        grad_cases(_n, "vector", lambda b, x, _n=_n: b.gather(x, b.emit(_n, x, axis=0), axis=0),
                   F(5))
        + grad_cases(_n, "matrix", lambda b, x, _n=_n: b.gather(
            x, b.emit(_n, x, axis=1), axis=1), F(3, 4)),
        [CompiledCase(each(_n, [(((3, 4),), {"axis": 0}), (((3, 4),), {"axis": 1}),
                                (((5,),), {"axis": 0}), (((2, 3, 4),), {"axis": 1})]),
                      ALL, quantize=True)])

# ---- linear algebra and indexing -----------------------------------------------------------

ROWS["dot_general"] = Row(
    [c for label, x, y, contract, batch in (
        ("matmul", (2, 3), (3, 4), ((1,), (0,)), ((), ())),
        ("batched", (2, 3, 4), (2, 4, 5), ((2,), (1,)), ((0,), (0,))),
        ("inner", (3,), (3,), ((0,), (0,)), ((), ())),
        ("outer", (2,), (3,), ((), ()), ((), ())),
        ("batch-in-middle", (3, 2, 4), (4, 2, 5), ((2,), (0,)), ((1,), (1,))),
        ("two-contractions", (2, 3, 4), (4, 3, 5), ((1, 2), (1, 0)), ((), ())),
        ("matrix-vector", (3, 4), (4,), ((1,), (0,)), ((), ())))
     for c in grad_cases("dot_general", label, lambda b, x, y, _c=contract, _b=batch:
                         b.dot_general(x, y, contract=_c, batch=_b), F(*x), F(*y))],
    [CompiledCase(lambda dt: each("dot_general", [
        ((x, y), {"contract": c, "batch": bt}) for x, y, c, bt in (
            ((3, 4), (4, 5), ((1,), (0,)), ((), ())),
            ((2, 3, 4), (2, 4, 5), ((2,), (1,)), ((0,), (0,))),
            ((4,), (4,), ((0,), (0,)), ((), ())),
            ((3,), (2,), ((), ()), ((), ())),
            ((2, 3, 4), (3, 4, 2), ((1, 2), (0, 1)), ((), ())),
            ((4, 3), (4, 5), ((0,), (0,)), ((), ())),
            ((3, 2, 4), (4, 2, 1), ((2,), (0,)), ((1,), (1,))))])(dt), NUMERIC)])


def _index_sample(rng, types):
    out = []
    for t in types:
        if t.dtype in INTS:
            out.append(rng.integers(-2, 8, t.shape).astype(t.np_dtype))   # some out of range
        else:
            out.append(sample_array(rng, t))
    return out


def _gather(dt, idt):
    cases = [((5, 3), (6,), 0), ((2, 5), (2, 2), 1), ((5,), (), 0), ((4, 1, 2), (3,), 2)]
    types = [t for xs, ids, _ in cases for t in (T(dt, xs), T(idt, ids))]
    return make_fn("gather", types, lambda b, *v: [
        b.gather(v[2 * k], v[2 * k + 1], axis=c[2]) for k, c in enumerate(cases)])


def _scatter(dt):
    cases = [((5, 3), (6,), (6, 3), 0), ((2, 5), (3,), (2, 3), 1), ((4,), (), (), 0)]
    types = [t for xs, ids, us, _ in cases for t in (T(dt, xs), T("i32", ids), T(dt, us))]
    return make_fn("scatter_add", types, lambda b, *v: [
        b.scatter_add(*v[3 * k:3 * k + 3], axis=c[3]) for k, c in enumerate(cases)])


ROWS["gather"] = Row(
    grad_cases("gather", "duplicates", lambda b, x, i: b.gather(x, i, axis=0), F(5),
               index(6, bound=5))
    + grad_cases("gather", "axis1", lambda b, x, i: b.gather(x, i, axis=1), F(3, 4),
                 index(2, 2, bound=4))
    + grad_cases("gather", "scalar-index", lambda b, x, i: b.gather(x, i, axis=0), F(4),
                 index(bound=4)),
    [CompiledCase(lambda dt, idt=idt: _gather(dt, idt), ALL, sample=_index_sample)
     for idt in INTS])
ROWS["scatter_add"] = Row(
    grad_cases("scatter_add", "vector", lambda b, x, i, u: b.scatter_add(x, i, u, axis=0),
               F(5), index(4, bound=5), F(4))
    + grad_cases("scatter_add", "axis1", lambda b, x, i, u: b.scatter_add(x, i, u, axis=1),
                 F(3, 4), index(2, bound=4), F(3, 2)),
    [CompiledCase(_scatter, NUMERIC, sample=_index_sample)])

# ---- creation ----------------------------------------------------------------------------------


def _creation(prim, cases):
    return lambda dt: make_fn(prim, [], lambda b: [b.emit(prim, dtype=dt, **p) for p in cases])


def _constants(dt):
    cast = {"bool": bool}.get(dt, float if dt in FLOATS else int)
    nested = [[cast(v) for v in row] for row in ((1, 0, 3), (-2, 5, 1))]

    def body(b, x):
        splat = b.const(cast(2), dt, (2, 3))
        table = b.emit("constant", value=nested, dtype=dt, shape=(2, 3))
        scalar = b.const(cast(1), dt)
        return [splat, table, scalar, b.select(b.ne(x, table), x, splat)]
    return make_fn("constant", [T(dt, (2, 3))], body)


ROWS["iota"] = Row(
    grad_cases("iota", "int", lambda b, x: b.mul(x, b.convert(
        b.iota(dtype="i64", shape=x.shape, dim=1), dtype=x.dtype)), F(2, 3))
    + grad_cases("iota", "float", lambda b, x: b.add(
        x, b.iota(dtype=x.dtype, shape=x.shape, dim=0)), F(3)),
    [CompiledCase(_creation("iota", [{"shape": (3, 4), "dim": 1}, {"shape": (5,), "dim": 0},
                                     {"shape": (2, 3), "dim": 0}]), NUMERIC)])
ROWS["constant"] = Row(
    grad_cases("constant", "splat", lambda b, x: b.mul(x, b.full_like(2.5, x)), F(2, 3))
    + grad_cases("constant", "nested", lambda b, x: b.mul(
        x, b.const([1.0, -2.0, 0.5], x.dtype, (3,))), F(3)),
    [CompiledCase(_constants, ALL)])
