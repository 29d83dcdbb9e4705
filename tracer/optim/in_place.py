"""An optimizer state tensor's new value written over its old array, when nothing else can
see the old one.

A step program reads each parameter, its gradient and its state tensors (SGD's momentum
buffer, Adam's moments) and returns fresh arrays for the new values. Writing a fresh array
costs more than the arithmetic: MLP 784's SGD-momentum pass (~200K f32 parameters) writes
two 0.8 MB arrays whose lines are not in cache, and each written line is first read from L3
(Xeon, 1 thread, CPU medians, caches flushed as a training step's products flush them:
~230-260 us with both outputs fresh, ~160-190 with one written in place, ~100 with both).

A parameter's Expr is held by more than its tensor (measured on MLP 784: its Storage, the
input list of the autograd node that read it, and that node's output's recipe; in a followed
step that output stays pending, held by the step's own lists, and could be computed after
the step: docs/imperative.md section 4), so parameters keep fresh arrays. A state tensor
belongs to
the optimizer: its new value goes into its own array when, at that step,

  - its Expr is held by the tensor alone and its array by that Expr alone (sys.getrefcount:
    a NumPy view the user took, a pending expression reading it, a view tensor sharing its
    storage: each holds one more reference), the array owns its data and is writeable;
  - the array is not another input of the program (no two inputs share it);
  - the program reads each element before it writes it and never after: every op is
    elementwise (or a scalar, or a scalar broadcast: `aliasable`), so a nest reads and
    writes the same index, and the program passed a check once: run on copies with the state
    outputs written over their inputs, it gave the same bits as with fresh outputs
    (`verified`; a kernel that read an overwritten input again would not).

Anything else writes a fresh array as before; the results are the same bits either way.
`ENABLED` and `STATS` are for tests and comparison.
"""
from __future__ import annotations

import sys

import numpy as np

from runtime import config

__all__ = ["ENABLED", "STATS", "aliasable", "pairs", "outputs", "verified"]

ENABLED = True
STATS = {"in_place": 0, "fresh": 0, "verified": 0, "refused": 0}
# sys.getrefcount of a state tensor's Expr held by the tensor alone, as `outputs` reads it:
# the tensor's attribute, the local name, getrefcount's argument
EXPR_REFS = 3
# and of its array held by that Expr alone: the Expr's data, the program's input list, the
# local name, getrefcount's argument
ARRAY_REFS = 4


def aliasable(fn) -> bool:
    """Whether every op of the program fn is elementwise, a constant, or a broadcast of a
    scalar: each output element is then computed from the inputs' elements at its own
    index."""
    for op in fn.body:
        prim = op.prim
        if prim.elementwise or prim.name == "constant":
            continue
        if prim.name == "broadcast_in_dim" and op.inputs[0].type.shape == ():
            continue
        return False
    return True


def pairs(params: list, held: list) -> tuple:
    """(output index, input index) of every state tensor of a step program whose inputs are,
    per parameter, the parameter, its gradient and its state tensors (held: per parameter,
    its (name, tensor) pairs in the program's order), and whose outputs are the new
    parameter and state tensors in the same order."""
    found, i, o = [], 0, 0
    for _, tensors in zip(params, held):
        i += 2
        o += 1
        for _ in tensors:
            found.append((o, i))
            i += 1
            o += 1
    return tuple(found)


def outputs(specs: list, arrays: list, targets: list, found: tuple, kept: set) -> list:
    """The program's output arrays: a state tensor's own input array where nothing else
    can see it (module docstring), else fresh ones. specs: (shape, dtype) per output;
    targets: the tensor each output is assigned to; kept: the ids of the arrays the
    program's Executable holds for reuse (one more reference each, not a reader)."""
    outs = [None] * len(specs)
    # one pass for the rule "no two inputs share an array" (a scan per state tensor was
    # quadratic: ~60 us a step on the transformer's AdamW)
    shared = len({id(a) for a in arrays}) != len(arrays)
    for o, i in found:
        t = targets[o]
        expr = t._expr
        arr = arrays[i]
        shape, dtype = specs[o]
        refs = ARRAY_REFS + 1 if id(arr) in kept else ARRAY_REFS
        if sys.getrefcount(expr) == EXPR_REFS and sys.getrefcount(arr) == refs and \
                arr.flags.owndata and arr.flags.writeable and arr.shape == shape and \
                arr.dtype == dtype and not (shared and _shared(arr, arrays, i)):
            outs[o] = arr
            STATS["in_place"] += 1
    for k, out in enumerate(outs):
        if out is None:
            shape, dtype = specs[k]
            outs[k] = np.empty(shape, dtype)
            STATS["fresh"] += 1
    return outs


def verified(run_into, specs: list, arrays: list, found: tuple) -> bool:
    """Whether the program (run_into(arrays, outs)) gives the same bits with each state
    output written over a copy of its input as with fresh outputs (on copies: the step's
    real arrays are not touched)."""
    fresh = run_into(arrays, [np.empty(shape, dtype) for shape, dtype in specs])
    if fresh is None:             # another backend: nothing to write in place
        return False
    copies = list(arrays)
    outs = [np.empty(shape, dtype) for shape, dtype in specs]
    for o, i in found:
        copies[i] = outs[o] = np.array(arrays[i], copy=True)
    written = run_into(copies, outs)
    same = all(a.dtype == b.dtype and a.shape == b.shape and
               np.array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))
               for a, b in zip(fresh, written))
    STATS["verified" if same else "refused"] += 1
    if not same:
        config.log.info("optimizer: its state is not written in place: the program gave "
                        "other bits with its state outputs over its inputs")
    return same


def _shared(arr, arrays: list, index: int) -> bool:
    """Whether another input of the program is the same array."""
    for j, other in enumerate(arrays):
        if j != index and other is arr:
            return True
    return False
