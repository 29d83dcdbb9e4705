"""A small reader of the DOT subset gradjit writes: enough to check pictures' structure."""
from __future__ import annotations

import re

NODE = re.compile(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)"')
EDGE = re.compile(r"^\s*(\w+) -> (\w+)")
CLUSTER = re.compile(r"^\s*subgraph (cluster_\w+) \{")


def read_dot(text: str) -> dict:
    """{'nodes': {id: label}, 'edges': [(a, b)], 'clusters': [name]}; asserts the text is
    one digraph with balanced braces and that every edge joins declared nodes."""
    lines = text.strip().splitlines()
    assert lines[0].startswith("digraph ") and lines[0].endswith("{"), lines[0]
    assert lines[-1] == "}"
    depth = 0
    nodes, edges, clusters = {}, [], []
    for line in lines:
        depth += line.count("{") - line.count("}") if not NODE.match(line) else 0
        assert depth >= 0, line
        if m := CLUSTER.match(line):
            clusters.append(m.group(1))
        elif m := EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
        elif m := NODE.match(line):
            assert m.group(1) not in nodes, f"node {m.group(1)} declared twice"
            nodes[m.group(1)] = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n"
                                       else e.group(1), m.group(2))
    assert depth == 0, "unbalanced braces"
    for a, b in edges:
        assert a in nodes and b in nodes, (a, b)
    return {"nodes": nodes, "edges": edges, "clusters": clusters}
