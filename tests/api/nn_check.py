"""Runs an nn case (tests/api/nn_cases.py) under gradjit and compares it with the values
PyTorch 2.13 gave (tests/api/recorded/nn.json, written by record_nn.py)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

import gradjit
from tests.api.nn_cases import CASES, run_case
from tests.api.nn_cases_text import ERRORS, run_error

RECORDED = json.loads((Path(__file__).parent / "recorded" / "nn.json").read_text())


def names(subject: str) -> list[str]:
    return [n for n, c in CASES.items() if c.subject == subject]


def error_names() -> list[str]:
    return list(ERRORS)


def _close(got, want, what: str, rtol=1e-6, atol=1e-8):
    g, w = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert g.shape == w.shape, f"{what}: shape {g.shape} != PyTorch's {w.shape}"
    np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=what, equal_nan=True)


def check_case(name: str, rtol: float = 1e-6, atol: float = 1e-8):
    """gradjit's outputs, gradients and state_dict equal PyTorch's for case `name`."""
    want = RECORDED["cases"][name]
    gradjit.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = run_case(gradjit, CASES[name])
    assert got["dtype"] == want["dtype"], f"{name}: output dtypes"
    for k, (g, w) in enumerate(zip(got["out"], want["out"])):
        _close(g, w, f"{name}: output {k}", rtol, atol)
    assert len(got["out"]) == len(want["out"]), f"{name}: number of outputs"
    assert ("grads" in got) == ("grads" in want), f"{name}: gradients present"
    for k, (g, w) in enumerate(zip(got.get("grads", []), want.get("grads", []))):
        if w is None:
            assert g is None or not np.any(g), f"{name}: gradient {k} should be unused"
        else:
            assert g is not None, f"{name}: gradient {k} is missing"
            _close(g, w, f"{name}: gradient {k}", rtol, atol)
    if "state_dict" in want:
        assert list(got["state_dict"]) == list(want["state_dict"]), f"{name}: state_dict keys"
        for key, w in want["state_dict"].items():
            _close(got["state_dict"][key], w, f"{name}: state_dict[{key!r}]", rtol, atol)


def check_error(name: str):
    """gradjit raises PyTorch's exception type with PyTorch's message (gradjit may add the
    user's file:line after it)."""
    want = RECORDED["errors"][name]
    got = run_error(gradjit, name)
    assert got is not None, f"{name}: no exception (PyTorch raised {want})"
    assert got[0] == want[0], f"{name}: {got[0]} raised, PyTorch raises {want[0]}: {got[1]}"
    assert got[1].startswith(want[1]), f"{name}: message {got[1]!r}, PyTorch: {want[1]!r}"
