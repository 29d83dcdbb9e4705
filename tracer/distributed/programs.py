"""A staged function's program for one shard signature, in its wire form (IR text + hash).

The driver traces the staged function (gj.grad, value_and_grad, jit, ...) on arguments of a
shard's shapes, exactly as a local call would (`Staged.entry`), and prints the optimised
ir.Function. The text, content-hashed with SHA-256, is what a worker receives. Arrays the
function closes over are trailing parameters of that Function (closure conversion, see
docs/design.md): they travel as broadcast arguments, put in Ray's object store once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from runtime.worker import digest_of
from tracer.pytree import TreeDef
from tracer.staging import Signature, Staged
from tracer.tensor import realize


@dataclass
class Program:
    name: str
    digest: str                       # sha256 of text: the name a worker knows it by
    text: str
    out_tree: TreeDef                 # how the flat results rebuild into f's output
    result_dtypes: list
    captures: list[np.ndarray] = field(repr=False)    # the closure's arrays: trailing params


def program_for(staged: Staged, sig: Signature) -> Program:
    """The optimised program staged runs for signature sig, ready to ship."""
    entry = staged.entry(sig)
    if any(c.symbolic for c in entry.captures):
        raise TypeError(f"{staged.name} closes over a value of an enclosing trace; "
                        "data_parallel must be called outside jit/grad")
    captures = [np.ascontiguousarray(a) for a in realize(list(entry.captures))]
    text = str(entry.fn)
    return Program(entry.fn.name, digest_of(text), text, entry.out_tree,
                   [t.np_dtype for t in entry.fn.result_types], captures)
