"""gradjit.save of whole objects (a Module, as torch.save(model, f)) and gradjit.load's
weights_only allowlist, as PyTorch 2.6+: refused by default with PyTorch's text, loaded
under serialization.safe_globals / add_safe_globals or with weights_only=False."""
import io
import pickle
import zipfile

import numpy as np
import pytest

import gradjit as gj
import gradjit.nn.functional as F
from gradjit.nn.modules import container, linear, rnn, sparse

# PyTorch 2.13's text for torch.load(f) of torch.save(Net(), f), Net defined in __main__
# (recorded with /tmp/torchvenv/bin/python); gradjit names the class's own module path.
TORCH_REFUSAL = (
    "Weights only load failed. This file can still be loaded, to do so you have two options, "
    "\x1b[1mdo those steps only if you trust the source of the checkpoint\x1b[0m. \n\t(1) In "
    "PyTorch 2.6, we changed the default value of the `weights_only` argument in `torch.load` "
    "from `False` to `True`. Re-running `torch.load` with `weights_only` set to `False` will "
    "likely succeed, but it can result in arbitrary code execution. Do it only if you got the "
    "file from a trusted source.\n\t(2) Alternatively, to load with `weights_only=True` please "
    "check the recommended steps in the following error message.\n\tWeightsUnpickler error: "
    "Unsupported global: GLOBAL __main__.Net was not an allowed global by default. Please use "
    "`torch.serialization.add_safe_globals([__main__.Net])` or the "
    "`torch.serialization.safe_globals([__main__.Net])` context manager to allowlist this "
    "global if you trust this class/function.\n\nCheck the documentation of torch.load to "
    "learn more about types accepted by default with weights_only "
    "https://pytorch.org/docs/stable/generated/torch.load.html.")


class Net(gj.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = gj.nn.Embedding(5, 4)
        self.rnn = gj.nn.LSTM(4, 3, batch_first=True)
        self.out = gj.nn.Linear(3, 5)
        self.act = F.relu
        self.scale, self.name, self.sizes = 0.5, "net", (4, 3)

    def forward(self, x):
        h, _ = self.rnn(self.emb(x))
        return self.act(self.out(h)) * self.scale


class Tied(gj.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = gj.nn.Linear(3, 3)
        self.b = gj.nn.Linear(3, 3)
        self.b.weight = self.a.weight


def saved(obj) -> io.BytesIO:
    buf = io.BytesIO()
    gj.save(obj, buf)
    buf.seek(0)
    return buf


def test_weights_only_load_refuses_a_class_with_pytorchs_text():
    with pytest.raises(pickle.UnpicklingError) as e:
        gj.load(saved(Net()))
    assert str(e.value) == TORCH_REFUSAL.replace("__main__.Net", f"{__name__}.Net")


def test_an_allowlisted_outer_class_names_the_next_refused_one():
    with gj.serialization.safe_globals([Net]):
        with pytest.raises(pickle.UnpicklingError, match=r"GLOBAL tracer\.nn\.\w+\.Embedding "
                                                         "was not an allowed global"):
            gj.load(saved(Net()))


def test_module_round_trip_under_safe_globals_computes_the_same():
    gj.manual_seed(0)
    net = Net().eval()
    x = gj.tensor([[0, 3, 1], [4, 2, 2]])
    allowed = [Net, sparse.Embedding, rnn.LSTM, linear.Linear, F.relu]
    with gj.serialization.safe_globals(allowed):
        back = gj.load(saved(net))
    assert type(back) is Net and back.training is False and back.act is F.relu
    assert (back.scale, back.name, back.sizes) == (0.5, "net", (4, 3))
    assert [n for n, _ in back.named_parameters()] == [n for n, _ in net.named_parameters()]
    assert all(isinstance(p, gj.nn.Parameter) for p in back.parameters())
    np.testing.assert_array_equal(back(x).detach().numpy(), net(x).detach().numpy())
    with pytest.raises(pickle.UnpicklingError):      # the context ended
        gj.load(saved(net))


def test_loaded_module_trains_like_the_original():
    gj.manual_seed(1)
    net = Net()
    back = gj.load(saved(net), weights_only=False)
    x, y = gj.tensor([[1, 2, 3]]), gj.randn(1, 3, 5)
    for model in (net, back):
        opt = gj.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()
    for p, q in zip(net.parameters(), back.parameters()):
        assert p is not q
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6)


def test_tied_parameters_stay_one_parameter():
    back = gj.load(saved(Tied()), weights_only=False)
    assert back.a.weight is back.b.weight
    assert len(list(back.parameters())) == 3


def test_add_safe_globals_and_clear():
    gj.serialization.add_safe_globals([Tied, linear.Linear])
    try:
        assert Tied in gj.serialization.get_safe_globals()
        assert isinstance(gj.load(saved(Tied())), Tied)
    finally:
        gj.serialization.clear_safe_globals()
    with pytest.raises(pickle.UnpicklingError):
        gj.load(saved(Tied()))


def test_torch_nn_modules_paths_name_the_same_classes():
    assert linear.Linear is gj.nn.Linear and rnn.LSTM is gj.nn.LSTM
    assert container.ModuleList is gj.nn.ModuleList and sparse.Embedding is gj.nn.Embedding
    assert issubclass(linear.NonDynamicallyQuantizableLinear, gj.nn.Linear)
    with pytest.raises(AttributeError, match="gradjit does not implement "
                                             "torch.nn.modules.linear.Bilinear"):
        _ = linear.Bilinear


def _crafted(tree_text: str) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/tree.json", tree_text)
    buf.seek(0)
    return buf


def test_weights_only_never_imports_a_module_the_file_names():
    import sys
    assert "this_module_does_not_exist" not in sys.modules
    doc = ('{"format": "gradjit-save-1", "tree": {"object": "this_module_does_not_exist:X", '
           '"state": {"dict": [], "ordered": false}}}')
    with pytest.raises(pickle.UnpicklingError, match="this_module_does_not_exist.X"):
        gj.load(_crafted(doc))
    with pytest.raises(pickle.UnpicklingError, match="GLOBAL os.system"):
        gj.load(_crafted('{"format": "gradjit-save-1", "tree": {"global": "os:system"}}'))


def test_flatten_parameters_is_accepted():
    lstm = gj.nn.LSTM(2, 2)
    assert lstm.flatten_parameters() is None


def test_an_object_of_a_function_is_refused_even_without_weights_only():
    doc = ('{"format": "gradjit-save-1", "tree": {"object": "os:getcwd", '
           '"state": {"dict": [], "ordered": false}}}')
    with pytest.raises(RuntimeError, match="which is not a class"):
        gj.load(_crafted(doc), weights_only=False)
