"""Emits one fused LoopNest: a C-order loop nest over its space computing all its roots.

Store roots write each element once. Reduction roots accumulate their operand's elements:
when the reduced axes are the innermost ones, into an accumulator that lives across those
loops (an alloca that mem2reg turns into registers) and is stored once per output element;
otherwise into the output buffer itself, initialised to the identity first. The last axis
is innermost and contiguous, so LLVM's loop vectoriser sees unit-stride accesses.

A float sum would stop the vectoriser (it may not reorder additions, and we do not let it:
results must be reproducible). So when a nest has float-sum accumulators over its innermost
axis, that axis is strip-mined into chunks of LANES iterations and element i adds into lane
i % LANES of an accumulator array; the lanes are summed in a fixed pairwise tree at the end.
The order of additions is thereby fixed by this code, independent of the CPU's vector width,
and the lane loop vectorises, taking the whole fused body with it.

A large nest runs on several threads (see `plan_split`): its first axis of extent > 1 is cut
into a fixed number of tasks of consecutive rows, chosen from the shapes alone, and emitted
as `task(ptr context, i64 t)`, which `loops.parallel_for` hands out to threads. A reduction
over that axis accumulates each task's share into its own slot of a partials array, and the
partials are combined in task order after the join. Which thread runs a task never changes
what it computes, so results are bitwise the same for any thread count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from llvmlite import ir

from codegen.buffers import Buffer, KernelContext, nbytes
from codegen.elemental import REDUCE_KINDS, Elemental, reduce_combine, reduce_identity
from codegen.fusion import LoopNest, Root, op_cost
from codegen.lower import LLVM_TYPES, is_float_type
from codegen.loops import (I8, I64, INT_FLAGS, PTR, TASK_TYPE, THREADS_OFFSET, for_range, i64,
                           linearize, parallel_for)
from ir.core import TensorType, Value

LANES = 16
# Work is elements times the op cost of the fused body (fusion.op_cost: a transcendental is
# 10). NOTE: measured on a 2-core x86-64 VM: starting and joining a thread costs ~30-60 us and
# one unit of work ~0.1-0.3 ns, so a nest needs ~2^20 units before a second thread pays.
PARALLEL_MIN_WORK = 1 << 20
TASK_WORK = 1 << 18              # about this much work per task: small enough to balance load
MAX_TASKS = 1024
PARTIAL_BYTES = 1 << 16          # stack budget for the partial results of split reductions


class _Reduction:
    """Per reduction root: its kind, kept axes and where it accumulates (level or memory)."""

    def __init__(self, root: Root, op, space):
        self.root = root
        self.kind = REDUCE_KINDS[op.prim.name]
        self.dtype = op.results[0].dtype
        self.axes = set(op.params["axes"])
        self.kept = [a for a in range(len(space)) if a not in self.axes]
        self.out_shape = op.results[0].shape
        first = len(space) - len(self.axes)
        self.level = first if self.axes == set(range(first, len(space))) else None
        inner = space[-1] if space else 0
        self.lanes = (self.level is not None and self.level < len(space) and self.kind == "sum"
                      and is_float_type(LLVM_TYPES[self.dtype]) and inner >= LANES)
        self.acc = None

    @property
    def out_type(self) -> TensorType:
        return TensorType(self.dtype, self.out_shape)


@dataclass
class Split:
    """A nest cut into `tasks` tasks of `rows` consecutive indices of `axis` (of `extent`).

    `offsets` places each reduction over `axis` (by its Root) in a task's slot of the
    partials array; a slot is `slot_bytes` long.
    """
    axis: int
    extent: int
    rows: int = 1
    tasks: int = 1
    offsets: dict = field(default_factory=dict)
    slot_bytes: int = 0


def body_cost(nest: LoopNest, buffers: dict, producers: dict) -> int:
    """The op cost of evaluating one element of every root of nest (inlined ops included)."""
    cost, seen = 0, set()
    stack = [producers[r.value] for r in nest.roots if r.value in producers]
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        cost += op_cost(op)
        stack.extend(producers[x] for x in op.inputs if x not in buffers and x in producers)
    return max(cost, 1)


def plan_split(space: tuple, reductions: list, cost: int = 1) -> Split | None:
    """How to run a nest over space on several threads, or None for one thread.

    The split depends on the shapes and ops alone, never on the thread count, so neither do
    the results.
    """
    total = math.prod(space)
    if total * cost < PARALLEL_MIN_WORK:
        return None
    axis = next(a for a, n in enumerate(space) if n > 1)
    split = Split(axis, space[axis])
    for red in reductions:
        if axis in red.axes:
            split.offsets[red.root] = split.slot_bytes
            split.slot_bytes += -(-nbytes(red.out_type) // 8) * 8
    most = PARTIAL_BYTES // split.slot_bytes if split.slot_bytes else split.extent
    tasks = min(total * cost // TASK_WORK, most, split.extent, MAX_TASKS)
    if tasks < 2:
        return None
    split.rows = -(-split.extent // tasks)
    if axis == len(space) - 1:
        split.rows = -(-split.rows // LANES) * LANES        # tasks start on a lane boundary
    split.tasks = -(-split.extent // split.rows)
    return split if split.tasks > 1 else None


class NestEmitter:
    def __init__(self, em: Elemental, nest: LoopNest, buffers: dict, producers: dict,
                 parallel: bool = True):
        self.em = em
        self.bld = em.bld
        self.nest = nest
        self.buffers = buffers          # buffer key (Value or fusion.Out) -> Buffer
        self.reductions = {}
        for r in nest.roots:
            if r.kind == "reduce":
                self.reductions[r] = _Reduction(r, producers[r.value], nest.space)
        self.strip_mine = any(red.lanes for red in self.reductions.values())
        self.split = None
        if parallel and not em.ctx.bounds_check:
            cost = body_cost(nest, buffers, producers)
            self.split = plan_split(nest.space, list(self.reductions.values()), cost)
        self.rows = None                # (axis, begin, end) while emitting one task's rows

    def emit(self):
        if self.split is not None:
            self._emit_parallel()
            return
        for red in self.reductions.values():
            if red.level is None:
                self._fill(red)
        self._level(0, [])

    def _fill(self, red: _Reduction):
        """Initialises a memory accumulator (the output buffer) with the identity."""
        buf = self.buffers[red.root.value]
        with for_range(self.bld, buf.type.size, "init") as i:
            buf.store(i, reduce_identity(red.kind, red.dtype))

    # ---- threads --------------------------------------------------------------------------

    def _emit_parallel(self):
        """Fills the shared accumulators, runs the tasks on threads, combines the partials."""
        bld, ctx, split = self.bld, self.em.ctx, self.split
        for red in self.reductions.values():
            if red.level is None and red.root not in split.offsets:
                self._fill(red)
        keys = list(self.buffers)
        task = self._task_function(keys)
        context = ctx.alloca(ir.ArrayType(I64, len(keys) + 2), "context")
        partials = ctx.alloca(ir.ArrayType(I64, max(1, split.tasks * split.slot_bytes // 8)),
                              "partials")
        pointers = [self.buffers[key].ptr for key in keys] + [partials, ctx.err_ptr]
        for k, ptr in enumerate(pointers):
            bld.store(bld.ptrtoint(ptr, I64), bld.gep(context, [i64(0), i64(k)], inbounds=True))
        threads = bld.load(bld.gep(ctx.err_ptr, [i64(THREADS_OFFSET)], source_etype=I8), typ=I64)
        parallel_for(bld, task, context, i64(split.tasks), threads)
        base = bld.inttoptr(bld.ptrtoint(partials, I64), PTR)
        for root, offset in split.offsets.items():
            self._combine(self.reductions[root], base, offset)

    def _task_function(self, keys: list) -> ir.Function:
        """`task(context, t)`: loads the buffer pointers, runs rows of task t (own function,
        whose buffer arguments are noalias, so its loops vectorise without alias checks)."""
        ctx, n = self.em.ctx, len(keys)
        name = ctx.func.name
        rows_type = ir.FunctionType(ir.VoidType(), [PTR] * (n + 1) + [I64, PTR])
        rows_fn = ir.Function(ctx.module, rows_type, name + ".rows")
        rows_fn.linkage = "internal"
        for arg in rows_fn.args[:n + 1]:
            arg.add_attribute("noalias")
        sub_ctx = KernelContext(rows_fn, rows_fn.args[-1], ctx.bounds_check)
        buffers = {key: Buffer(arg, self.buffers[key].type, sub_ctx)
                   for key, arg in zip(keys, rows_fn.args)}
        values = {key: b for key, b in buffers.items() if isinstance(key, Value)}
        em = Elemental(sub_ctx, values, self.em.producers)
        sub = NestEmitter(em, self.nest, buffers, self.em.producers, parallel=False)
        sub.emit_rows(self.split, rows_fn.args[n], rows_fn.args[n + 1])
        sub_ctx.finish()
        task = ir.Function(ctx.module, TASK_TYPE, name + ".task")
        task.linkage = "internal"
        bld = ir.IRBuilder(task.append_basic_block("entry"))
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
            if red.level is None:
                self._fill(red)
        self._level(0, [])

    def _combine(self, red: _Reduction, base, offset: int):
        """red's output: its tasks' partials combined in task order (after the join)."""
        bld, split = self.bld, self.split
        out = self.buffers[red.root.value]
        stride = split.slot_bytes // red.out_type.np_dtype.itemsize
        ptr = bld.gep(base, [i64(offset)], inbounds=True, source_etype=I8)
        parts = Buffer(ptr, TensorType(red.dtype, (split.tasks * stride,)), self.em.ctx)
        acc = self.em.ctx.alloca(LLVM_TYPES[red.dtype], "combined")
        with for_range(bld, out.type.size, "combine") as j:
            bld.store(parts.load(j), acc)
            with for_range(bld, split.tasks, "part", start=1) as k:
                v = parts.load(bld.add(bld.mul(k, i64(stride), flags=INT_FLAGS), j,
                                       flags=INT_FLAGS))
                bld.store(reduce_combine(bld, red.kind, bld.load(acc), v), acc)
            out.store(j, bld.load(acc))

    # ---- the loops ------------------------------------------------------------------------

    def _level(self, level: int, dims: list):
        here = [r for r in self.reductions.values() if r.level == level]
        for red in here:
            self._init_acc(red)
        space = self.nest.space
        last = level == len(space) - 1
        if level == len(space):
            self._enter_body(dims, None)
        elif space[level] == 1:
            self._level(level + 1, dims + [i64(0)])
        elif self.rows is not None and level == self.rows[0]:
            _, begin, end = self.rows
            if last and self.strip_mine:
                self._strip_mined_range(dims, begin, end)
            else:
                with for_range(self.bld, end, f"n{level}", start=begin) as i:
                    self._level(level + 1, dims + [i])
        elif last and self.strip_mine:
            self._strip_mined(dims, space[level])
        else:
            with for_range(self.bld, space[level], f"n{level}") as i:
                self._level(level + 1, dims + [i])
        for red in here:
            out = self.buffers[red.root.value]
            out.store(linearize(self.bld, dims, red.out_shape), self._final_acc(red))

    def _strip_mined(self, dims: list, size: int):
        """The innermost loop as chunks of LANES plus a tail; yields the lane of each element."""
        bld = self.bld
        chunks, rest = divmod(size, LANES)
        if chunks:
            with for_range(bld, chunks, "chunk") as c:
                base = bld.mul(c, i64(LANES), flags=INT_FLAGS)
                with for_range(bld, LANES, "lane") as lane:
                    self._enter_body(dims + [bld.add(base, lane, flags=INT_FLAGS)], lane)
        if rest:
            with for_range(bld, rest, "tail") as lane:
                self._enter_body(dims + [bld.add(lane, i64(chunks * LANES))], lane)

    def _strip_mined_range(self, dims: list, begin, end):
        """_strip_mined over [begin, end) (run-time bounds; begin is a multiple of LANES)."""
        bld = self.bld
        chunks = bld.udiv(bld.sub(end, begin, flags=INT_FLAGS), i64(LANES))
        with for_range(bld, chunks, "chunk") as c:
            base = bld.add(begin, bld.mul(c, i64(LANES), flags=INT_FLAGS), flags=INT_FLAGS)
            with for_range(bld, LANES, "lane") as lane:
                self._enter_body(dims + [bld.add(base, lane, flags=INT_FLAGS)], lane)
        tail = bld.add(begin, bld.mul(chunks, i64(LANES), flags=INT_FLAGS), flags=INT_FLAGS)
        with for_range(bld, end, "tail", start=tail) as i:
            self._enter_body(dims + [i], bld.sub(i, tail, flags=INT_FLAGS))

    def _init_acc(self, red: _Reduction):
        t = LLVM_TYPES[red.dtype]
        identity = reduce_identity(red.kind, red.dtype)
        if red.lanes:
            red.acc = self.em.ctx.alloca(ir.ArrayType(t, LANES), "lanes")
            for k in range(LANES):
                self.bld.store(identity, self._lane_ptr(red, i64(k)))
        else:
            red.acc = self.em.ctx.alloca(t)
            self.bld.store(identity, red.acc)

    def _lane_ptr(self, red: _Reduction, lane):
        return self.bld.gep(red.acc, [i64(0), lane], inbounds=True)

    def _final_acc(self, red: _Reduction):
        if not red.lanes:
            return self.bld.load(red.acc)
        vals = [self.bld.load(self._lane_ptr(red, i64(k))) for k in range(LANES)]
        while len(vals) > 1:        # a fixed pairwise tree: the same order on every CPU
            vals = [reduce_combine(self.bld, "sum", vals[k], vals[k + 1])
                    for k in range(0, len(vals), 2)]
        return vals[0]

    def _enter_body(self, dims: list, lane):
        with self.em.scope():
            self._body(self.em.index(self.nest.space, dims), lane)

    def _body(self, idx, lane):
        em = self.em
        for root in self.nest.roots:
            if root.kind == "reduce":
                self._accumulate(self.reductions[root], idx, lane)
            elif root.out_index is not None:
                self.buffers[root.key].store(idx.linear, em.gen(root.value, idx))
            else:
                # the root's own buffer is being written: compute, never load it
                val = em.compute(root.value, idx)
                em.remember(root.value, idx, val)
                self.buffers[root.value].store(idx.linear, val)

    def _accumulate(self, red: _Reduction, idx, lane):
        bld = self.bld
        v = self.em.gen(self.em.producers[red.root.value].inputs[0], idx)
        if red.lanes:
            ptr = self._lane_ptr(red, lane)
            bld.store(reduce_combine(bld, red.kind, bld.load(ptr), v), ptr)
        elif red.level is not None:
            bld.store(reduce_combine(bld, red.kind, bld.load(red.acc), v), red.acc)
        else:
            out = self.buffers[red.root.value]
            lin = linearize(bld, [idx.dims[a] for a in red.kept], red.out_shape)
            out.store(lin, reduce_combine(bld, red.kind, out.load(lin), v))
