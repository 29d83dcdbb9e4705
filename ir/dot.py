"""Graphviz pictures of IR: the dataflow graph of a Function, and rendering to SVG.

    text = function_to_dot(fn)            # the DOT language, always available
    svg = render_svg(text)                # needs Graphviz's `dot` program or the graphviz package

A picture has one node per op (its name, params and result types), one per parameter and
per result, edges along the SSA uses, and one cluster per region (the body of a `cond`,
`while` or `scan`, nested as the text nests them). Node names are the printed IR's value
names, so a picture and `str(fn)` can be read side by side.

When the Function is a derivative (`make_ir(grad(f))`), ops are coloured by part: ops that
recompute the primal (forward) and ops of the adjoint. The split is found by value
numbering against the primal Function: an op is forward when the same primitive, params and
forward operands also appear in the primal program (`forward_ops`).
"""
from __future__ import annotations

import shutil
import subprocess

from typing import TYPE_CHECKING

if TYPE_CHECKING:          # annotations only: ir.core imports this module (late)
    from ir.core import Function, Op, Value
from ir.printer import _format_params, _Namer

FORWARD_COLOR = "#dbe9f6"      # blue-grey: the primal computation
ADJOINT_COLOR = "#fbe3d3"      # orange: the adjoint (reverse) pass
PLAIN_COLOR = "#eeeeee"
PARAM_COLOR = "#d9f0d3"
RESULT_COLOR = "#fff2ae"


def _quote(text: str) -> str:
    """A DOT double-quoted string (backslash and quote escaped, newlines as \\n)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def forward_ops(fn: Function, primal: Function) -> set[Op]:
    """The top-level ops of fn that compute a value of the primal Function.

    Parameters match by position; an op matches when its primitive, params and operands
    (each a parameter or a matched value) equal those of an op of primal. Constants match by
    value, so a constant folded into the adjoint (a seed of ones) is not mistaken for one of
    the primal's unless the primal holds the same constant."""
    numbers: dict[Value, object] = {}
    known: dict[tuple, object] = {}

    def key(op: Op, table: dict[Value, object]):
        operands = tuple(table.get(v) for v in op.inputs)
        if None in operands or op.regions:
            return None
        return (op.prim.name, _format_params(op), operands,
                tuple(str(r.type) for r in op.results))

    for i, p in enumerate(primal.params):
        numbers[p] = ("param", i)
    for op in primal.body:
        k = key(op, numbers)
        if k is not None:
            number = known.setdefault(k, len(known))    # small ints keep keys flat
            for j, r in enumerate(op.results):
                numbers[r] = (number, j)
    mine: dict[Value, object] = {p: ("param", i) for i, p in enumerate(fn.params)}
    forward = set()
    for op in fn.body:
        k = key(op, mine)
        if k is not None and k in known:
            forward.add(op)
            for j, r in enumerate(op.results):
                mine[r] = (known[k], j)
    return forward


class _DotWriter:
    def __init__(self, forward: set[Op] | None):
        self.forward = forward
        self.lines: list[str] = []
        self.counter = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def function(self, fn: Function, indent: str, top: bool) -> tuple[list[str], list[str]]:
        """Writes fn's nodes and edges; returns the node ids of its parameters and results."""
        namer = _Namer()
        node_of: dict[Value, str] = {}
        params = []
        for p in fn.params:
            node = self.fresh("p")
            name = namer.define(p)
            node_of[p] = node
            params.append(node)
            self.lines.append(f"{indent}{node} [label={_quote(f'{name}: {p.type}')}, "
                              f"shape=invhouse, style=filled, fillcolor=\"{PARAM_COLOR}\"];")
        for op in fn.body:
            node = self.fresh("op")
            names = ", ".join(namer.define(r) for r in op.results)
            types = ", ".join(str(r.type) for r in op.results)
            label = f"{names} = {op.prim.name}{_format_params(op)}\n{types}"
            if op.loc:
                label += f"\n{op.loc}"
            color = PLAIN_COLOR
            if top and self.forward is not None:
                color = FORWARD_COLOR if op in self.forward else ADJOINT_COLOR
            self.lines.append(f"{indent}{node} [label={_quote(label)}, shape=box, "
                              f"style=\"rounded,filled\", fillcolor=\"{color}\"];")
            for k, v in enumerate(op.inputs):
                src = node_of.get(v)
                if src is not None:
                    attrs = f" [label=\"{k}\"]" if len(op.inputs) > 1 and op.regions else ""
                    self.lines.append(f"{indent}{src} -> {node}{attrs};")
            for r in op.results:
                node_of[r] = node
            for j, region in enumerate(op.regions):
                cluster = self.fresh("cluster_")
                self.lines.append(f"{indent}subgraph {cluster} {{")
                self.lines.append(f"{indent}  label={_quote(f'{op.prim.name} region {j}')};"
                                  " style=dashed;")
                r_params, r_results = self.function(region, indent + "  ", False)
                self.lines.append(f"{indent}}}")
                # the op feeds its regions and takes their results back
                for p in r_params:
                    self.lines.append(f"{indent}{node} -> {p} [style=dotted];")
                for r in r_results:
                    self.lines.append(f"{indent}{r} -> {node} [style=dotted];")
        results = []
        for i, r in enumerate(fn.results):
            node = self.fresh("r")
            results.append(node)
            self.lines.append(f"{indent}{node} [label={_quote(f'result {i}: {r.type}')}, "
                              f"shape=house, style=filled, fillcolor=\"{RESULT_COLOR}\"];")
            src = node_of.get(r)
            if src is not None:
                self.lines.append(f"{indent}{src} -> {node};")
        return params, results


def function_to_dot(fn: Function, primal: Function | None = None) -> str:
    """The dataflow graph of fn in the DOT language (see the module docstring).

    Args:
        fn: the Function.
        primal: the Function fn differentiates, if any: colours forward and adjoint ops.
    """
    writer = _DotWriter(forward_ops(fn, primal) if primal is not None else None)
    writer.function(fn, "  ", True)
    head = [f"digraph {_quote(fn.name)} {{", "  rankdir=TB;",
            '  node [fontname="monospace", fontsize=10];', '  edge [color="#555555"];']
    return "\n".join(head + writer.lines + ["}"]) + "\n"


class RenderError(RuntimeError):
    """No Graphviz renderer is installed (the message names what to install)."""


def render_svg(dot_text: str) -> str:
    """SVG text of a DOT graph: Graphviz's `dot` program, else the `graphviz` package.

    Raises:
        RenderError: neither is installed.
    """
    exe = shutil.which("dot")
    if exe is not None:
        done = subprocess.run([exe, "-Tsvg"], input=dot_text.encode(), capture_output=True,
                              timeout=120)
        if done.returncode != 0:
            raise RenderError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout.decode()
    try:
        import graphviz         # NOTE: optional, only needed to render without `dot`
    except ImportError:
        raise RenderError("rendering SVG needs Graphviz: install the `dot` program "
                          "(e.g. apt-get install graphviz) or the Python package graphviz "
                          "(which itself needs the program); the DOT text is available "
                          "with to_dot()") from None
    return graphviz.Source(dot_text).pipe(format="svg").decode()
