"""The plan of one fused LoopNest: how each reduction accumulates, and how threads split it.

Both are decided from the shapes and ops alone (never from the thread count or the data),
which is what makes compiled results bitwise reproducible; codegen.nest emits the plan.
"""
from __future__ import annotations

import math

from codegen.buffers import nbytes
from codegen.elemental import REDUCE_KINDS, UNROLLED_REDUCTION
from codegen.fusion import LoopNest, Root, inlined_ops, op_cost
from codegen.lower import LLVM_TYPES, is_float_type
from codegen.records import Record
from codegen.summation import BLOCK, LANES, Wide
from ir.core import TensorType

# Work is elements times the op cost of the fused body (fusion.op_cost: a transcendental is
# 10). NOTE: measured on a 2-core x86-64 VM: starting and joining a thread costs ~30-60 us and
# one unit of work ~0.1-0.3 ns, so a nest needs ~2^20 units before a second thread pays.
PARALLEL_MIN_WORK = 1 << 20
TASK_WORK = 1 << 18              # about this much work per task: small enough to balance load
MAX_TASKS = 1024
PARTIAL_BYTES = 1 << 16          # stack budget for the partial results of split reductions
DIRECT_MAX = 16                  # a float sum over outer axes of at most this many elements
                                 # per output is added in place (error <= 16 ulps, no scratch)
# fusion.small_reduction's sums are added in place, as a memory accumulator adds them
assert UNROLLED_REDUCTION <= DIRECT_MAX
WIDE_BLOCK = 16                  # elements added in place per output between folds


def inner_axis(space: tuple) -> int | None:
    """The innermost axis that is a loop (extent other than 1), or None."""
    return max((a for a, n in enumerate(space) if n != 1), default=None)


def tail_level(space: tuple, axes: set) -> int:
    """The first loop level from which every axis is reduced or of extent 1."""
    level = len(space)
    while level > 0 and (level - 1 in axes or space[level - 1] == 1):
        level -= 1
    return level


class ReductionPlan:
    """Per reduction root: its kind, kept axes and how it accumulates.

    `level` is the loop level of an accumulator living across the loops of the reduced axes,
    when those are the innermost ones (else None: the sum goes to memory). A float sum keeps
    an accumulator over its innermost reduced axes in either case (`tail`, from where every
    axis is reduced or of extent 1), whose totals go to memory when there is no level: a
    summation.Cascade, blocked when long, or, with rows too short for lanes, a
    summation.Compensated when long. A long sum over outer axes is `wide`: a
    summation.Wide, started at its first reduced axis.
    """

    def __init__(self, root: Root, op, space):
        self.root = root
        self.kind = REDUCE_KINDS[op.prim.name]
        self.dtype = op.results[0].dtype
        self.axes = set(op.params["axes"])
        self.kept = [a for a in range(len(space)) if a not in self.axes]
        self.out_shape = op.results[0].shape
        self.tail = tail_level(space, self.axes)
        outer = [a for a in self.axes if a < self.tail and space[a] != 1]
        self.level = None if outer else self.tail
        float_sum = self.kind == "sum" and is_float_type(LLVM_TYPES[self.dtype])
        inner = inner_axis(space)
        looped = inner is not None and self.tail <= inner
        self.cascade = float_sum and (self.level is not None or looped)
        self.lanes = self.cascade and looped and space[inner] >= LANES
        run = math.prod(space[a] for a in self.axes if a >= self.tail)
        self.blocked = self.lanes and run > BLOCK
        # a long sum in one accumulator (rows shorter than LANES): compensated instead
        self.compensated = self.cascade and not self.lanes and run > DIRECT_MAX
        # a max or min over the innermost axis: lanes of its own when a sum's lanes
        # strip-mine the nest (codegen.extremum_lanes; decided by the emitter)
        self.order_free = (self.kind in ("max", "min") and self.level is not None and looped
                           and space[inner] >= LANES)
        self.extremum_lanes = False
        count = math.prod(space[a] for a in self.axes)
        self.wide = float_sum and self.level is None and count > DIRECT_MAX
        self.first = min(outer) if self.wide else None
        self.inner_kept = [a for a in self.kept if self.wide and self.first < a < self.tail]
        self.inner_shape = tuple(space[a] for a in self.inner_kept)
        # wide sums fold every `rows` iterations of a loop (`fold_level`) when that adds at
        # most WIDE_BLOCK elements to each output in place; else every element goes to
        # scratch. The first reduced loop, or a later one while only reduced axes lie
        # between them: a sum over (16, 32) of [16, 32, C] folds every 16 rows of its axis
        # 1 instead of adding each of its 512 elements into the f64 scratch one by one.
        self.fold, self.fold_level, self.rows = False, None, 1
        for level in (sorted(outer) if self.wide else []):
            if any(space[a] != 1 for a in self.kept if self.first < a < level):
                break       # a kept axis between: a fold below it would miss its outputs
            per_row = math.prod(space[a] for a in outer if a > level)
            if per_row <= WIDE_BLOCK:
                self.fold, self.fold_level = True, level
                self.rows = max(1, WIDE_BLOCK // max(per_row, 1))
                break
        self.acc = None
        self.wide_acc = None          # a summation.Wide while the scratch is attached

    @property
    def out_type(self) -> TensorType:
        return TensorType(self.dtype, self.out_shape)

    @property
    def acc_level(self) -> int | None:
        """Where the register accumulator starts, or None (every element goes to memory)."""
        return self.tail if self.level is not None or self.cascade else None

    @property
    def memory(self) -> bool:
        """Accumulated in the output buffer, initialised once (not per output block)."""
        return self.level is None and not self.wide

    @property
    def scratch_size(self) -> int:
        return Wide.scratch_size(self.dtype, math.prod(self.inner_shape))


class Split(Record):
    """A nest cut into `tasks` tasks of `rows` consecutive indices of `axis` (of `extent`).

    `offsets` places each reduction over `axis` (by its Root) in a task's slot of the
    partials array; a slot is `slot_bytes` long.
    """
    _fields = ("axis", "extent", "rows", "tasks", "offsets", "slot_bytes")
    _defaults = {"rows": 1, "tasks": 1, "slot_bytes": 0}
    _factories = {"offsets": dict}


def body_cost(nest: LoopNest, buffers: dict, producers: dict) -> int:
    """The op cost of evaluating one element of every root of nest (inlined ops included)."""
    return max(sum(op_cost(op) for op in inlined_ops(nest, buffers, producers)), 1)


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
    if axis == inner_axis(space):
        split.rows = -(-split.rows // BLOCK) * BLOCK        # tasks start on a block boundary
    split.tasks = -(-split.extent // split.rows)
    return split if split.tasks > 1 else None
