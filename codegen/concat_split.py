"""Concatenates along a nest's innermost axis: the loop split at the pieces' boundaries.

The elemental form of `concatenate` (codegen.elemental) computes every piece's element at a
clamped index and picks one with a chain of selects: three loads, three index clamps and
two selects per element for a concatenate of three, and LLVM's vectoriser gives up on the
gathered loads. A [16,32,192] concatenate of three [16,32,64] values (the packed q/k/v
gradient of self-attention) ran at ~4-7 GB/s, as long as an 8 MFLOP product.

When a concatenate's axis is read at the innermost loop variable of a nest (the concatenate
is a root of the nest, or reached from one through same-index elementwise ops), the nest
runs that loop as one loop per range between the pieces' boundaries (`cuts`), and notes
each loop variable's range in `Elemental.known`. The concatenate's rule (`piece_in_range`)
then reads only the piece that range lies in, at `i - offset`: no clamps, no selects, one
unit-stride load. Each element is computed by the same operations in the same order as
before (the loop visits the same indices, in the same order), so results are bitwise equal.

A pad along the innermost axis (no interior padding) cuts the loop the same way, at its
operand's edges: `_pad` then reads the operand at `i - lo` inside them and gives zeros
outside (the CNN's input pad ran scalar on AVX2 at ~8x a copy of its bytes).
"""
from __future__ import annotations

from codegen.lower import scalar_rules

MAX_PIECES = 8      # loops per innermost range: bounds the code emitted per nest body
STATS = {"split_loops": 0, "piece_reads": 0}     # emitted (tests count them)


def cuts(roots: list, producers: dict, buffers: dict, space: tuple) -> list[int]:
    """The offsets strictly inside (0, space[-1]) where a concatenate read at the nest's own
    index changes piece (empty: no split). Only values without a buffer are entered."""
    if not space:
        return []
    found, seen = set(), set()
    stack = [producers[r.value].inputs[0] if r.kind == "reduce" else r.value for r in roots]
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        op = producers.get(v)
        if op is None:
            continue
        if op.prim.name == "concatenate" and _splits_inner(op, space):
            offset = 0
            for x in op.inputs[:-1]:
                offset += x.shape[op.params["axis"]]
                found.add(offset)
        if op.prim.name == "pad" and _pads_inner(op, space):
            # the operand's edges along the inner axis (codegen.elemental's _pad)
            lo = op.params["lo"][-1]
            found.update((lo, lo + op.inputs[0].shape[-1]))
        if op.prim.name in scalar_rules or op.prim.name == "concatenate":
            stack.extend(x for x in op.inputs if x not in buffers)
    inside = sorted(c for c in found if 0 < c < space[-1])
    return inside if len(inside) < MAX_PIECES else []


def _pads_inner(op, space: tuple) -> bool:
    shape = op.results[0].shape
    return (len(shape) > 0 and shape[-1] == space[-1] and not op.params["interior"][-1]
            and op.inputs[0].type.size > 0)


def _splits_inner(op, space: tuple) -> bool:
    shape = op.results[0].shape
    return op.params["axis"] == len(shape) - 1 and shape[-1] == space[-1]


def ranges(start: int, stop: int, points: list[int]) -> list[tuple[int, int]]:
    """[start, stop) cut at the points inside it, as consecutive (lo, hi) pairs."""
    inner = [p for p in points if start < p < stop]
    bounds = [start, *inner, stop]
    STATS["split_loops"] += len(inner) > 0
    return [(lo, hi) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]


def piece_in_range(op, known):
    """(input, offset) of the one piece of concatenate op that the known (lo, hi) range of
    its axis index lies in, or None when the range spans more than one."""
    lo, hi = known
    offset = 0
    for x in op.inputs:
        size = x.shape[op.params["axis"]]
        if offset <= lo and hi <= offset + size and size and x.type.size:
            STATS["piece_reads"] += 1
            return x, offset
        offset += size
    return None
