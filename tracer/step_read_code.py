"""A followed read as Python written for its tape (step_capture.fast_read's first try).

A tape's read does not change once its program is kept: the same roots by code, the same
pinned Exprs, leaves and input codes, the same Executable. So, as step_follow_code.py writes
each event, this writes the read once its events are written and its program is kept: each
root found at constant indexes (the in-place ones unpacked from tensor.updated_tensors()'s values),
each input array at constant indexes with Executable.check_args' test inline, then the
kernel (Executable.run_read_only). For polynomial_tensor.py's pinned read it reads:

    def read_tape(s, pending):
        UPDATED = PENDING.updated               (this thread's in-place updates)
        if s.events is not None or s.pos != 30 or capture.VERIFY or tape.pinned is not KEY \\
                or ...:                        (the settings and patch points the kept call
            return None                         checks: plain_native, run_function, run)
        if len(pending) != 1 or len(UPDATED) != 4:
            return None
        outs = s.outs
        ...
        r0 = outs[10]
        ...
        if pending[0] is not r0:
            return None
        w1, w2, w3, w4 = UPDATED.values()
        t1 = w1()
        if t1 is None or t1._expr is not r1 or r1.data is not None or r1.symbolic:
            return None
        ...
        if L0.tobytes() != B0:                  (the pinned values' leaves, as _pinned_read)
            return None
        a4 = prev[29].data
        if type(a4) is not ndarray or a4.dtype is not D4 or a4.shape != S4 or ...
            return None
        ...
        return [r0, r1, r2, r3, r4], run([V0, V1, a2, ...])

Anything it does not accept returns None before changing anything (but the dead entries
of updated_tensors() it drops, as tensor.updated_pending drops them), and the generic read
(step_capture.fast_read, unchanged) then takes it: it accepts the same reads (the same
checks, in loops) and drops the tape, with its logged reason, for one it refuses. The values
a read computes along because a Tensor held them (realize_plans.held: two_layer_net_tensor.py's
`h = x.mm(w1)`) are roots after the in-place ones, checked pending and marked recorded last,
as step_capture._held does.
"""
from __future__ import annotations

import numpy as np

from runtime.config import plain_native
from runtime.executable import Executable
from tracer import step_read, step_tape
from tracer import tensor as _tensor_module
from tracer.step_follow_code import where
from tracer.step_tape import CUR

# reads written, sources compiled, reads taken by written ones (tests)
STATS = {"written": 0, "compiled": 0, "reads": 0}
_CODE: dict = {}
_MAX_CODE = 256
_MAX_READ = 4


def _on_index_error_none(body: list) -> list:
    """body's lines in a `try:` whose IndexError returns None; none at all for an empty body
    (an empty `try:` does not compile: a tape with no root checks or no fetched arrays)."""
    if not body:
        return []
    return ["    try:", *body, "    except IndexError:", "        return None"]


def consider(tape, capture):
    """Writes tape's read when it can be and is not written for the tape's state yet (the
    learnt program, the learnt one while the pinned values wait for their reads, or the
    pinned one: step_capture._pinned_read): called after a generic read from the tape ran
    its kept program."""
    key = tape.pinned
    waiting = bool(key) and key[1] is None
    done = tape.read_key
    if done is not None and done[0] is key and done[1] is waiting or tape.unwritten != -1 \
            or not step_tape.WRITE:
        return                               # (written for this state, or not yet: events)
    tape.read_key = (key, waiting)
    tape.read_code = None
    if key and not waiting:                  # the pinned program, its values computed
        _, values, codes, leaves, kept, _, seen = key
        if kept is None or seen is None:
            return
        pins = list(values)
    else:                                    # the learnt program
        kept, codes, pins, leaves, seen = tape.exe, tape.captures, [], [], []
        if kept is None:
            return
    tape.read_code = _write(tape, capture, kept, codes, pins, leaves, seen, waiting)


def _where(kind: int, j: int, r: int, counts: tuple) -> str:
    return where("outs" if kind == CUR else "prev", j, r, counts)


