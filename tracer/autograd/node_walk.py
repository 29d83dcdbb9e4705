"""The backward key's walk, stopping at the outputs of nodes replayed from a template.

replay.py keys a backward by the structure of the Expr graph behind its nodes
(structure_key.walk: every Expr of the forward, one part each). Most of those Exprs are
the interiors of user ops replayed from an op_memo Template (cross_entropy alone records
27 primitives): their structure is the Template's, applied to the node's input Exprs. So an
output of such a node is described as (the Template, which node, which of its results,
whether it holds data, the positions of the node's inputs), and the walk goes on from the
inputs, never into the interior.

That is the same structure only while the interior is what the replay made. What rules a
node out (recording.py and `add_stops` check it; such a node's outputs are walked
Expr by Expr, as before):
  - its outputs are not the Template's any more: an in-place op adopted the node
    (inplace._adopt_node rewrites `output_exprs`), an output was wrapped by
    `_distinct_output_expr`, or a result is not a new float Tensor;
  - an interior Expr may hold data: bounded.py's op-by-op tier computes a large graph's
    interior values and keeps their ops (a backward program would then read them, not
    recompute them). Any such read since the node was recorded rules it out;
  - the node was not made from a replayed Template (its op is not memoised, or ran its body).
Nothing else reaches an interior: a Template's inner Exprs are referenced only by each
other and by its outputs (no Tensor, view or recorded sibling holds them).
"""
from __future__ import annotations

from runtime import log, logging_enabled
from tracer import structure_key

# backward keys that stopped at template outputs (nodes: how many such nodes in all), and
# nodes whose template was ruled out (the tests read these)
STATS = {"keys": 0, "nodes": 0, "ruled_out": 0}


def add_stops(stops: dict, node, pos: int, tm: tuple, reads: int) -> bool:
    """Adds node's outputs to stops (id(output Expr) -> (Template, node position, result
    number, input Exprs)) if they are still those its Template replay made (tm: the node's
    `template`; reads: bounded.py's count of op-by-op reads now)."""
    template, outs, when = tm
    if when != reads or node.output_exprs != outs:
        STATS["ruled_out"] += 1
        if logging_enabled():
            why = ("values inside it were computed op by op (bounded.py)" if when != reads
                   else "an in-place op rewrote its output")
            log.info(f"backward key: {node.name()} walked value by value: {why}")
        return False
    STATS["nodes"] += 1
    args = [e for e in node.input_exprs if e is not None]
    for k, e in enumerate(outs):
        stops[id(e)] = (template, pos, k, args)
    return True


def walk(roots: list, stops: dict, limit: int) -> tuple[list, dict, tuple]:
    """structure_key.walk(roots, through_data=True, limit), except that an Expr in stops is
    one part naming its Template and the walk continues from the node's inputs."""
    return structure_key.walk(roots, True, limit, stops)
