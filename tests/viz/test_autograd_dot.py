"""gj.autograd.to_dot / grad_fn.to_dot: torchviz-style pictures with PyTorch's node names."""
import gradjit as torch
from tests.viz.dotcheck import read_dot


def test_mlp_graph_has_torch_node_names_and_named_leaves():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    loss = m(torch.randn(5, 4)).pow(2).mean()
    g = read_dot(torch.autograd.to_dot(loss, params=dict(m.named_parameters())))
    labels = [v.split("\n")[0] for v in g["nodes"].values()]
    assert sorted(labels) == sorted(["output ()", "MeanBackward0", "PowBackward0",
                                     "AddmmBackward0", "ReluBackward0", "AddmmBackward0",
                                     "0.weight", "0.bias", "2.weight", "2.bias"])
    leaves = {v for v in g["nodes"].values() if v.startswith(("0.", "2."))}
    assert "0.weight\n(3, 4)" in leaves and "2.bias\n(1)" in leaves
    assert len(g["edges"]) == 9                 # 8 graph edges and the output


def test_grad_fn_to_dot_shares_nodes_used_twice():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * x + x
    g = read_dot(y.grad_fn.to_dot())
    labels = sorted(v.split("\n")[0] for v in g["nodes"].values())
    assert labels == ["(2)", "AddBackward0", "MulBackward0"]
    assert len(g["edges"]) == 3                 # x -> mul (once), mul -> add, x -> add
