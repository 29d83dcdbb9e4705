"""The fusion report: kernels, what they hold and store, bytes, saved vs recomputed."""
import numpy as np

import gradjit as gj
from codegen.report import fusion_report
from tests.viz.dotcheck import read_dot


def chain(x):
    return gj.sum(gj.tanh(gj.exp(gj.sin(x)) * 2.0))


def mlp_loss(w, x):
    return (gj.tanh(x @ w) ** 2).mean()


X = np.linspace(-1, 1, 1000, dtype=np.float32)
W = np.linspace(-1, 1, 2560, dtype=np.float32).reshape(256, 10)
XB = np.linspace(0, 1, 64 * 256, dtype=np.float32).reshape(64, 256)


def test_chain_forward_and_backward_are_one_kernel():
    rep = gj.value_and_grad(chain).lower(X).fusion_report()
    assert [k.kind for k in rep.kernels] == ["loop nest"]
    k = rep.kernels[0]
    assert k.space == (1000,)
    names = [op.prim.name for op in k.ops]
    assert {"sin", "exp", "tanh", "cos", "reduce_sum"} <= set(names)
    assert len(k.ops) == len(rep.fn.body)            # every op evaluated in this one pass
    assert k.bytes_read == X.nbytes                  # x read once
    assert k.bytes_written == X.nbytes + 4           # the gradient and the value
    # the forward values the adjoint reads stay in registers: nothing saved, nothing redone
    assert rep.saved == [] and rep.recomputed == []
    assert len(rep.fused) >= 2
    text = str(rep)
    assert "1 kernel(s), 1 loop nest(s)" in text and "function result" in text


def test_mlp_report_lists_gemms_and_why_values_are_stored():
    rep = gj.value_and_grad(mlp_loss).lower(W, XB).fusion_report()
    kinds = [k.kind for k in rep.kernels]
    assert kinds.count("loop nest") >= 1
    dots = [k for k in rep.kernels if k.kind.startswith("gemm (") or k.kind == "dot_general"]
    assert len(dots) == 2                           # forward x@w and the adjoint x.T @ g
    whys = {why for k in rep.kernels for _, why in k.stores}
    assert "reduction" in whys and "function result" in whys
    assert any(why.startswith("operand of") for why in whys)
    # reads and writes of a gemm kernel: its operands and its result, in bytes
    first = dots[0]
    assert first.bytes_written == 64 * 10 * 4
    assert first.bytes_read == W.nbytes + XB.nbytes


def test_a_value_read_in_two_kernels_is_reported_recomputed_or_saved():
    def f(x):
        y = gj.exp(x) * 3.0                # used by a reduction and by an elementwise output
        return (y.sum() * y).sum()
    rep = gj.value_and_grad(f).lower(X).fusion_report()
    assert rep.saved or rep.recomputed or rep.fused
    everything = rep.saved + rep.recomputed + rep.fused
    assert len(set(everything)) == len(everything)


def test_names_match_the_printed_ir():
    fn = gj.make_ir(gj.value_and_grad(chain))(X)
    rep = fusion_report(fn)
    printed = str(fn)
    for k in rep.kernels:
        for op in k.ops:
            assert f"{rep._name(op.results[0])} = {op.prim.name}" in printed


def test_regions_are_reported_inside_their_kernel():
    def f(x):
        def body(c, xi):
            return c + gj.sin(xi), c
        c, _ = gj.scan(body, gj.zeros(()), x)
        return c
    rep = gj.jit(f).lower(X).fusion_report()
    scans = [k for k in rep.kernels if k.kind == "scan"]
    assert len(scans) == 1 and len(scans[0].regions) == 1
    assert "sin" in str(scans[0].regions[0])


def test_dot_has_one_cluster_per_kernel():
    rep = gj.value_and_grad(mlp_loss).lower(W, XB).fusion_report()
    g = read_dot(rep.to_dot())
    assert len(g["clusters"]) == len(rep.kernels)
    assert sum(k.startswith("k") for k in g["nodes"]) == sum(len(k.ops) for k in rep.kernels)


def test_cli_fusion_flag(tmp_path, capsys):
    from gradjit.cli import main
    src = tmp_path / "m.py"
    src.write_text("import gradjit as gj\ndef loss(x):\n    return gj.sum(gj.tanh(x))\n")
    assert main(["ir", f"{src}:loss", "--arg", "f32[100]", "--grad", "--fusion"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("fusion report @loss_grad: 1 kernel(s)")
    assert main(["ir", f"{src}:loss", "--arg", "f32[100]", "--grad", "--fusion", "--dot"]) == 0
    assert len(read_dot(capsys.readouterr().out)["clusters"]) == 1
    assert main(["ir", f"{src}:loss", "--arg", "f32[100]", "--dot"]) == 0
    assert len(read_dot(capsys.readouterr().out)["nodes"]) >= 3


def test_gemm_kernels_name_the_code_that_makes_the_product():
    # codegen.dots.gemm_route is the decision _gemm takes: the MLP 784 layer's x @ W^T goes
    # to gradjit's packed tile function, its 10-column head to the BLAS
    def f(x, w, v):
        return ((x @ w.T) @ v).sum()
    x, w, v = (np.ones(s, np.float32) for s in ((256, 784), (256, 784), (256, 10)))
    rep = gj.value_and_grad(f, argnums=(1,)).lower(x, w, v).fusion_report()
    kinds = [k.kind for k in rep.kernels if k.kind.startswith("gemm")]
    assert kinds.count("gemm (packed tiles)") == 2 and kinds.count("gemm (BLAS)") == 2
    assert "gemm (packed tiles)" in str(rep)
