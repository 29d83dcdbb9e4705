"""Each example script runs as a user runs it (`python examples/NAME.py --steps N`), for a
few steps, and its training loss goes down."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {"regression.py": 30, "char_transformer.py": 12, "cnn.py": 20, "lstm_tagger.py": 12}


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_and_learns(name):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / name),
                             "--steps", str(EXAMPLES[name])],
                            capture_output=True, text=True, timeout=600, cwd=ROOT,
                            env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [float(v) for v in re.findall(r"step +\d+ +(?:train mse|loss) ([\d.]+)",
                                           result.stdout)]
    assert len(losses) >= 2 and losses[-1] < losses[0], result.stdout
    assert f"{EXAMPLES[name]} steps in" in result.stdout


def test_every_example_is_tested():
    scripts = {p.name for p in (ROOT / "examples").glob("*.py")}
    assert scripts == set(EXAMPLES)
