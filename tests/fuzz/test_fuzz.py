"""The fuzzer in the suite: a fixed-seed budget of random programs (tests/fuzz/programs.py)
checked every way (tests/fuzz/check.py). `--fuzz N` runs N programs instead; every failure
it finds becomes a case in test_regressions.py."""
import pytest

from tests.fuzz.__main__ import run
from tests.fuzz.check import check_program
from tests.fuzz.ops import STEPS
from tests.fuzz.programs import random_program

BUDGET = range(12)          # seeds checked by the default suite (~20-40 s on 2 idle cores)


@pytest.mark.parametrize("seed", BUDGET)
def test_random_program(seed, request):
    if request.config.getoption("--fuzz"):
        pytest.skip("a --fuzz run checks its own seeds")
    report = check_program(random_program(seed))
    assert not report.failures, str(report)


def test_long_fuzz_run(request, capsys):
    n = request.config.getoption("--fuzz")
    if not n:
        pytest.skip("long runs: python -m pytest tests/fuzz --fuzz N")
    with capsys.disabled():
        tally = run(n, request.config.getoption("--fuzz-seed"))
    assert tally["failing programs"] == 0, dict(tally)


def test_the_generator_reaches_every_step_and_shape_kind():
    """Over a fixed range of seeds, every step is drawn, and inputs include 0-d tensors,
    size-1 and size-0 axes, in both float dtypes (so the budget is not vacuous)."""
    progs = [random_program(seed) for seed in range(300)]
    drawn = {name for p in progs for name, _, _ in p.steps}
    assert drawn == set(STEPS), sorted(set(STEPS) - drawn)
    shapes = {s for p in progs for s in p.shapes}
    assert () in shapes and any(1 in s for s in shapes) and any(0 in s for s in shapes)
    assert {p.dtype for p in progs} == {"float32", "float64"}
