"""Kernels of the linear-algebra primitives: one LAPACK (LAPACKE) call per matrix.

For each matrix of the batch the kernel brings its operand into the column-major layout
LAPACK works in (a transposing copy, or none for Cholesky's symmetric input), calls the
routine in place through `externals.lapack` (runtime/lapack.py: NumPy's own OpenBLAS,
LAPACKE with 64-bit sizes), and tidies the result: zeroes the triangle LAPACK leaves
untouched, turns getrf's pivots into a permutation and its sign, and fills every result
with NaN when the routine reports failure (info != 0: not positive-definite, a zero
diagonal in trtrs, a NaN in the input), as JAX returns NaN. getrf's info > 0 (an exactly
singular U) is no failure: U is complete.

NOTE: LAPACKE's row-major interface was 15x slower per call on small matrices (82 us
against 5.6 us for a 4x4 getrf through ctypes, load average 15 on the 2-core EPYC), so the
kernels transpose themselves and call the column-major interface. Scratch space (pivots,
Householder scalars, transposed copies) comes from malloc.
"""
from __future__ import annotations

import math

from llvmlite import ir as ll

from codegen.bounds import CheckedBuilder
from codegen.buffers import ERR_LOAD, ERR_STORE
from codegen.kernels import KernelCall, kernel_rules
from codegen.loops import I1, I8, I32, I64, PTR, declare, for_range, i64
from codegen.lower import LLVM_TYPES, const

COL_MAJOR = ll.Constant(I32, 102)


class _Lapack:
    """The state of one kernel: builder, routine lookup, batch offsets, scratch."""

    def __init__(self, k: KernelCall):
        if k.externals is None or k.externals.lapack is None:
            raise NotImplementedError(f"{k.op.prim.name}: compiled code needs LAPACK, and "
                                      "NumPy's library exports no LAPACKE routines")
        self.k, self.bld, self.op = k, k.bld, k.op
        self.dtype = k.op.inputs[0].dtype
        self.real = LLVM_TYPES[self.dtype]
        self.batch = math.prod(k.op.inputs[0].shape[:-2])
        # bounds-check mode: every matrix pointer is followed to its buffer (or malloc'd
        # scratch) and every access checked; LAPACK is called only on spans that fit
        self.checked = k.em.ctx.bounds_check
        if self.checked:
            self.bld = CheckedBuilder(k.bld, k.em.ctx)

    def call(self, routine: str, *args, spans=()):
        """The routine's info; in bounds-check mode the call is made only when every
        (pointer, element count) of spans (what it reads and writes) lies in its buffer,
        and is otherwise a failure (info -1)."""
        fn, self.bits = self.k.externals.lapack(self.bld.module, routine, self.dtype)
        if not self.checked:
            return self.bld.call(fn, [COL_MAJOR, *args])
        bld, ctx = self.bld, self.k.em.ctx
        info = ctx.alloca(fn.function_type.return_type, "info")
        bld.store(ll.Constant(info.allocated_type, -1), info)
        # nor after a bad access: LAPACK would get the scratch slot's garbage (syevd and
        # gesdd can loop for ever on it)
        flag = self.k.bld.load(ctx.err_ptr, typ=I32)     # the error word, not a buffer
        ok = bld.icmp_unsigned("==", flag, ll.Constant(I32, 0))
        for ptr, count in spans:
            ok = bld.and_(ok, bld.span_ok(ptr, count, ERR_STORE))
        with bld.if_then(ok):
            bld.store(bld.call(fn, [COL_MAJOR, *args]), info)
        return bld.load(info)

    def at(self, value, index, per_matrix: int):
        """Pointer to matrix `index` (of per_matrix elements) of value's buffer."""
        buf = self.k.buffer(value)
        off = self.bld.mul(index, i64(per_matrix))
        base = self.bld.track(buf.ptr, buf.elem, buf.type.size) if self.checked else buf.ptr
        return self.bld.gep(base, [off], inbounds=True, source_etype=buf.elem)

    def malloc(self, count: int, elem_bytes: int, elem=None):
        """count elements of elem_bytes (elem: their type, the real one if not given)."""
        if not self.checked:
            return self.bld.call(declare(self.bld.module, "malloc", PTR, [I64]),
                                 [i64(max(1, count) * elem_bytes)])
        # zeroed: a LAPACK call skipped after a bad access leaves defined contents (LLVM
        # may treat a branch on never-written memory, the pivots, as unreachable)
        ptr = self.bld.call(declare(self.bld.module, "calloc", PTR, [I64, I64]),
                            [i64(max(1, count)), i64(elem_bytes)])
        return self.bld.track(ptr, elem or self.real, max(1, count))

    def free(self, ptr):
        self.bld.call(declare(self.bld.module, "free", ll.VoidType(), [PTR]), [ptr])

    def copy(self, dst, src, count: int, elem_bytes: int):
        fn = declare(self.bld.module, "llvm.memcpy.p0.p0.i64", ll.VoidType(), [PTR, PTR, I64, I1])
        args = [dst, src, i64(count * elem_bytes), ll.Constant(I1, 0)]
        if not self.checked:
            self.bld.call(fn, args)
            return
        bld = self.bld
        with bld.if_then(bld.and_(bld.span_ok(dst, count, ERR_STORE),
                                  bld.span_ok(src, count, ERR_LOAD))):
            bld.call(fn, args)

    def load(self, ptr, i):
        return self.bld.load(self.bld.gep(ptr, [i], source_etype=self.real), typ=self.real)

    def store(self, ptr, i, v):
        self.bld.store(v, self.bld.gep(ptr, [i], source_etype=self.real))

    def transpose(self, dst, src, rows: int, cols: int):
        """dst (cols x rows) = the transpose of src (rows x cols), both row-major."""
        bld = self.bld
        with for_range(bld, rows, "ti") as i, for_range(bld, cols, "tj") as j:
            v = self.load(src, bld.add(bld.mul(i, i64(cols)), j))
            self.store(dst, bld.add(bld.mul(j, i64(rows)), i), v)

    def fill(self, ptr, count: int, value):
        with for_range(self.bld, count, "fill") as i:
            self.store(ptr, i, const(self.real, value))

    def zero_triangle(self, ptr, rows: int, cols: int, upper: bool):
        """Zeroes the strictly upper (or strictly lower) triangle of a row-major matrix."""
        bld = self.bld
        with for_range(bld, rows, "zr") as i:
            if upper:
                start, stop = bld.add(i, i64(1)), i64(cols)
            else:
                start = i64(0)
                stop = bld.select(bld.icmp_signed("<", i, i64(cols)), i, i64(cols))
            with for_range(bld, stop, "zc", start=start) as j:
                self.store(ptr, bld.add(bld.mul(i, i64(cols)), j), const(self.real, 0))

    def on_failure(self, info, fills):
        """NaN into each (ptr, count) of fills when info != 0."""
        with self.bld.if_then(self.bld.icmp_signed("!=", info, i64(0))):
            for ptr, count in fills:
                self.fill(ptr, count, math.nan)

    @property
    def elem_bytes(self) -> int:
        return 4 if self.dtype == "f32" else 8


