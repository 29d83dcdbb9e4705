"""What the code generator made of a Function: its kernels, what each holds, what was stored.

    rep = fusion_report(fn, externals)    # from the same plan the emitter uses
    print(rep)                            # text, value names as in str(fn)
    rep.to_dot()                          # the dataflow graph with one cluster per kernel

A kernel is a step of the plan (codegen.fusion): a loop nest (elementwise ops, broadcasts
and reductions fused over one iteration space), a BLAS gemm call, another kernel op
(dot_general loop nest, scatter_add) or a control-flow op whose regions are reported
below it. For each kernel: the ops it evaluates (an op inlined into several kernels is
recomputed in each), the values it stores and why each one gets a buffer, and the bytes it
reads and writes. For a derivative (`primal` given), the forward values the adjoint reads
are listed as saved (stored in a buffer) or recomputed (inlined again where used).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from codegen.buffers import nbytes
from codegen.dots import Externals, gemm_route
from codegen.fusion import (ALWAYS_MATERIALIZED, EXPENSIVE_COST, KERNEL_PRIMS, MAX_INLINE_COST,
                            LoopNest, Plan, plan_function)
from ir.core import Function, Op, Value
from ir.dot import _quote, forward_ops
from ir.printer import _Namer


@dataclass
class Kernel:
    """One step of the plan, as the report shows it."""
    index: int
    kind: str                     # "loop nest", "gemm (BLAS)", "gemm (packed tiles)", "scan", ...
    space: tuple | None           # a loop nest's iteration space
    ops: list[Op]                 # evaluated here (roots and what is inlined into them)
    stores: list[tuple[Value, str]]   # (value written to a buffer, why)
    bytes_read: int
    bytes_written: int
    regions: list["FusionReport"] = field(default_factory=list)


@dataclass
class FusionReport:
    fn: Function
    kernels: list[Kernel]
    names: dict                   # Value -> printed name (%3)
    saved: list[Value] = field(default_factory=list)        # forward values kept for adjoint
    recomputed: list[Value] = field(default_factory=list)   # forward values inlined again
    fused: list[Value] = field(default_factory=list)        # read from the same loop's register

    def __str__(self) -> str:
        return "\n".join(self._lines(""))

    def _lines(self, indent: str) -> list[str]:
        nests = sum(k.kind == "loop nest" for k in self.kernels)
        lines = [f"{indent}fusion report @{self.fn.name}: {len(self.kernels)} kernel(s), "
                 f"{nests} loop nest(s), {len(self.fn.body)} op(s)"]
        for k in self.kernels:
            where = f" over [{','.join(map(str, k.space))}]" if k.space is not None else ""
            lines.append(f"{indent}kernel {k.index}: {k.kind}{where}, reads {k.bytes_read} B, "
                         f"writes {k.bytes_written} B")
            ops = ", ".join(f"{op.prim.name} {self._name(op.results[0])}" for op in k.ops)
            lines.append(f"{indent}  ops: {ops}")
            for v, why in k.stores:
                lines.append(f"{indent}  stores {self._name(v)}: {v.type} ({why})")
            for sub in k.regions:
                lines += sub._lines(indent + "    ")
        if self.saved or self.recomputed or self.fused:
            lines.append(f"{indent}forward values read by the adjoint: saved (buffer) "
                         f"{self._names(self.saved)}; recomputed {self._names(self.recomputed)}"
                         f"; fused (same loop, register) {self._names(self.fused)}")
        return lines

    def _name(self, v: Value) -> str:
        name = self.names.get(v)
        if name is None:       # a value the code generator made (a transposed operand)
            name = self.names[v] = f"%cg{sum(n.startswith('%cg') for n in self.names.values())}"
        return name

    def _names(self, values) -> str:
        return "[" + ", ".join(self._name(v) for v in values) + "]"

    def to_dot(self) -> str:
        """The dataflow graph with one cluster per kernel (Graphviz DOT text)."""
        lines = [f"digraph {_quote(self.fn.name + ' fusion')} {{", "  rankdir=TB;",
                 '  node [fontname="monospace", fontsize=10, shape=box, style="rounded"];']
        node_of: dict = {}
        for i, p in enumerate(self.fn.params):
            node_of[p] = f"p{i}"
            lines.append(f"  p{i} [label={_quote(f'{self._name(p)}: {p.type}')}, "
                         "shape=invhouse];")
        ids = iter(range(10 ** 9))
        edges = []
        for k in self.kernels:
            lines.append(f"  subgraph cluster_k{k.index} {{")
            where = f" [{','.join(map(str, k.space))}]" if k.space is not None else ""
            lines.append(f"    label={_quote(f'kernel {k.index}: {k.kind}{where}')}; "
                         "style=filled; fillcolor=\"#f4f4f4\";")
            for op in k.ops:
                node = f"k{k.index}_{next(ids)}"
                label = f"{self._name(op.results[0])} = {op.prim.name}\n{op.results[0].type}"
                lines.append(f"    {node} [label={_quote(label)}];")
                for x in op.inputs:
                    src = node_of.get(x)
                    if src is not None:
                        edges.append(f"  {src} -> {node};")
                for r in op.results:
                    node_of[r] = node
            lines.append("  }")
        lines += edges
        for j, r in enumerate(self.fn.results):
            lines.append(f"  r{j} [label={_quote(f'result {j}: {r.type}')}, shape=house];")
            if r in node_of:
                lines.append(f"  {node_of[r]} -> r{j};")
        return "\n".join(lines + ["}"]) + "\n"


def _printed_names(fn: Function) -> dict:
    """Value -> its name in print_function(fn) (top level)."""
    namer = _Namer()
    for p in fn.params:
        namer.define(p)
    for op in fn.body:
        for r in op.results:
            namer.define(r)
    return {v: "%" + n for v, n in namer.names.items()}


def _inlined(plan: Plan, params: set, start: list[Value]) -> list[Op]:
    """The ops evaluated inline to compute `start`: producers reached through unbuffered
    values (a materialised value or a parameter is read from its buffer instead)."""
    seen, order, stack = set(), [], list(start)
    while stack:
        v = stack.pop()
        if v in seen or v in params:
            continue
        seen.add(v)
        op = plan.producers.get(v)
        if op is None:
            continue
        order.append(op)
        stack.extend(x for x in op.inputs if x not in plan.materialized)
    return order


def _why(v: Value, op: Op, fn: Function, plan: Plan, uses: dict) -> str:
    if v in fn.results or v in plan.homes:
        return "function result"
    name = op.prim.name
    if name in ALWAYS_MATERIALIZED:
        return "reduction" if name.startswith("reduce") else f"{name} result"
    if name in KERNEL_PRIMS or name == "gemm":
        return f"{name} result"
    readers = uses.get(v, [])
    if any(r.prim.name in KERNEL_PRIMS or r.prim.name == "gemm" for r in readers):
        return "operand of " + next(r.prim.name for r in readers
                                     if r.prim.name in KERNEL_PRIMS or r.prim.name == "gemm")
    if len(readers) > 1:
        return f"costly and used {len(readers)} times (cost >= {EXPENSIVE_COST})"
    return f"costly expression (inline cost > {MAX_INLINE_COST}) or read at other indices"


def fusion_report(fn: Function, externals: Externals | None = None,
                  primal: Function | None = None) -> FusionReport:
    """The report of fn's plan (see the module docstring).

    Args:
        fn: the Function as it is compiled (optimised).
        externals: what the runtime provides (a BLAS gemm changes the plan of big dots).
        primal: the Function fn differentiates, if any: adds saved vs recomputed values.
    """
    plan = plan_function(fn, externals)
    params = set(fn.params)
    uses: dict = {}
    for op in plan.ops:
        for x in set(op.inputs):
            uses.setdefault(x, []).append(op)
    kernels = []
    for index, step in enumerate(plan.steps):
        if isinstance(step, LoopNest):
            starts, stores = [], []
            for root in step.roots:
                op = plan.producers.get(root.value)
                starts.append(root.value)
                if root.out_index is not None:
                    stores.append((root.value, f"copied to result {root.out_index}"))
                elif op is not None:
                    stores.append((root.value, _why(root.value, op, fn, plan, uses)))
            ops = _inlined(plan, params, starts)
            ops.sort(key=plan.ops.index)
            read = sum(nbytes(v.type) for v in step.reads)
            written = sum(nbytes(r.value.type) for r in step.roots)
            kernels.append(Kernel(index, "loop nest", tuple(step.space), ops, stores, read,
                                  written))
        else:
            op = step.op
            kind = op.prim.name
            if kind == "gemm" and externals is not None:
                kind = f"gemm ({gemm_route(op.params['plan'], op.inputs[0].dtype, externals)})"
            regions = [fusion_report(r, externals) for r in op.regions]
            stores = [(r, f"{op.prim.name} result") for r in op.results]
            kernels.append(Kernel(index, kind, None, [op], stores,
                                  sum(nbytes(x.type) for x in set(op.inputs)),
                                  sum(nbytes(r.type) for r in op.results), regions))
    report = FusionReport(fn, kernels, _printed_names(fn))
    if primal is not None:
        _split_saved(report, plan, forward_ops(fn, primal))
    return report


def _split_saved(report: FusionReport, plan: Plan, forward: set) -> None:
    """Forward values that adjoint ops read: stored in a buffer (saved), evaluated in more
    than one kernel (recomputed), or computed once and read from a register (fused)."""
    forward_values = {r for op in forward for r in op.results}
    kernels_of: dict = {}
    for k in report.kernels:
        for op in k.ops:
            for r in op.results:
                kernels_of.setdefault(r, set()).add(k.index)
    read_by_adjoint = []
    for op in plan.ops:
        if all(r in forward_values for r in op.results):
            continue
        for x in op.inputs:
            if x in forward_values and x not in read_by_adjoint:
                read_by_adjoint.append(x)
    for v in read_by_adjoint:
        if v in plan.materialized:
            report.saved.append(v)
        elif len(kernels_of.get(v, ())) > 1:
            report.recomputed.append(v)
        else:
            report.fused.append(v)
