"""Kernel of the sort primitive: a stable sort of each row, giving values and positions.

Rows of at least RADIX_MIN elements go through the LSD radix sort of codegen/radix.py;
shorter ones through a bottom-up merge sort of (value, index) pairs: each row is copied
into scratch, merged in passes of widths 1, 2, 4, ... (the row length is static, so the
passes are unrolled at compile time, each a loop over its blocks) and written to the two
results. A merge step is branch-free: it takes the right element only when it is strictly
before the left one, so equal elements keep their order (stable, in both directions). NaN
counts as the largest value: last ascending, first descending, as NumPy and PyTorch order
it. The scratch is the kernel's workspace (scratch_types, asked for by codegen/control.py)."""
from __future__ import annotations

from llvmlite import ir as ll

from codegen.bounds import CheckedBuilder
from codegen.buffers import nbytes
from codegen.kernels import KernelCall, kernel_rules
from codegen.loops import I64, for_nest, for_range, i64
from codegen.lower import LLVM_TYPES, is_float_type
from ir.core import TensorType
from codegen.radix import RADIX_MIN, radix_sort_row, scratch_elements
from codegen.radix import scratch as radix_scratch

# runs of BLOCK elements (both scratch copies of their pairs: 32 KiB in f64) are sorted first,
# while they stay in cache (long rows go to the radix sort now, so this matters below
# RADIX_MIN only)
BLOCK = 1024


def _before(bld, a, b, descending: bool):
    """Whether a sorts strictly before b."""
    if not is_float_type(a.type):
        return bld.icmp_signed(">" if descending else "<", a, b)
    nan_a, nan_b = bld.fcmp_unordered("uno", a, a), bld.fcmp_unordered("uno", b, b)
    if descending:         # larger first, NaN first of all
        return bld.or_(bld.fcmp_ordered(">", a, b), bld.and_(nan_a, bld.not_(nan_b)))
    return bld.or_(bld.fcmp_ordered("<", a, b), bld.and_(nan_b, bld.not_(nan_a)))


