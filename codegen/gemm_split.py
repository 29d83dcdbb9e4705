"""Splitting a large gemm op across gradjit's threads: blocks of the output, one BLAS call each.

The BLAS is called single-threaded (runtime.blas sets its own pool to 1 thread, see
docs/design.md "Threads"), so the parallelism of a big product is gradjit's: the output C of
each batch element is cut into `blocks` row blocks (or column blocks when C has more columns
than rows), and the (batch element, block) units are handed out as tasks by
`loops.parallel_for`, the same fork/join the parallel loop nests use. A block of rows of C
needs the same rows of op(A) and all of op(B) (columns: all of op(A), those columns of
op(B)), so each block is one ordinary gemm call on offset pointers; nothing is copied.

The split depends on the shapes alone, never on the thread count: OpenBLAS sums a block in a
different order than the whole product (measured: row blocks change the last bits of sgemm
and dgemm), so a thread-count-dependent split would make results depend on
GRADJIT_NUM_THREADS. Work too small to pay for a task is not split (`gemm_split` returns
None): thresholds measured on the 2-core AMD EPYC (Zen 3, AVX2) with OpenBLAS 0.3.31 single
threaded, see the constants.
"""
from __future__ import annotations

import math

from llvmlite import ir as ll

from codegen.loops import I64, INT_FLAGS, PTR, TASK_TYPE, for_range, i64, parallel_for
from codegen.records import Record

# Measured on the 2-core AMD EPYC (Zen 3, AVX2), OpenBLAS 0.3.31 single-threaded, f32, fastest
# of 300 calls on a shared machine: (256x784)@(784x256) (51M multiply-adds) as 1, 2, 4, 8
# row blocks on one thread: 1.10, 1.13, 1.17, 1.31 ms; on two threads: -, 0.88, 0.77,
# 0.76 ms. (128x128)@(128x128) (2M) and (256x256)@(256x64) (4M) gained nothing from a split
# (51 vs 55 us, 98 vs 101 us): waking a worker and the smaller blocks' lost BLAS efficiency
# eat it. So: tasks of about 8M multiply-adds (~250 us on one core), at most 4 blocks per
# product (each block packs the shared operand again: +6% at 4 blocks on one thread), and
# nothing below two tasks' worth is split.
GEMM_TASK_MACS = 1 << 23
GEMM_SPLIT_MIN_MACS = 2 * GEMM_TASK_MACS
GEMM_MAX_BLOCKS = 4          # per batch element
GEMM_ROW_ALIGN = 16          # blocks start on a multiple of this (the BLAS kernels' unrolling)
GEMM_MAX_TASKS = 1024
# A BLAS may run small products on kernels of their own that sum in another order (OpenBLAS's
# SkylakeX "small matrix" sgemm/dgemm, up to 1e6 multiply-adds): a block that small may not
# reproduce its rows of the whole product, so an exact split (one call on one thread) needs
# every block, the last one too, at least this large; runtime.blas_split probes at this size
EXACT_BLOCK_MIN_MACS = 1 << 21


class GemmSplit(Record, frozen=True):
    """How a (batch x m x n x k) product is cut into tasks.

    axis: "m" for blocks of C's rows, "n" for blocks of its columns; rows: rows (or
    columns) per block, the last block may be shorter; blocks: per batch element; units:
    batch elements x blocks; per_task: consecutive units per task; tasks; exact: the blocks
    give the whole product's bits (one thread: one call).
    """
    _fields = ("axis", "rows", "blocks", "units", "per_task", "tasks", "exact")
    _defaults = {"exact": False}


def gemm_split(batch: int, m: int, n: int, k: int,
               exact_rows: int | None = None) -> GemmSplit | None:
    """The split of a product into tasks, or None when it is too small to pay for one.

    exact_rows: the row step at which the BLAS's row blocks reproduce the whole product
    bitwise (runtime.blas_split), if known: then rows are blocked on multiples of it when
    m allows and every block has EXACT_BLOCK_MIN_MACS, and the split is `exact`, so a
    kernel on one thread makes one call instead.
    A split into whole batch elements (one block each) is exact whatever the BLAS.
    """
    if batch * m * n * k < GEMM_SPLIT_MIN_MACS:
        return None
    if exact_rows and m >= 2 * exact_rows:
        found = _split(batch, m, n, k, "m", exact_rows)
        if found is not None and found.blocks > 1 and \
                _smallest_block(found, m) * n * k >= EXACT_BLOCK_MIN_MACS:
            return found.replace(exact=True)
    found = _split(batch, m, n, k, "m" if m >= n else "n", GEMM_ROW_ALIGN)
    return found.replace(exact=True) if found is not None and found.blocks == 1 else found


def tiles_split(batch: int, m: int, n: int, k: int, columns: int,
                b_trans: bool) -> GemmSplit | None:
    """The split of a product made by codegen.gemm_tiles' function, or None when too small.
    Its sums do not depend on the blocks, so every split is exact. With B transposed, blocks
    of columns (a multiple of `columns`, its panel width) when n allows: each block gathers
    only its columns of B, where blocks of rows would each gather all of B again (copying B
    by rows, as when it is not transposed, is cheap: then rows, which need no whole panels)."""
    if batch * m * n * k < GEMM_SPLIT_MIN_MACS:
        return None
    found = _split(batch, m, n, k, "n", columns) if b_trans and n >= 2 * columns else None
    if found is None:
        found = _split(batch, m, n, k, "m", GEMM_ROW_ALIGN)
    return found.replace(exact=True) if found is not None else None


