"""Batches of small products (attention's per-head q k^T and p v) as vector code, not BLAS calls.

A batched gemm calls the BLAS once per batch element (codegen.dots). For attention's
products (64 heads x batch of 32x32x16 or 32x16x32, 16K multiply-adds each) a call costs
~1.7 us of argument checks, packing and dispatch against ~0.3 us of arithmetic: the six
such products of a transformer block's step took ~110 us each (~18 GFLOP/s) where the
same flops in one large gemm run at ~70.

Here each row of C (at most MAX_ROW_BYTES, eight AVX2 registers) is a few LLVM vectors of
at most one register each (row_pieces): C[i, :] = sum over p of A[i, p] * B[p, :], the products
added in order of p (the first product starts the sum), then stored. B's rows are
unit-stride loads (a transposed B is first copied into a small stack buffer in row order,
by square tiles transposed in registers). How many rows are summed at once depends on the
target's vector registers (`vector_bytes`: 8 registers of partial sums, the FMA's latency
times its two units). The order of additions is fixed by this code, so results do not
depend on the vector width or the thread count; they differ from the BLAS's only in rounding
(the BLAS's own order of additions is its own).
"""
from __future__ import annotations

from llvmlite import ir as ll

from codegen.loops import I32, for_nest, for_range, i64
from codegen.lower import F64, FP_FLAGS

MAX_ROW_BYTES = 256         # a row of C in at most 8 AVX2 registers (64 f32 or 32 f64)
MAX_MACS = 64 * 64 * 64     # per batch element: beyond this the BLAS's blocking pays
MAX_BATCH_MACS = 1 << 22    # in all: beyond ~4M multiply-adds the BLAS calls are split
                            # across gradjit's threads (codegen.gemm_split); this loop is not
ROW_REGISTERS = 8           # accumulator registers: rows of C summed at once fill about these
VECTOR_BYTES = 32           # (AVX2 registers: an FMA's latency x 2 units = 8 chains in flight;
                            # with AVX-512 the caller says 64: a row of 32 f32 is 2 registers)
STATS = {"emitted": 0, "tiled_packs": 0, "block": 0, "pieces": 0}   # tests read them
MAX_PACK = 4096             # elements of a transposed B copied to the stack
TILE_BYTES = 32             # a transposed B is packed in square tiles of rows this long
MAX_COLUMN = 64             # else column by column, each one vector when at most this long


def fits(batch: int, m: int, n: int, k: int, rhs_trans: bool, elem_bytes: int) -> bool:
    """Whether a gemm of batch elements of (m x k) @ (k x n) is emitted here."""
    return (batch > 1 and min(m, n, k) >= 1 and n * elem_bytes <= MAX_ROW_BYTES
            and m * n * k <= MAX_MACS and batch * m * n * k <= MAX_BATCH_MACS
            and (not rhs_trans or k * n <= MAX_PACK))


