"""The two graph algorithms the compiler needs: a topological order and a minimum cut.

They were networkx calls; networkx takes ~200 ms to import (it loads every algorithm it
has), which was a third of `import gradjit` and paid again by every fresh process before
its first result. The graphs here are one function's steps or one loop body's values
(hundreds of nodes), so plain dictionaries are fast enough. tests/ir/test_graphs.py checks
both against networkx on random graphs.
"""
from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import Callable, Hashable, Iterable

INFINITE = None                     # an edge capacity that is never cut


class DiGraph:
    """Nodes and directed edges, in insertion order; enough for the fusion planner."""

    def __init__(self):
        self.succ: dict = {}
        self.pred: dict = {}

    def add_node(self, n):
        if n not in self.succ:
            self.succ[n] = {}
            self.pred[n] = {}

    def add_edge(self, u, v):
        self.add_node(u)
        self.add_node(v)
        self.succ[u][v] = None
        self.pred[v][u] = None

    def has_edge(self, u, v) -> bool:
        return v in self.succ.get(u, ())

    def successors(self, n) -> Iterable:
        return self.succ[n].keys()

    def remove_node(self, n):
        for v in self.succ.pop(n):
            del self.pred[v][n]
        for u in self.pred.pop(n):
            del self.succ[u][n]

    def __contains__(self, n) -> bool:
        return n in self.succ

    def __len__(self) -> int:
        return len(self.succ)


def topological_order(g: DiGraph, key: Callable) -> list:
    """The nodes of the DAG g, each after its predecessors; of the nodes ready at each
    point the one with the smallest key comes first (so the order is deterministic).

    Raises:
        ValueError: g has a cycle.
    """
    waiting = {n: len(p) for n, p in g.pred.items()}
    tie = itertools.count()                      # keys may be equal: never compare nodes
    ready = [(key(n), next(tie), n) for n, k in waiting.items() if k == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        n = heapq.heappop(ready)[2]
        order.append(n)
        for v in g.succ[n]:
            waiting[v] -= 1
            if waiting[v] == 0:
                heapq.heappush(ready, (key(v), next(tie), v))
    if len(order) != len(waiting):
        raise ValueError("topological_order: the graph has a cycle")
    return order


class FlowNetwork:
    """Directed edges with capacities (INFINITE: never cut) for a maximum flow."""

    def __init__(self):
        self.cap: dict = {}                      # node -> {node: residual capacity}

    def add_edge(self, u: Hashable, v: Hashable, capacity: int | None = INFINITE):
        """Adds u -> v; adding it again sets its capacity anew."""
        self.cap.setdefault(u, {})[v] = capacity
        self.cap.setdefault(v, {}).setdefault(u, 0)  # the reverse residual edge

    def __contains__(self, n) -> bool:
        return n in self.cap

    def __iter__(self):
        return iter(self.cap)

    def min_cut_sink_side(self, source, sink) -> tuple[float, set]:
        """The value of a maximum flow from source to sink, and the nodes that can still
        reach the sink in the residual network: the sink side of the minimum cut nearest
        the sink. The value is inf when every cut crosses an INFINITE edge.

        Dinic's algorithm: breadth-first levels, then blocking flows along them.
        """
        big = 1 + sum(c for edges in self.cap.values() for c in edges.values() if c)
        res = {u: {v: big if c is None else c for v, c in edges.items()}
               for u, edges in self.cap.items()}
        total = 0
        while True:
            level = _levels(res, source, sink)
            if sink not in level:
                break
            total += _blocking_flow(res, level, source, sink)
            if total >= big:
                return float("inf"), set()
        side, todo = {sink}, [sink]
        while todo:
            x = todo.pop()
            for u in res[x]:                     # u -> x has capacity left iff res[u][x] > 0
                if u not in side and res[u][x] > 0:
                    side.add(u)
                    todo.append(u)
        return total, side


def _levels(res: dict, source, sink) -> dict:
    level, todo = {source: 0}, deque([source])
    while todo and sink not in level:
        u = todo.popleft()
        for v, c in res[u].items():
            if c > 0 and v not in level:
                level[v] = level[u] + 1
                todo.append(v)
    return level


def _blocking_flow(res: dict, level: dict, source, sink) -> int:
    """Pushes flow along level-increasing paths until none is left (iterative DFS; an
    edge pointer moves on only past an edge that is full or leads to a dead end)."""
    adj = {u: list(res[u]) for u in level}
    ptr = dict.fromkeys(level, 0)
    total = 0
    while True:
        path, u = [], source
        while u != sink:
            edges, k = adj[u], ptr[u]
            while k < len(edges) and not (res[u][edges[k]] > 0
                                          and level.get(edges[k], -1) == level[u] + 1):
                k += 1
            ptr[u] = k
            if k < len(edges):
                path.append(u)
                u = edges[k]
                continue
            if not path:                         # the source is a dead end: done
                return total
            level[u] = -1                        # a dead end: never enter it again
            u = path.pop()
            ptr[u] += 1
        hops = list(zip(path, path[1:] + [sink]))
        push = min(res[a][b] for a, b in hops)
        for a, b in hops:
            res[a][b] -= push
            res[b][a] += push
        total += push