def _smallest_block(split: GemmSplit, extent: int) -> int:
    """Rows (or columns) of the split's smallest block: the last one."""
    return extent - (split.blocks - 1) * split.rows


def _split(batch: int, m: int, n: int, k: int, axis: str, align: int) -> GemmSplit | None:
    macs, extent = m * n * k, m if axis == "m" else n
    blocks = max(1, min(macs // GEMM_TASK_MACS, extent // align, GEMM_MAX_BLOCKS))
    rows = -(-extent // blocks)
    rows = -(-rows // align) * align
    blocks = -(-extent // rows)
    units = batch * blocks
    tasks = min(units, max(1, batch * macs // GEMM_TASK_MACS), GEMM_MAX_TASKS)
    if tasks < 2:
        return None
    per_task = -(-units // tasks)
    tasks = -(-units // per_task)
    return GemmSplit(axis, rows, blocks, units, per_task, tasks) if tasks > 1 else None


class Call(Record, frozen=True):
    """One gemm call's constant part: op(A) is m x k, op(B) k x n, C m x n (row-major)."""
    _fields = ("m", "n", "k", "a_ld", "a_trans", "b_ld", "b_trans", "c_ld")


def emit_split(bld: ll.IRBuilder, kernel_name: str, split: GemmSplit, call: Call,
               batch_shape: tuple, bases: list, batch_strides: list, elem, emit_call,
               header_ptr, context) -> None:
    """Runs the split product on gradjit's threads.

    bases: the A, B and C pointers of batch element 0; batch_strides: their element strides
    per batch axis; emit_call(bld, a_ptr, b_ptr, c_ptr, m, n) emits one BLAS call (m, n are
    i64 values); header_ptr: the workspace header (thread count, pool: loops.parallel_for);
    context: an [3 x i64] stack slot of the calling function (allocated in its entry block).
    """
    module = bld.module
    task = ll.Function(module, TASK_TYPE, module.get_unique_name(kernel_name + ".gemm_task"))
    task.linkage = "internal"
    _emit_task(task, split, call, batch_shape, batch_strides, elem, emit_call)
    for j, ptr in enumerate(bases):
        bld.store(bld.ptrtoint(ptr, I64), bld.gep(context, [i64(0), i64(j)], inbounds=True))
    parallel_for(bld, task, bld.bitcast(context, PTR), i64(split.tasks), header_ptr)


def _emit_task(task: ll.Function, split: GemmSplit, call: Call, batch_shape: tuple,
               batch_strides: list, elem, emit_call) -> None:
    """task(context, t): units [t * per_task, min((t + 1) * per_task, units)) one call each."""
    bld = ll.IRBuilder(task.append_basic_block("entry"))
    context, t = task.args
    bases = [bld.load(bld.gep(context, [i64(j)], source_etype=I64), typ=I64) for j in range(3)]
    bases = [bld.inttoptr(b, PTR) for b in bases]
    lo = bld.mul(t, i64(split.per_task), flags=INT_FLAGS)
    hi = bld.add(lo, i64(split.per_task), flags=INT_FLAGS)
    hi = bld.select(bld.icmp_signed("<", hi, i64(split.units)), hi, i64(split.units))
    with for_range(bld, hi, "unit", start=lo) as u:
        b_index = bld.udiv(u, i64(split.blocks))
        block = bld.urem(u, i64(split.blocks))
        ptrs = [_batch_offset(bld, base, b_index, batch_shape, strides, elem)
                for base, strides in zip(bases, batch_strides)]
        begin = bld.mul(block, i64(split.rows), flags=INT_FLAGS)
        extent = call.m if split.axis == "m" else call.n
        stop = bld.add(begin, i64(split.rows), flags=INT_FLAGS)
        stop = bld.select(bld.icmp_signed("<", stop, i64(extent)), stop, i64(extent))
        size = bld.sub(stop, begin, flags=INT_FLAGS)
        a, b, c = ptrs
        if split.axis == "m":     # rows of C: rows of op(A)
            a = _advance(bld, a, begin, 1 if call.a_trans else call.a_ld, elem)
            c = _advance(bld, c, begin, call.c_ld, elem)
            emit_call(bld, a, b, c, size, i64(call.n))
        else:                     # columns of C: columns of op(B)
            b = _advance(bld, b, begin, call.b_ld if call.b_trans else 1, elem)
            c = _advance(bld, c, begin, 1, elem)
            emit_call(bld, a, b, c, i64(call.m), size)
    bld.ret_void()


def _advance(bld, ptr, index, stride: int, elem):
    step = bld.mul(index, i64(stride), flags=INT_FLAGS)
    return bld.gep(ptr, [step], inbounds=True, source_etype=elem)


def _batch_offset(bld, base, linear, batch_shape: tuple, strides, elem):
    """base advanced to batch element `linear` (C order over batch_shape)."""
    if math.prod(batch_shape) <= 1:
        return base
    offset = i64(0)
    for size, stride in reversed(list(zip(batch_shape, strides))):
        if size == 1:
            continue
        d = bld.urem(linear, i64(size))
        linear = bld.udiv(linear, i64(size))
        offset = bld.add(offset, bld.mul(d, i64(stride), flags=INT_FLAGS), flags=INT_FLAGS)
    return bld.gep(base, [offset], inbounds=True, source_etype=elem)
