"""gemm_tiles' sums for large products and transposed B: B packed into panels, k in blocks.

Past ~8M multiply-adds the plain tiles (codegen.gemm_tiles, A and B read in place) lose to
the BLAS: a tile streams its columns of B from L2 or memory for every tile of rows. Here the
product runs in blocks of KC steps of p: for each block and each panel of `vectors * lanes`
columns, the panel's KC x width elements of op(B) are first copied into a stack buffer (row
by row; a transposed B by squares transposed in registers, codegen.gemm_transpose, in a
function of its own: the B_TRANS flag is the emitter's, not read at run time), which then
stays in L1 while every tile of rows sums its KC steps from it; A is still read in place
(its rows of a tile stay in L1, the block of KC columns of all rows in L2).

The bits are the plain tiles' ones: every C element is still summed over p in order 0 ..
k-1, one FMA a step, from -0.0. A block after the first starts from the partial sum stored
in C by the block before (a float stored and loaded as it is: nothing rounds). The panel's
columns past n are zeros in the buffer and never stored. The last tile of rows, when m is
not a multiple of the tile's rows, repeats row m - 1 in its missing rows: those copies load
the same partial sum, add the same terms and store the same value, so nothing is counted
twice (the plain tiles move the last tile up instead, which blocks over k would sum twice).

At the start of each tile the next tile's lines of C are prefetched for writing
(codegen.gemm_prefetch: a step's output buffers are out of L2, and each tile's stores used to
wait for their lines at the end of its sums), as in the plain tiles.
"""
from __future__ import annotations

from llvmlite import ir as ll

from codegen.loops import I32, I64, PTR, for_range, i64
from codegen.gemm_prefetch import prefetch_next_tile
from codegen.gemm_transpose import pack_transposed, scratch_block
from codegen.small_gemm import element_at, splat

# steps of p a block: the panel buffer, KC x 64 f32 (AVX-512: 4 vectors of 16) or x 32 f64,
# is 32 KB, within L1 (48 KB on the Xeon)
KC = 128
# bytes of A's rows a block of KC steps reads for all panels, within L2 (512 KB on the Xeon)
# with the panel and C's rows: m is cut into equal blocks of at most this many rows (1024 or
# 2048 rows of f32 in one block: 0.75-0.85x of OpenBLAS's speed, measured)
BLOCK_BYTES = 3 << 16
NUW = ("nuw", "nsw")
# multiply-adds of one call (a batch element) up to which the packed path is used: measured
# (Xeon, single-threaded, CPU medians, time against OpenBLAS's sgemm/dgemm called alike,
# load 2-7) f32: 0.8-0.95 at the MLP 784's (256x784)@(784x256)^T and (256x256)^T@(256x784),
# 384^3 0.8, (64x1000)@(1000x1000)^T 0.88, (128x512)@(512x128)^T 0.78, 512^3 0.95 but 1024^3
# 1.15 and (2048x2048)@(2048x512)^T 1.35 (the BLAS's blocking for L3 and packed A, not done
# here); f64: 0.85 / 1.0 at the MLP's, 384^3 0.91, 512^3 (both transposed) 1.18
MAX_MACS = 1 << 26


