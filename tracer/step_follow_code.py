"""A captured step's event checked and replayed by Python written for it (step_follow.follow).

A followed tape's events do not change once it is kept, so each plain one gets a function
written for its exact arguments when the tape is kept: its Tensor operands checked by
identity against the Exprs the tape says (constant indexes, no loop over per-argument
specs), its Python scalars against constants, the call site against the one last seen, then
its one pending result made. For `c * x.pow(2)`'s mul (operands: event 2's and 3's results
of this cycle) it reads:

    def follow_5(s, fn, args):
        if fn is not FN or len(args) != 2 or default_float[0] != DTYPE:
            return None
        a0, a1 = args
        if type(a0) is not Tensor or a0._requires_grad or a0._grad_fn is not None:
            return None
        e0 = a0._expr
        if e0 is not s.outs[2]:
            return None
        ...
        f = getframe(3)                  (the call site seen when written, as constants:
        if f.f_code is not CODE or f.f_lasti != LASTI:    as step_follow._site checks it)
            return None
        e = new(PendingExpr)
        ...
        return t

Anything it does not accept returns None before changing anything, and the generic check
(step_follow.follow) takes the call: it accepts the same calls (the same checks, in a loop)
and says why it refuses one. An operand's first use from outside the cycle is noted (s.ext) as
the generic check notes it, after every check passed; a view op's result then joins its
base's storage (views.mark_views, as follow() does). Events with a guard, several results,
a tuple argument or a float that == cannot tell apart (0.0, NaN) are not written: the
generic check takes them.
"""
from __future__ import annotations

import math
from sys import _getframe

from ir import Value
from tracer import pending_expr, step_tape
from tracer.dtypes import _default_float
from tracer.pending_expr import PendingExpr
from tracer.step_tape import CUR, EXT, FLOAT, NEW, PLAIN, PREV, PREV_EXT, TENSOR
from tracer.tensor import Tensor

# functions written, and their sources compiled (tests)
STATS = {"written": 0, "compiled": 0}
# source -> code object of the written functions (their constants are in env, not in it)
_CODE: dict = {}
_MAX_CODE = 4096
_WHERE = {CUR: "s.outs", PREV: "s.prev_outs"}


def where(cycle: str, j: int, r: int, counts: tuple) -> str:
    """The expression for result r of event j in a cycle's outs (step_tape.result_at, with
    the tape's counts of results per event: one is kept bare)."""
    return f"{cycle}[{j}]" if counts[j] == 1 else f"{cycle}[{j}][{r}]"


