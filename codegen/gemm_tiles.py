"""Products of up to 8M multiply-adds as register tiles of our own instead of a BLAS call.

The two_layer tutorials' step is mostly two f32 products of 6.4M multiply-adds:
x[64,1000] @ w1[1000,100] and x^T[1000,64] @ g[64,100]. OpenBLAS 0.3.31 (SkylakeX kernels)
ran them at 116-130 GFLOP/s (~105 and ~100 us CPU on the Xeon), PyTorch's oneDNN at
~145 (85-90 us). At this size both operands sit in the L2 cache, so the BLAS's packing
of them buys little, and a plain register-tiled loop reading them in place runs near the
FMA units' peak: ~80 us each.

C is cut into tiles of `rows` rows by up to `vectors` vector registers of columns. A tile's
accumulators stay in registers while p runs over all of k:
acc[r][v] = fma(A[i0 + r, p], B[p, j0 + v * lanes ...], acc[r][v]). B's rows are read in
place (unit stride; a small transposed B is first copied in row order to the stack, as in
codegen.small_gemm, a larger one is refused), A's elements are broadcast from wherever A
is (stored transposed or not: the strides do it). Columns past the last whole vector form
one shorter vector, summed in tiles of more rows.

Every element of C is the sum over p in order 0, 1, .. k-1, each step one fused multiply-add
(llvm.fma: fused on every target), starting from -0.0 (x + -0.0 is x, so the first step is
the rounded product): the bits depend neither on the tile shape, nor on the vector width, nor
on the thread count. They differ from the BLAS's only in rounding (its order is its own).

Used (`fits`) for the products that call the gemm (codegen.dots.MIN_GEMM_MACS multiply-adds
a batch element and more) up to MAX_MACS in all, with B not transposed or small enough to
copy (small_gemm.MAX_PACK elements). Measured (Xeon,
AVX-512, CPU medians interleaved with OpenBLAS's sgemm/dgemm called the same way through
ctypes, f32 / f64 ratios, B not transposed): (16x32)@(32x16) 0.28 / 0.31 (the BLAS call's own cost),
(64x100)@(100x10) 0.45 / 0.52, (64x32)^T@(64x64) 0.54 / 0.67, (128x128)@(128x64) 0.61 /
0.69, 128^3 0.67-0.81 / 0.74, (64x1000)@(1000x100) 0.73-0.75 / 0.69,
(1000x64)^T@(64x100) 0.77 / 0.66, (2048x64)^T@(64x64) 0.80 / 0.74, (64x32)@(32x4096)
0.78 / 0.74, (512x128)^T@(128x128) 0.97 / 0.92; past 8M multiply-adds the BLAS's blocking
starts to pay ((96x128)@(128x1024) 0.84 / 1.08, (256x128)@(128x512) 1.06 / 1.07). Every
product used here is below codegen.gemm_split's GEMM_SPLIT_MIN_MACS, so none would have been
split across threads: the kernel a program gets depends on its shapes and target only.
"""
from __future__ import annotations

from llvmlite import ir as ll

from codegen.loops import for_nest, for_range, i64
from codegen.small_gemm import MAX_PACK, a_at, align, at, pack, splat

MAX_MACS = 1 << 23           # in all (batch elements too); GEMM_SPLIT_MIN_MACS is 1 << 24
# accumulator registers of a tile by vector register width: AVX-512 has 32 registers
# (6 rows x 4 vectors measured best of 6x4, 8x3, 12x2), AVX2 16 (4 x 3); the rest hold
# B's row and A's broadcast element
TILES = {64: (6, 4), 32: (4, 3)}
STATS = {"emitted": 0}       # tests read it


def fits(batch: int, m: int, n: int, k: int, rhs_trans: bool, vector_bytes: int) -> bool:
    """Whether a gemm of batch elements of (m x k) @ (k x n) is emitted here."""
    return (vector_bytes in TILES and batch * m * n * k <= MAX_MACS and min(m, n, k) >= 1
            and (not rhs_trans or k * n <= MAX_PACK))


