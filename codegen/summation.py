"""Float sums in loop nests that stay accurate for long inputs, in a fixed order.

Adding n numbers one after the other into one accumulator loses up to ~n/2 ulps: 1e6 values
of 0.1 summed in f32 came out 6e-4 too small, where NumPy's pairwise summation is off by
6e-8. The accumulators here bound the error by a few ulps plus ~log2(n) (as pairwise
summation does), keep the reduction loops vectorisable, and fix the order of every addition
in code, so results never depend on the CPU's vector width or on the thread count. None
needs fast-math: only IEEE operations, in the order the code gives them.

`Cascade` sums over the innermost axes of a nest (codegen.nest) in the LANES lanes of a
strip-mined loop; after each block of BLOCK elements the nest calls `push`, which moves the
lanes onto a binary-counter stack where equal numbers of blocks are added pairwise (stack
level k holds the sum of 2^k blocks). `total` adds the open block, the stack levels (lowest
first) and the lanes in a fixed tree. The error is ~(BLOCK / LANES + log2(blocks)) ulps, as
NumPy's pairwise sum, whose base case is a block of 128 elements in 8 accumulators.

`Compensated` is the one accumulator of a long sum whose rows are too short for lanes: f32
adds in f64, f64 keeps the rounding error of every addition (TwoSum) and adds it back.

`Wide` sums over outer axes, where row after row is added into a vector of partial sums
(out[j] += x[i, j]); a pairwise stack of such vectors would cost memory per level. Instead
the nest adds a few rows (a block) into the outputs in place, with plain vectorised adds,
and `fold`s the block sums into an f64 scratch vector (f32 sums: error ~n * 2^-53, far below
an f32 ulp) or into compensated sums (f64: the rounding errors are kept in a second vector).
When one row already adds many elements to an output (reduced axes between kept ones), every
element goes through `add` into the scratch instead.
"""
from __future__ import annotations

from llvmlite import ir as ll

from codegen.buffers import ERR_LOAD, ERR_STORE, Buffer
from codegen.loops import I32, I64, PTR, declare, for_range, i64, intrinsic
from codegen.lower import F32, F64, FP_FLAGS

LANES = 16           # the lanes of a strip-mined reduction loop (codegen.nest)
BLOCK = 256          # elements per block of a Cascade (16 sequential additions per lane)
LEVELS = 48          # stack levels: 2^48 blocks of >= 16 elements, days of work for any loop


def _zero(t: ll.Type) -> ll.Constant:
    return ll.Constant(t, 0.0)


def pairwise(bld: ll.IRBuilder, vals: list):
    """The sum of vals in a fixed pairwise tree (the same order on every CPU)."""
    while len(vals) > 1:
        pairs = [bld.fadd(vals[k], vals[k + 1]) for k in range(0, len(vals) - 1, 2)]
        vals = pairs + vals[len(vals) - len(vals) % 2:]
    return vals[0]


class Compensated:
    """One accumulator for a long sum whose rows are too short for lanes (a scalar loop):
    an f32 sum accumulates in f64, an f64 sum is compensated (`two_sum`). No blocks: about
    one rounding of error, for a few scalar operations per element."""

    def __init__(self, ctx, t: ll.Type):
        self.t = t
        self.sum = ctx.alloca(F64, "sum")
        self.comp = ctx.alloca(F64, "compensation")

    def start(self, bld: ll.IRBuilder):
        bld.store(_zero(F64), self.sum)
        bld.store(_zero(F64), self.comp)

    def add(self, bld: ll.IRBuilder, lane, v):
        if self.t == F32:
            bld.store(bld.fadd(bld.load(self.sum), bld.fpext(v, F64)), self.sum)
            return
        s, c = two_sum(bld, bld.load(self.sum), bld.load(self.comp), v)
        bld.store(s, self.sum)
        bld.store(c, self.comp)

    def total(self, bld: ll.IRBuilder):
        if self.t == F32:
            return bld.fptrunc(bld.load(self.sum), F32)
        return compensated(bld, bld.load(self.sum), bld.load(self.comp))


