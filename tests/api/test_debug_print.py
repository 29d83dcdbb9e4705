"""gj.debug.print: printed at run time, with the values, from native code (a host callback)
and from the interpreter, formatted with str.format as jax.debug.print does."""
import numpy as np
import pytest

import gradjit as gj
from ir import parse

X = np.array([0.5, 1.0])


def _f(x):
    y = gj.sin(x)
    gj.debug.print("y = {} and x = {x}", y, x=x)
    return y * 2.0 + x


def test_prints_on_every_call_of_compiled_code(capsys):
    f = gj.jit(_f)
    np.testing.assert_allclose(f(X).numpy(), np.sin(X) * 2 + X, rtol=1e-14)
    f(np.array([0.1, 0.2]))
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"y = {np.sin(X)} and x = {X}",
                     f"y = {np.sin(np.array([0.1, 0.2]))} and x = [0.1 0.2]"]
    assert f.trace_count == 1          # the second line came from the compiled code


def test_interpreter_prints_the_same(capsys, monkeypatch):
    gj.jit(_f)(X)
    native = capsys.readouterr().out
    monkeypatch.setenv("GRADJIT_BACKEND", "interpret")
    gj.jit(_f)(X)
    assert capsys.readouterr().out == native


def test_format_specs_scalars_and_integers(capsys):
    @gj.jit
    def f(x, n):
        s = x.sum()
        gj.debug.print("sum={:.3f} n={n}", s, n=n)
        return s * n
    f(np.array([1.0, 2.25]), np.int64(3))
    assert capsys.readouterr().out == "sum=3.250 n=3\n"


def test_vmap_prints_once_per_element_and_grad_prints_the_forward(capsys):
    gj.vmap(_f)(np.array([[0.0, 0.0], [1.0, 1.0]]))
    out = capsys.readouterr().out.splitlines()
    assert out == [f"y = {np.sin(np.zeros(2))} and x = [0. 0.]",
                   f"y = {np.sin(np.ones(2))} and x = [1. 1.]"]

    def loss(x):
        y = gj.sin(x)
        gj.debug.print("y={}", y)
        return (y * y).sum()
    g = gj.grad(loss)(X)
    np.testing.assert_allclose(g.numpy(), 2 * np.sin(X) * np.cos(X), rtol=1e-14)
    assert capsys.readouterr().out == f"y={np.sin(X)}\n"


def test_eager_prints_at_once(capsys):
    gj.debug.print("v: {}", gj.tensor([1.0, 2.0]))
    assert capsys.readouterr().out == "v: [1. 2.]\n"


def test_a_bad_format_is_an_error_at_the_call():
    with pytest.raises(IndexError, match=r"debug.print: format 'a {} {}' .*test_debug_print"):
        gj.jit(lambda x: gj.debug.print("a {} {}", x) or x)(X)


def test_the_op_prints_and_parses_back():
    fn = gj.make_ir(gj.jit(_f))(X)
    assert [op.prim.name for op in fn.body][:2] == ["sin", "debug_print"]
    text = str(fn)
    assert 'fmt="y = {} and x = {x}"' in text
    assert str(parse(text)) == text
