"""Emits one fused LoopNest: a C-order loop nest over its space computing all its roots.

Store roots write each element once. Reduction roots accumulate their operand's elements:
when the reduced axes are the innermost ones (axes of extent 1 count as either kind), into
an accumulator that lives across those loops (allocas that mem2reg turns into registers) and
is stored once per output element; otherwise into the output buffer itself, initialised to
the identity first. The last axis is innermost and contiguous, so LLVM's loop vectoriser
sees unit-stride accesses.

A float sum would stop the vectoriser (it may not reorder additions, and we do not let it:
results must be reproducible). So when a nest has float-sum accumulators over its innermost
axis, that axis is strip-mined into chunks of LANES iterations and element i adds into lane
i % LANES of an accumulator array; the lanes are summed in a fixed pairwise tree at the end.
The order of additions is thereby fixed by this code, independent of the CPU's vector width,
and the lane loop vectorises, taking the whole fused body with it.

Long float sums must also stay accurate (codegen.summation; the plan of each reduction is
made by codegen.nest_plan). A long float sum over the innermost axis runs it in blocks of
BLOCK elements, after each of which its lanes are pushed onto a pairwise Cascade (error
~log n, as NumPy's pairwise sum); with rows too short for lanes, its one accumulator is
Compensated (f64 for f32, TwoSum for f64). A float sum over outer axes (more than DIRECT_MAX
elements per output) is `wide`: its outputs add a few rows in place, and every WIDE_BLOCK
rows that block is folded into an f64 scratch vector (f32) or a compensated sum (f64). The
scratch lives on the stack, or on the heap when large (and should malloc fail, the loops
are emitted a second time without it, summing in place).

A large nest runs on several threads (`nest_plan.plan_split`): its first axis of extent > 1
is cut into a fixed number of tasks of consecutive rows, chosen from the shapes alone, run by
`loops.parallel_for`. A reduction over that axis accumulates each task's share into its own
slot of a partials array, combined in task order after the join (a float sum in f64 or
compensated): bitwise the same results for any thread count.
"""
from __future__ import annotations

import math

from llvmlite import ir as ll

from codegen import concat_split, extremum_lanes, inner_unroll, row_lanes
from codegen.bounds import CheckedBuilder
from codegen.buffers import ERR_STORE, Buffer, KernelContext
from codegen.elemental import Elemental, reduce_combine, reduce_identity
from codegen.fusion import LoopNest
from codegen.lower import F64, LLVM_TYPES
from codegen.loops import (I8, I64, INT_FLAGS, PTR, TASK_TYPE, declare, for_range, i64, iadd,
                           idiv, imul, isub, linearize, parallel_for)
from codegen.nest_plan import LANES, ReductionPlan, Split, body_cost, inner_axis, plan_split
from codegen.summation import BLOCK, Cascade, Compensated, Wide, compensated, two_sum
from ir.core import TensorType, Value

STACK_SCRATCH_BYTES = 1 << 16    # scratch vectors of wide sums up to this size live on the stack
ALLOCATOR = ("malloc", "free")   # beyond it, on the heap (tests substitute a failing malloc)
STATS = {"deep_folds": 0}        # wide sums folded in a loop below their first (tests)
GLUE_WORK = 4096                 # a dispatch whose fills and combining loops run up to this many
                                 # iterations in all is compiled unoptimised (loops.mark_glue)


