"""ir.graphs against networkx: the same topological order and the same minimum cut."""
import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.graphs import DiGraph, FlowNetwork, topological_order


@st.composite
def dags(draw):
    n = draw(st.integers(1, 30))
    edges = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=80))
    keys = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    return n, [(min(a, b), max(a, b)) for a, b in edges if a != b], keys


@settings(max_examples=200, deadline=None)
@given(dags())
def test_topological_order_is_networkx_lexicographic_order(case):
    n, edges, keys = case
    g, ref = DiGraph(), nx.DiGraph()
    for k in range(n):
        g.add_node(k)
        ref.add_node(k)
    for a, b in edges:
        g.add_edge(a, b)
        ref.add_edge(a, b)
    key = lambda k: (keys[k], k)  # noqa: E731
    assert topological_order(g, key) == list(nx.lexicographical_topological_sort(ref, key=key))


def test_topological_order_refuses_a_cycle():
    g = DiGraph()
    g.add_edge(0, 1)
    g.add_edge(1, 0)
    try:
        topological_order(g, key=lambda k: k)
    except ValueError as e:
        assert "cycle" in str(e)
    else:
        raise AssertionError("a cycle was ordered")


def test_remove_node_drops_its_edges():
    g = DiGraph()
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.remove_node("b")
    assert "b" not in g and len(g) == 2
    assert topological_order(g, key=str) == ["a", "c"]


@st.composite
def networks(draw):
    n = draw(st.integers(2, 14))
    edges = draw(st.lists(
        st.tuples(st.integers(0, n - 1), st.integers(0, n - 1),
                  st.one_of(st.none(), st.integers(0, 20))), max_size=50))
    return n, [(a, b, c) for a, b, c in edges if a != b]


def _sink_side_reference(residual):
    side, todo = {"t"}, ["t"]
    while todo:
        x = todo.pop()
        for u in residual.predecessors(x):
            e = residual[u][x]
            if u not in side and e["capacity"] - e["flow"] > 0:
                side.add(u)
                todo.append(u)
    return side


@settings(max_examples=300, deadline=None)
@given(networks())
def test_min_cut_equals_networkx_preflow_push(case):
    n, edges = case
    net, ref = FlowNetwork(), nx.DiGraph()
    name = lambda k: "s" if k == 0 else "t" if k == n - 1 else k  # noqa: E731
    for a, b, c in edges:
        net.add_edge(name(a), name(b), c)
        ref.add_edge(name(a), name(b))
        if c is not None:
            ref[name(a)][name(b)]["capacity"] = c
        else:
            ref[name(a)][name(b)].pop("capacity", None)
    if "s" not in ref or "t" not in ref:
        return
    flow, side = net.min_cut_sink_side("s", "t")
    try:
        residual = nx.algorithms.flow.preflow_push(ref, "s", "t")
    except nx.NetworkXUnbounded:                 # a path of infinite edges only
        assert flow == float("inf")
        return
    if residual.graph["flow_value"] >= residual.graph["inf"]:
        assert flow == float("inf")
        return
    assert flow == residual.graph["flow_value"]
    assert side == _sink_side_reference(residual)


def test_infinite_path_has_no_finite_cut():
    net = FlowNetwork()
    net.add_edge("s", "a")
    net.add_edge("a", "t")
    net.add_edge("s", "t", 3)
    assert net.min_cut_sink_side("s", "t")[0] == float("inf")
