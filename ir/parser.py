"""Parses the text that ir.printer prints back into a Function (recursive descent).

    fn = parse(text)
    assert print_function(fn) == text      # for any text print_function produced

A printed name `%x` becomes the name hint "x"; pure numbers (`%0`) give no hint. The
trailing `# file:line` comment of an op line becomes op.loc. Result types are re-inferred
with each primitive's shape rule and must agree with the printed ones. Blank lines and
full-line `#` comments are skipped, so .ir files can carry notes. Errors raise ParseError
naming the line and column and showing the line with a caret under the offending token.
"""
from __future__ import annotations

import json
import re
from typing import NamedTuple

from ir.core import DTYPES, Function, Op, TensorType, Value
from ir.primitives import PRIMITIVES, ShapeError
from ir.printer import IMPLIED_PARAMS


class ParseError(ValueError):
    """Malformed IR text; .line and .column are 1-based."""

    def __init__(self, msg: str, line: int, col: int, source_line: str = ""):
        caret = " " * (col - 1) + "^"
        super().__init__(f"line {line}, column {col}: {msg}\n  {source_line}\n  {caret}")
        self.msg, self.line, self.column = msg, line, col


class Token(NamedTuple):
    """One lexical token and where it starts (1-based line and column)."""
    kind: str        # value, func, string, number, ident, punct, loc, eof
    text: str
    line: int
    col: int


_TOKEN = re.compile(r"""
    (?P<space>[ \t\r]+)
  | (?P<newline>\n)
  | (?P<comment>\#[^\n]*)
  | (?P<value>%\w+)
  | (?P<func>@[^\s(]+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<number>-?(?:inf\b|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>->|[=,:{}\[\]()])
""", re.VERBOSE)


