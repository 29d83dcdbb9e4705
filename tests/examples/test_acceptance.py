"""Real programs by others, unchanged, through `gradjit torch` (tests/examples/acceptance.py),
a few fast ones in the suite: skipped where the mirrors (/work/.mirror, $GRADJIT_MIRRORS)
are absent, as in CI. `GRADJIT_ACCEPTANCE=all` runs every program of the runner (minutes)."""
import os
import sys

import pytest

from tests.examples import acceptance, acceptance_programs

FAST = ["micrograd tests", "minGPT model + trainer", "examples/word_language_model LSTM",
        "examples/dcgan", "examples/vae"]          # (each a few seconds)
CHOSEN = [p for p in acceptance_programs.PROGRAMS
          if os.environ.get("GRADJIT_ACCEPTANCE") == "all" or p.name in FAST]


@pytest.mark.parametrize("program", CHOSEN, ids=[p.name for p in CHOSEN])
def test_program_runs_unchanged(program):
    if program.source != "tutorials" and not (acceptance.MIRRORS / program.source).exists():
        pytest.skip(f"no mirror of {program.source}")
    status, seconds, note, stdout = acceptance.run(program, None, timeout=600)
    if status == "skipped":
        pytest.skip(note)
    assert status == "ran", f"{program.name}: {status}: {note}"


def test_result_numbers_and_their_comparison():
    program = acceptance_programs.PROGRAMS[1]          # word_language_model: test loss
    out = "| End of training | test loss  3.41 | test ppl    30.37\n"
    assert acceptance.numbers(program, out) == [3.41]
    assert acceptance.max_rel_diff([3.41], [3.40]) == pytest.approx(0.01 / 3.40)
    assert acceptance.max_rel_diff([], [1.0]) is None
    assert acceptance.max_rel_diff([1e-11, 2.0], [-6e-10, 2.0]) == pytest.approx(3.05e-10)


def test_the_matplotlib_stand_in_saves_an_empty_file(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(acceptance.ROOT / "tests" / "examples" / "shims"))
    import matplotlib
    import matplotlib.pyplot as plt
    matplotlib.use("Agg")
    plt.figure(figsize=(3, 3))
    plt.plot([1, 2], [3, 4], "r:", linewidth=2.0)
    plt.savefig(tmp_path / "p.pdf")
    assert (tmp_path / "p.pdf").read_bytes() == b""
    for name in [n for n in sys.modules if n.split(".")[0] == "matplotlib"]:
        del sys.modules[name]                       # other tests see no matplotlib
