"""The careless-program sweep (careless_cases.py) against PyTorch 2.13's recorded outcomes
(recorded/careless.json): values to 1e-5, or the exception's class and first line.

With GRADJIT_TORCH_PYTHON naming an interpreter that has PyTorch, one more test re-runs the
programs under it and checks that the recording still holds."""
import json
import os
import subprocess

import pytest

import gradjit as torch
from tests.api.careless_cases import CASES
from tests.api.careless_sweep import RECORDED, close, outcome

with open(RECORDED) as _f:
    EXPECTED = json.load(_f)

# Where gradjit deliberately differs (docs/compat.md "Careless programs"): its own outcome.
KNOWN = {
    # PyTorch steps a parameter listed twice once per listing (one shared momentum buffer
    # changed in place twice); gradjit refuses at the step instead of a different number
    "opt param listed twice step": ["raise", ["NotImplementedError"],
                                    "gradjit's optimizers do not step a parameter listed "
                                    "twice in one parameter group (PyTorch warns and updates "
                                    "it once per listing): list each parameter once"],
    # a bias of another dtype than the weight: not checked on Linear's per-step path
    "linear f64 bias": None,
    # PyTorch's error is an IndexError from indexing the lone hidden tensor
    "lstm hidden not a tuple": ["raise", ["ValueError"],
                                "not enough values to unpack (expected 2, got 1)"],
    # the broadcast error text of gradjit's elementwise ops (docs/compat.md)
    "l1 shape mismatch": ["raise", ["ShapeError", "TypeError", "RuntimeError"],
                          "shapes [2, 3] and [3, 3] cannot be broadcast together"],
    "collate ragged tensors": ["raise", ["ShapeError", "TypeError", "RuntimeError"],
                               "stack expects each tensor to be equal size, but got [1] and "
                               "[2]"],
    # gradjit's own text, also raised later by a lazy index (GRADJIT_BOUNDS_CHECK)
    "embedding out of range": ["raise", ["IndexError"],
                               "index 5 is out of bounds for dimension 0 with size 5"],
    "embedding negative": ["raise", ["IndexError"],
                           "index -1 is out of bounds for dimension 0 with size 5"],
    # gradjit's Linear.forward names its argument x (PyTorch: input)
    "module call missing arg": ["raise", ["TypeError"],
                                "Linear.forward() missing 1 required positional argument: 'x'"],
    # gradjit has no complex dtypes, and says so
    "parameter of int": ["raise", ["RuntimeError"],
                         "only Tensors of floating point dtype can require gradients"],
    # PyTorch's KeyError('101') comes from its legacy pickle reader; gradjit names the format
    "load not a checkpoint": ["raise", ["RuntimeError"],
                              "gradjit.load: not a zip archive; gradjit reads files written by "
                              "gradjit.save and PyTorch's default (zip) torch.save format, not "
                              "the legacy pickle-only format"],
}


def test_the_known_differences_are_still_differences():
    """A KNOWN entry that PyTorch's recording now matches should be dropped from KNOWN."""
    assert set(KNOWN) <= set(CASES)
    for name in KNOWN:
        assert not close(outcome(CASES[name], torch), EXPECTED[name]), name


@pytest.mark.parametrize("name", sorted(set(CASES) - set(KNOWN)))
def test_a_careless_program_ends_as_in_pytorch(name):
    got = outcome(CASES[name], torch)
    assert close(got, EXPECTED[name]), f"gradjit {got}\npytorch {EXPECTED[name]}"


@pytest.mark.parametrize("name", sorted(k for k, v in KNOWN.items() if v is not None))
def test_a_known_difference_ends_as_gradjit_says(name):
    got = outcome(CASES[name], torch)
    assert close(got, KNOWN[name]), got


@pytest.mark.skipif(not os.environ.get("GRADJIT_TORCH_PYTHON"),
                    reason="GRADJIT_TORCH_PYTHON names no interpreter with PyTorch")
def test_the_recording_matches_pytorch_now():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    run = subprocess.run([os.environ["GRADJIT_TORCH_PYTHON"], "-m", "tests.api.careless_sweep",
                          "--torch"], cwd=root, capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=root))
    now = json.loads(run.stdout)
    assert set(now) == set(CASES)
    assert [n for n in CASES if not close(now[n], EXPECTED[n])] == []
