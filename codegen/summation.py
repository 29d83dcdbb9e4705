"""Float sums in loop nests that stay accurate for long inputs, in a fixed order.

Adding n numbers one after the other into one accumulator loses up to ~n/2 ulps: 1e6 values
of 0.1 summed in f32 came out 6e-4 too small, where NumPy's pairwise summation is off by
6e-8. The two accumulators here bound the error by a few ulps plus ~log2(n) (as pairwise
summation does), keep the reduction loops vectorisable, and fix the order of every addition
in code, so results never depend on the CPU's vector width or on the thread count.

`Cascade` sums over the innermost axes of a nest (codegen.nest): values go into `width`
accumulators (the vector lanes of a strip-mined loop, or 1); after each block of about BLOCK
elements the nest calls `push`, which moves the lanes onto a binary-counter stack where equal
numbers of blocks are added pairwise (stack level k holds the sum of 2^k blocks). `total`
adds the open block, the stack levels (lowest first) and the lanes in a fixed tree. The error
is ~(BLOCK / width + log2(blocks)) ulps, as NumPy's pairwise sum, whose base case is a block
of 128 elements in 8 accumulators.

`Wide` sums over outer axes, where row after row is added into a vector of partial sums
(out[j] += x[i, j]); a pairwise stack of such vectors would cost memory per level. Instead
the nest adds a few rows (a block) into the outputs in place, with plain vectorised adds,
and `fold`s the block sums into an f64 scratch vector (f32 sums: error ~n * 2^-53, far below
an f32 ulp) or into compensated sums (f64: Neumaier's variant of Kahan summation, the
rounding error of each addition is kept in a second vector and added back at the end).
When one row already adds many elements to an output (reduced axes between kept ones), every
element goes through `add` into the scratch instead. Neither needs fast-math: only IEEE
operations, whose order the code fixes.
"""
from __future__ import annotations

from llvmlite import ir

from codegen.buffers import Buffer
from codegen.loops import I64, for_range, i64, intrinsic
from codegen.lower import F64

BLOCK = 256          # elements per block of a Cascade (16 sequential additions per lane)
LEVELS = 48          # stack levels: 2^48 blocks of >= 16 elements, days of work for any loop


def _zero(t: ir.Type) -> ir.Constant:
    return ir.Constant(t, 0.0)


def pairwise(bld: ir.IRBuilder, vals: list):
    """The sum of vals in a fixed pairwise tree (the same order on every CPU)."""
    while len(vals) > 1:
        pairs = [bld.fadd(vals[k], vals[k + 1]) for k in range(0, len(vals) - 1, 2)]
        vals = pairs + vals[len(vals) - len(vals) % 2:]
    return vals[0]


class Cascade:
    """Blocked pairwise summation into `width` lanes (see the module docstring).

    With blocked=False it is a plain set of lanes (for sums of at most BLOCK elements).
    """

    def __init__(self, ctx, t: ir.Type, width: int, blocked: bool):
        self.t = t
        self.width = width
        self.blocked = blocked
        self.lanes = ctx.alloca(ir.ArrayType(t, width), "lanes")
        if blocked:
            level = ir.ArrayType(t, width)
            self.stack = ctx.alloca(ir.ArrayType(level, LEVELS), "cascade")
            self.count = ctx.alloca(I64, "blocks")

    def lane(self, bld: ir.IRBuilder, lane):
        return bld.gep(self.lanes, [i64(0), lane], inbounds=True)

    def _level(self, bld: ir.IRBuilder, level, lane: int):
        return bld.gep(self.stack, [i64(0), level, i64(lane)], inbounds=True)

    def start(self, bld: ir.IRBuilder):
        for k in range(self.width):
            bld.store(_zero(self.t), self.lane(bld, i64(k)))
        if self.blocked:
            bld.store(i64(0), self.count)

    def push(self, bld: ir.IRBuilder):
        """Ends a block: its lane sums join the stack, merging levels like a binary carry."""
        count = bld.add(bld.load(self.count), i64(1))
        bld.store(count, self.count)
        carries = intrinsic(bld, "llvm.cttz", count, ir.Constant(ir.IntType(1), 0))
        with for_range(bld, carries, "carry") as level:
            self._add_level(bld, level)
        for k in range(self.width):
            ptr = self.lane(bld, i64(k))
            bld.store(bld.load(ptr), self._level(bld, carries, k))
            bld.store(_zero(self.t), ptr)

    def _add_level(self, bld: ir.IRBuilder, level):
        """lanes = stack[level] + lanes (the older, bigger group on the left)."""
        for k in range(self.width):
            ptr = self.lane(bld, i64(k))
            bld.store(bld.fadd(bld.load(self._level(bld, level, k)), bld.load(ptr)), ptr)

    def total(self, bld: ir.IRBuilder):
        """The sum of everything added since `start`."""
        if self.blocked:
            count = bld.load(self.count)
            zeros = intrinsic(bld, "llvm.ctlz", count, ir.Constant(ir.IntType(1), 0))
            with for_range(bld, bld.sub(i64(64), zeros), "level") as level:
                bit = bld.trunc(bld.lshr(count, level), ir.IntType(1))
                with bld.if_then(bit):
                    self._add_level(bld, level)
        return pairwise(bld, [bld.load(self.lane(bld, i64(k))) for k in range(self.width)])


