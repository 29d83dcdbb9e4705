"""Prints a Function as SSA text; ir.parser reads the same text back.

    func @f(%x: f32[3], %y: f32[3]) -> (f32[]) {
      %m = mul %x, %y : f32[3]                                # model.py:4
      %s = reduce_sum %m {axes=[0]} : f32[]
      return %s
    }

Names come from a value's name_hint (with a numeric suffix on a clash) or are numbers.
Each function and each region has its own name scope: regions are closed, they see only
their own parameters. `constant` and `iota` do not print their dtype/shape params: the
result type already says them.
"""
from __future__ import annotations

import json
import math
import re

from typing import TYPE_CHECKING

if TYPE_CHECKING:          # annotations only: ir.core imports this module (late)
    from ir.core import Function, Op, Value

LOC_COLUMN = 60
IMPLIED_PARAMS = {"constant": ("dtype", "shape"), "iota": ("dtype", "shape")}


class _Namer:
    def __init__(self, hints: bool = True):
        self.hints = hints
        self.names: dict[Value, str] = {}
        self.taken: set[str] = set()
        self.counter = 0

    def define(self, v: Value) -> str:
        """Names a newly defined value: its sanitized hint (suffixed on a clash) or a number."""
        if v.name_hint and self.hints:
            base = _sanitize(v.name_hint)
            name, k = base, 1
            while name in self.taken:
                name, k = f"{base}_{k}", k + 1
        else:
            while str(self.counter) in self.taken:
                self.counter += 1
            name = str(self.counter)
        self.taken.add(name)
        self.names[v] = name
        return "%" + name

    def use(self, v: Value) -> str:
        """The name of a value defined earlier."""
        name = self.names.get(v)
        return "%" + name if name is not None else f"%<undefined {v.type}>"


def _sanitize(hint: str) -> str:
    """A hint as a value name: word characters (unicode letters and digits, '_'), which is
    what the parser's %name token takes; anything else becomes '_'."""
    s = re.sub(r"\W", "_", hint)
    # a name that starts with a digit could clash with the numbering
    return s if s and not s[0].isdigit() else "v" + s


def _function_name(name: str) -> str:
    """Function names print as identifiers: anything else (spaces, parens) becomes '_'."""
    return "".join(c if c.isalnum() or c in "_.<>" else "_" for c in name) or "f"


def format_param(v) -> str:
    """The text of a param value: true/false, an int, a float that reads back to the same
    double (nan without its sign or payload, which no primitive observes), a JSON string, or
    a [list] of these.

    Raises:
        TypeError: v is of another type (a list, a NumPy integer, an object).
    """
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return int.__repr__(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        # NOTE: float.__repr__, not repr: np.float64 is a float whose repr is np.float64(..)
        return float.__repr__(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, tuple):
        return "[" + ", ".join(format_param(e) for e in v) + "]"
    raise TypeError(f"cannot print param value {v!r} of type {type(v).__name__}")


def print_application(name: str, in_types, params) -> str:
    """`add(f32[3], f32[4])`, then the params as the printer writes them: how an error shows
    an op that could not be built (it has no result, so print_op cannot show it)."""
    text = f"{name}({', '.join(map(str, in_types))})"
    items = []
    for key, value in sorted(params.items()):
        try:
            items.append(f"{key}={format_param(value)}")
        except TypeError:
            items.append(f"{key}={value!r}")
    return text + (" {" + ", ".join(items) + "}" if items else "")


def _format_params(op: Op) -> str:
    skip = IMPLIED_PARAMS.get(op.prim.name, ())
    items = [f"{k}={format_param(v)}" for k, v in sorted(op.params.items()) if k not in skip]
    return " {" + ", ".join(items) + "}" if items else ""


def _op_lines(op: Op, namer: _Namer, indent: str, locs: bool) -> list[str]:
    operands = ", ".join(namer.use(v) for v in op.inputs)
    results = ", ".join(namer.define(v) for v in op.results)
    types = ", ".join(str(v.type) for v in op.results)
    text = f"{indent}{results} = {op.prim.name}"
    text += f" {operands}" if operands else ""
    text += f"{_format_params(op)} : {types}"
    if op.regions:
        text += " {"
    if op.loc and locs:
        text = text.ljust(LOC_COLUMN) + "  # " + op.loc.replace("\n", " ")
    lines = [text]
    if op.regions:
        for region in op.regions:
            lines += _function_lines(region, indent + "  ", locs, namer.hints)
        lines.append(indent + "}")
    return lines


def _function_lines(fn: Function, indent: str, locs: bool, hints: bool) -> list[str]:
    namer = _Namer(hints)
    params = ", ".join(f"{namer.define(p)}: {p.type}" for p in fn.params)
    outs = ", ".join(str(r.type) for r in fn.results)
    lines = [f"{indent}func @{_function_name(fn.name)}({params}) -> ({outs}) {{"]
    for op in fn.body:
        lines += _op_lines(op, namer, indent + "  ", locs)
    returned = ", ".join(namer.use(r) for r in fn.results)
    lines.append(f"{indent}  return {returned}".rstrip())
    lines.append(indent + "}")
    return lines


def print_function(fn: Function, locs: bool = True, hints: bool = True) -> str:
    """The text of fn, which ir.parser.parse reads back.

    Args:
        fn: the Function; values not defined where they are used print as %<undefined T>.
        locs: write each op's source location as a trailing `# file:line` comment.
        hints: name values after their name hints (else %0, %1, ...). locs=False,
            hints=False gives the canonical form used as a cache key.
    """
    return "\n".join(_function_lines(fn, "", locs, hints)) + "\n"


def print_op(op: Op) -> str:
    """One op's line(s), for error messages; operands defined elsewhere print as %<...>."""
    namer = _Namer()
    for v in op.inputs:
        namer.define(v)
    return "\n".join(_op_lines(op, namer, "", True))
