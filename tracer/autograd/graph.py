"""Walking the autograd graph: topological order, which nodes must run, where grads land."""
from __future__ import annotations

from tracer.autograd.nodes import AccumulateGrad, edge_of


def toposort(roots: list) -> list:
    """The nodes reachable from roots, each before every node it sends gradients to
    (reverse post-order of a depth-first walk; deterministic, so the emitted program
    has the same structure for the same graph)."""
    order, seen = [], set()
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(_next_nodes(root)))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                order.append(node)
            elif child not in seen:
                seen.add(child)
                stack.append((child, iter(_next_nodes(child))))
    order.reverse()
    return order


def _next_nodes(node) -> list:
    return [e[0] for e in node.edges if e is not None]


def needed_nodes(order: list, targets: set) -> set:
    """The nodes whose backward must run for some gradient to reach a target edge."""
    needed = set()
    for node in reversed(order):
        if isinstance(node, AccumulateGrad):
            continue
        for e in node.edges:
            if e is not None and (e in targets or e[0] in needed):
                needed.add(node)
                break
    return needed


def reachable_leaves(order: list, root_edges: list) -> list:
    """The AccumulateGrad edges a plain backward() fills, in graph order."""
    edges = [e for e in root_edges if isinstance(e[0], AccumulateGrad)]
    edges += [(n, 0) for n in order if isinstance(n, AccumulateGrad)]
    out, seen = [], set()
    for e in edges:
        if e not in seen:
            seen.add(e)
            out.append(e)
    return out


def retained_edges(order: list) -> list:
    """(edge, tensor) for every live non-leaf tensor that asked for retain_grad()."""
    out = []
    for node in order:
        for nr, ref in list(node.retained.items()):
            t = ref()
            if t is not None and t._grad_fn is node and t._output_nr == nr:
                out.append(((node, nr), t))
    return out


def edge_map(order: list, tensors: list) -> dict:
    """id(Expr) -> edge for every Expr the graph knows the gradient route of."""
    edges = {}
    for node in order:
        for e, edge in zip(node.input_exprs, node.edges):
            if e is not None and edge is not None:
                edges[id(e)] = edge
        for nr, e in enumerate(node.output_exprs):
            if e is not None:
                edges[id(e)] = (node, nr)
    for t in tensors:
        edge = edge_of(t)
        if edge is not None:
            edges[id(t._expr)] = edge
    return edges
