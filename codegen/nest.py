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
"""
from __future__ import annotations

from llvmlite import ir

from codegen.elemental import REDUCE_KINDS, Elemental, reduce_combine, reduce_identity
from codegen.fusion import LoopNest, Root
from codegen.lower import LLVM_TYPES, is_float_type
from codegen.loops import for_range, i64, linearize

LANES = 16


class _Reduction:
    """Per reduction root: its kind, kept axes and where it accumulates (level or memory)."""

    def __init__(self, root: Root, op, space):
        self.root = root
        self.kind = REDUCE_KINDS[op.prim.name]
        self.dtype = op.results[0].dtype
        axes = set(op.params["axes"])
        self.kept = [a for a in range(len(space)) if a not in axes]
        self.out_shape = op.results[0].shape
        first = len(space) - len(axes)
        self.level = first if axes == set(range(first, len(space))) else None
        inner = space[-1] if space else 0
        self.lanes = (self.level is not None and self.level < len(space) and self.kind == "sum"
                      and is_float_type(LLVM_TYPES[self.dtype]) and inner >= LANES)
        self.acc = None


class NestEmitter:
    def __init__(self, em: Elemental, nest: LoopNest, buffers: dict, producers: dict):
        self.em = em
        self.bld = em.bld
        self.nest = nest
        self.buffers = buffers          # buffer key (Value or fusion.Out) -> Buffer
        self.reductions = {}
        for r in nest.roots:
            if r.kind == "reduce":
                self.reductions[r] = _Reduction(r, producers[r.value], nest.space)
        self.strip_mine = any(red.lanes for red in self.reductions.values())

    def emit(self):
        for red in self.reductions.values():
            if red.level is None:
                self._fill(red)
        self._level(0, [])

    def _fill(self, red: _Reduction):
        """Initialises a memory accumulator (the output buffer) with the identity."""
        buf = self.buffers[red.root.value]
        with for_range(self.bld, buf.type.size, "init") as i:
            buf.store(i, reduce_identity(red.kind, red.dtype))

    def _level(self, level: int, dims: list):
        here = [r for r in self.reductions.values() if r.level == level]
        for red in here:
            self._init_acc(red)
        space = self.nest.space
        if level == len(space):
            self._enter_body(dims, None)
        elif space[level] == 1:
            self._level(level + 1, dims + [i64(0)])
        elif level == len(space) - 1 and self.strip_mine:
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
                base = bld.mul(c, i64(LANES), flags=("nuw", "nsw"))
                with for_range(bld, LANES, "lane") as lane:
                    self._enter_body(dims + [bld.add(base, lane, flags=("nuw", "nsw"))], lane)
        if rest:
            with for_range(bld, rest, "tail") as lane:
                self._enter_body(dims + [bld.add(lane, i64(chunks * LANES))], lane)

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
