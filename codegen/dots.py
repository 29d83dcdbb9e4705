"""dot_general layouts: a call to an external gemm (the BLAS) on strided views, or a loop nest.

`prepare_dots` rewrites the dot_generals of a body before fusion planning:

- A float dot_general big enough to profit (`use_gemm`) becomes an internal `gemm` op whose
  params hold a GemmPlan: per batch element, each of A (x), B (y) and C (the result) is a
  matrix seen through strides (a row stride `ld`, possibly transposed), so any dimension
  numbers whose free and contracted axes each collapse into one strided dimension need no
  copy: the BLAS transpose flags and leading dimensions do the work. When the result's only
  use is a transpose, the gemm writes the transposed layout directly (C^T = op(B)^T op(A)^T).
  An operand whose axes do not collapse is transposed first (materialised), as below; an
  operand that is a transpose in the IR (`a.T @ b`, `x @ w.T`) is read from its source.
- Any other dot_general gets the canonical layout x[batch, free, contract] @
  y[batch, contract, free] (operands transposed first: index remaps that fuse into the
  operands' materialisation), which the loop-nest kernel (codegen.kernels) walks contiguously.

The gemm kernel loops over the batch elements and calls `externals.gemm(module, dtype)`, a
function with the signature of runtime.blas.gemm_type (row-major CBLAS, 64-bit sizes); codegen
never imports runtime, so the runtime hands it in through `Externals`.

Measured choices (2-core AVX-512 machine):
- Elementwise producers and consumers are not fused into the call: they stay fused loop nests
  that read or write the gemm's buffers once, in a single pass (bias add + relu after the
  matmul is one nest). In the MLP benchmark all of them together take a few percent of the
  time and the gemms over 90%, so an epilogue inside the BLAS call (which OpenBLAS cannot
  take) has little to win.
- Threads: the BLAS runs single-threaded (runtime.blas sets its pool to
  GRADJIT_BLAS_THREADS, default 1) and a large call is split into blocks of the output run
  on gradjit's pool (codegen.gemm_split), so the two pools never oversubscribe the cores.
  Results are bitwise reproducible run to run and for any gradjit thread count (the blocks
  come from the shapes); OpenBLAS itself picks another kernel for some shapes when its own
  thread count changes, so GRADJIT_BLAS_THREADS=keep with OPENBLAS_NUM_THREADS set can
  change the last bits, exactly as it does for NumPy's matmul.
"""
from __future__ import annotations

import math
from typing import Callable

from llvmlite import ir as ll

from codegen import gemm_tiles, small_gemm
from codegen.bounds import CheckedBuilder
from codegen.buffers import ERR_LOAD, ERR_STORE
from codegen.gemm_split import Call, emit_split, gemm_split, tiles_split
from codegen.kernels import KernelCall, dot_axes, internal_rules
from codegen.loops import I32, I64, for_nest, i64, on_one_thread
from codegen.lower import LLVM_TYPES
from codegen.records import Record
from ir.core import Op, Value, dot_free_axes
from ir.primitives import Primitive, get as get_primitive

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
# Multiply-adds per gemm call from which the BLAS beats the loop nest: measured on AVX-512,
# f32 and f64 alike, the two break even near 16^3 and BLAS is 1.5-1.8x faster at 24^3.
MIN_GEMM_MACS = 8192


class Externals(Record, frozen=True):
    """Native functions the runtime provides to generated code (None: not available).

    gemm(module, dtype) declares, in the llvmlite module, a function with the signature of
    runtime.blas.gemm_type for dtype "f32" or "f64", and returns it.
    lapack(module, routine, dtype) declares a LAPACKE routine (runtime.lapack) and returns
    (function, int bits of its integer arrays).
    exact_rows(dtype) is the row step at which blocks of a gemm's rows give the whole
    product's bits, or None (runtime.blas_split).
    vector_bytes: the width of the target's vector registers that explicit vectors use (64
    with AVX-512, else 32): how many rows codegen.small_gemm sums at once. Speed only: the
    order of additions does not depend on it.
    tiles(module, dtype, packed, b_trans) declares codegen.gemm_tiles' function for dtype
    (packed: its packed one, codegen.gemm_pack, for B as stored or transposed: b_trans),
    compiled for the process (runtime.blas_tiles), and returns it, or None when it could not
    be built.
    """
    _fields = ("gemm", "lapack", "exact_rows", "vector_bytes", "tiles")
    _defaults = {"gemm": None, "lapack": None, "exact_rows": None, "vector_bytes": 32,
                 "tiles": None}
    gemm: Callable | None
    lapack: Callable | None
    exact_rows: Callable | None         # dtype -> row step (gemm_split)
    vector_bytes: int
    tiles: Callable | None