def buffer(bld: ll.IRBuilder, elem, tile: tuple, lanes: int):
    """The panel buffer, KC x tile[1] vectors (emit in the entry block)."""
    # rows up to KC rounded up to lanes: codegen.gemm_transpose stores whole square blocks
    rows = -(-KC // lanes) * lanes
    slot = bld.alloca(ll.VectorType(elem, lanes), size=i64(rows * tile[1]), name="panel")
    slot.align = 64
    return slot


class Packed:
    """The packed product's emitter: elem and lanes of the vectors, tile (rows, vectors),
    a: (pointer, row stride, column stride) of op(A), b: (pointer, row length, transposed:
    a Python bool), c: (pointer, row length), m, n, k: i64 values, panel: buffer()'s slot."""

    def __init__(self, elem, lanes: int, tile: tuple, a, b, c, m, n, k, panel):
        self.elem, self.lanes, (self.rows, self.vectors) = elem, lanes, tile
        self.vec = ll.VectorType(elem, lanes)
        self.a, self.b, self.c, self.m, self.n, self.k = a, b, c, m, n, k
        self.panel = panel
        self.wide = self.vectors * lanes

    def emit(self, bld: ll.IRBuilder) -> None:
        """C = op(A) @ op(B): blocks of KC steps of p, in them blocks of rows, in them
        panels of columns, each packed and then summed for every tile of the block's rows."""
        k, wide, rows = self.k, self.wide, self.rows
        # (in the entry block, as the panel)
        self.scratch = scratch_block(bld, self.elem, self.lanes) if self.b[2] else None
        most = max(rows, BLOCK_BYTES // (KC * _bytes(self.elem)) // rows * rows)
        blocks = _ceil_div(bld, self.m, most)
        block_rows = bld.mul(_ceil_div(bld, _ceil_div_value(bld, self.m, blocks), rows),
                             i64(rows), flags=NUW)
        # k in equal blocks of at most KC steps (784 as 7 x 112, not 6 x 128 + 16: a short
        # last block pays a whole block's loads and stores of C for little work; no
        # difference measured at the MLP's shapes, within noise)
        k_blocks = _ceil_div(bld, k, KC)
        step = _ceil_div_value(bld, k, k_blocks)
        with for_range(bld, k_blocks, "kb") as kb:
            p0 = bld.mul(kb, step, flags=NUW)
            kc = _min(bld, step, bld.sub(k, p0, flags=NUW))
            first = bld.icmp_signed("==", kb, i64(0))
            with for_range(bld, blocks, "ib") as ib:
                i0 = bld.mul(ib, block_rows, flags=NUW)
                end = _min(bld, bld.add(i0, block_rows, flags=NUW), self.m)
                with for_range(bld, _ceil_div(bld, self.n, wide), "jp") as g:
                    j0 = bld.mul(g, i64(wide), flags=NUW)
                    width = _min(bld, i64(wide), bld.sub(self.n, j0, flags=NUW))
                    masks = self._masks(bld, width)
                    self._pack(bld, p0, kc, j0, width, masks)
                    self._tile_rows(bld, (i0, end), p0, kc, (j0, width), first, masks)

    def _tile_rows(self, bld, block, p0, kc, panel, first, masks) -> None:
        """Every tile of the block's rows (i0, end) for the panel (j0, width). NOTE: a last panel
        of one vector (784 columns) summed by tiles of one vector and 12 rows instead (no
        zero columns) was no faster measured, and cost 10 ms more CPU to build."""
        i0, end = block
        rows = self.rows
        with for_range(bld, _ceil_div(bld, bld.sub(end, i0, flags=NUW), rows), "ti") as t:
            top = bld.add(i0, bld.mul(t, i64(rows), flags=NUW), flags=NUW)
            self._tile(bld, top, end, p0, kc, panel, first, masks)

    def _starts(self, bld, first, c_at: list, masks: list) -> list:
        """The tile's sums before the block: -0.0 in the first block (C is not read: a
        branch, not a select, so the loads are not made), else C's partial sums."""
        elem, vec, lanes = self.elem, self.vec, self.lanes
        pc, _ = self.c
        zero = ll.Constant(vec, [-0.0] * lanes)
        entry, load = bld.block, bld.append_basic_block("c.load")
        join = bld.append_basic_block("c.join")
        bld.cbranch(first, join, load)
        bld.position_at_end(load)
        loaded = [[_masked_load(bld, element_at(bld, pc, at, v * lanes, elem), mask, zero)
                   for v, mask in enumerate(masks)] for at in c_at]
        bld.branch(join)
        bld.position_at_end(join)
        starts = []
        for row in loaded:
            starts.append([])
            for value in row:
                phi = bld.phi(vec, name="c0")
                phi.add_incoming(zero, entry)
                phi.add_incoming(value, load)
                starts[-1].append(phi)
        return starts

    def _masks(self, bld, width) -> list:
        """Per vector of the panel, its lanes below width."""
        lanes = self.lanes
        limit = splat(bld, width, ll.VectorType(I64, lanes))
        return [bld.icmp_signed("<", ll.Constant(ll.VectorType(I64, lanes),
                                                 [v * lanes + j for j in range(lanes)]), limit)
                for v in range(self.vectors)]

    def _pack(self, bld, p0, kc, j0, width, masks) -> None:
        """panel[p, :] = op(B)[p0 + p, j0 ...] for p < kc, zeros past the panel's width (a
        transposed B: codegen.gemm_transpose)."""
        pb, ldb, trans = self.b
        lanes, elem, vec = self.lanes, self.elem, self.vec
        zero = ll.Constant(vec, [0.0] * lanes)
        if trans:
            pack_transposed(bld, self, p0, kc, j0, width, self.scratch)
            return
        with for_range(bld, kc, "pk") as p:     # B[row, j0 + j]: a row of B, under the masks
            row = bld.add(p0, p, flags=NUW)
            out = bld.mul(p, i64(self.vectors), flags=NUW)
            start = bld.add(bld.mul(row, ldb, flags=NUW), j0, flags=NUW)
            for v, mask in enumerate(masks):
                value = _masked_load(bld, element_at(bld, pb, start, v * lanes, elem),
                                     mask, zero)
                self._store_panel(bld, value, out, v)

    @staticmethod
    def masked_load(bld, address, mask, passthru):
        return _masked_load(bld, address, mask, passthru)

    def _panel_at(self, bld, out, v: int):
        """The panel's vector v of its row at out (= p * vectors)."""
        return element_at(bld, self.panel, out, v, self.vec)

    def _store_panel(self, bld, value, out, v: int) -> None:
        bld.store(value, self._panel_at(bld, out, v), align=_bytes(self.elem))

    def _tile(self, bld, top, end, p0, kc, panel, first, masks) -> None:
        """C[top ..., j0 ...] += the block's kc steps (from -0.0 in the first block); rows
        from end on repeat row end - 1 (the block of rows ends there). panel: (j0, width)."""
        j0, width = panel
        elem, vec, lanes = self.elem, self.vec, self.lanes
        pa, row_stride, col_stride = self.a
        pc, ldc = self.c
        last = bld.sub(end, i64(1), flags=NUW)
        rows = [_min(bld, bld.add(top, i64(r), flags=NUW), last) for r in range(self.rows)]
        c_at = [bld.add(bld.mul(i, ldc, flags=NUW), j0, flags=NUW) for i in rows]
        a_rows = [element_at(bld, pa, bld.add(bld.mul(i, row_stride, flags=NUW),
                                              bld.mul(p0, col_stride, flags=NUW), flags=NUW),
                             0, elem) for i in rows]
        starts = self._starts(bld, first, c_at, masks)
        prefetch_next_tile(bld, self.c, (top, self.rows), last, (j0, width, self.wide), lanes,
                           elem)
        before, loop = bld.block, bld.append_basic_block("pp")
        bld.branch(loop)
        bld.position_at_end(loop)
        p = bld.phi(I64, name="p")
        p.add_incoming(i64(0), before)
        a_col = bld.phi(I64, name="a_col")     # p * col_stride, added up (no multiply)
        a_col.add_incoming(i64(0), before)
        accs = []
        for row in starts:
            accs.append([bld.phi(vec, name="acc") for _ in row])
            for phi, value in zip(accs[-1], row):
                phi.add_incoming(value, before)
        out = bld.mul(p, i64(self.vectors), flags=NUW)
        b_row = [bld.load(self._panel_at(bld, out, v), typ=vec, align=_bytes(elem))
                 for v in range(self.vectors)]
        sums = []
        for a_row, acc in zip(a_rows, accs):
            a_ip = bld.load(element_at(bld, a_row, a_col, 0, elem), typ=elem)
            a_vec = splat(bld, a_ip, vec)
            sums.append([_fma(bld, a_vec, piece, total) for total, piece in zip(acc, b_row)])
        following = bld.add(p, i64(1), flags=NUW)
        end = bld.block
        p.add_incoming(following, end)
        a_col.add_incoming(bld.add(a_col, col_stride, flags=NUW), end)
        for acc, total in zip(accs, sums):
            for phi, value in zip(acc, total):
                phi.add_incoming(value, end)
        done = bld.append_basic_block("pp.end")
        bld.cbranch(bld.icmp_signed("<", following, kc), loop, done)
        bld.position_at_end(done)
        for at, total in zip(c_at, sums):
            for v, (value, mask) in enumerate(zip(total, masks)):
                _masked_store(bld, value, element_at(bld, pc, at, v * lanes, elem), mask)


def _min(bld, x, y):
    return bld.select(bld.icmp_signed("<", x, y), x, y)


def _ceil_div(bld, x, d: int):
    return bld.udiv(bld.add(x, i64(d - 1), flags=NUW), i64(d))


def _ceil_div_value(bld, x, d):
    return bld.udiv(bld.add(x, bld.sub(d, i64(1), flags=NUW), flags=NUW), d)


def _fma(bld, x, y, z):
    """x * y + z rounded once."""
    return bld.call(intrinsic(bld.module, "llvm.fma", x.type, [x.type] * 3), [x, y, z])


def _masked_load(bld, address, mask, passthru):
    vec = passthru.type
    fn = intrinsic(bld.module, "llvm.masked.load", vec, [PTR, I32, mask.type, vec])
    return bld.call(fn, [address, ll.Constant(I32, _bytes(vec.element)), mask, passthru])


def _masked_store(bld, value, address, mask):
    fn = intrinsic(bld.module, "llvm.masked.store", ll.VoidType(),
                   [value.type, PTR, I32, mask.type], value.type)
    bld.call(fn, [value, address, ll.Constant(I32, _bytes(value.type.element)), mask])


def intrinsic(module, name: str, ret, args: list, vec=None, suffix: str | None = None):
    """The overloaded intrinsic `name` at vector type vec (default ret): llvm.fma.v16f32
    (masked loads and stores: .p0 after it; gathers: suffix)."""
    vec = vec or ret
    element = "f32" if vec.element == ll.FloatType() else "f64"
    if suffix is None:
        suffix = ".p0" if "masked" in name else ""
    full = f"{name}.v{vec.count}{element}{suffix}"
    return module.globals.get(full) or ll.Function(module, ll.FunctionType(ret, args), full)


def _bytes(elem) -> int:
    return 4 if elem == ll.FloatType() else 8