class Wide:
    """A sum over outer axes, `size` outputs at a time (see the module docstring).

    In fold mode the nest adds a few rows into the outputs themselves (plain, vectorised
    adds) and calls `fold` to move those block sums into the scratch sums (f32) or into
    compensated sums (f64); otherwise every element goes through `add`. scratch (f64) holds,
    for f32, the sums; for f64 in fold mode, the sums then the compensations; for f64
    element by element, the compensations (the sums live in the outputs).
    """

    def __init__(self, out: Buffer, scratch: Buffer, size: int, fold: bool):
        self.out = out
        self.scratch = scratch
        self.size = size
        self.fold_mode = fold
        self.f32 = out.type.dtype == "f32"

    @staticmethod
    def scratch_size(dtype: str, size: int, fold: bool) -> int:
        """How many f64 of scratch a Wide of these parameters needs."""
        return 2 * size if dtype == "f64" and fold else size

    def start(self, bld: ir.IRBuilder, base):
        """Zeroes the partial sums of the outputs base .. base + size."""
        with for_range(bld, self.scratch.type.size, "wide.init") as j:
            self.scratch.store(j, _zero(F64))
        if self.fold_mode or not self.f32:
            with for_range(bld, self.size, "wide.zero") as j:
                self.out.store(bld.add(base, j), _zero(self.out.elem))

    def add(self, bld: ir.IRBuilder, j, out_index, v):
        """Adds v to output out_index, whose partial sum is number j (not in fold mode)."""
        if self.f32:
            self.scratch.store(j, bld.fadd(self.scratch.load(j), bld.fpext(v, F64)))
            return
        s, c = _neumaier(bld, self.out.load(out_index), self.scratch.load(j), v)
        self.out.store(out_index, s)
        self.scratch.store(j, c)

    def fold(self, bld: ir.IRBuilder, base):
        """Moves the block sums in the outputs base .. base + size to the scratch sums."""
        with for_range(bld, self.size, "wide.fold") as j:
            k = bld.add(base, j)
            self._fold_one(bld, j, self.out.load(k))
            self.out.store(k, _zero(self.out.elem))

    def _fold_one(self, bld: ir.IRBuilder, j, v):
        if self.f32:
            self.scratch.store(j, bld.fadd(self.scratch.load(j), bld.fpext(v, F64)))
            return
        jc = bld.add(j, i64(self.size))
        s, c = _neumaier(bld, self.scratch.load(j), self.scratch.load(jc), v)
        self.scratch.store(j, s)
        self.scratch.store(jc, c)

    def finish(self, bld: ir.IRBuilder, base):
        """Writes the outputs base .. base + size from their partial sums."""
        with for_range(bld, self.size, "wide.done") as j:
            k = bld.add(base, j)
            if self.fold_mode:
                self._fold_one(bld, j, self.out.load(k))
            if self.f32:
                total = bld.fptrunc(self.scratch.load(j), self.out.elem)
            elif self.fold_mode:
                total = _compensated(bld, self.scratch.load(j),
                                     self.scratch.load(bld.add(j, i64(self.size))))
            else:
                total = _compensated(bld, self.out.load(k), self.scratch.load(j))
            self.out.store(k, total)


def _neumaier(bld: ir.IRBuilder, s, c, v):
    """(s + v, c + the rounding error of s + v): one step of Neumaier's summation."""
    t = bld.fadd(s, v)
    s_big = bld.fcmp_ordered(">=", intrinsic(bld, "llvm.fabs", s), intrinsic(bld, "llvm.fabs", v))
    lost = bld.select(s_big, bld.fadd(bld.fsub(s, t), v), bld.fadd(bld.fsub(v, t), s))
    return t, bld.fadd(c, lost)


def _compensated(bld: ir.IRBuilder, s, c):
    """s + c; but s alone once it is inf or nan (it stays so, and c is nan by then)."""
    finite = bld.fcmp_ordered("!=", intrinsic(bld, "llvm.fabs", s), ir.Constant(F64, float("inf")))
    return bld.select(finite, bld.fadd(s, c), s)