def _char(c: str) -> ll.Constant:
    return ll.Constant(I8, ord(c))


def _batched(kernel):
    """A kernel rule running kernel(lp, b) for every matrix b of the batch (none if empty)."""
    def rule(k: KernelCall):
        if any(v.type.size == 0 for v in k.op.inputs + k.op.results):
            _empty(k)
            return
        lp = _Lapack(k)
        with for_range(lp.bld, lp.batch, "mat") as b:
            kernel(lp, b)
    rule.__name__ = kernel.__name__
    return rule


def _empty(k: KernelCall):
    """Empty matrices: lu's permutation and sign still exist (iota and +1); the rest is empty."""
    if k.op.prim.name == "lu" and k.op.results[2].type.size:
        sign = k.buffer(k.op.results[2])
        with for_range(k.bld, sign.type.size, "s") as i:
            sign.store(i, const(sign.elem, 1.0))


def _cholesky(lp: _Lapack, b):
    (a,), (l_,) = lp.op.inputs, lp.op.results
    n = a.shape[-1]
    dst = lp.at(l_, b, n * n)
    lp.copy(dst, lp.at(a, b, n * n), n * n, lp.elem_bytes)
    # column-major, A is its own transpose: the factor U (A = U^T U) read row-major is L
    info = lp.call("potrf", _char("U"), i64(n), dst, i64(n), spans=[(dst, n * n)])
    lp.zero_triangle(dst, n, n, upper=True)
    lp.on_failure(info, [(dst, n * n)])


def _triangular_solve(lp: _Lapack, b):
    (a, rhs), (x,) = lp.op.inputs, lp.op.results
    p = lp.op.params
    n, nrhs = rhs.shape[-2:]
    dst, work = lp.at(x, b, n * nrhs), lp.malloc(n * nrhs, lp.elem_bytes)
    lp.transpose(work, lp.at(rhs, b, n * nrhs), n, nrhs)
    # row-major A read column-major is A^T: the other triangle, and the other transpose
    a_at = lp.at(a, b, n * n)
    info = lp.call("trtrs", _char("U" if p["lower"] else "L"), _char("N" if p["transpose_a"]
                   else "T"), _char("U" if p["unit_diagonal"] else "N"), i64(n), i64(nrhs),
                   a_at, i64(n), work, i64(n), spans=[(a_at, n * n), (work, n * nrhs)])
    lp.transpose(dst, work, nrhs, n)
    lp.free(work)
    lp.on_failure(info, [(dst, n * nrhs)])


