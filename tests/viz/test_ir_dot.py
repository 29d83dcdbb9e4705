"""Function.to_dot: one node per op, a cluster per region, forward/adjoint colours."""
import shutil

import numpy as np
import pytest

import gradjit as gj
from ir.core import walk_ops
from ir.dot import ADJOINT_COLOR, FORWARD_COLOR, RenderError, forward_ops, render_svg
from tests.viz.dotcheck import read_dot


def loss(w, x):
    return (gj.tanh(x @ w) ** 2).mean()


W = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
X = np.linspace(0, 1, 40, dtype=np.float32).reshape(5, 8)


def op_nodes(graph):
    return {k: v for k, v in graph["nodes"].items() if k.startswith("op")}


def test_one_node_per_op_and_marked_params_and_results():
    fn = gj.make_ir(gj.jit(loss))(W, X)
    g = read_dot(fn.to_dot())
    assert len(op_nodes(g)) == len(fn.body)
    assert sorted(v for k, v in g["nodes"].items() if k.startswith("p")) == \
        ["%w: f32[8,3]", "%x: f32[5,8]"]
    assert [v for k, v in g["nodes"].items() if k.startswith("r")] == ["result 0: f32[]"]
    # every operand use is an edge: the op count of inputs from params and ops
    assert len(g["edges"]) == sum(len(op.inputs) for op in fn.body) + len(fn.results)
    names = [v.split(" = ")[1].split()[0].split("{")[0] for v in op_nodes(g).values()]
    assert names == [op.prim.name for op in fn.body]


def test_grad_colours_forward_and_adjoint_apart():
    fn = gj.make_ir(gj.grad(loss))(W, X)
    assert fn.primal is not None
    forward = forward_ops(fn, fn.primal)
    # the forward part recomputes dot_general and tanh; the last dot_general is adjoint
    assert {op.prim.name for op in forward} == {"dot_general", "tanh"}
    assert fn.body[-1] not in forward
    text = fn.to_dot()
    assert text.count(FORWARD_COLOR) == len(forward)
    assert text.count(ADJOINT_COLOR) == len(fn.body) - len(forward)


def test_plain_function_has_no_adjoint_colour():
    fn = gj.make_ir(gj.jit(loss))(W, X)
    assert ADJOINT_COLOR not in fn.to_dot() and FORWARD_COLOR not in fn.to_dot()


def test_regions_are_clusters():
    def f(x):
        def body(c, xi):
            return c * 0.5 + gj.sin(xi), c
        c, ys = gj.scan(body, gj.zeros(()), x)
        return gj.cond(c > 0, lambda v: v * 2, lambda v: v - 1, c) + ys.sum()
    fn = gj.make_ir(gj.jit(f))(np.arange(4, dtype=np.float32))
    regions = sum(len(op.regions) for op in walk_ops(fn))
    g = read_dot(fn.to_dot())
    assert regions >= 3 and len(g["clusters"]) == regions
    assert len(op_nodes(g)) == sum(1 for _ in walk_ops(fn))


def test_labels_escape_quotes_and_backslashes():
    fn = gj.ir.parse('func @f(%x: f32[2]) -> (f32[2]) {\n  %y = exp %x : f32[2]  # "a\\b".py:1\n'
                     '  return %y\n}\n')
    g = read_dot(fn.to_dot())
    assert any('"a\\b".py:1' in v for v in g["nodes"].values())


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program not installed")
def test_svg_renders_with_graphviz():
    fn = gj.make_ir(gj.grad(loss))(W, X)
    svg = fn.to_svg()
    assert svg.lstrip().startswith("<?xml") or "<svg" in svg[:500]
    assert svg.count("<g id=\"node") == len(read_dot(fn.to_dot())["nodes"])
    assert fn._repr_svg_() == svg


def test_missing_renderer_names_what_to_install(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_graphviz(name, *a, **k):
        if name == "graphviz":
            raise ImportError(name)
        return real_import(name, *a, **k)
    monkeypatch.setattr(shutil, "which", lambda _: None)
    monkeypatch.setattr(builtins, "__import__", no_graphviz)
    with pytest.raises(RenderError, match="apt-get install graphviz"):
        render_svg("digraph g {}")
    fn = gj.make_ir(gj.jit(loss))(W, X)
    assert fn._repr_svg_() is None        # Jupyter then shows the text