class View(Record, frozen=True):
    """A matrix per batch element: element (i, j) at i*ld + j, or at j*ld + i when trans;
    batch: the element stride of each batch axis, in batch order."""
    _fields = ("trans", "ld", "batch")


class GemmPlan(Record, frozen=True):
    """C = A @ B per batch element (Views a, b, c); c.trans means C is stored transposed."""
    _fields = ("batch_shape", "m", "n", "k", "a", "b", "c")


GEMM = Primitive("gemm", lambda x, y, **params: params["out_type"], "other")


def c_strides(shape) -> list:
    """Element strides of a C-order array of shape."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return strides[::-1]


def _group(shape, strides, axes):
    """(size, inner stride) of axes flattened in this order, or None if they do not collapse
    into one strided dimension; the stride is None when the group has one element."""
    axes = [a for a in axes if shape[a] != 1]
    if not axes:
        return 1, None
    for a, b in zip(axes, axes[1:]):
        if strides[a] != strides[b] * shape[b]:
            return None
    return math.prod(shape[a] for a in axes), strides[axes[-1]]


def matrix_view(shape, strides, rows, cols, batch) -> View | None:
    """The View of a tensor as a (rows x cols) matrix per batch index, or None."""
    r, c = _group(shape, strides, rows), _group(shape, strides, cols)
    if r is None or c is None:
        return None
    (nr, sr), (nc, sc) = r, c
    batch_strides = tuple(strides[a] for a in batch)
    if nc == 1 or sc == 1:
        ld = sr if nr > 1 else nc
        if ld >= nc:
            return View(False, ld, batch_strides)
    if nr == 1 or sr == 1:
        ld = sc if nc > 1 else nr
        if ld >= nr:
            return View(True, ld, batch_strides)
    return None


def use_gemm(op: Op, externals: Externals | None) -> bool:
    """Whether dot_general op should call the external gemm."""
    if externals is None or externals.gemm is None or op.inputs[0].dtype not in ("f32", "f64"):
        return False
    x, y = op.inputs
    _, xc, xfree, _, _, yfree = dot_axes(op)
    m, n, k = _size(x, xfree), _size(y, yfree), _size(x, xc)
    return min(m, n, k) >= 1 and m * n * k >= MIN_GEMM_MACS


def gemm_plan(op: Op, out_strides) -> GemmPlan | None:
    """The plan of dot_general op writing its result with out_strides, or None."""
    x, y = op.inputs
    xb, xc, xfree, yb, yc, yfree = dot_axes(op)
    nb, r_shape = len(xb), op.results[0].shape
    m_axes, n_axes = range(nb, nb + len(xfree)), range(nb + len(xfree), len(r_shape))
    c = matrix_view(r_shape, out_strides, m_axes, n_axes, range(nb))
    pairs = list(zip(xc, yc))
    for order in (sorted(pairs), sorted(pairs, key=lambda p: p[1])):
        a = matrix_view(x.shape, c_strides(x.shape), xfree, [p[0] for p in order], xb)
        b = matrix_view(y.shape, c_strides(y.shape), [p[1] for p in order], yfree, yb)
        if a and b and c:
            return GemmPlan(tuple(x.shape[i] for i in xb), _size(x, xfree), _size(y, yfree),
                            _size(x, xc), a, b, c)
    return None


def _size(v: Value, axes) -> int:
    return math.prod(v.shape[i] for i in axes)


# ---- rewriting the body ------------------------------------------------------------------

def _transposed(out: list, v: Value, perm: tuple) -> Value:
    if perm == tuple(range(v.ndim)):
        return v
    t = Value(v.type.with_shape([v.shape[p] for p in perm]))
    out.append(Op(get_primitive("transpose"), (v,), (t,), {"perm": perm}))
    return t


def canonical(op: Op, out: list) -> Op:
    """op with operands transposed to x[batch, free, contract] @ y[batch, contract, free]."""
    xb, xc, xfree, yb, yc, yfree = dot_axes(op)
    x2 = _transposed(out, op.inputs[0], tuple(xb + xfree + xc))
    y2 = _transposed(out, op.inputs[1], tuple(yb + yc + yfree))
    nb, nk, ni = len(xb), len(xc), len(xfree)
    params = {"contract": (tuple(range(nb + ni, nb + ni + nk)), tuple(range(nb, nb + nk))),
              "batch": (tuple(range(nb)), tuple(range(nb)))}
    return Op(op.prim, (x2, y2), op.results, params, op.regions, op.loc)


def _inverse(perm) -> list:
    inv = [0] * len(perm)
    for j, p in enumerate(perm):
        inv[p] = j
    return inv


def _gemm_op(op: Op, out: list, consumer: Op | None) -> tuple[Op, Op | None]:
    """The gemm op replacing op, and the transpose consumer it absorbed (or None)."""
    if consumer is not None:
        t = consumer.results[0]
        strides = c_strides(t.shape)
        r_strides = [strides[j] for j in _inverse(consumer.params["perm"])]
        plan = gemm_plan(op, r_strides)
        if plan is not None:
            return _make_gemm(op, plan, t), consumer
    plan = gemm_plan(op, c_strides(op.results[0].shape))
    if plan is None:
        op = canonical(op, out)
        plan = gemm_plan(op, c_strides(op.results[0].shape))
    return _make_gemm(op, plan, op.results[0]), None


def _make_gemm(op: Op, plan: GemmPlan, result: Value) -> Op:
    return Op(GEMM, op.inputs, (result,), {"plan": plan, "out_type": result.type}, (), op.loc)


def fold_transposes(op: Op, producers: dict) -> Op:
    """dot_general op reading the source of an operand that is a transpose, with the
    permutation moved into the dimension numbers, when that keeps the result's axis order
    (the operand's free axes stay in order): `a.T @ b` then reads `a` with a transpose flag."""
    inputs, dims = list(op.inputs), [list(d) for d in op.params["contract"]]
    batch = [list(d) for d in op.params["batch"]]
    for side in (0, 1):
        src = producers.get(inputs[side])
        if src is None or src.prim.name != "transpose":
            continue
        perm = src.params["perm"]
        free = dot_free_axes(len(perm), dims[side], batch[side])
        if [perm[a] for a in free] != sorted(perm[a] for a in free):
            continue
        inputs[side] = src.inputs[0]
        dims[side] = [perm[a] for a in dims[side]]
        batch[side] = [perm[a] for a in batch[side]]
    if inputs == list(op.inputs):
        return op
    params = {"contract": tuple(map(tuple, dims)), "batch": tuple(map(tuple, batch))}
    return Op(op.prim, tuple(inputs), op.results, params, op.regions, op.loc)


def prepare_dots(ops: list[Op], results, externals: Externals | None = None) -> list[Op]:
    """ops with every dot_general laid out for its kernel (see the module docstring)."""
    users: dict = {}
    for op in ops:
        for x in op.inputs:
            users.setdefault(x, []).append(op)
    producers = {r: op for op in ops for r in op.results}
    outputs, absorbed, out = set(results), set(), []
    for op in ops:
        if op in absorbed:
            continue
        if op.prim.name != "dot_general":
            out.append(op)
            continue
        op = fold_transposes(op, producers)
        if not use_gemm(op, externals):
            out.append(canonical(op, out))
            continue
        r = op.results[0]
        only = users.get(r, [])
        consumer = only[0] if len(only) == 1 and r not in outputs else None
        if consumer is not None and consumer.prim.name != "transpose":
            consumer = None
        new, taken = _gemm_op(op, out, consumer)
        if taken is not None:
            absorbed.add(taken)
        out.append(read_reshape_sources(new, producers))
    return out


def read_reshape_sources(gemm: Op, producers: dict) -> Op:
    """gemm reading the source of an operand that is a reshape: a reshape keeps the C-order
    layout, so the plan made for the reshaped operand reads the source's buffer as it is,
    instead of the operand being stored again (NOTE: the CNN step's flattened pool output
    and conv gradient, 0.5 and 2 MB copied per step before their products)."""
    inputs = list(gemm.inputs)
    for side, x in enumerate(inputs):
        src = producers.get(x)
        while src is not None and src.prim.name == "reshape":
            x = src.inputs[0]
            src = producers.get(x)
        inputs[side] = x
    if inputs == list(gemm.inputs):
        return gemm
    return Op(gemm.prim, tuple(inputs), gemm.results, gemm.params, gemm.regions, gemm.loc)


# ---- the kernel ------------------------------------------------------------------------

def _offset(bld, base, dims, strides, elem):
    """base advanced by sum(dims * strides) elements."""
    linear = None
    for d, s in zip(dims, strides):
        if isinstance(d, ll.Constant):     # a size-1 batch axis: always 0
            continue
        term = bld.mul(d, i64(s), flags=("nuw", "nsw"))
        linear = term if linear is None else bld.add(linear, term, flags=("nuw", "nsw"))
    if linear is None:
        return base
    return bld.gep(base, [linear], inbounds=True, source_etype=elem)


def gemm_route(plan, dtype: str, externals: Externals) -> str:
    """Which code makes a gemm op's product (the decision _gemm takes; codegen.report
    names it): "small gemm" (inline, codegen.small_gemm), "tiles" or "packed tiles"
    (codegen.gemm_tiles' function, packed: codegen.gemm_pack), else "BLAS"."""
    m, n, rhs_trans = plan.m, plan.n, plan.b.trans
    if plan.c.trans:       # as _gemm: C^T = op(B)^T op(A)^T
        m, n, rhs_trans = n, m, not plan.a.trans
    batch = math.prod(plan.batch_shape)
    if small_gemm.fits(batch, m, n, plan.k, rhs_trans, 4 if dtype == "f32" else 8):
        return "small gemm"
    columns = gemm_tiles.panel_columns(externals.vector_bytes, dtype)
    if externals.tiles and gemm_tiles.fits(batch, m, n, plan.k, rhs_trans, columns):
        return "packed tiles" if gemm_tiles.packed(batch, m, n, plan.k, rhs_trans, columns) \
            else "tiles"
    return "BLAS"


def _gemm(k: KernelCall):
    """C = A @ B for every batch element: small products inline (codegen.small_gemm), then
    those gemm_tiles.fits through codegen.gemm_tiles' function (packed when large or B is
    transposed: codegen.gemm_pack), else externals.gemm; large ones split across gradjit's
    threads (codegen.gemm_split). In bounds-check mode a call is made only when its operands'
    spans lie in their buffers."""
    bld, op, plan = k.bld, k.op, k.op.params["plan"]
    dtype = op.inputs[0].dtype
    fn, real = k.externals.gemm(bld.module, dtype), LLVM_TYPES[dtype]
    a, b, c = k.buffer(op.inputs[0]), k.buffer(op.inputs[1]), k.buffer(op.results[0])
    lhs, rhs, m, n = (a.ptr, plan.a.ld, plan.a.trans), (b.ptr, plan.b.ld, plan.b.trans), \
        plan.m, plan.n
    strides = [plan.a.batch, plan.b.batch, plan.c.batch]
    if plan.c.trans:       # C stored transposed: C^T = op(B)^T op(A)^T
        lhs, rhs, m, n = (*rhs[:2], not rhs[2]), (*lhs[:2], not lhs[2]), n, m
        strides[:2] = strides[1::-1]

    def call(bld, pa, pb, pc, rows, cols):
        if tiles is not None:      # a call of our own (codegen.gemm_tiles)
            gemm_tiles.emit_call(bld, tiles, lhs[2], rhs[2], rows, cols, plan.k, pa, lhs[1],
                                 pb, rhs[1], pc, plan.c.ld, packed)
            return
        bld.call(fn, [ll.Constant(I32, ROW_MAJOR), _flag(lhs[2]), _flag(rhs[2]), rows, cols,
                      i64(plan.k), ll.Constant(real, 1.0), pa, i64(lhs[1]), pb, i64(rhs[1]),
                      ll.Constant(real, 0.0), pc, i64(plan.c.ld)])

    ctx = k.em.ctx
    route = gemm_route(plan, dtype, k.externals)
    if route == "small gemm":
        def offset(bld, p, dims, side):
            return _offset(bld, p, dims, strides[side], a.elem)
        small_gemm.emit(_checked(bld, ctx, (a, b, c)), ctx, plan.batch_shape, m, n, plan.k,
                        lhs, rhs, (c.ptr, plan.c.ld), a.elem, offset, k.externals.vector_bytes)
        return
    batch = math.prod(plan.batch_shape)
    packed = route == "packed tiles"
    columns = gemm_tiles.panel_columns(k.externals.vector_bytes, dtype)
    tiles = k.externals.tiles(bld.module, dtype, packed, packed and rhs[2]) \
        if route != "BLAS" else None
    if tiles is not None:   # its sums do not depend on the blocks: only packed ones are large
        split = None if ctx.bounds_check or not packed else tiles_split(
            batch, m, n, plan.k, columns, rhs[2])
    else:
        exact = k.externals.exact_rows(dtype) if k.externals.exact_rows else None
        split = None if ctx.bounds_check else gemm_split(batch, m, n, plan.k, exact)

    def whole(bld):
        checked = _checked(bld, ctx, (a, b, c))
        with for_nest(bld, plan.batch_shape, "g") as dims:
            pa, pb, pc = (_offset(checked, p, dims, s, a.elem)
                          for p, s in zip((lhs[0], rhs[0], c.ptr), strides))
            if checked is bld:
                call(bld, pa, pb, pc, i64(m), i64(n))
            else:       # bounds-check mode: a product leaving its buffers is not made
                spans = [(pa, _extent(m, plan.k, lhs), ERR_LOAD),
                         (pb, _extent(plan.k, n, rhs), ERR_LOAD),
                         (pc, _extent(m, n, (None, plan.c.ld, False)), ERR_STORE)]
                ok = ll.Constant(ll.IntType(1), 1)
                for p, count, code in spans:
                    ok = bld.and_(ok, checked.span_ok(p, count, code))
                with bld.if_then(ok):
                    call(bld, pa, pb, pc, i64(m), i64(n))

    if split is None:
        whole(bld)
        return
    shape = Call(m, n, plan.k, lhs[1], lhs[2], rhs[1], rhs[2], plan.c.ld)

    def blocks(bld):
        emit_split(bld, ctx.func.name, split, shape, plan.batch_shape,
                   [lhs[0], rhs[0], c.ptr], strides, a.elem, call, ctx.err_ptr,
                   ctx.alloca(ll.ArrayType(I64, 3), "gemm_context"))
    if not split.exact:
        blocks(bld)
        return
    # the blocks give the whole product's bits: on one thread (no pool) one call per batch
    # element, which packs the shared operand once (runtime.blas_split: -12% on the MLP's)
    with bld.if_else(on_one_thread(bld, ctx.err_ptr)) as (one, many):
        with one:
            whole(bld)
        with many:
            blocks(bld)


def _extent(rows: int, cols: int, side) -> int:
    """Elements from a matrix's first to its last one: (rows x cols) with leading dimension
    side[1], stored transposed when side[2]."""
    rows, cols = (cols, rows) if side[2] else (rows, cols)
    return (rows - 1) * side[1] + cols


def _checked(bld, ctx, buffers):
    """bld, or in bounds-check mode a builder that checks every access to buffers
    (small_gemm computes raw addresses: codegen.bounds)."""
    if not ctx.bounds_check:
        return bld
    checked = CheckedBuilder(bld, ctx)
    for buf in buffers:
        checked.track(buf.ptr, buf.elem, buf.type.size)
    return checked


def _flag(trans: bool) -> ll.Constant:
    return ll.Constant(I32, TRANS if trans else NO_TRANS)


internal_rules["gemm"] = _gemm
