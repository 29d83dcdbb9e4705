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
        # NOTE: parallel stacks of nodes and edge positions rather than (node, iterator)
        # pairs and a list of children per node: backward() sorts every step (MLP 32: ~17
        # -> ~8 us)
        nodes, positions = [root], [0]
        while nodes:
            edges = nodes[-1].edges
            i, n = positions[-1], len(edges)
            child = None
            while i < n:
                e = edges[i]
                i += 1
                if e is not None and e[0] not in seen:
                    child = e[0]
                    break
            if child is None:
                positions.pop()
                order.append(nodes.pop())
                continue
            positions[-1] = i
            seen.add(child)
            nodes.append(child)
            positions.append(0)
    order.reverse()
    return order


def needed_nodes(order: list, targets: set) -> set:
    """The nodes whose backward must run for some gradient to reach a target edge."""
    needed = set()
    for node in reversed(order):
        edges = node.edges
        if not edges:                      # AccumulateGrad (and a node with no inputs)
            continue
        for e in edges:
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
        if not node.retained:
            continue
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