def _write(tape, capture, kept, codes, pins: list, leaves: list, seen: list, waiting: bool):
    n_roots = len(tape.root_checks)
    n_read = n_roots - tape.held           # the values read and the in-place updates
    env = {"KEY": tape.pinned, "capture": capture, "tape": tape, "Executable": Executable,
           "RUN": step_read._RUN, "plain_native": plain_native, "TM": _tensor_module,
           "RUNF": kept.run, "PENDING": _tensor_module.PENDING, "ndarray": np.ndarray,
           "run": kept.exe.run_read_only, "STATS": step_tape.STATS,
           "RSTATS": step_read.STATS, "OWN": STATS, "prune_dead": step_read.prune_dead}
    lines = ["def read_tape(s, pending):",
             "    UPDATED = PENDING.updated",      # (this thread's in-place updates)
             f"    if s.events is not None or s.pos != {len(tape.events)} or capture.VERIFY "
             "or tape.pinned is not KEY or Executable.run is not RUN or not plain_native() "
             "or TM.run_function is not RUNF:",
             "        return None",
             # (the pinned values wait: this read counts one down, the last one computes them)
             *(["    if KEY[1] is not None or KEY[5] <= 0:", "        return None"]
               if waiting else []),
             f"    if len(pending) + len(UPDATED) != {n_read} and "
             f"len(pending) + prune_dead(UPDATED) != {n_read}:",
             "        return None",
             "    outs = s.outs",
             "    prev = s.prev_outs"]
    counts = tape.counts()
    lines += _on_index_error_none([f"        r{i} = {_where(*c, counts)}"
                                   for i, c in enumerate(tape.root_checks)])
    # the roots: pending's (the values read) first, then the in-place updates in
    # tensor.updated_tensors()'s order (as tensor.updated_pending lists them: step_read.tape_roots)
    lines += ["    n = len(pending)"]
    # (a read of up to _MAX_READ values written; one of more, rare, takes the generic read:
    # the source grows with values read times roots)
    for n in range(1, min(n_read, _MAX_READ) + 1):
        names = ", ".join(f"p{i}" for i in range(n))
        lines += [f"    {'if' if n == 1 else 'elif'} n == {n}:",
                  f"        {names}, = pending"]
        for i in range(n):
            lines += [f"        if p{i} is not r{i}:", "            return None"]
        if n < n_read:
            ws = ", ".join(f"w{i}" for i in range(n, n_read))
            lines += [f"        {ws}, = UPDATED.values()"]
            for i in range(n, n_read):
                lines += [f"        t{i} = w{i}()",
                          f"        if t{i} is None or t{i}._expr is not r{i} or "
                          f"r{i}.data is not None or r{i}.symbolic:",
                          "            return None"]
    lines += ["    else:", "        return None"]
    # the values computed along because a Tensor held them when the tape was learnt
    # (step_capture._held: still pending, then marked recorded as realize_plans.held does)
    for i in range(n_read, n_roots):
        lines += [f"    if r{i}.data is not None:", "        return None"]
    # the Exprs behind the pins pending as when the tape was kept (step_capture.fast_read)
    for i, (e, was) in enumerate(zip(tape.pin_exprs, tape.pin_pending)):
        env[f"PE{i}"] = e
        lines += [f"    if PE{i}.data is {'not ' if was else ''}None:", "        return None"]
    for i, (leaf, b) in enumerate(zip(leaves, seen)):
        env[f"L{i}"], env[f"B{i}"] = leaf, b
        lines += [f"    if L{i}.tobytes() != B{i}:", "        return None"]
    args = []
    for i, v in enumerate(pins):
        env[f"V{i}"] = v
        args.append(f"V{i}")
    params = kept.ins
    if len(pins) + len(codes) != len(params):
        return None
    fetch = []
    for k, c in enumerate(codes):
        a = f"a{k}"
        if type(c) is tuple:                 # ("walk", i): a leaf behind the pinned Exprs
            env[f"W{k}"] = tape.pin_exprs[c[1]]
            fetch += [f"        {a} = W{k}.data"]
        elif c >= 0:
            j, r = divmod(c >> 1, 16)
            fetch += [f"        {a} = {where('prev' if c & 1 else 'outs', j, r, counts)}.data"]
        else:
            m, earlier = divmod(-c - 1, 2)
            fetch += [f"        {a} = s.{'prev_ext' if earlier else 'ext'}[{m}].data"]
        args.append(a)
    lines += _on_index_error_none(fetch)
    for k in range(len(codes)):
        a = f"a{k}"
        shape, dt = params[len(pins) + k]
        env[f"S{k}"], env[f"D{k}"] = shape, dt
        lines += [f"    if type({a}) is not ndarray or {a}.dtype is not D{k} or "
                  f"{a}.shape != S{k} or not {a}.flags.c_contiguous:",
                  "        return None"]
    lines += [*(["    KEY[5] -= 1"] if waiting else []),
              *[f"    r{i}.recorded = True" for i in range(n_read, n_roots)],
              "    STATS['reads'] += 1",
              *(["    STATS['pinned'] += 1"] if pins else []),
              f"    STATS['calls'] += {len(tape.events)}",
              "    RSTATS['direct'] += 1",
              "    OWN['reads'] += 1",
              f"    return [{', '.join(f'r{i}' for i in range(n_roots))}], "
              f"run([{', '.join(args)}])"]
    text = "\n".join(lines)
    code = _CODE.get(text)
    if code is None:
        if len(_CODE) >= _MAX_CODE:
            _CODE.clear()
        code = _CODE[text] = compile(text, "<gradjit step read>", "exec")
        STATS["compiled"] += 1
    exec(code, env)  # noqa: S102
    STATS["written"] += 1
    return env["read_tape"]