class _Rows:
    """Two scratch rows of (value, index) pairs (each pair in one cache line), in the
    kernel's workspace scratch."""

    def __init__(self, k: KernelCall, n: int, scratch):
        self.bld, self.n, base = k.bld, n, scratch.ptr
        self.real = LLVM_TYPES[k.op.inputs[0].dtype]
        self.pair = ll.LiteralStructType([self.real, I64])
        if k.em.ctx.bounds_check:       # every pair's field checked against the scratch
            self.bld = CheckedBuilder(self.bld, k.em.ctx)
            base = self.bld.track(base, self.pair, nbytes(scratch.type) // 16)
        second = self.bld.gep(base, [i64(16 * max(n, 1))], inbounds=True,
                              source_etype=ll.IntType(8))
        self.rows = [base, second]

    def _field(self, which: int, i, f: int):
        return self.bld.gep(self.rows[which], [i, ll.Constant(ll.IntType(32), f)],
                            inbounds=True, source_etype=self.pair)

    def load(self, which: int, i):
        bld = self.bld
        return (bld.load(self._field(which, i, 0), typ=self.real),
                bld.load(self._field(which, i, 1), typ=I64))

    def store(self, which: int, i, value, index):
        self.bld.store(value, self._field(which, i, 0))
        self.bld.store(index, self._field(which, i, 1))


def _imin(bld, a, b):
    return bld.select(bld.icmp_signed("<", a, b), a, b)


def _merge_pass(k: KernelCall, rows: _Rows, src: int, width: int, start, end, span: int):
    """Merges the sorted runs of `width` in [start, end) of scratch src into the other
    scratch; span (static, >= end - start) bounds the number of merges."""
    bld = k.bld
    i_at, j_at = k.em.ctx.alloca(I64, "left"), k.em.ctx.alloca(I64, "right")
    blocks = -(-span // (2 * width))
    with for_range(bld, blocks, f"blk{width}") as blk:
        lo = bld.add(start, bld.mul(blk, i64(2 * width)))
        mid = _imin(bld, bld.add(lo, i64(width)), end)
        hi = _imin(bld, bld.add(lo, i64(2 * width)), end)
        bld.store(lo, i_at)
        bld.store(mid, j_at)
        with for_range(bld, hi, f"m{width}", start=lo) as out:
            i, j = bld.load(i_at), bld.load(j_at)
            last = i64(rows.n - 1)
            vi, xi = rows.load(src, _imin(bld, i, last))
            vj, xj = rows.load(src, _imin(bld, j, last))
            left_done = bld.icmp_signed(">=", i, mid)
            right = bld.and_(bld.icmp_signed("<", j, hi),
                             bld.or_(left_done, _before(bld, vj, vi, k.op.params["descending"])))
            rows.store(1 - src, out, bld.select(right, vj, vi), bld.select(right, xj, xi))
            step = bld.zext(right, I64)
            bld.store(bld.add(j, step), j_at)
            bld.store(bld.add(i, bld.sub(i64(1), step)), i_at)


def _merge_sort(k: KernelCall, rows: _Rows) -> int:
    """Sorts scratch 0's row; returns the scratch holding the result. Runs of up to BLOCK
    are sorted block by block first (their passes stay in the L1/L2 cache), the rest merge
    across the row."""
    bld, n = k.bld, rows.n
    block = min(BLOCK, n)
    src, width = 0, 1
    with for_range(bld, -(-n // block), "block") as b:
        start = bld.mul(b, i64(block))
        end = _imin(bld, bld.add(start, i64(block)), i64(n))
        w, s = 1, 0
        while w < block:
            _merge_pass(k, rows, s, w, start, end, block)
            s, w = 1 - s, 2 * w
    src, width = s, w
    while width < n:
        _merge_pass(k, rows, src, width, i64(0), i64(n), n)
        src, width = 1 - src, 2 * width
    return src


def _merge_row(k: KernelCall, rows: _Rows, read, write):
    """Merge-sorts one row: read(j) gives element j, write(j, value, position) stores the
    j-th of the sorted row."""
    bld, em = k.bld, k.em
    with em.scope(), for_range(bld, rows.n, "load") as j:
        rows.store(0, j, read(j), j)
    src = _merge_sort(k, rows)
    with em.scope(), for_range(bld, rows.n, "out") as j:
        write(j, *rows.load(src, j))


def _sort(k: KernelCall):
    op, em, bld = k.op, k.em, k.bld
    x, axis = op.inputs[0], op.params["axis"]
    values, indices = k.buffer(op.results[0]), k.buffer(op.results[1])
    n = x.shape[axis]
    if x.type.size == 0:
        return
    long_rows = n >= RADIX_MIN
    rows = radix_scratch(k, n, k.aux[0]) if long_rows else _Rows(k, n, k.aux[0])
    with em.scope(), for_nest(bld, x.shape[:axis], "p") as pre:
        with for_nest(bld, x.shape[axis + 1:], "q") as post:
            def at(j):
                return em.index(x.shape, pre + [j] + post)

            def write(j, value, position):
                lin = at(j).linear
                values.store(lin, value)
                indices.store(lin, position)
            if long_rows:     # the values are read back from x at the sorted positions
                radix_sort_row(k, rows, n, lambda j: em.gen(x, at(j)),
                               lambda j, pos: write(j, em.gen(x, at(pos)), pos))
            else:
                _merge_row(k, rows, lambda j: em.gen(x, at(j)), write)


def scratch_types(op) -> list[TensorType]:
    """The workspace scratch of a sort (asked for by codegen/control.py's aux_types): the
    radix sort's keys, positions and counters, or the merge sort's two rows of pairs."""
    n = op.inputs[0].shape[op.params["axis"]]
    return [TensorType("i64", (scratch_elements(n) if n >= RADIX_MIN else 4 * max(n, 1),))]


kernel_rules["sort"] = _sort
