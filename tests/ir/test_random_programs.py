"""Random structured programs (tests/ir/programs.py) and the tests/ir_files fixtures through
everything that takes IR: they verify, print and parse back to the same text and the same
results bit for bit, optimize keeps their results (nan-aware, up to the documented
sign-of-zero exception), and so do their reverse- and forward-mode derivatives."""
import pytest
from hypothesis import given, settings

from ir.autodiff import jvp, vjp
from ir.interpret import interpret
from ir.parser import parse
from ir.passes import optimize
from ir.printer import print_function
from ir.verify import verify
from tests.ir.helpers import assert_same_results, run_pass, sample
from tests.ir.programs import structured_programs
from tests.ir.test_ir_roundtrip import IR_FILES


def assert_round_trip(fn):
    """fn prints, parses back to the same text, and the copy computes the same bits."""
    text = print_function(verify(fn))
    parsed = verify(parse(text))
    assert print_function(parsed) == text
    for special in (False, True):
        args = sample(fn, special)
        for want, got in zip(interpret(fn, *args), interpret(parsed, *args), strict=True):
            assert want.dtype == got.dtype and want.tobytes() == got.tobytes(), text


def assert_optimize_agrees(fn):
    out = run_pass(optimize, fn)
    assert print_function(parse(print_function(out))) == print_function(out)
    assert print_function(optimize(out)) == print_function(out)       # a fixed point
    for special in (False, True):
        assert_same_results(fn, out, special=special, signed_zeros=False, rtol=1e-5)


@settings(max_examples=100, deadline=None)
@given(structured_programs())
def test_random_programs_round_trip_and_optimize(fn):
    assert_round_trip(fn)
    assert_optimize_agrees(fn)


@settings(max_examples=50, deadline=None)
@given(structured_programs(max_steps=6))
def test_derivatives_of_random_programs_round_trip_and_optimize(fn):
    for derived in (vjp(fn), jvp(fn)):
        assert_round_trip(derived)
        assert_optimize_agrees(derived)


@pytest.mark.parametrize("path", IR_FILES, ids=lambda p: p.name)
def test_derivatives_of_every_fixture_round_trip_and_optimize(path):
    fn = parse(path.read_text())
    has_while = any(op.prim.name == "while" for op in fn.body)
    for derived in ([] if has_while else [vjp(fn)]) + [jvp(fn)]:
        assert_round_trip(derived)
        assert_optimize_agrees(derived)


def test_the_generator_covers_the_structural_primitives():
    """A fixed set of drawn programs uses every primitive the strategy offers, with size-0
    axes among them (so the properties above are not vacuous)."""
    seen, empty = set(), False

    @settings(max_examples=150, deadline=None, database=None, derandomize=True)
    @given(structured_programs())
    def collect(fn):
        nonlocal empty
        for op in fn.body:
            seen.add(op.prim.name)
            empty |= any(0 in v.shape for v in op.results)
    collect()
    want = {"exp", "add", "select", "convert", "broadcast_in_dim", "reduce_sum", "reduce_max",
            "reshape", "transpose", "slice", "pad", "concatenate", "dot_general", "constant",
            "scan"}
    assert want <= seen and empty, sorted(want - seen)
