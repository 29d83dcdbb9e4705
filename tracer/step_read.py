"""A followed read's parts outside its checks (tracer/step_capture.py's fast_read): its roots
found from the tape's codes, and its kept program called with read-only outputs.

Both are on the path of every read of a followed loop (polynomial_tensor.py reads once a
step), so each does in one pass what the general path does in several: the in-place roots
without tensor.updated_pending's set and bare-constant tests, and the kernel without
Executable.__call__'s argument checks, its outputs made read-only by the builtin that calls
a small kernel (Executable.run_read_only) instead of a flag store per output.
"""
from __future__ import annotations

import numpy as np

from runtime.config import plain_native
from runtime.executable import Executable
from tracer import tensor as _tensor_module
from tracer.step_tape import CUR, result_at

# the run a profiling session (runtime/profile.py) swaps: the kept call then goes through it
_RUN = Executable.run
_empty = np.empty
_ndarray = np.ndarray
# reads whose program was called without Executable's argument checks (tests)
STATS = {"direct": 0}


def tape_roots(pending: list, checks: tuple, want: int, outs: list, prev) -> list | None:
    """pending + tensor.updated_pending(pending), found from the tape's root checks (the
    first `want` of checks: codes of this cycle's or the last one's results) when every live
    in-place update is the one the tape names, in order; else None (the caller lists them
    as the general path does, and checks them then).

    Equal to updated_pending's list when accepted: each entry of tensor.updated_tensors() is alive,
    holds the pending Expr of the tape's next in-place root (so it is not symbolic: events'
    results never are), and is none of the earlier roots (the tape's root codes are of
    distinct Exprs: realize_plans listed each once when the tape was learnt, and the same
    events give the same sharing); it is no bare constant (that is its template's, and the
    learning read, made by the same event's template, listed it)."""
    live = _tensor_module.updated_tensors()
    n = len(pending)
    if n + len(live) != want and n + prune_dead(live) != want:
        return None
    roots = list(pending)
    try:
        for e, (kind, j, r) in zip(pending, checks):
            if result_at(outs if kind == CUR else prev, j, r) is not e:
                return None
        for ref in live.values():
            t = ref()
            if t is None:
                return None
            e = t._expr
            kind, j, r = checks[n]
            if result_at(outs if kind == CUR else prev, j, r) is not e or e.data is not None or \
                    e.symbolic:
                return None
            roots.append(e)
            n += 1
    except IndexError:                       # (a code past this cycle's events)
        return None
    return roots


def prune_dead(updated: dict) -> int:
    """Deletes the entries of tensors that died (updated_pending deletes them too, and never
    lists them), returning how many are left: a tensor updated in place inside the step and
    dropped before the read (two_layer_net_tensor.py's `grad_h[h < 0] = 0` in a function)
    leaves one dead entry a step, which made every read list its roots the general way."""
    for key, ref in list(updated.items()):
        if ref() is None:
            updated.pop(key, None)
    return len(updated)


class KeptRead:
    """A read's Executable kept on the tape (or the pinned program), and the run_function
    it was found for: it is called directly only while run_function is that one and the
    settings ask for plain native code (tests wrap run_function to count programs)."""
    __slots__ = ("exe", "run", "ins")

    def __init__(self, exe: Executable, run):
        self.exe, self.run = exe, run
        self.ins = tuple([(p.type.shape, p.type.np_dtype) for p in exe.fn.params])

    def usable(self) -> bool:
        return plain_native() and _tensor_module.run_function is self.run

    def __call__(self, arrays: list) -> list:
        """The program's outputs on arrays, read-only."""
        exe = self.exe
        if Executable.run is _RUN and len(arrays) == len(self.ins):
            # Executable.check_args' test without its conversions: else it converts
            for a, (shape, dt) in zip(arrays, self.ins):
                if type(a) is not _ndarray or a.dtype is not dt or a.shape != shape or \
                        not a.flags.c_contiguous:
                    break
            else:
                STATS["direct"] += 1
                return exe.run_read_only(arrays)
        return read_only(exe(*arrays))


def read_only(outs: list) -> list:
    for a in outs:
        a.flags.writeable = False
    return outs