class Cascade:
    """Blocked pairwise summation into `width` lanes (see the module docstring).

    With blocked=False it is a plain set of lanes (for sums of at most one block). Lanes
    move as LLVM vectors of at most 256 bits (lane-wise: exactly the scalar additions;
    512-bit ones made a fused AVX2 loop 20% slower). The stack walks are functions emitted
    once per module and element type (see `push`), shared by blocked cascades of fewer
    lanes too (they have LANES lanes, the extra ones zero).
    """

    def __init__(self, ctx, t: ll.Type, width: int, blocked: bool):
        self.ctx = ctx
        self.t = t
        self.width = width
        self.blocked = blocked
        self.lanes_count = LANES if blocked else width
        self.piece = _piece(t, self.lanes_count)
        self.lanes = ctx.alloca(ll.ArrayType(t, self.lanes_count), "lanes")
        if blocked:
            self.stack = ctx.alloca(ll.ArrayType(t, LEVELS * LANES), "cascade")
            self.count = ctx.alloca(I64, "blocks")

    def lane(self, bld: ll.IRBuilder, lane):
        """The address of one lane."""
        return bld.gep(self.lanes, [i64(0), lane], inbounds=True)

    def add(self, bld: ll.IRBuilder, lane, v):
        """Adds v to a lane (i64 0 when there is one), with the contraction the plain sum
        has (fused multiply-add of a product operand)."""
        ptr = self.lane(bld, lane)
        bld.store(bld.fadd(bld.load(ptr), v, flags=FP_FLAGS), ptr)

    def _pieces(self, bld: ll.IRBuilder) -> list:
        return _piece_ptrs(bld, self.lane(bld, i64(0)), self.piece, self.lanes_count)

    def start(self, bld: ll.IRBuilder):
        for ptr in self._pieces(bld):
            _store(bld, ll.Constant(self.piece, None), ptr)
        if self.blocked:
            bld.store(i64(0), self.count)

    def push(self, bld: ll.IRBuilder):
        """Ends a block: count += 1; the lanes, plus the stack levels the carry of that
        increment clears, go to the level it sets; the lanes start again from zero. Every
        other block carries nothing: that half is inline, the rest calls `_stack_helper`
        (a call per block cost a fused loop 8%: every vector constant is reloaded after
        it; the carry loop inline in every nest cost compile time)."""
        count = bld.add(bld.load(self.count), i64(1))
        bld.store(count, self.count)
        stack = bld.gep(self.stack, [i64(0), i64(0)], inbounds=True)
        mine = self._pieces(bld)
        with bld.if_else(bld.trunc(count, ll.IntType(1))) as (odd, even):
            with odd:
                for top, ptr in zip(_piece_ptrs(bld, stack, self.piece, LANES), mine):
                    _store(bld, _load(bld, ptr, self.piece), top)
            with even:
                self._walk(bld, stack, count, 0)
        for ptr in mine:
            _store(bld, ll.Constant(self.piece, None), ptr)

    def total(self, bld: ll.IRBuilder):
        """The sum of everything added since `start`."""
        if self.blocked:
            stack = bld.gep(self.stack, [i64(0), i64(0)], inbounds=True)
            self._walk(bld, stack, bld.load(self.count), 1)
        pieces = [_load(bld, ptr, self.piece) for ptr in self._pieces(bld)]
        lanes = [bld.extract_element(v, i64(k)) for v in pieces for k in range(v.type.count)]
        return pairwise(bld, lanes[:self.width])

    def _walk(self, bld: ll.IRBuilder, stack, count, total: int):
        args = [self.lane(bld, i64(0)), stack, count, ll.Constant(ll.IntType(1), total)]
        if not self.ctx.bounds_check:
            bld.call(_stack_helper(bld.module, self.t), args)
            return
        # the walk's levels are the bits of count: past LEVELS (a spoiled count) it would
        # leave the stack array, so the flag is set and the walk skipped
        bad = bld.icmp_unsigned(">=", count, i64(1 << LEVELS))
        raw = getattr(bld, "_bld", bld)       # (the flag is no buffer a CheckedBuilder knows)
        code = ll.Constant(I32, ERR_LOAD if total else ERR_STORE)
        old = raw.load(self.ctx.err_ptr, typ=I32)
        raw.store(raw.or_(old, raw.select(bad, code, ll.Constant(I32, 0))), self.ctx.err_ptr)
        with bld.if_then(bld.not_(bad)):
            bld.call(_stack_helper(bld.module, self.t), args)