def tokenize(text: str) -> list[Token]:
    """Splits text into tokens; a comment after other tokens on its line is a `loc` token."""
    tokens: list[Token] = []
    append = tokens.append
    line, line_start, pos, line_has_tokens = 1, 0, 0, False
    for m in _TOKEN.finditer(text):
        start = m.start()
        if start != pos:                   # finditer skipped what no token matches
            break
        kind, pos = m.lastgroup, m.end()
        if kind == "space":
            continue
        if kind == "newline":
            line, line_start, line_has_tokens = line + 1, pos, False
        elif kind == "comment":
            if line_has_tokens:
                # NOTE: the printer writes "  # loc"; the loc is what follows "# "
                loc = m.group()[1:]
                append(Token("loc", (loc[1:] if loc.startswith(" ") else loc).rstrip(),
                             line, start - line_start + 1))
        else:
            append(Token(kind, m.group(), line, start - line_start + 1))
            line_has_tokens = True
    if pos < len(text):
        source = text[line_start:].split("\n", 1)[0]
        raise ParseError(f"unexpected character {text[pos]!r}", line, pos - line_start + 1,
                         source)
    tokens.append(Token("eof", "", line, pos - line_start + 1))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.lines = text.split("\n")
        self.tokens = tokenize(text)
        self.i = 0

    # ---- token helpers ----

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at(self, kind: str, text: str | None = None) -> bool:
        tok = self.peek()
        return tok.kind == kind and (text is None or tok.text == text)

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        return self.next() if self.at(kind, text) else None

    def expect(self, kind: str, text: str | None = None, what: str | None = None) -> Token:
        if not self.at(kind, text):
            want = what or (f"'{text}'" if text else kind)
            self.error(f"expected {want}, found {_describe(self.peek())}")
        return self.next()

    def error(self, msg: str, tok: Token | None = None):
        tok = tok or self.peek()
        source = self.lines[tok.line - 1] if tok.line <= len(self.lines) else ""
        raise ParseError(msg, tok.line, tok.col, source)

    def skip_comment(self):
        # a trailing comment on a line that is not an op line carries no meaning
        self.accept("loc")

    def comma_list(self, item) -> list:
        """item (',' item)*: what item() parses, at least once."""
        items = [item()]
        while self.accept("punct", ","):
            items.append(item())
        return items

    def enclosed(self, open_: str, close: str, item) -> list:
        """open [item (',' item)*] close."""
        self.expect("punct", open_)
        items = [] if self.at("punct", close) else self.comma_list(item)
        self.expect("punct", close)
        return items

    def uses(self, scope: dict, what: str) -> list[Value]:
        """[use (',' use)*]: the values named (none when no %name follows)."""
        if not self.at("value"):
            return []
        return self.comma_list(lambda: self.use(scope, self.expect("value", what=what)))

    # ---- grammar ----

    def parse_function(self) -> Function:
        """function := 'func' FUNC '(' [param (',' param)*] ')' '->' '(' [type (',' type)*] ')'
                          '{' op* 'return' [use (',' use)*] '}'
        param    := VALUE ':' type
        op       := [VALUE (',' VALUE)*] '=' IDENT [use (',' use)*] ['{' attrs '}']
                    ':' [type (',' type)*]  (one type per result)
                    ['{' LOC? function+ '}'] LOC?
        attrs    := IDENT '=' pvalue (',' IDENT '=' pvalue)*
        pvalue   := NUMBER | 'inf' | 'nan' | 'true' | 'false' | STRING
                  | '[' [pvalue (',' pvalue)*] ']'
        type     := DTYPE '[' [INT (',' INT)*] ']'
        use      := VALUE                      (defined earlier in the same function)
        VALUE is %name (word characters: letters and digits of any script, '_'), FUNC is
        @name, STRING a JSON string, LOC a trailing '# ...' comment. Regions are closed:
        each function, and each region, has its own name scope.
        """
        self.expect("ident", "func", "'func'")
        name = self.expect("func", what="a function name '@name'").text[1:]
        scope: dict[str, Value] = {}
        params = self.enclosed("(", ")", lambda: self.parse_param(scope))
        self.expect("punct", "->")
        out_types = self.enclosed("(", ")", lambda: self.parse_type()[0])
        self.expect("punct", "{")
        self.skip_comment()
        body = []
        while not self.at("ident", "return"):
            if self.at("punct", "}") or self.at("eof"):
                self.error(f"missing return in @{name}")
            body.append(self.parse_op(scope))
        results = self.parse_return(scope, out_types)
        self.expect("punct", "}")
        self.skip_comment()
        return Function(name, params, body, results)

    def parse_param(self, scope: dict) -> Value:
        tok = self.expect("value", what="a parameter '%name'")
        self.expect("punct", ":")
        return self.define(scope, tok, self.parse_type()[0])

    def parse_type(self) -> tuple[TensorType, Token]:
        tok = self.expect("ident", what="a type such as f32[2,3]")
        if tok.text not in DTYPES:
            self.error(f"bad type: unknown dtype '{tok.text}' (known: {', '.join(DTYPES)})", tok)
        dims = self.enclosed("[", "]", self.parse_dim)
        return TensorType(tok.text, tuple(dims)), tok

    def parse_dim(self) -> int:
        tok = self.expect("number", what="a dimension")
        if not tok.text.isdigit():
            self.error(f"bad type: dimension {tok.text} is not a non-negative integer", tok)
        return int(tok.text)

    def parse_return(self, scope: dict, out_types: list[TensorType]) -> list[Value]:
        ret = self.expect("ident", "return")
        results = self.uses(scope, "a value '%name'")
        self.skip_comment()
        got = [r.type for r in results]
        if got != out_types:
            self.error(f"returned types {_types(got)} do not match the declared "
                       f"{_types(out_types)}", ret)
        return results

    def parse_op(self, scope: dict) -> Op:
        defs = []
        if self.at("value"):
            defs = self.comma_list(lambda: self.expect("value", what="a result '%name'"))
        self.expect("punct", "=", "an op '%name = prim ...' or 'return'")
        prim_tok = self.expect("ident", what="a primitive name")
        prim = PRIMITIVES.get(prim_tok.text)
        if prim is None:
            self.error(f"unknown primitive '{prim_tok.text}'", prim_tok)
        inputs = self.uses(scope, "an operand '%name'")
        params = self.parse_attrs() if self.at("punct", "{") else {}
        self.expect("punct", ":")
        types = []
        for k in range(len(defs)):
            if k:
                self.expect("punct", ",", f"{len(defs)} result types")
            types.append(self.parse_type())
        loc, regions = self.parse_regions(prim.name)
        op = self.build_op(prim, prim_tok, inputs, params, types, regions, loc)
        for tok, value in zip(defs, op.results):
            self.define(scope, tok, value)
        return op

    def parse_regions(self, prim: str) -> tuple[Token | None, list[Function]]:
        """The op line's loc and its regions: ['{' LOC? function+ '}'] LOC?."""
        loc, regions = None, []
        if self.accept("punct", "{"):
            loc = self.accept("loc")
            while self.at("ident", "func"):
                regions.append(self.parse_function())
            if not regions:
                self.error(f"expected a region 'func @name(...)' for '{prim}'")
            self.expect("punct", "}")
        return loc or self.accept("loc"), regions

    def parse_attrs(self) -> dict:
        self.expect("punct", "{")
        params = {}
        while True:
            key = self.expect("ident", what="a parameter name")
            if key.text in params:
                self.error(f"repeated parameter '{key.text}'", key)
            self.expect("punct", "=")
            params[key.text] = self.parse_pvalue()
            if not self.accept("punct", ","):
                break
        self.expect("punct", "}")
        return params

    def parse_pvalue(self):
        if self.at("punct", "["):
            return tuple(self.enclosed("[", "]", self.parse_pvalue))
        tok = self.next()
        if tok.kind == "number":
            is_float = any(c in tok.text for c in ".eEn")      # 'n' as in inf
            return float(tok.text) if is_float else int(tok.text)
        if tok.kind == "ident" and tok.text in _WORDS:
            return _WORDS[tok.text]
        if tok.kind == "string":
            try:
                return json.loads(tok.text, strict=False)
            except ValueError as e:
                self.error(f"bad string {tok.text}: {e}", tok)
        self.error(f"bad parameter value {_describe(tok)}", tok)

    def build_op(self, prim, prim_tok, inputs, params, types, regions, loc) -> Op:
        """Makes the op, re-inferring result types with the primitive's shape rule."""
        for key in IMPLIED_PARAMS.get(prim.name, ()):
            if types:
                # constant and iota print dtype/shape only in their result type
                params[key] = getattr(types[0][0], key)
        try:
            inferred = prim.infer([v.type for v in inputs], params, tuple(regions))
        except ShapeError as e:
            self.error(e.reason, prim_tok)
        if len(inferred) != len(types):
            self.error(f"'{prim.name}' gives {len(inferred)} results, {len(types)} printed",
                       prim_tok)
        for (t, tok), want in zip(types, inferred):
            if t != want:
                self.error(f"type mismatch: '{prim.name}' gives {want}, printed {t}", tok)
        results = tuple(Value(t) for t, _ in types)
        return Op(prim, tuple(inputs), results, params, tuple(regions),
                  loc.text if loc and loc.text else None)

    # ---- names ----

    def define(self, scope: dict, tok: Token, value_or_type) -> Value:
        name = tok.text[1:]
        if name in scope:
            self.error(f"redefined value %{name}", tok)
        value = value_or_type
        if isinstance(value_or_type, TensorType):
            value = Value(value_or_type)
        value.name_hint = None if name.isdigit() else name
        scope[name] = value
        return value

    def use(self, scope: dict, tok: Token) -> Value:
        value = scope.get(tok.text[1:])
        if value is None:
            self.error(f"undefined value {tok.text}", tok)
        return value


_WORDS = {"true": True, "false": False, "inf": float("inf"), "nan": float("nan")}


def _types(types) -> str:
    return "(" + ", ".join(map(str, types)) + ")"


def _describe(tok: Token) -> str:
    if tok.kind == "eof":
        return "end of input"
    if tok.kind == "loc":
        return "a comment"
    return f"'{tok.text}'"


def parse(text: str) -> Function:
    """Parses one printed function.

    Raises:
        ParseError: for malformed text, with the line and column of the offending token.
    """
    parser = _Parser(text)
    try:
        fn = parser.parse_function()
    except RecursionError:
        parser.error("regions or lists nested too deeply")
    if not parser.at("eof"):
        parser.error(f"unexpected {_describe(parser.peek())} after the function")
    return fn
