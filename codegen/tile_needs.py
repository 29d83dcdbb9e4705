"""Which tile gemm functions (codegen.gemm_tiles') lowering a program will declare, known
before it is lowered: the runtime starts building them first (runtime.blas_tiles.prefetch).

NOTE: lowering declares one when it reaches the first gemm kernel routed to it, often one of
the last (mlp's kernel 10 of 12): the build (~9 ms of Python IR, ~31 ms of LLVM) then had
little lowering left to overlap and the first call waited for it. The routes are the ones
lowering takes (dots.gemm_route on the same fusion plans, regions included); a test compares
them with what lowering declares.
"""
from __future__ import annotations

import math

from codegen import gemm_tiles, small_gemm
from codegen.dots import Externals, gemm_route
from codegen.fusion import LoopNest, plan_function
from codegen.kernels import dot_axes
from ir.core import Function, walk_ops

TILE_ROUTES = ("tiles", "packed tiles")


def tile_keys(fn: Function, externals: Externals | None) -> list:
    """[(dtype, packed, b_trans)] of the tile functions fn's gemm kernels call, each once, in
    the order lowering meets them (a region's before the op holding it: it is lowered first)."""
    return tile_keys_and_plans(fn, externals)[0]


def tile_keys_and_plans(fn: Function, externals: Externals | None) -> tuple[list, dict]:
    """tile_keys, and the fusion plans made to find them ({Function: Plan}: fn's and its
    regions'; empty when no product can take tiles), which lowering then takes instead of
    planning the same functions again (codegen.lower_function's `plans`)."""
    keys: list = []
    plans: dict = {}
    if externals is not None and externals.tiles is not None and _large_dot(fn, externals):
        _collect(fn, externals, keys, plans)
    return keys, plans


def _large_dot(fn: Function, externals: Externals) -> bool:
    """Whether some dot_general may take a tile function's route (NOTE: when none can, as
    gmm's batched small products, the fusion plans are not made twice: ~1.7 ms)."""
    return any(op.prim.name == "dot_general" and _may_take_tiles(op, externals)
               for op in walk_ops(fn))


def _may_take_tiles(op, externals: Externals) -> bool:
    """Whether gemm_route could say tiles for op's product in some layout lowering may give
    it (the result stored transposed or not, B transposed or not: not known before the plan)."""
    x, y = op.inputs
    if x.dtype not in ("f32", "f64"):
        return False
    xb, xc, xfree, _, _, yfree = dot_axes(op)
    batch, k = math.prod(x.shape[a] for a in xb), math.prod(x.shape[a] for a in xc)
    m, n = math.prod(x.shape[a] for a in xfree), math.prod(y.shape[a] for a in yfree)
    size = 4 if x.dtype == "f32" else 8
    columns = gemm_tiles.panel_columns(externals.vector_bytes, x.dtype)
    return any(not small_gemm.fits(batch, rows, cols, k, trans, size)
               and gemm_tiles.fits(batch, rows, cols, k, trans, columns)
               for rows, cols in ((m, n), (n, m)) for trans in (False, True))


def _collect(fn: Function, externals: Externals, keys: list, plans: dict):
    plans[fn] = fn_plan = plan_function(fn, externals)
    for step in fn_plan.steps:
        if isinstance(step, LoopNest):
            continue
        op = step.op
        for region in op.regions:
            _collect(region, externals, keys, plans)
        if op.prim.name != "gemm":
            continue
        plan, dtype = op.params["plan"], op.inputs[0].dtype
        route = gemm_route(plan, dtype, externals)
        if route not in TILE_ROUTES:
            continue
        packed = route == "packed tiles"
        rhs_trans = (not plan.a.trans) if plan.c.trans else plan.b.trans   # as dots._gemm
        key = (dtype, packed, packed and rhs_trans)
        if key not in keys:
            keys.append(key)
