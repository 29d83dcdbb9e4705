"""Products as register tiles of our own instead of a BLAS call (past 8M: codegen.gemm_pack).

The two_layer tutorials' step is mostly two f32 products of 6.4M multiply-adds:
x[64,1000] @ w1[1000,100] and x^T[1000,64] @ g[64,100]. OpenBLAS 0.3.31 (SkylakeX kernels)
ran them at 116-130 GFLOP/s (~105 and ~100 us CPU on the Xeon), PyTorch's oneDNN at
~145 (85-90 us). At this size both operands sit in the L2 cache, so the BLAS's packing
of them buys little, and a plain register-tiled loop reading them in place runs near the
FMA units' peak: ~80 us each.

One function per dtype (`module_text`, compiled once per process by runtime/blas_tiles.py,
its object code kept in the disk cache) takes the sizes and strides at run time, so a
product costs its kernel one call, as a BLAS call does (the same loops emitted into every
kernel cost ~40-80 ms of codegen and LLVM per product).

C is cut into tiles of `rows` rows by `vectors` vector registers of columns. A tile's
accumulators stay in registers while p runs over all of k:
acc[r][v] = fma(A[i0 + r, p], B[p, j0 + v * lanes ...], acc[r][v]). B's rows are read in
place (unit stride: a transposed B is refused), A's elements are broadcast from wherever A is
(stored transposed or not: its strides are arguments). The columns past the last whole tile
are one tile of fewer vectors and more rows (at most MASKED_ROWS), the last vector loaded and
stored under a mask. The last tile of rows is moved up to end at C's last row: its rows
shared with the tile before are summed again the same way (same bits) and stored again, so
no smaller tile needs code of its own (hence m >= MASKED_ROWS). Each tile first prefetches
the next tile's lines of C for writing (codegen.gemm_prefetch).

Every element of C is the sum over p in order 0, 1, .. k-1, each step one fused multiply-add
(llvm.fma: fused on every target), starting from -0.0 (x + -0.0 is x, so the first step is
the rounded product): the bits depend neither on the tile shape, nor on the vector width, nor
on the thread count. They differ from the BLAS's only in rounding (its order is its own).

Used (`fits`) for the products that call the gemm (codegen.dots.MIN_GEMM_MACS multiply-adds
a batch element and more) of MIN_MACS up to MAX_MACS in all, B not transposed, m >=
MASKED_ROWS; larger ones (up to gemm_pack.MAX_MACS a batch element), those with B
transposed and those of PACKED_MIN_MACS and more whose panels are whole call a packed
function (`module_text(.., packed=True, b_trans=..)`, codegen.gemm_pack: one symbol per dtype
and layout of B) with the same bits. Measured (Xeon, AVX-512, CPU medians
interleaved with OpenBLAS's sgemm/dgemm called the same way through ctypes, f32 / f64
ratios, loops specialised to the sizes):
(16x32)@(32x16) 0.28 / 0.31 (the BLAS call's own cost), (64x100)@(100x10) 0.45 / 0.52,
(64x32)^T@(64x64) 0.54 / 0.67, (128x128)@(128x64) 0.61 / 0.69, 128^3 0.67-0.81 / 0.74,
(64x1000)@(1000x100) 0.73-0.75 / 0.69, (1000x64)^T@(64x100) 0.77 / 0.66, (2048x64)^T@(64x64)
0.80 / 0.74, (64x32)@(32x4096) 0.78 / 0.74, (512x128)^T@(128x128) 0.97 / 0.92; past 8M
multiply-adds the BLAS's blocking starts to pay ((96x128)@(128x1024) 0.84 / 1.08,
(256x128)@(128x512) 1.06 / 1.07). Every product of the plain function is below
codegen.gemm_split's GEMM_SPLIT_MIN_MACS, so it is never split; the packed function's large
ones are (gemm_split.tiles_split), with the same bits on any thread count.
"""
from __future__ import annotations

from llvmlite import ir as ll

from codegen import gemm_pack
from codegen.gemm_pack import Packed, buffer, intrinsic as _intrinsic
from codegen.gemm_prefetch import prefetch_next_tile
from codegen.loops import I32, I64, PTR, for_range, i64
from codegen.lower import LLVM_TYPES
from codegen.small_gemm import element_at, splat

