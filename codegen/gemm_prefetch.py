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

from codegen.loops import I32, PTR, for_range, i64
from codegen.small_gemm import element_at

NUW = ("nuw", "nsw")
ENABLED = True               # False: no prefetches emitted (tests compare the bits)


def prefetch_next_tile(bld: ll.IRBuilder, c, tile: tuple, last, span: tuple, lanes: int,
                       elem) -> None:
    """Prefetches for writing the lines of the tile after tile = (first row, rows: an int):
    C[i, column .. column + width - 1] for its rows i, clamped to row last (an i64 value);
    span = (column, width, columns): width an i64 value, 1 <= width <= columns. One address
    a vector of lanes elements and the row's last element (an unaligned row's last line).
    NOTE: a loop over the rows, not unrolled: the plain function's five tile shapes, each
    with its prefetches unrolled, took ~50% longer to build."""
    if not ENABLED:
        return
    first, count = tile
    column, width, columns = span
    pc, ldc = c
    fn = _declare(bld.module)
    end = bld.sub(width, i64(1), flags=NUW)
    offsets = [_min(bld, i64(at), end) for at in range(0, columns, lanes)] + [end]
    with for_range(bld, i64(count), "pfc") as r:
        row = _min(bld, bld.add(first, bld.add(r, i64(count), flags=NUW), flags=NUW), last)
        start = bld.add(bld.mul(row, ldc, flags=NUW), column, flags=NUW)
        for offset in offsets:
            at = bld.add(start, offset, flags=NUW)
            bld.call(fn, [element_at(bld, pc, at, 0, elem), ll.Constant(I32, 1),
                          ll.Constant(I32, 3), ll.Constant(I32, 1)])


def _min(bld, x, y):
    return bld.select(bld.icmp_signed("<", x, y), x, y)


def _declare(module: ll.Module) -> ll.Function:
    name = "llvm.prefetch.p0"     # (address, rw 1: for writing, locality 3: keep, data)
    return module.globals.get(name) or ll.Function(
        module, ll.FunctionType(ll.VoidType(), [PTR, I32, I32, I32]), name)
