"""The autograd graph as a Graphviz picture (torchviz's make_dot, with PyTorch's names).

    print(gj.autograd.to_dot(loss))            # DOT text; loss.grad_fn.to_dot() alike
    gj.autograd.to_dot(loss, params=dict(model.named_parameters()))

One node per grad_fn (`MulBackward0`, `AddmmBackward0`, ...), edges along
`next_functions` from the inputs toward the output, and each leaf that requires grad
(its `AccumulateGrad`) drawn with its name, when `params` gives one, and its shape. The
output tensors are drawn at the bottom with their shapes.
"""
from __future__ import annotations

LEAF_COLOR = "lightblue"
OUTPUT_COLOR = "darkolivegreen1"
SAVED_COLOR = "orange"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shape(t) -> str:
    return "(" + ", ".join(map(str, t.shape)) + ")"


def to_dot(outputs, params: dict | None = None) -> str:
    """DOT text of the autograd graph behind `outputs` (a Tensor, a grad_fn node, or a
    list/tuple of them); `params` maps names to leaf Tensors, to label the leaves."""
    roots = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    names = {id(t): name for name, t in (params or {}).items()}
    lines = ["digraph autograd {", '  node [fontname="monospace", fontsize=10, '
             'shape=box, style=filled, fillcolor="#eeeeee"];', "  rankdir=TB;"]
    ids: dict[int, str] = {}
    edges: set[tuple[str, str]] = set()

    def node_id(obj) -> str:
        key = id(obj)
        if key not in ids:
            ids[key] = f"n{len(ids)}"
        return ids[key]

    stack = []
    for k, out in enumerate(roots):
        node = getattr(out, "grad_fn", out) if hasattr(out, "shape") else out
        if hasattr(out, "shape"):
            oid = f"out{k}"
            lines.append(f"  {oid} [label={_quote(f'output {_shape(out)}')}, "
                         f"fillcolor={OUTPUT_COLOR}];")
            if node is not None:
                edges.add((node_id(node), oid))
        if node is not None:
            stack.append(node)
    seen = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        me = node_id(node)
        var = getattr(node, "variable", None)
        if var is not None:
            label = names.get(id(var), "")
            label = f"{label}\n{_shape(var)}" if label else _shape(var)
            lines.append(f"  {me} [label={_quote(label)}, fillcolor={LEAF_COLOR}];")
        else:
            label = type(node).__name__
            loc = getattr(node, "loc", None)
            if loc:
                label += f"\n{loc}"
            lines.append(f"  {me} [label={_quote(label)}];")
        for nxt, _ in getattr(node, "next_functions", ()):
            if nxt is not None:
                edges.add((node_id(nxt), me))
                stack.append(nxt)
    lines += [f"  {a} -> {b};" for a, b in sorted(edges)]
    return "\n".join(lines + ["}"]) + "\n"
