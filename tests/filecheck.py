"""A small FileCheck (after LLVM's): match CHECK lines against a text, in order, as substrings.

    filecheck(print_function(fn), '''
        CHECK-LABEL: func @f(
        CHECK:       %m = mul %x, %y
        CHECK-NEXT:  return %m
        CHECK-NOT:   mul %x, %y
    ''')

CHECK finds the pattern after the previous match; CHECK-NEXT finds it on the very next line;
CHECK-NOT forbids it between the previous match and the next one (or the end); CHECK-LABEL
matches like CHECK. A failure raises AssertionError showing the directive and the whole text.
"""
import re

_DIRECTIVE = re.compile(r"^\s*(CHECK(?:-NEXT|-NOT|-LABEL)?):(.*)$")


def _directives(checks: str) -> list[tuple[str, str]]:
    out = []
    for line in checks.splitlines():
        m = _DIRECTIVE.match(line)
        if m is None:
            if "CHECK" in line:
                raise ValueError(f"malformed FileCheck directive: {line.strip()!r}")
            continue
        out.append((m.group(1), m.group(2).strip()))
    return out


def filecheck(text: str, checks: str) -> None:
    pos, forbidden = 0, []           # pos: end of the previous match
    for kind, pattern in _directives(checks) + [("END", "")]:
        if kind == "CHECK-NOT":
            forbidden.append(pattern)
            continue
        found = len(text) if kind == "END" else text.find(pattern, pos)
        if found < 0:
            _fail(f"{kind}: {pattern!r} not found after offset {pos}", text)
        for bad in forbidden:
            if bad in text[pos:found]:
                _fail(f"CHECK-NOT: {bad!r} found before {pattern or 'the end'!r}", text)
        if kind == "CHECK-NEXT" and text.count("\n", pos, found) != 1:
            _fail(f"CHECK-NEXT: {pattern!r} is not on the line after the previous match", text)
        pos, forbidden = found + len(pattern), []


def _fail(msg: str, text: str):
    raise AssertionError(f"FileCheck failed: {msg}\n--- text ---\n{text}--- end ---")