def _lu(lp: _Lapack, b):
    (a,), (lu, perm, sign) = lp.op.inputs, lp.op.results
    bld, n = lp.bld, a.shape[-1]
    dst, work = lp.at(lu, b, n * n), lp.malloc(n * n, lp.elem_bytes)
    lp.transpose(work, lp.at(a, b, n * n), n, n)
    ipiv = lp.malloc(n, 8, I64)
    info = lp.call("getrf", i64(n), i64(n), work, i64(n), ipiv, spans=[(work, n * n), (ipiv, n)])
    lp.transpose(dst, work, n, n)
    lp.free(work)
    pint = ll.IntType(lp.bits)
    if lp.checked:          # the pivots as LAPACK wrote them (32- or 64-bit integers)
        bld.track(ipiv, pint, max(1, n) * 64 // lp.bits)
    out_perm, out_sign = lp.at(perm, b, n), lp.at(sign, b, 1)
    with for_range(bld, n, "p") as i:
        bld.store(i, bld.gep(out_perm, [i], source_etype=I64))
    parity = lp.k.em.ctx.alloca(lp.real, "parity")
    bld.store(const(lp.real, 1.0), parity)
    with for_range(bld, n, "sw") as i:
        piv = bld.load(bld.gep(ipiv, [i], source_etype=pint), typ=pint)
        j = bld.sub(bld.sext(piv, I64) if lp.bits == 32 else piv, i64(1))
        with bld.if_then(bld.icmp_signed("!=", i, j)):
            pi, pj = (bld.gep(out_perm, [x], source_etype=I64) for x in (i, j))
            vi, vj = bld.load(pi, typ=I64), bld.load(pj, typ=I64)
            bld.store(vj, pi)
            bld.store(vi, pj)
            bld.store(bld.fneg(bld.load(parity, typ=lp.real)), parity)
    bld.store(bld.load(parity, typ=lp.real), out_sign)
    lp.free(ipiv)
    failed = bld.icmp_signed("<", info, i64(0))       # info > 0: singular, still factored
    lp.on_failure(bld.zext(failed, I64), [(dst, n * n), (out_sign, 1)])


def _qr(lp: _Lapack, b):
    (a,), (q, r) = lp.op.inputs, lp.op.results
    bld = lp.bld
    m, n = a.shape[-2:]
    k = min(m, n)
    qp, rp = lp.at(q, b, m * k), lp.at(r, b, k * n)
    tau, work = lp.malloc(k, lp.elem_bytes), lp.malloc(m * n, lp.elem_bytes)
    lp.transpose(work, lp.at(a, b, m * n), m, n)          # column-major m x n, ld m
    info = lp.call("geqrf", i64(m), i64(n), work, i64(m), tau, spans=[(work, m * n), (tau, k)])
    with for_range(bld, k, "ri") as i, for_range(bld, n, "rj") as j:
        v = lp.load(work, bld.add(bld.mul(j, i64(m)), i))
        keep = bld.icmp_signed(">=", j, i)
        lp.store(rp, bld.add(bld.mul(i, i64(n)), j), bld.select(keep, v, const(lp.real, 0)))
    info2 = lp.call("orgqr", i64(m), i64(k), i64(k), work, i64(m), tau,
                    spans=[(work, m * k), (tau, k)])
    lp.transpose(qp, work, k, m)                           # its first k columns are Q
    lp.free(tau)
    lp.free(work)
    lp.on_failure(bld.or_(info, info2), [(qp, m * k), (rp, k * n)])


def _eigh(lp: _Lapack, b):
    (a,), (w, v) = lp.op.inputs, lp.op.results
    n = a.shape[-1]
    vp, wp, work = lp.at(v, b, n * n), lp.at(w, b, n), lp.malloc(n * n, lp.elem_bytes)
    # the column-major A and its lower triangle, as NumPy and PyTorch call syevd (reading
    # the transpose's upper triangle instead gives other eigenvector signs)
    lp.transpose(work, lp.at(a, b, n * n), n, n)
    info = lp.call("syevd", _char("V"), _char("L"), i64(n), work, i64(n), wp,
                   spans=[(work, n * n), (wp, n)])
    lp.transpose(vp, work, n, n)
    lp.free(work)
    lp.on_failure(info, [(vp, n * n), (wp, n)])


def _svd(lp: _Lapack, b):
    (a,), (u, s, vh) = lp.op.inputs, lp.op.results
    m, n = a.shape[-2:]
    k = min(m, n)
    up, sp, vp = lp.at(u, b, m * k), lp.at(s, b, k), lp.at(vh, b, k * n)
    # column-major A, as NumPy calls gesdd (the transpose's SVD has other vector signs)
    work, us, vts = (lp.malloc(size, lp.elem_bytes) for size in (m * n, m * k, k * n))
    lp.transpose(work, lp.at(a, b, m * n), m, n)
    info = lp.call("gesdd", _char("S"), i64(m), i64(n), work, i64(m), sp, us, i64(m), vts,
                   i64(k), spans=[(work, m * n), (sp, k), (us, m * k), (vts, k * n)])
    lp.transpose(up, us, k, m)
    lp.transpose(vp, vts, n, k)
    for ptr in (work, us, vts):
        lp.free(ptr)
    lp.on_failure(info, [(up, m * k), (sp, k), (vp, k * n)])


for _name, _kernel in (("cholesky", _cholesky), ("triangular_solve", _triangular_solve),
                       ("lu", _lu), ("qr", _qr), ("eigh", _eigh), ("svd", _svd)):
    kernel_rules[_name] = _batched(_kernel)