MAX_MACS = 1 << 23           # in all (batch elements too); GEMM_SPLIT_MIN_MACS is 1 << 24
# and at least: building the function costs a cold start ~40-60 ms of CPU (once per process
# and target, then the disk cache), which products below this do not pay back in a first
# call (the benchmarks' mlp and lstm, whose products are 0.5-0.7M, stay on the BLAS: 113 ->
# 161-174 ms CPU to mlp's cold first call with the function, 0.31x -> 0.49x of JAX's)
MIN_MACS = 1 << 20
# a call of this many multiply-adds and more takes the packed path when its panels waste at
# most 1/16 (whole_panels): measured (Xeon, f32, CPU medians interleaved, packed / plain
# time, load 7-9) AVX-512: 0.79-1.01 from 3.1M ([256,192]x[192,64] 0.96-0.97,
# [512,64]x[64,256] 0.87-0.95, [512,256]x[256,64] 0.88-0.94), 0.91-1.04 at 1.6-2.1M; AVX2
# code (GRADJIT_TARGET_CPU=haswell, this host): 0.75-1.02 with whole panels of 24 columns
# (n = 192, 256), 1.04-1.11 with n = 64 (3 panels of 24: 1/8 wasted, hence 1/16)
PACKED_MIN_MACS = 3 << 20
# accumulator registers of a tile by vector register width: AVX-512 has 32 registers
# (6 rows x 4 vectors measured best of 6x4, 8x3, 12x2), AVX2 16 (4 x 3); the rest hold
# B's row and A's broadcast element
TILES = {64: (6, 4), 32: (4, 3)}
MASKED_ROWS = 12             # at most, in tiles of the columns left (m >= this)
SYMBOLS = {"f32": "gradjit_tiles_f32", "f64": "gradjit_tiles_f64"}
# the packed path (codegen.gemm_pack) is a function of its own: a program needing only it
# (the MLP 784's) builds ~27 ms of CPU instead of ~60 for both paths in one module; and one
# for each layout of B (the transposed one packs by in-register transposes, ~20 ms more to
# build: the startup benchmark's mlp needs only B as stored)
PACKED_SYMBOLS = {"f32": "gradjit_packed_f32", "f64": "gradjit_packed_f64"}
PACKED_BT_SYMBOLS = {"f32": "gradjit_packed_bt_f32", "f64": "gradjit_packed_bt_f64"}
# void (i64 flags, i64 m, i64 n, i64 k, ptr A, i64 lda, ptr B, i64 ldb, ptr C, i64 ldc):
# C = op(A) @ op(B), row-major, lda/ldb/ldc the row lengths as stored (as
# runtime.blas.gemm_type); flags: A_TRANS | B_TRANS (B_TRANS: the packed function for a
# transposed B only, which needs it)
A_TRANS, B_TRANS = 1, 2
FUNCTION_TYPE = ll.FunctionType(ll.VoidType(), [I64, I64, I64, I64, PTR, I64, PTR, I64, PTR,
                                                I64])
STATS = {"calls_emitted": 0, "packed_calls_emitted": 0}     # tests read it


def fits(batch: int, m: int, n: int, k: int, rhs_trans: bool, columns: int) -> bool:
    """Whether a gemm of batch elements of (m x k) @ op(B) (k x n) calls the tile function
    (columns: panel_columns of the target). The packed path sums whole panels of columns:
    refused when the last one's unused columns would be more than 1/8 of the work (a
    Linear layer's `x @ W^T` to 10 outputs: 54 of 64 columns wasted)."""
    if m < MASKED_ROWS or min(n, k) < 1 or batch * m * n * k < MIN_MACS:
        return False
    if not packed(batch, m, n, k, rhs_trans, columns):
        return True
    return m * n * k <= gemm_pack.MAX_MACS and whole_panels(n, columns)


def packed(batch: int, m: int, n: int, k: int, rhs_trans: bool, columns: int) -> bool:
    """Whether such a call takes the packed path (codegen.gemm_pack): B transposed, past
    MAX_MACS in all (where the plain tiles lose to the BLAS), or from PACKED_MIN_MACS a call
    when its panels of B are whole enough (whole_panels)."""
    return rhs_trans or batch * m * n * k > MAX_MACS or \
        (m * n * k >= PACKED_MIN_MACS and whole_panels(n, columns, 16))