def _piece(t: ll.Type, lanes: int) -> ll.VectorType:
    """The vector type lanes move in: 256 bits, or all the lanes if fewer."""
    return ll.VectorType(t, min(lanes, 32 // (4 if t == F32 else 8)))


def _piece_ptrs(bld: ll.IRBuilder, first, piece: ll.VectorType, lanes: int) -> list:
    """Pointers to the consecutive pieces of `lanes` elements from `first`."""
    return [bld.bitcast(bld.gep(first, [i64(k)], inbounds=True, source_etype=piece.element)
                        if k else first, piece.as_pointer())
            for k in range(0, lanes, piece.count)]


def _level_ptrs(bld: ll.IRBuilder, stack, level, piece: ll.VectorType) -> list:
    """The pieces of stack level `level` (LANES elements each)."""
    first = bld.gep(stack, [bld.mul(level, i64(LANES))], inbounds=True,
                    source_etype=piece.element)
    return _piece_ptrs(bld, first, piece, LANES)


def _add_level(bld: ll.IRBuilder, stack, level, mine: list, piece: ll.VectorType):
    """lanes = stack[level] + lanes: the older, bigger group on the left."""
    for older, ptr in zip(_level_ptrs(bld, stack, level, piece), mine):
        _store(bld, bld.fadd(_load(bld, older, piece), _load(bld, ptr, piece)), ptr)


def _load(bld: ll.IRBuilder, ptr, piece: ll.VectorType):
    # NOTE: element alignment: the lanes are arrays, not (more aligned) vectors
    return bld.load(ptr, typ=piece, align=4 if piece.element == F32 else 8)


def _store(bld: ll.IRBuilder, value, ptr):
    bld.store(value, ptr, align=4 if value.type.element == F32 else 8)


def _stack_helper(module: ll.Module, t: ll.Type) -> ll.Function:
    """`void gj.cascade.<T>(ptr lanes, ptr stack, i64 count, i1 total)`, emitted once per
    module (one function for both walks: LLVM's cost is as much per function as per
    instruction). Push (count even): the lanes, plus the levels below the lowest set bit
    of count, go to that level. Total: the lanes take in the levels whose bit is set in
    count, lowest first."""
    name = f"gj.cascade.{t}"
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    fn = _helper(module, name, ll.VoidType(), [PTR, PTR, I64, ll.IntType(1)])
    lanes, stack, count, total = fn.args
    piece = _piece(t, LANES)
    bld = ll.IRBuilder(fn.append_basic_block("entry"))
    mine = _piece_ptrs(bld, lanes, piece, LANES)
    with bld.if_else(total) as (walk_total, walk_push):
        with walk_total:
            zeros = intrinsic(bld, "llvm.ctlz", count, ll.Constant(ll.IntType(1), 0))
            with for_range(bld, bld.sub(i64(64), zeros), "level") as level:
                with bld.if_then(bld.trunc(bld.lshr(count, level), ll.IntType(1))):
                    _add_level(bld, stack, level, mine, piece)
        with walk_push:
            carries = intrinsic(bld, "llvm.cttz", count, ll.Constant(ll.IntType(1), 0))
            with for_range(bld, carries, "carry") as level:
                _add_level(bld, stack, level, mine, piece)
            for top, ptr in zip(_level_ptrs(bld, stack, carries, piece), mine):
                _store(bld, _load(bld, ptr, piece), top)
    bld.ret_void()
    return fn


def _helper(module: ll.Module, name: str, ret: ll.Type, args: list) -> ll.Function:
    fn = ll.Function(module, ll.FunctionType(ret, args), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")          # one copy, optimised once, whatever calls it
    return fn


class Wide:
    """A sum over outer axes, `size` outputs at a time (see the module docstring).

    scratch (f64) holds the partial sums of the outputs, then for f64 their compensations.
    In fold mode the nest adds a few rows into the outputs themselves (plain, vectorised
    adds) and calls `fold` to move those block sums into the scratch; otherwise every
    element goes through `add` straight into the scratch. Folding and finishing are one
    loop, emitted once per module (`_fold_helper`).
    """

    def __init__(self, out: Buffer, scratch: Buffer, size: int):
        self.out = out
        self.scratch = scratch
        self.size = size
        self.f32 = out.type.dtype == "f32"

    @staticmethod
    def scratch_size(dtype: str, size: int) -> int:
        """How many f64 of scratch a Wide of `size` outputs needs."""
        return 2 * size if dtype == "f64" else size

    def start(self, bld: ll.IRBuilder, base):
        """Zeroes the partial sums of the outputs base .. base + size (+0.0 is all zero
        bits: memsets, cheaper to compile than loops LLVM would turn into them)."""
        _memset_zero(bld, self.scratch.ptr, self.scratch.type.size * 8)
        itemsize = self.out.type.np_dtype.itemsize
        _memset_zero(bld, self.out.element_ptr(base), self.size * itemsize)

    def add(self, bld: ll.IRBuilder, j, v):
        """Adds v to the partial sum number j (when not folding)."""
        if self.f32:
            self.scratch.store(j, bld.fadd(self.scratch.load(j), bld.fpext(v, F64)))
            return
        jc = bld.add(j, i64(self.size))
        s, c = two_sum(bld, self.scratch.load(j), self.scratch.load(jc), v)
        self.scratch.store(j, s)
        self.scratch.store(jc, c)

    def fold(self, bld: ll.IRBuilder, base):
        """Moves the block sums in the outputs base .. base + size to the scratch."""
        self._call(bld, base, 0)

    def finish(self, bld: ll.IRBuilder, base):
        """Writes the outputs base .. base + size from their partial sums."""
        self._call(bld, base, 1)

    def _call(self, bld: ll.IRBuilder, base, final: int):
        helper = _fold_helper(bld.module, self.out.type.dtype)
        bld.call(helper, [self.out.element_ptr(base), self.scratch.ptr, i64(self.size),
                          ll.Constant(ll.IntType(1), final)])


def _memset_zero(bld: ll.IRBuilder, ptr, nbytes: int):
    fn = declare(bld.module, "llvm.memset.p0.i64", ll.VoidType(),
                 [PTR, ll.IntType(8), I64, ll.IntType(1)])
    zero, volatile = ll.Constant(ll.IntType(8), 0), ll.Constant(ll.IntType(1), 0)
    bld.call(fn, [ptr, zero, i64(nbytes), volatile])


def _fold_helper(module: ll.Module, dtype: str) -> ll.Function:
    """`void gj.wide.fold.<dtype>(ptr out, ptr sums, i64 n, i1 final)`, emitted once per
    module: for j < n, sums[j] (and its compensation sums[n + j], f64) takes in out[j];
    then out[j] = the rounded total if final, else 0 for the next block."""
    name = f"gj.wide.fold.{dtype}"
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    fn = _helper(module, name, ll.VoidType(), [PTR, PTR, I64, ll.IntType(1)])
    for arg in fn.args[:2]:
        arg.add_attribute("noalias")
    out, sums, n, final = fn.args
    t = F32 if dtype == "f32" else F64
    bld = ll.IRBuilder(fn.append_basic_block("entry"))
    with for_range(bld, n, "j") as j:
        at_out = bld.gep(out, [j], inbounds=True, source_etype=t)
        at_sum = bld.gep(sums, [j], inbounds=True, source_etype=F64)
        v = bld.load(at_out, typ=t)
        if dtype == "f32":
            s = bld.fadd(bld.load(at_sum, typ=F64), bld.fpext(v, F64))
            total = bld.fptrunc(s, F32)
        else:
            at_comp = bld.gep(sums, [bld.add(j, n)], inbounds=True, source_etype=F64)
            s, c = two_sum(bld, bld.load(at_sum, typ=F64), bld.load(at_comp, typ=F64), v)
            bld.store(c, at_comp)
            total = compensated(bld, s, c)
        bld.store(s, at_sum)
        bld.store(bld.select(final, total, _zero(t)), at_out)
    bld.ret_void()
    return fn


def two_sum(bld: ll.IRBuilder, s, c, v):
    """(s + v, c + the rounding error of s + v): one step of compensated summation, the
    error from Knuth's branch-free TwoSum (exact whatever the magnitudes; the comparison
    and select of Neumaier's variant cost more than its four extra operations)."""
    t = bld.fadd(s, v)
    v_part = bld.fsub(t, s)
    s_part = bld.fsub(t, v_part)
    lost = bld.fadd(bld.fsub(s, s_part), bld.fsub(v, v_part))
    return t, bld.fadd(c, lost)


def compensated(bld: ll.IRBuilder, s, c):
    """s + c; but s alone once it is inf or nan (it stays so, and c is nan by then)."""
    inf = ll.Constant(F64, float("inf"))
    finite = bld.fcmp_ordered("!=", intrinsic(bld, "llvm.fabs", s), inf)
    return bld.select(finite, bld.fadd(s, c), s)