def write(pos: int, step: tuple, sites: list, pins: dict, counts: tuple):
    """The function checking and replaying event `pos` (step: step_tape's tuple for it;
    sites: the tape's call sites, read when called; pins: its pinned Exprs; counts: results
    per event), or None when it is not plain."""
    fn, dtype, _, specs, _, guard, template, _, outs, name, view = step
    if specs is None or guard is not None or outs is None:
        return None
    env = {"FN": fn, "DTYPE": dtype, "default_float": _default_float, "Tensor": Tensor,
           "sites": sites, "getframe": _getframe, "new": object.__new__,
           "PendingExpr": PendingExpr, "Value": Value, "set_recipe": pending_expr._ARGS.__set__,
           "TEMPLATE": template, "OUT_TYPE": outs[0], "SLOT": outs[1],
           "MARK": step_tape.mark_views, "NAME": name}
    n = len(specs)
    names = [f"a{i}" for i in range(n)]
    lines = [f"def follow_{pos}(s, fn, args):",
             f"    if fn is not FN or len(args) != {n} or default_float[0] != DTYPE:",
             "        return None",
             f"    {', '.join(names)}, = args"]
    ins, first = [], []
    for i, spec in enumerate(specs):
        a = names[i]
        kind = spec[0]
        if kind == TENSOR:
            check = spec[1]
            lines += [f"    if type({a}) is not Tensor or {a}._requires_grad or "
                      f"{a}._grad_fn is not None:",
                      "        return None",
                      f"    e{i} = {a}._expr"]
            if check[0] in _WHERE:
                test = f"e{i} is not " + where(_WHERE[check[0]], check[1], check[2], counts)
            elif check[0] == EXT and first:   # (maybe a first use of this call: `x * x`
                k, n = check[1], len(first)   # notes x once every check passed)
                test = (f"e{i} is not (s.ext[{k}] if {k} < len(s.ext) else "
                        f"({', '.join(first)}, None)[min({k} - len(s.ext), {n})])")
            elif check[0] == EXT:
                test = f"e{i} is not s.ext[{check[1]}]"
            else:                    # a first use from outside the cycle: noted in s.ext
                first.append(f"e{i}")
                if check[0] == NEW:  # (a leaf holding data, of the type seen)
                    env[f"TYPE{i}"] = check[1]
                    test = f"e{i}.data is None or e{i}.value.type != TYPE{i}"
                elif check[0] == PREV_EXT:
                    test = f"e{i} is not s.prev_ext[{check[1]}]"
                else:                # (PIN: the pending Expr made before the step)
                    env[f"PIN{i}"] = pins[check[1]]
                    test = f"e{i} is not PIN{i}"
            lines += [f"    if {test}:", "        return None"]
            ins.append(f"e{i}")
        elif kind == FLOAT:
            value = spec[2]
            if value == 0.0 or math.isnan(value):
                return None          # (== does not tell 0.0 from -0.0, nor NaN from NaN)
            env[f"V{i}"] = value
            lines += [f"    if type({a}) is not float or {a} != V{i}:", "        return None"]
        elif kind == PLAIN:
            env[f"T{i}"], env[f"V{i}"] = spec[1], spec[2]
            lines += [f"    if type({a}) is not T{i} or {a} != V{i}:", "        return None"]
        else:
            return None              # (a tuple: checked by the generic code)
    # frames: this, step_follow.follow, the op's wrapper or operator, the user's
    lines += _site_lines(pos, sites[pos], env)
    # the first uses noted as the generic check notes them (in argument order), once the
    # call is known to follow
    lines += [*[f"    s.ext.append({e})" for e in first],
              "    e = new(PendingExpr)",
              "    e.value = v = new(Value)",
              "    v.type = OUT_TYPE",
              f"    set_recipe(e, (TEMPLATE, SLOT, loc{''.join(', ' + i for i in ins)}))",
              "    e.data = None",
              "    e.symbolic = e.recorded = False",
              "    s.outs.append(e)",
              f"    s.pos = {pos + 1}",
              "    t = new(Tensor)",
              "    t._expr = e",
              # a view op's result joins its base's storage, as follow() and the autograd
              # hook do (views.mark_views)
              *(["    MARK(NAME, args, t)"] if view else []),
              "    return t"]
    text = "\n".join(lines)
    code = _CODE.get(text)
    if code is None:
        # compiled once per process per distinct source (~0.15-0.3 ms each): a loop whose
        # tape forms again (after a break) writes the same events, which then cost an exec
        if len(_CODE) >= _MAX_CODE:
            _CODE.clear()
        code = _CODE[text] = compile(text, f"<gradjit step event {pos}>", "exec")
        STATS["compiled"] += 1
    exec(code, env)  # noqa: S102
    STATS["written"] += 1
    return env[f"follow_{pos}"]


def _site_lines(pos: int, site, env: dict) -> list:
    """The call site's check (as step_follow._site's first test): the site seen when the
    event is written, its codes and offset as constants (no read of the tape's sites, no
    unpacking); none seen yet: the tape's sites read at each call. A call from another site
    returns None (the generic check walks and notes it)."""
    if site is None:
        return [f"    site = sites[{pos}]",
                "    if site is None:",
                "        return None",
                "    own, code, lasti, loc = site",
                "    f = getframe(3)",
                "    if own:",             # (gradjit's frames: x.pow(2)'s pow dispatching)
                "        for c in own:",
                "            if f.f_code is not c:",
                "                return None",
                "            f = f.f_back",
                "    if f.f_code is not code or f.f_lasti != lasti:",
                "        return None"]
    own, env["CODE"], env["LASTI"], env["loc"] = site
    lines = ["    f = getframe(3)"]
    for k, c in enumerate(own):
        env[f"OWN{k}"] = c
        lines += [f"    if f.f_code is not OWN{k}:", "        return None", "    f = f.f_back"]
    return lines + ["    if f.f_code is not CODE or f.f_lasti != LASTI:", "        return None"]


step_tape.write_follow = write