def whole_panels(n: int, columns: int, parts: int = 8) -> bool:
    """Whether the packed path's last panel of `columns` columns wastes at most 1/parts of
    the work on columns past n (a Linear layer's `x @ W^T` to 10 outputs: 54 of 64 wasted)."""
    return -(-n // columns) * columns * parts <= n * (parts + 1)


def panel_columns(vector_bytes: int, dtype: str) -> int:
    """Columns of a tile (and of a packed panel of B) for vector registers of vector_bytes."""
    return TILES[vector_bytes][1] * vector_bytes // (4 if dtype == "f32" else 8)


def symbol(dtype: str, packed: bool = False, b_trans: bool = False) -> str:
    """The symbol of dtype's tile function, or its packed one for B as stored or transposed."""
    if not packed:
        return SYMBOLS[dtype]
    return (PACKED_BT_SYMBOLS if b_trans else PACKED_SYMBOLS)[dtype]


def declare(module: ll.Module, dtype: str, packed: bool = False,
            b_trans: bool = False) -> ll.Function:
    """The tile function of dtype ("f32"/"f64"), or its packed one (for a transposed B when
    b_trans), declared in module."""
    name = symbol(dtype, packed, b_trans)
    return module.globals.get(name) or ll.Function(module, FUNCTION_TYPE, name)


def emit_call(bld: ll.IRBuilder, fn, a_trans: bool, b_trans: bool, m, n, k: int, pa, lda: int,
              pb, ldb: int, pc, ldc: int, packed: bool) -> None:
    """A call of fn (declare(.., packed)) for op(A) (m x k) @ op(B) (k x n); m, n: ints or
    i64 values; a transposed B needs the packed function made for it."""
    assert packed or not b_trans
    STATS["calls_emitted"] += 1
    STATS["packed_calls_emitted"] += packed
    flags = A_TRANS * a_trans | B_TRANS * b_trans
    m, n = (i64(x) if isinstance(x, int) else x for x in (m, n))
    bld.call(fn, [i64(flags), m, n, i64(k), pa, i64(lda), pb, i64(ldb), pc, i64(ldc)])


def module_text(dtype: str, vector_bytes: int, name: str | None = None,
                packed: bool = False, b_trans: bool = False) -> str:
    """LLVM IR of a module defining symbol(dtype, packed, b_trans), or name, for vector
    registers of vector_bytes (b_trans: the packed function for B transposed, else as
    stored; its flags' B_TRANS is not read)."""
    name = name or symbol(dtype, packed, b_trans)
    module = ll.Module(name=name)
    fn = ll.Function(module, FUNCTION_TYPE, name)
    flags, m, n, k, pa, lda, pb, ldb, pc, ldc = fn.args
    for ptr in (pa, pb, pc):
        ptr.add_attribute("noalias")
    bld = ll.IRBuilder(fn.append_basic_block("entry"))
    elem = LLVM_TYPES[dtype]
    lanes = vector_bytes // _bytes(elem)
    rows, vectors = TILES[vector_bytes]
    trans = bld.icmp_signed("!=", bld.and_(flags, i64(A_TRANS)), i64(0))
    a = (pa, bld.select(trans, i64(1), lda), bld.select(trans, lda, i64(1)))
    if packed:
        Packed(elem, lanes, TILES[vector_bytes], a, (pb, ldb, b_trans), (pc, ldc), m, n, k,
               buffer(bld, elem, TILES[vector_bytes], lanes)).emit(bld)
        bld.ret_void()
        return str(module)
    parts = _Parts(elem, (m, n, k), a, (pb, ldb), (pc, ldc))
    wide = vectors * lanes
    groups = bld.udiv(n, i64(wide))
    with for_range(bld, groups, "tj") as g:
        column = bld.mul(g, i64(wide), flags=("nuw", "nsw"))
        with for_range(bld, _ceil_div(bld, m, rows), "ti") as t:
            parts.tile(bld, _tile_row(bld, t, rows, m), rows, column, [None] * vectors, lanes)
    start = bld.mul(groups, i64(wide), flags=("nuw", "nsw"))
    left = bld.sub(n, start, flags=("nuw", "nsw"))
    iota = ll.Constant(ll.VectorType(I64, lanes), list(range(lanes)))
    last = bld.sub(left, i64(1), flags=("nuw", "nsw"))
    mask = bld.icmp_signed("<", iota, splat(bld, bld.sub(left, bld.mul(
        bld.udiv(last, i64(lanes)), i64(lanes))), ll.VectorType(I64, lanes)))
    count = bld.udiv(bld.add(left, i64(lanes - 1)), i64(lanes))
    for c in range(1, vectors + 1):   # the columns left: c vectors, the last under the mask
        tile_rows = min(MASKED_ROWS, rows * vectors // c)
        with bld.if_then(bld.icmp_signed("==", count, i64(c))):
            with for_range(bld, _ceil_div(bld, m, tile_rows), "tm") as t:
                parts.tile(bld, _tile_row(bld, t, tile_rows, m), tile_rows, start,
                           [None] * (c - 1) + [mask], lanes)
    bld.ret_void()
    return str(module)


class _Parts:
    """The function's operands: elem, sizes (m, n, k), a:
    (pointer, row stride, column stride), b and c: (pointer, row length)."""

    def __init__(self, elem, sizes, a, b, c):
        self.elem, (self.m, self.n, self.k), self.a, self.b, self.c = elem, sizes, a, b, c

    def tile(self, bld, first, count: int, column, masks: list, lanes: int) -> None:
        """C[first + r, column + v * lanes ...] for r < count and each vector v (masks:
        None, or a lane mask for a vector loaded and stored under it), summed over p in
        order with FMAs."""
        elem, vec = self.elem, ll.VectorType(self.elem, lanes)
        rows = [bld.add(first, i64(r), flags=("nuw", "nsw")) for r in range(count)]
        pa, row_stride, col_stride = self.a
        pb, ldb = self.b
        a_rows = [bld.mul(i, row_stride, flags=("nuw", "nsw")) for i in rows]
        columns = len(masks) * lanes
        width = _min(bld, i64(columns), bld.sub(self.n, column, flags=("nuw", "nsw")))
        last = bld.sub(self.m, i64(1), flags=("nuw", "nsw"))
        prefetch_next_tile(bld, self.c, (first, count), last, (column, width, columns), lanes,
                           elem)
        # for p in 0 .. k-1 (k >= 1), the sums as phis: no stack slots for LLVM to promote
        before, loop = bld.block, bld.append_basic_block("tp")
        bld.branch(loop)
        bld.position_at_end(loop)
        p = bld.phi(I64, name="p")
        p.add_incoming(i64(0), before)
        zero = ll.Constant(vec, [-0.0] * lanes)
        accs = []
        for _ in range(count):
            accs.append([bld.phi(vec, name="acc") for _ in masks])
            for acc in accs[-1]:
                acc.add_incoming(zero, before)
        start = bld.add(bld.mul(p, ldb, flags=("nuw", "nsw")), column, flags=("nuw", "nsw"))
        b_row = [self._load(bld, pb, start, v * lanes, vec, mask) for v, mask in enumerate(masks)]
        a_col = bld.mul(p, col_stride, flags=("nuw", "nsw"))
        sums = []
        for a_row, acc in zip(a_rows, accs):
            at = bld.add(a_row, a_col, flags=("nuw", "nsw"))
            a_ip = bld.load(bld.gep(pa, [at], inbounds=True, source_etype=elem), typ=elem)
            a_vec = splat(bld, a_ip, vec)
            sums.append([_fma(bld, a_vec, piece, total) for total, piece in zip(acc, b_row)])
        following = bld.add(p, i64(1), flags=("nuw", "nsw"))
        end = bld.block
        p.add_incoming(following, end)
        for acc, total in zip(accs, sums):
            for phi, value in zip(acc, total):
                phi.add_incoming(value, end)
        done = bld.append_basic_block("tp.end")
        bld.cbranch(bld.icmp_signed("<", following, self.k), loop, done)
        bld.position_at_end(done)
        pc, ldc = self.c
        for i, total in zip(rows, sums):
            start = bld.add(bld.mul(i, ldc, flags=("nuw", "nsw")), column, flags=("nuw", "nsw"))
            for v, (value, mask) in enumerate(zip(total, masks)):
                self._store(bld, value, pc, start, v * lanes, mask)

    def _load(self, bld, ptr, start, offset: int, vec, mask):
        address = element_at(bld, ptr, start, offset, self.elem)
        if mask is None:
            return bld.load(address, typ=vec, align=_bytes(self.elem))
        fn = _intrinsic(bld.module, "llvm.masked.load", vec, [PTR, I32, mask.type, vec])
        return bld.call(fn, [address, ll.Constant(I32, _bytes(self.elem)), mask,
                             ll.Constant(vec, [0.0] * vec.count)])

    def _store(self, bld, value, ptr, start, offset: int, mask):
        address = element_at(bld, ptr, start, offset, self.elem)
        if mask is None:
            bld.store(value, address, align=_bytes(self.elem))
            return
        fn = _intrinsic(bld.module, "llvm.masked.store", ll.VoidType(),
                        [value.type, PTR, I32, mask.type], value.type)
        bld.call(fn, [value, address, ll.Constant(I32, _bytes(self.elem)), mask])


def _tile_row(bld, t, tile_rows: int, m):
    """The first row of tile t: t * tile_rows, the last tile moved up to end at row m."""
    row = bld.mul(t, i64(tile_rows), flags=("nuw", "nsw"))
    last = bld.sub(m, i64(tile_rows), flags=("nuw", "nsw"))
    return bld.select(bld.icmp_signed("<", row, last), row, last)


def _min(bld, x, y):
    return bld.select(bld.icmp_signed("<", x, y), x, y)


def _ceil_div(bld, x, d: int):
    return bld.udiv(bld.add(x, i64(d - 1), flags=("nuw", "nsw")), i64(d))


def _fma(bld, x, y, z):
    """x * y + z rounded once."""
    return bld.call(_intrinsic(bld.module, "llvm.fma", x.type, [x.type] * 3), [x, y, z])


def _bytes(elem) -> int:
    return 4 if elem == ll.FloatType() else 8
