"""The command line: gradjit demo | run FILE.ir | ir module.py:func."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gradjit.cli import main, parse_type, random_array
from ir.interpret import interpret
from ir.parser import parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCAN_IR = os.path.join(ROOT, "tests", "ir_files", "scan.ir")


def _results(text: str) -> list[np.ndarray]:
    """The arrays printed after each 'result i: type' line of `gradjit run`."""
    out, lines = [], text.splitlines()
    for k, line in enumerate(lines):
        if line.startswith("result "):
            t = parse_type(line.split(": ", 1)[1])
            body = []
            for more in lines[k + 1:]:
                if more.startswith(("result ", "input ")):
                    break
                body.append(more)
            values = " ".join(body).replace("[", " ").replace("]", " ").split()
            out.append(np.array([float(v) for v in values]).reshape(t.shape))
    return out


def test_demo(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "func @loss(%w: f32[8,3], %x: f32[5,8]) -> (f32[])" in out
    assert "func @loss_grad(%w: f32[8,3], %x: f32[5,8]) -> (f32[8,3])" in out
    err = float(out.split("max abs error ")[1].split()[0])
    assert err < 1e-6
    assert "cold call" in out and "cached call" in out


def test_run_with_random_inputs_matches_the_interpreter(capsys):
    assert main(["run", SCAN_IR, "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("@cumsum: 2 input(s), 2 result(s)")
    with open(SCAN_IR) as fh:
        fn = parse(fh.read())
    rng = np.random.default_rng(3)
    inputs = [random_array(p.type, rng) for p in fn.params]
    for got, want in zip(_results(out), interpret(fn, *inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_run_with_npy_inputs(tmp_path, capsys):
    c0, xs = np.arange(3, dtype=np.float32), np.ones((4, 3), np.float32)
    np.save(tmp_path / "c0.npy", c0)
    np.save(tmp_path / "xs.npy", xs)
    assert main(["run", SCAN_IR, "--input", str(tmp_path / "c0.npy"),
                 "--input", str(tmp_path / "xs.npy")]) == 0
    final, ys = _results(capsys.readouterr().out)
    np.testing.assert_allclose(final, c0 + 4)
    np.testing.assert_allclose(ys, [c0 + k for k in range(1, 5)])


def test_run_errors(tmp_path, capsys):
    bad = tmp_path / "bad.ir"
    bad.write_text("func @f(%x: f32[3]) -> (f32[3]) {\n  %y = exp %z : f32[3]\n  return %y\n}\n")
    assert main(["run", str(bad)]) == 1
    assert "line 2" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.ir")]) == 1
    assert "missing.ir" in capsys.readouterr().err
    assert main(["run", SCAN_IR, "--input", str(bad)]) == 2
    assert "takes 2 inputs" in capsys.readouterr().err


def _write_module(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent("""
        import gradjit as gj

        def loss(x, w):
            return (gj.tanh(x @ w) ** 2).mean()
    """))
    return path


def test_ir_of_a_function_and_its_gradient(tmp_path, capsys):
    path = _write_module(tmp_path)
    assert main(["ir", f"{path}:loss", "--arg", "f32[5,8]", "--arg", "f32[8,3]"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("func @loss(%x: f32[5,8], %w: f32[8,3]) -> (f32[])")
    assert "model.py:5" in text and str(parse(text)) == text
    assert main(["ir", f"{path}:loss", "--arg", "f32[5,8]", "--arg", "f32[8,3]", "--grad",
                 "--argnums", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("func @loss_grad(%x: f32[5,8], %w: f32[8,3]) -> (f32[8,3])")


def test_ir_errors(tmp_path, capsys):
    path = _write_module(tmp_path)
    assert main(["ir", f"{path}:nope", "--arg", "f32[2,2]"]) == 1
    assert "no function 'nope'" in capsys.readouterr().err
    assert main(["ir", "no_colon.py"]) == 1
    with pytest.raises(SystemExit):
        main(["ir", f"{path}:loss", "--arg", "f32(5,8)"])
    assert "bad type" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "gradjit", "run", SCAN_IR], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr
    assert "result 1: f32[4,3]" in proc.stdout
