"""Random IR texts: printed programs (the fixture files and random structured Functions)
mutated at random (characters, tokens, lines) and fed to the parser, the verifier and the
compiler. Each text must end one of three ways: a ParseError naming a line of the text, a
VerifyError/ShapeError naming the function, or a valid Function that prints back to the
same text and compiles to what the interpreter computes. Anything else (another exception,
a crash, a hang) is a finding.

The suite runs the issue's 2,000 texts (parsing is cheap; only the first valid mutants are
compiled); `--fuzz N` runs N texts and compiles every valid one.
"""
from __future__ import annotations

import collections
import re
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings

import runtime
from ir.core import ShapeError
from ir.interpret import interpret
from ir.parser import ParseError, parse
from ir.printer import print_function
from ir.verify import VerifyError, verify
from tests.ir.helpers import sample
from tests.ir.programs import structured_programs

TEXTS = 2000                 # the figure
COMPILED = 25                # valid mutants compiled and run in the default suite
FILES = sorted((Path(__file__).resolve().parents[1] / "ir_files").glob("*.ir"))
TOKEN = re.compile(r"%[\w.]+|@\w+|-?\d+(?:\.\d*)?(?:e-?\d+)?|[a-z_]\w*|\S")
NOISE = ["%", "@", "{", "}", "[", "]", "(", ")", ":", ",", "=", "->", "#", "\n", " ", "-1",
         "0", "1e999", "nan", "f16", "i8", "bool", "é", "\x00", "\t", "func", "return",
         "%0", "%x", "{axes=[7]}", "f32[]", "f64[0,0]", "99999999999999999999", "\"", "'"]


def base_texts() -> list[str]:
    """The fixture files and 40 random structured programs, printed."""
    texts = [p.read_text() for p in FILES]

    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(structured_programs(max_steps=6))
    def collect(fn):
        texts.append(print_function(fn))
    collect()
    return texts


def mutate(text: str, rng: np.random.Generator) -> str:
    """One to three random edits of text."""
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(7))
        lines = text.split("\n")
        tokens = list(TOKEN.finditer(text))
        if kind == 0 and text:                       # delete a span of characters
            i = int(rng.integers(len(text)))
            text = text[:i] + text[i + int(rng.integers(1, 6)):]
        elif kind == 1:                              # insert noise
            i = int(rng.integers(len(text) + 1))
            text = text[:i] + str(rng.choice(NOISE)) + text[i:]
        elif kind == 2 and tokens:                   # replace a token by another one of text
            m = tokens[int(rng.integers(len(tokens)))]
            other = tokens[int(rng.integers(len(tokens)))]
            text = text[:m.start()] + other.group() + text[m.end():]
        elif kind == 3 and len(lines) > 1:           # delete a line
            del lines[int(rng.integers(len(lines)))]
            text = "\n".join(lines)
        elif kind == 4 and len(lines) > 1:           # duplicate or swap lines
            i, j = (int(k) for k in rng.integers(len(lines), size=2))
            lines[i] = lines[j] if rng.random() < 0.5 else lines[i]
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif kind == 5:                              # change a number (a shape, a param)
            nums = [m for m in tokens if m.group()[0].isdigit() or m.group()[0] == "-"]
            if nums:
                m = nums[int(rng.integers(len(nums)))]
                new = str(rng.choice(["0", "1", "2", "3", "-1", "4096", "1.5", "1e308"]))
                text = text[:m.start()] + new + text[m.end():]
        else:                                        # truncate
            text = text[:int(rng.integers(len(text) + 1))]
    return text


def outcome(text: str, compile_it: bool) -> str:
    """How text ends (see the module doc); raises AssertionError for anything else."""
    try:
        fn = parse(text)
    except ParseError as e:
        assert 1 <= e.line <= text.count("\n") + 2, (e.line, text)
        assert str(e).startswith(f"line {e.line}, column {e.column}: "), str(e)
        return "ParseError"
    try:
        verify(fn)
    except (VerifyError, ShapeError) as e:
        assert f"@{fn.name}" in str(e) or isinstance(e, ShapeError), str(e)
        return type(e).__name__
    printed = print_function(fn)
    assert print_function(parse(printed)) == printed
    if compile_it:
        args = sample(fn)
        with np.errstate(all="ignore"):
            want = interpret(fn, *args)
            got = runtime.compile(fn)(*args)
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-4, equal_nan=True)
        return "valid, compiled == interpreter"
    return "valid"


def test_random_ir_texts_end_in_a_clear_error_or_a_correct_program(request, capsys):
    n = request.config.getoption("--fuzz") or TEXTS
    bases = base_texts()
    rng = np.random.default_rng(2026)
    tally: collections.Counter = collections.Counter()
    for k in range(n):
        text = mutate(bases[k % len(bases)], rng)
        compile_it = (request.config.getoption("--fuzz") > 0
                      or tally["valid, compiled == interpreter"] < COMPILED)
        try:
            tally[outcome(text, compile_it)] += 1
        except Exception as e:                       # noqa: BLE001 (the finding, with its text)
            raise AssertionError(f"text {k} ended in {type(e).__name__}: {e}\n{text}") from e
    with capsys.disabled():
        print(f"\n{n} random IR texts: {dict(tally)}")
    assert sum(tally.values()) == n
    # not vacuous: most mutants are rejected (the parser applies the shape rules, so a
    # mistyped op is a ParseError at its line), and some stay valid programs
    assert tally["ParseError"] > n // 2 and tally["valid"] > n // 100
    assert tally["valid, compiled == interpreter"] >= min(COMPILED, n // 100)