def emit(bld: ll.IRBuilder, ctx, batch_shape, m: int, n: int, k: int, lhs, rhs, c, elem,
         offset, vector_bytes: int = VECTOR_BYTES) -> None:
    """C = A @ B for every batch element. lhs, rhs: (pointer, ld, trans); c: (pointer, ld);
    offset(bld, pointer, dims, side) gives a batch element's pointer (side 0, 1, 2);
    vector_bytes: the target's vector registers (dots.Externals), which set the rows summed
    at once (ROW_REGISTERS registers of partial sums)."""
    STATS["emitted"] += 1
    row = row_pieces(elem, n, vector_bytes // _align(elem))
    block = max(1, min(m, ROW_REGISTERS // -(-n * _align(elem) // vector_bytes)))
    STATS["block"] = block
    STATS["pieces"] = len(row)
    packed = ctx.alloca(ll.ArrayType(elem, k * n), "packed_b") if rhs[2] else None
    with for_nest(bld, batch_shape, "sg") as dims:
        pa, pb, pc = (offset(bld, p, dims, side) for side, p in enumerate((lhs[0], rhs[0], c[0])))
        ldb = rhs[1]
        if packed is not None:
            pb, ldb = _pack(bld, pb, rhs[1], k, n, elem, packed), n
        a, blocked = (pa, lhs[1], lhs[2]), m - m % block
        if blocked:
            with for_range(bld, blocked // block, "si") as ib:
                first = bld.mul(ib, i64(block), flags=("nuw", "nsw"))
                rows = [bld.add(first, i64(r), flags=("nuw", "nsw")) for r in range(block)]
                _rows(bld, ctx, rows, a, pb, ldb, k, row, elem, (pc, c[1]))
        for i in range(blocked, m):
            _rows(bld, ctx, [i64(i)], a, pb, ldb, k, row, elem, (pc, c[1]))


def row_pieces(elem, n: int, lanes: int) -> list:
    """A row of n elements as (first column, vector type) pieces: whole vector registers of
    `lanes` elements, then the rest as one shorter vector. Why: LLVM holds a vector that
    outgrows one register, across a loop's back edge, in registers of the largest power of
    two dividing its length, so one <10 x double> sum became five <2 x double> rebuilt by
    shuffles every step (gmm's products, 6x slower); a vector shorter than a register is
    widened into one (<12 x float> in a 16-lane register). The pieces only cut the row:
    each element's sum is unchanged."""
    pieces = [(first, ll.VectorType(elem, lanes)) for first in range(0, n - n % lanes, lanes)]
    if n % lanes:
        pieces.append((n - n % lanes, ll.VectorType(elem, n % lanes)))
    return pieces

def _pack(bld, pb, ld: int, k: int, n: int, elem, packed):
    """B (stored transposed: element (p, j) at j*ld + p) copied in row order into packed:
    by square tiles transposed in registers when k and n are multiples of the tile, else
    column by column."""
    tile = TILE_BYTES // _align(elem)
    if k % tile or n % tile:
        return _pack_columns(bld, pb, ld, k, n, elem, packed)
    STATS["tiled_packs"] += 1
    dst = bld.gep(packed, [i64(0), i64(0)], inbounds=True)
    vec = ll.VectorType(elem, tile)
    with for_range(bld, n // tile, "tj") as tj, for_range(bld, k // tile, "tp") as tp:
        j0 = bld.mul(tj, i64(tile), flags=("nuw", "nsw"))
        p0 = bld.mul(tp, i64(tile), flags=("nuw", "nsw"))
        rows = []
        for r in range(tile):       # row j0 + r of the stored B^T: B[p0 .. p0 + tile, j0 + r]
            at = bld.add(bld.mul(bld.add(j0, i64(r)), i64(ld), flags=("nuw", "nsw")), p0,
                         flags=("nuw", "nsw"))
            ptr = bld.gep(pb, [at], inbounds=True, source_etype=elem)
            rows.append(bld.load(bld.bitcast(ptr, ll.PointerType(vec)), typ=vec,
                                 align=_align(elem)))
        for c, v in enumerate(transpose_tile(bld, rows)):    # B[p0 + c, j0 .. j0 + tile]
            at = bld.add(bld.mul(bld.add(p0, i64(c)), i64(n), flags=("nuw", "nsw")), j0,
                         flags=("nuw", "nsw"))
            ptr = bld.gep(dst, [at], inbounds=True, source_etype=elem)
            bld.store(v, bld.bitcast(ptr, ll.PointerType(vec)), align=_align(elem))
    return dst


def transpose_tile(bld, rows: list) -> list:
    """The transpose of a square matrix given as its rows (vectors of len(rows), a power of
    two): for each bit b of the index, the elements (i, c) with bit b clear in i and set in c
    swap with (i ^ b, c ^ b); after every bit, (i, c) has moved to (c, i). One shuffle of two
    rows per row and bit: data movement only."""
    t = len(rows)
    b = 1
    while b < t:
        out = list(rows)
        for i in range(t):
            if i & b:
                continue
            x, y = rows[i], rows[i | b]
            low = [c if not c & b else t + (c ^ b) for c in range(t)]
            high = [t + c if c & b else c ^ b for c in range(t)]
            out[i] = bld.shuffle_vector(x, y, _mask(low))
            out[i | b] = bld.shuffle_vector(x, y, _mask(high))
        rows, b = out, b * 2
    return rows


def _mask(indices: list) -> ll.Constant:
    return ll.Constant(ll.VectorType(I32, len(indices)), indices)


def _pack_columns(bld, pb, ld: int, k: int, n: int, elem, packed):
    """_pack column by column.

    A loop over j: B's column j (k elements in a row of the stored B^T) is one vector load,
    its elements stored n apart. Emitted so that LLVM's vectorisers find nothing to do: a
    loop per column (vectorised into scatters) or rows gathered by insertelement (which the
    SLP vectoriser searches) cost ~50 ms of LLVM time per product."""
    dst = bld.gep(packed, [i64(0), i64(0)], inbounds=True)
    if k > MAX_COLUMN:          # a long column: one plain loop nest (code of bounded size)
        with for_range(bld, n, "pj") as j, for_range(bld, k, "pp") as p:
            at = bld.add(bld.mul(j, i64(ld), flags=("nuw", "nsw")), p, flags=("nuw", "nsw"))
            v = bld.load(bld.gep(pb, [at], inbounds=True, source_etype=elem), typ=elem)
            at = bld.add(bld.mul(p, i64(n), flags=("nuw", "nsw")), j, flags=("nuw", "nsw"))
            bld.store(v, bld.gep(dst, [at], inbounds=True, source_etype=elem))
        return dst
    column = ll.VectorType(elem, k)
    with for_range(bld, n, "pj") as j:
        src = bld.gep(pb, [bld.mul(j, i64(ld), flags=("nuw", "nsw"))], inbounds=True,
                      source_etype=elem)
        values = bld.load(bld.bitcast(src, ll.PointerType(column)), typ=column,
                          align=_align(elem))
        for p in range(k):
            at = bld.add(j, i64(p * n), flags=("nuw", "nsw"))
            bld.store(bld.extract_element(values, i64(p)),
                      bld.gep(dst, [at], inbounds=True, source_etype=elem))
    return dst


def _a_at(bld, a, i, p, elem):
    """A[i, p] (a: pointer, ld, trans)."""
    ptr, ld, trans = a
    r, col = (p, i) if trans else (i, p)
    at = bld.add(bld.mul(r, i64(ld), flags=("nuw", "nsw")), col, flags=("nuw", "nsw"))
    return bld.load(bld.gep(ptr, [at], inbounds=True, source_etype=elem), typ=elem)


def _b_row(bld, pb, ldb: int, p, row: list, elem) -> list:
    """B[p, :] as row's pieces."""
    start = bld.mul(p, i64(ldb), flags=("nuw", "nsw"))
    return [bld.load(element_at(bld, pb, start, first, elem), typ=vec, align=_align(elem))
            for first, vec in row]


def element_at(bld, ptr, start, first: int, elem):
    """ptr advanced by start + first elements."""
    if first:
        start = bld.add(start, i64(first), flags=("nuw", "nsw"))
    return bld.gep(ptr, [start], inbounds=True, source_etype=elem)


def splat(bld, value, vec):
    """value in every lane of a vector of type vec."""
    one = bld.insert_element(ll.Constant(vec, ll.Undefined), value, i64(0))
    zeros = ll.Constant(ll.VectorType(I32, vec.count), [0] * vec.count)
    return bld.shuffle_vector(one, ll.Constant(vec, ll.Undefined), zeros)


def _terms(bld, a, rows: list, p, pb, ldb: int, row: list, elem) -> list:
    """A[i, p] * B[p, :] for each row i, as lists of row pieces (B's row loaded once for all)."""
    b = _b_row(bld, pb, ldb, p, row, elem)
    terms = []
    for i in rows:
        a_ip = _a_at(bld, a, i, p, elem)
        terms.append([bld.fmul(splat(bld, a_ip, vec), piece, flags=FP_FLAGS)
                      for (_, vec), piece in zip(row, b)])
    return terms


def _rows(bld, ctx, rows: list, a, pb, ldb: int, k: int, row: list, elem, c):
    """C[i, :] = sum over p of A[i, p] * B[p, :] for each i of rows, added in order of p.
    Several rows at once: their sums are independent chains (an add's latency hidden).
    row: the pieces a row is cut into (row_pieces), each summed in its own accumulator."""
    accs = [[ctx.alloca(vec, "row_acc") for _, vec in row] for _ in rows]
    for acc, term in zip(accs, _terms(bld, a, rows, i64(0), pb, ldb, row, elem)):
        for slot, piece in zip(acc, term):
            bld.store(piece, slot)
    if k > 1:
        with for_range(bld, k, "sp", start=1) as p:
            for acc, term in zip(accs, _terms(bld, a, rows, p, pb, ldb, row, elem)):
                for (_, vec), slot, piece in zip(row, acc, term):
                    bld.store(bld.fadd(bld.load(slot, typ=vec), piece, flags=FP_FLAGS), slot)
    pc, ldc = c
    for acc, i in zip(accs, rows):
        start = bld.mul(i, i64(ldc), flags=("nuw", "nsw"))
        for (first, vec), slot in zip(row, acc):
            bld.store(bld.load(slot, typ=vec), element_at(bld, pc, start, first, elem),
                      align=_align(elem))

def _align(elem) -> int:
    """The alignment rows of C and B are loaded and stored with: one element's."""
    return 8 if elem == F64 else 4