class NestEmitter:
    """Emits one LoopNest into the current LLVM function (see the module docstring)."""

    def __init__(self, em: Elemental, nest: LoopNest, buffers: dict, producers: dict,
                 parallel: bool = True):
        self.em = em
        # bounds-check mode: the accumulators' lanes and stacks and the wide sums' scratch
        # are addressed by hand (codegen.summation, extremum_lanes): checked builder
        self.bld = CheckedBuilder(em.bld, em.ctx) if em.ctx.bounds_check else em.bld
        self.nest = nest
        self.buffers = buffers          # buffer key (Value or fusion.Out) -> Buffer
        self.reductions = {}
        for r in nest.roots:
            if r.kind == "reduce":
                self.reductions[r] = ReductionPlan(r, producers[r.value], nest.space)
        reds = self.reductions.values()
        self.inner = inner_axis(nest.space)
        self.strip_mine = any(red.lanes for red in reds)
        for red in reds:
            red.extremum_lanes = extremum_lanes.applies(self.strip_mine, red)
        self.blocked = [red for red in reds if red.blocked]
        # elements added to the lanes of the blocked sums since their last push, when the
        # lanes of one of them outlive a row (a sum over several axes)
        self.pending = None
        self.lane = None                # the lane of the body being emitted (strip-mined)
        self.split = None
        if parallel and not em.ctx.bounds_check:
            cost = body_cost(nest, buffers, producers)
            self.split = plan_split(nest.space, list(reds), cost)
        self.rows = None                # (axis, begin, end) while emitting one task's rows
        self.deep_folds = {}            # loop level -> (wide sum, base) folding in that loop
        self.glue_only = False          # the function holds only a light parallel dispatch
        self.grouped = None             # the row axis of codegen.row_lanes, when it applies
        self.cuts = concat_split.cuts(nest.roots, producers, buffers, nest.space)
        # cut loops keep one loop variable per piece, whose range the rules read (em.known)
        self.unroll = 1 if self.cuts else inner_unroll.factor(nest, producers, buffers, LANES)

    def emit(self):
        if self.split is not None:
            self._emit_parallel()
            return
        self.grouped = row_lanes.row_axis(self)     # short max/min rows: several at once
        for red in [red for red in self.reductions.values() if red.memory]:
            self._fill(red)
        self._loops()

    def _fill(self, red: ReductionPlan):           # a memory accumulator: the identity
        buf = self.buffers[red.root.value]
        with for_range(self.bld, buf.type.size, "init") as i:
            buf.store(i, reduce_identity(red.kind, red.dtype))

    def _loops(self):
        """The loop nest, with the scratch vectors of its wide sums attached.

        Small scratch is an alloca; a big one comes from the heap, and should that fail the
        loops are emitted a second time, summing in place as max and min do."""
        bld, ctx = self.bld, self.em.ctx
        if any(red.acc_level < self.inner for red in self.blocked):
            self.pending = ctx.alloca(I64, "pending")
            bld.store(i64(0), self.pending)
        wide = [red for red in self.reductions.values() if red.wide]
        size = sum(red.scratch_size for red in wide) * 8
        if size <= STACK_SCRATCH_BYTES:
            scratch = None
            if wide:        # a pointer to its first double, as malloc's would be
                array = ctx.alloca(ll.ArrayType(F64, size // 8), "scratch")
                scratch = bld.gep(array, [i64(0), i64(0)], inbounds=True)
            self._attach(wide, scratch)
            self._level(0, [])
            return
        malloc = declare(ctx.module, ALLOCATOR[0], PTR, [I64])
        scratch = bld.call(malloc, [i64(size)])
        if ctx.bounds_check:
            bld.track(scratch, F64, size // 8)
        with bld.if_else(bld.icmp_unsigned("!=", scratch, ll.Constant(PTR, None))) as (ok, no):
            with ok, self.em.scope():
                self._attach(wide, scratch)
                self._level(0, [])
                bld.call(declare(ctx.module, ALLOCATOR[1], ll.VoidType(), [PTR]), [scratch])
            with no, self.em.scope():
                self._attach(wide, None)
                self._level(0, [])

    def _attach(self, wide: list, scratch):
        """Gives each wide sum its part of scratch (None: sum in place instead)."""
        offset = 0
        for red in wide:
            red.wide_acc = None
            if scratch is not None:
                ptr = self.bld.gep(scratch, [i64(offset)], inbounds=True, source_etype=F64)
                if self.em.ctx.bounds_check:
                    self.bld.part(ptr, red.scratch_size)
                part = Buffer(ptr, TensorType("f64", (red.scratch_size,)), self.em.ctx)
                size = math.prod(red.inner_shape)
                red.wide_acc = Wide(self.buffers[red.root.value], part, size)
            offset += red.scratch_size

    # ---- threads --------------------------------------------------------------------------

    def _emit_parallel(self):
        """Fills the shared accumulators, runs the tasks on threads, combines the partials."""
        bld, ctx, split = self.bld, self.em.ctx, self.split
        filled = [red for red in self.reductions.values()
                  if red.memory and red.root not in split.offsets]
        for red in filled:
            self._fill(red)
        # the loops left here (fills, the partials' combination) are short: glue (loops.py)
        work = sum(self.buffers[red.root.value].type.size for red in filled)
        work += sum(self.reductions[root].out_type.size for root in split.offsets) * split.tasks
        self.glue_only = work <= GLUE_WORK
        keys = list(self.buffers)
        task = self._task_function(keys)
        context = ctx.alloca(ll.ArrayType(I64, len(keys) + 2), "context")
        partials = ctx.alloca(ll.ArrayType(I64, max(1, split.tasks * split.slot_bytes // 8)),
                              "partials")
        pointers = [self.buffers[key].ptr for key in keys] + [partials, ctx.err_ptr]
        for k, ptr in enumerate(pointers):
            bld.store(bld.ptrtoint(ptr, I64), bld.gep(context, [i64(0), i64(k)], inbounds=True))
        parallel_for(bld, task, context, i64(split.tasks), ctx.err_ptr)
        base = bld.inttoptr(bld.ptrtoint(partials, I64), PTR)
        for root, offset in split.offsets.items():
            self._combine(self.reductions[root], base, offset)

    def _task_function(self, keys: list) -> ll.Function:
        """`task(context, t)`: loads the buffer pointers, runs rows of task t (own function,
        whose buffer arguments are noalias, so its loops vectorise without alias checks)."""
        ctx, n = self.em.ctx, len(keys)
        name = ctx.func.name
        rows_type = ll.FunctionType(ll.VoidType(), [PTR] * (n + 1) + [I64, PTR])
        rows_fn = ll.Function(ctx.module, rows_type, name + ".rows")
        rows_fn.linkage = "internal"
        # NOTE: inlined into its task by the always-inliner, before the pipeline simplifies
        # either: inlined later (by the CGSCC inliner), the body was simplified twice, ~9 ms
        # of chain's cold compile; kept apart (a glue task calling it), it ran ~3% slower
        rows_fn.attributes.add("alwaysinline")
        for arg in rows_fn.args[:n + 1]:
            arg.add_attribute("noalias")
        sub_ctx = KernelContext(rows_fn, rows_fn.args[-1], ctx.bounds_check, ctx.vmath)
        buffers = {key: Buffer(arg, self.buffers[key].type, sub_ctx)
                   for key, arg in zip(keys, rows_fn.args)}
        values = {key: b for key, b in buffers.items() if isinstance(key, Value)}
        em = Elemental(sub_ctx, values, self.em.producers)
        sub = NestEmitter(em, self.nest, buffers, self.em.producers, parallel=False)
        sub.emit_rows(self.split, rows_fn.args[n], rows_fn.args[n + 1])
        sub_ctx.finish()
        task = ll.Function(ctx.module, TASK_TYPE, name + ".task")
        task.linkage = "internal"
        bld = ll.IRBuilder(task.append_basic_block("entry"))
        context, t = task.args
        ptrs = [bld.load(bld.gep(context, [i64(k)], source_etype=PTR), typ=PTR)
                for k in range(n + 2)]
        bld.call(rows_fn, ptrs[:n + 1] + [t, ptrs[n + 1]])
        bld.ret_void()
        return task

    def emit_rows(self, split: Split, partials, t):
        """The nest restricted to task t's rows; split reductions go to t's partials slot."""
        bld = self.bld
        begin = bld.mul(t, i64(split.rows), flags=INT_FLAGS)
        stop = bld.add(begin, i64(split.rows), flags=INT_FLAGS)
        end = bld.select(bld.icmp_signed("<", stop, i64(split.extent)), stop, i64(split.extent))
        self.rows = (split.axis, begin, end)
        slot = bld.gep(partials, [bld.mul(t, i64(split.slot_bytes), flags=INT_FLAGS)],
                       inbounds=True, source_etype=I8)
        for root, offset in split.offsets.items():
            red = self.reductions[root]
            ptr = bld.gep(slot, [i64(offset)], inbounds=True, source_etype=I8)
            self.buffers[root.value] = Buffer(ptr, red.out_type, self.em.ctx)
            if red.memory:
                self._fill(red)
        self._loops()

    def _combine(self, red: ReductionPlan, base, offset: int):
        """red's output: its tasks' partials taken in task order; a float sum adds them in
        f64 (f32) or compensated (f64), within about one rounding of their exact sum."""
        bld, ctx, split = self.bld, self.em.ctx, self.split
        out = self.buffers[red.root.value]
        stride = split.slot_bytes // red.out_type.np_dtype.itemsize
        ptr = bld.gep(base, [i64(offset)], inbounds=True, source_etype=I8)
        parts = Buffer(ptr, TensorType(red.dtype, (split.tasks * stride,)), ctx)
        exact = red.kind == "sum" and red.dtype in ("f32", "f64")
        acc = ctx.alloca(F64 if exact else LLVM_TYPES[red.dtype], "combined")
        comp = ctx.alloca(F64, "compensation")
        with for_range(bld, out.type.size, "combine") as j:
            first = parts.load(j)
            widen = exact and red.dtype == "f32"     # only an f32 sum combines in f64
            bld.store(bld.fpext(first, F64) if widen else first, acc)
            bld.store(ll.Constant(F64, 0.0), comp)
            with for_range(bld, split.tasks, "part", start=1) as k:
                v = parts.load(bld.add(bld.mul(k, i64(stride), flags=INT_FLAGS), j,
                                       flags=INT_FLAGS))
                if not exact:
                    bld.store(reduce_combine(bld, red.kind, bld.load(acc), v), acc)
                elif red.dtype == "f32":
                    bld.store(bld.fadd(bld.load(acc), bld.fpext(v, F64)), acc)
                else:
                    total, lost = two_sum(bld, bld.load(acc), bld.load(comp), v)
                    bld.store(total, acc)
                    bld.store(lost, comp)
            total = bld.load(acc)
            if widen:
                total = bld.fptrunc(total, LLVM_TYPES["f32"])
            elif exact:
                total = compensated(bld, total, bld.load(comp))
            out.store(j, total)

    # ---- the loops ------------------------------------------------------------------------

    def _level(self, level: int, dims: list):
        """The loops from `level` in, with the accumulators that start at that level."""
        if level == self.grouped:
            return row_lanes.emit(self, level, dims)
        reds = self.reductions.values()
        here = [r for r in reds if r.acc_level == level]
        for red in here:
            self._init_acc(red)
        wide = [r for r in reds if r.wide and r.first == level]
        bases = [self._wide_start(red, dims) for red in wide]
        space = self.nest.space
        if level == len(space):
            self._body(self.em.index(space, dims))
        elif space[level] == 1:
            self._level(level + 1, dims + [i64(0)])
        else:
            rows = self.rows is not None and level == self.rows[0]
            begin, end = self.rows[1:] if rows else (0, space[level])
            folds = [(r, b) for r, b in zip(wide, bases) if r.wide_acc is not None and r.fold]
            # a fold in a deeper loop (nest_plan: fold_level) waits there, for this loop's
            # iterations only
            deeper = [(r, b) for r, b in folds if r.fold_level != level]
            for r, b in deeper:
                STATS["deep_folds"] += 1
                self.deep_folds.setdefault(r.fold_level, []).append((r, b))
            mine = self.deep_folds.get(level, [])
            self._loop(level, dims, begin, end, [f for f in folds if f not in deeper] + mine,
                       bool(mine))
            for r, b in deeper:
                self.deep_folds[r.fold_level].remove((r, b))
        for red, base in zip(wide, bases):
            if red.wide_acc is not None:
                self._wide_call(red, red.wide_acc.finish, base)
        for red in here:
            kept = [dims[a] for a in red.kept if a < level]
            total = self._final_acc(red)
            if red.level is not None:
                out = self.buffers[red.root.value]
                out.store(linearize(self.bld, kept, red.out_shape), total)
            else:
                self._to_memory(red, kept, [dims[a] for a in red.inner_kept], total)

    def _loop(self, level: int, dims: list, begin, end, folds: list, deep: bool = False):
        """The loop of level over [begin, end); wide sums folding here fold every few rows
        (deep: started outside, so a part block left at the end is folded too)."""
        bld = self.bld
        if level == self.inner:
            self._run(dims, begin, isub(bld, end, begin))
            return
        rows = min([red.rows for red, _ in folds], default=1)
        with for_range(bld, end, f"n{level}", start=begin) as i:
            self._level(level + 1, dims + [i])
            if folds:
                done = bld.add(isub(bld, i, begin), i64(1), flags=INT_FLAGS)
                with bld.if_then(bld.icmp_unsigned("==", bld.urem(done, i64(rows)), i64(0))):
                    for red, base in folds:
                        self._wide_call(red, red.wide_acc.fold, base)
        if deep and not (isinstance(begin, int) and isinstance(end, int)
                         and (end - begin) % rows == 0):
            for red, base in folds:
                self._wide_call(red, red.wide_acc.fold, base)

    def _run(self, dims: list, start, count):
        """count elements of the innermost loop from start; strip-mined into chunks of LANES
        (element start + i in lane i % LANES) when the nest has lanes."""
        bld = self.bld
        if not self.strip_mine and self.unroll > 1 and isinstance(count, int) \
                and count % self.unroll == 0:
            with for_range(bld, count // self.unroll, f"n{self.inner}u") as p:
                base = iadd(bld, start, imul(bld, p, self.unroll))
                for k in range(self.unroll):
                    self._inside(dims + [iadd(bld, base, k)], None)
            return
        if not self.strip_mine:
            for lo, hi in self._pieces(start, count):
                with for_range(bld, hi, f"n{self.inner}", start=lo) as i:
                    if isinstance(hi, int):
                        self.em.known[id(i)] = (i, lo, hi)
                    self._inside(dims + [i], None)
            return
        chunks = idiv(bld, count, LANES)
        if chunks != 0 and self.blocked:
            # the chunks of a block, then the push check: a branch per block, not per chunk
            per_block = BLOCK // LANES
            blocks = idiv(bld, iadd(bld, chunks, per_block - 1), per_block)
            with for_range(bld, blocks, "block") as k:
                first = imul(bld, k, per_block)
                stop = _min(bld, iadd(bld, first, per_block), chunks)
                self._chunks(dims, start, first, stop)
                self._count(imul(bld, isub(bld, stop, first), LANES), block_end=True)
        elif chunks != 0:
            self._chunks(dims, start, 0, chunks)
        if isinstance(count, int) and count % LANES == 0:
            return
        tail = iadd(bld, start, imul(bld, chunks, LANES))
        with for_range(bld, iadd(bld, start, count), "tail", start=tail) as i:
            self._inside(dims + [i], isub(bld, i, tail))
        self._count(isub(bld, iadd(bld, start, count), tail))

    def _pieces(self, start, count) -> list:
        """The innermost range, cut where a concatenate along it changes piece."""
        if self.cuts and isinstance(start, int) and isinstance(count, int):
            return concat_split.ranges(start, start + count, self.cuts)
        return [(start, iadd(self.bld, start, count))]

    def _chunks(self, dims: list, start, first, stop):
        """Chunks [first, stop) of LANES elements from start, one lane loop each."""
        bld = self.bld
        with for_range(bld, stop, "chunk", start=first) as c:
            base = iadd(bld, start, imul(bld, c, LANES))
            if self.unroll == 1:
                with for_range(bld, LANES, "lane") as lane:
                    self._inside(dims + [iadd(bld, base, lane)], lane)
                return
            with for_range(bld, LANES // self.unroll, "lane") as p:
                for k in range(self.unroll):
                    lane = iadd(bld, imul(bld, p, self.unroll), k)
                    self._inside(dims + [iadd(bld, base, lane)], lane)

    def _count(self, n, block_end: bool = False):
        """Notes n more elements in the lanes of the blocked sums; pushes them when they hold
        a block (or at each block's end when no sum outlives a row: no counting then)."""
        if not self.blocked:
            return
        bld = self.bld
        if self.pending is None:
            if block_end:
                self._push()
            return
        pending = iadd(bld, bld.load(self.pending), n)
        bld.store(pending, self.pending)
        with bld.if_then(bld.icmp_signed(">=", pending, i64(BLOCK))):
            self._push()
            bld.store(i64(0), self.pending)

    def _push(self):
        for red in self.blocked:
            red.acc.push(self.bld)

    def _inside(self, dims: list, lane):
        """The levels after the innermost loop (all of extent 1) and the body."""
        self.lane = lane
        self._level(len(dims), dims)

    def _init_acc(self, red: ReductionPlan):
        if red.compensated:
            red.acc = Compensated(self.em.ctx, LLVM_TYPES[red.dtype])
            red.acc.start(self.bld)
            return
        if red.cascade:
            red.acc = Cascade(self.em.ctx, LLVM_TYPES[red.dtype], LANES if red.lanes else 1,
                              red.blocked)
            red.acc.start(self.bld)
            return
        if red.extremum_lanes:
            red.acc = extremum_lanes.ExtremumLanes(self.em.ctx, red.kind, red.dtype)
            red.acc.start(self.bld)
            return
        red.acc = self.em.ctx.alloca(LLVM_TYPES[red.dtype])
        self.bld.store(reduce_identity(red.kind, red.dtype), red.acc)

    def _final_acc(self, red: ReductionPlan):
        if red.cascade or red.compensated or red.extremum_lanes:
            return red.acc.total(self.bld)
        return self.bld.load(red.acc)

    def _wide_start(self, red: ReductionPlan, dims: list):
        """Starts the outputs of a wide sum below the current outer index; returns their base."""
        kept = [dims[a] for a in red.kept if a < red.first]
        base = linearize(self.bld, kept + [i64(0)] * len(red.inner_kept), red.out_shape)
        if red.wide_acc is not None:
            self._wide_call(red, red.wide_acc.start, base)
            return base
        out = self.buffers[red.root.value]
        with for_range(self.bld, math.prod(red.inner_shape), "zero") as j:
            out.store(self.bld.add(base, j, flags=INT_FLAGS), reduce_identity("sum", red.dtype))
        return base

    def _wide_call(self, red: ReductionPlan, method, base):
        """method(bld, base) of red's Wide: it writes outputs base .. base + size by hand
        (memset, codegen.summation's fold helper); in bounds-check mode only if they lie in
        the output (its scratch part was checked when carved)."""
        bld = self.bld
        if not self.em.ctx.bounds_check:
            method(bld, base)
            return
        out = self.buffers[red.root.value]
        start = bld.gep(bld.track(out.ptr, out.elem, out.type.size), [base], inbounds=True,
                        source_etype=out.elem)
        with bld.if_then(bld.span_ok(start, red.wide_acc.size, ERR_STORE)):
            method(bld, base)

    def _body(self, idx):
        em = self.em
        with em.scope():
            for root in self.nest.roots:
                if root.kind == "reduce":
                    self._accumulate(self.reductions[root], idx)
                elif root.out_index is not None:
                    self.buffers[root.key].store(idx.linear, em.gen(root.value, idx))
                else:
                    # the root's own buffer is being written: compute, never load it
                    val = em.compute(root.value, idx)
                    em.remember(root.value, idx, val)
                    em.remember_root(root.value, idx, val)
                    self.buffers[root.value].store(idx.linear, val)

    def _accumulate(self, red: ReductionPlan, idx):
        bld = self.bld
        v = self.em.gen(self.em.producers[red.root.value].inputs[0], idx)
        if red.cascade or red.compensated:
            red.acc.add(bld, self.lane if red.lanes else i64(0), v)
        elif red.extremum_lanes:
            red.acc.add(bld, self.lane, v)
        elif red.acc_level is not None:
            bld.store(reduce_combine(bld, red.kind, bld.load(red.acc), v), red.acc)
        else:
            kept = [idx.dims[a] for a in red.kept]
            self._to_memory(red, kept, [idx.dims[a] for a in red.inner_kept], v)

    def _to_memory(self, red: ReductionPlan, kept: list, inner_kept: list, v):
        """Adds v to red's output at the kept indices (its inner_kept ones: for a Wide)."""
        bld = self.bld
        if red.wide_acc is not None and not red.fold:
            red.wide_acc.add(bld, linearize(bld, inner_kept, red.inner_shape), v)
            return
        lin = linearize(bld, kept, red.out_shape)
        out = self.buffers[red.root.value]
        out.store(lin, reduce_combine(bld, red.kind, out.load(lin), v))


def _min(bld, a, b):
    """min(a, b) of an i64 value a and an int or i64 value b (both >= 0)."""
    b = i64(b) if isinstance(b, int) else b
    return bld.select(bld.icmp_unsigned("<", a, b), a, b)
