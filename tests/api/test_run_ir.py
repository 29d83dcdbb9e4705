"""run_ir and `gradjit run` on what users hand them: 0-d parameters, IR text, things that
are not functions; and non-ASCII function and value names through print, parse and
compile (LLVM symbol names are mangled to ASCII)."""
import numpy as np
import pytest

import gradjit as gj
from gradjit.cli import main
from ir.parser import parse
from ir.printer import print_function

SCALAR_IR = """func @scale(%x: f32[], %v: f64[3]) -> (f64[3], f32[]) {
  %0 = convert %x {dtype="f64"} : f64[]
  %1 = broadcast_in_dim %0 {dims=[], shape=[3]} : f64[3]
  %2 = mul %1, %v : f64[3]
  %3 = exp %x : f32[]
  return %2, %3
}
"""

UNICODE_IR = """func @größe(%ä: f64[2], %数: f64[2]) -> (f64[2]) {
  %π = mul %ä, %数 : f64[2]
  %ñ = sin %π : f64[2]
  return %ñ
}
"""


@pytest.mark.parametrize("backend", ["native", "interpret"])
def test_run_ir_takes_0d_arguments(monkeypatch, backend):
    monkeypatch.setenv("GRADJIT_BACKEND", backend)
    fn = parse(SCALAR_IR)
    for x in (2.0, np.float32(2.0), np.array(2.0, np.float32)):
        scaled, e = gj.run_ir(fn, x, np.array([1.0, 2.0, 3.0]))
        np.testing.assert_allclose(scaled, [2.0, 4.0, 6.0])
        assert e.shape == () and e.dtype == np.float32
        np.testing.assert_allclose(e, np.exp(np.float32(2.0)), rtol=1e-6)


def test_run_ir_accepts_ir_text():
    scaled, _ = gj.run_ir(SCALAR_IR, 0.5, np.ones(3))
    np.testing.assert_allclose(scaled, [0.5, 0.5, 0.5])


@pytest.mark.parametrize("bad", [None, 3, ["func"], b"func @f() -> () {}"])
def test_run_ir_on_something_else_is_a_type_error(bad):
    with pytest.raises(TypeError, match=r"run_ir expects an ir.Function .* or IR text, got"):
        gj.run_ir(bad, 1.0)


def test_run_ir_on_text_that_does_not_parse_says_where():
    with pytest.raises(ValueError, match="line 1, column 1: expected 'func'"):
        gj.run_ir("x", 1.0)


def test_gradjit_run_with_a_0d_parameter(tmp_path, capsys):
    path = tmp_path / "scale.ir"
    path.write_text(SCALAR_IR, encoding="utf-8")
    np.save(tmp_path / "x.npy", np.array(3.0, np.float32))
    np.save(tmp_path / "v.npy", np.array([1.0, 0.0, -1.0]))
    assert main(["run", str(path), "--input", str(tmp_path / "x.npy"),
                 "--input", str(tmp_path / "v.npy")]) == 0
    out = capsys.readouterr().out
    assert "result 0: f64[3]\n[ 3.  0. -3.]" in out
    assert main(["run", str(path)]) == 0          # random inputs, a 0-d one among them


def test_non_ascii_names_round_trip_and_compile():
    fn = parse(UNICODE_IR)
    assert fn.name == "größe" and print_function(fn) == UNICODE_IR
    a, b = np.array([0.5, 1.0]), np.array([2.0, -1.0])
    np.testing.assert_allclose(gj.run_ir(fn, a, b), np.sin(a * b))


def test_non_ascii_python_names_jit_and_differentiate():
    def größe(wert):
        ä = gj.exp(wert) * 2.0
        return gj.fori_loop(0, 2, lambda i, c: c * 1.5, ä)
    x = np.array([0.0, 1.0])
    np.testing.assert_allclose(gj.jit(größe)(x).numpy(), np.exp(x) * 4.5)
    fn = gj.make_ir(größe)(x)
    assert fn.name == "größe" and print_function(parse(str(fn))) == str(fn)
    np.testing.assert_allclose(gj.grad(lambda w: größe(w).sum())(x).numpy(), np.exp(x) * 4.5)


def test_gradjit_run_on_a_file_with_non_ascii_names(tmp_path, capsys):
    path = tmp_path / "größe.ir"
    path.write_text(UNICODE_IR, encoding="utf-8")
    assert main(["run", str(path)]) == 0
    assert "@größe: 2 input(s), 1 result(s)" in capsys.readouterr().out
