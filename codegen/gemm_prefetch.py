"""Asks for the next tile's lines of C for writing while a tile of the tile gemms sums.

A tile's stores miss when C is not in the caches (a training step's output buffers were
last written a step ago, and the step's other work has moved them out of L2): every line is
first read for ownership from L3 or memory, and the tile's 24 stores waited for that at the
end of its sums. Measured (Xeon, f32, 1 thread, CPU medians, each call writing one of 12-40
output buffers in turn, against the same function without the prefetches, load 2-3): the
transformer's [512,64] @ [192,64]^T 127 -> 82 us (79 with C in L2), MLP 784's
g^T[256,256] @ x[256,784] 908 -> 673 us (698), x[256,784] @ W1^T 713 -> 668; with C in L2
no difference. A prefetch changes no value (the sums and stores are as before) and never
faults; its addresses are kept inside C all the same (rows and columns clamped to C's).
"""
from __future__ import annotations

from llvmlite import ir as ll

from codegen.loops import I32, PTR, i64
from codegen.small_gemm import element_at

NUW = ("nuw", "nsw")
ENABLED = True               # False: no prefetches emitted (tests compare the bits)


def prefetch_rows(bld: ll.IRBuilder, c, rows: list, column, width, columns: int, lanes: int,
                  elem) -> None:
    """Prefetches for writing C[i, column .. column + width - 1] for each i of rows (i64
    values, inside C): one address a vector of lanes elements and the last element of each
    row's span (an unaligned row's last line); width: an i64 value, 1 <= width <= columns."""
    if not ENABLED:
        return
    pc, ldc = c
    fn = _declare(bld.module)
    last = bld.sub(width, i64(1), flags=NUW)
    offsets = [_min(bld, i64(first), last) for first in range(0, columns, lanes)] + [last]
    for row in rows:
        start = bld.add(bld.mul(row, ldc, flags=NUW), column, flags=NUW)
        for offset in offsets:
            at = bld.add(start, offset, flags=NUW)
            bld.call(fn, [element_at(bld, pc, at, 0, elem), ll.Constant(I32, 1),
                          ll.Constant(I32, 3), ll.Constant(I32, 1)])


def next_rows(bld: ll.IRBuilder, first, count: int, last) -> list:
    """The rows of the tile after the one starting at first (count rows), clamped to last."""
    rows = []
    for r in range(count):
        row = bld.add(first, i64(count + r), flags=NUW)
        rows.append(_min(bld, row, last))
    return rows


def _min(bld, x, y):
    return bld.select(bld.icmp_signed("<", x, y), x, y)


def _declare(module: ll.Module) -> ll.Function:
    name = "llvm.prefetch.p0"     # (address, rw 1: for writing, locality 3: keep, data)
    return module.globals.get(name) or ll.Function(
        module, ll.FunctionType(ll.VoidType(), [PTR, I32, I32, I32]), name)