def emit(bld: ll.IRBuilder, ctx, batch_shape, m: int, n: int, k: int, lhs, rhs, c, elem,
         offset, vector_bytes: int) -> None:
    """C = A @ B for every batch element. lhs, rhs: (pointer, ld, trans);
    c: (pointer, ld); offset(bld, pointer, dims, side) gives a batch element's pointer (side
    0, 1, 2); vector_bytes: the target's vector registers (a key of TILES)."""
    STATS["emitted"] += 1
    rows, vectors = TILES[vector_bytes]
    lanes = vector_bytes // align(elem)
    packed = ctx.alloca(ll.ArrayType(elem, k * n), "packed_b") if rhs[2] else None
    with for_nest(bld, batch_shape, "tg") as dims:
        pa, pb, pc = (offset(bld, p, dims, side) for side, p in enumerate((lhs[0], rhs[0], c[0])))
        a, b, out = (pa, lhs[1], lhs[2]), (pb, rhs[1]), (pc, c[1])
        if packed is not None:
            b = (pack(bld, pb, rhs[1], k, n, elem, packed), n)
        for group in column_groups(n, lanes, vectors):
            tile_rows = min(m, rows * vectors // len(group))
            whole = m - m % tile_rows
            with for_range(bld, whole // tile_rows, "ti") as t:
                first = bld.mul(t, i64(tile_rows), flags=("nuw", "nsw"))
                _tile(bld, ctx, first, tile_rows, group, k, a, b, out, elem)
            if m % tile_rows:
                _tile(bld, ctx, i64(whole), m % tile_rows, group, k, a, b, out, elem)


def column_groups(n: int, lanes: int, vectors: int) -> list:
    """C's columns as tiles' groups of (first column, width) vectors: `vectors` whole vectors
    of `lanes` a group (the last group fewer), then the columns left as one shorter vector in
    a group of its own."""
    whole = [(j, lanes) for j in range(0, n - n % lanes, lanes)]
    groups = [whole[g:g + vectors] for g in range(0, len(whole), vectors)]
    if n % lanes:
        groups.append([(n - n % lanes, n % lanes)])
    return groups


def _tile(bld, ctx, first, count: int, group: list, k: int, a, b, out, elem) -> None:
    """C[first + r, columns of group] for r < count, summed over p in order with FMAs."""
    vecs = [ll.VectorType(elem, width) for _, width in group]
    accs = [[ctx.alloca(vec, "tile_acc") for vec in vecs] for _ in range(count)]
    for acc in accs:
        for vec, slot in zip(vecs, acc):
            bld.store(ll.Constant(vec, [-0.0] * vec.count), slot)
    rows = [bld.add(first, i64(r), flags=("nuw", "nsw")) for r in range(count)]
    pb, ldb = b
    with for_range(bld, k, "tp") as p:
        start = bld.mul(p, i64(ldb), flags=("nuw", "nsw"))
        b_row = [bld.load(at(bld, pb, start, j, elem), typ=vec, align=align(elem))
                 for (j, _), vec in zip(group, vecs)]
        for i, acc in zip(rows, accs):
            a_ip = a_at(bld, a, i, p, elem)
            for vec, slot, piece in zip(vecs, acc, b_row):
                total = _fma(bld, splat(bld, a_ip, vec), piece, bld.load(slot, typ=vec))
                bld.store(total, slot)
    pc, ldc = out
    for i, acc in zip(rows, accs):
        start = bld.mul(i, i64(ldc), flags=("nuw", "nsw"))
        for (j, _), vec, slot in zip(group, vecs, acc):
            bld.store(bld.load(slot, typ=vec), at(bld, pc, start, j, elem), align=align(elem))


def _fma(bld, x, y, z):
    """x * y + z rounded once (llvm.fma on vectors: v16f32, v4f64 ...)."""
    vec = x.type
    suffix = f"v{vec.count}{'f32' if isinstance(vec.element, ll.FloatType) else 'f64'}"
    name = f"llvm.fma.{suffix}"
    fn = bld.module.globals.get(name) or ll.Function(bld.module,
                                                     ll.FunctionType(vec, [vec] * 3), name)
    return bld.call(fn, [x, y, z])
