"""gradjit.save / gradjit.load: round trips, file objects, PyTorch-written .pt fixtures
(tests/api/recorded/record_pt.py), and refusal of pickles that would run code."""
import io
import json
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import gradjit as gj

PT = Path(__file__).parent / "recorded" / "pt"
EXPECTED = json.loads((PT / "expected.json").read_text())


def same(a, b):
    """Structural equality with Tensors compared by dtype, value and requires_grad."""
    if isinstance(a, gj.Tensor):
        assert isinstance(b, gj.Tensor) and a.dtype == b.dtype and a.shape == b.shape
        assert a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
        return
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


NESTED = {"w": gj.tensor([[1.0, 2.0]]), "i": gj.tensor([1, 2, 3]),
          "d": gj.tensor([0.1], dtype=gj.float64), "b": gj.tensor([True, False]),
          "scalar": gj.tensor(3.5), "list": [1, 2.5, "s", None, True, float("inf"),
                                              float("nan")],
          "tuple": (1, (2, 3)), 7: "int key", (1, 2): "tuple key",
          "ordered": OrderedDict([("z", 1), ("a", 2)]), "array": np.arange(4.0)}


def test_round_trip_nested_containers(tmp_path):
    path = tmp_path / "obj.pt"
    gj.save(NESTED, path)
    loaded = gj.load(path)
    np.testing.assert_array_equal(loaded.pop("array"), NESTED["array"])
    same({k: v for k, v in NESTED.items() if k != "array"}, loaded)


def test_round_trip_through_file_objects_and_str_paths(tmp_path):
    buf = io.BytesIO()
    gj.save([gj.tensor([1.0, 2.0], requires_grad=True)], buf)
    buf.seek(0)
    (t,) = gj.load(buf, weights_only=False, map_location="cpu")
    assert t.requires_grad and t.is_leaf and t.tolist() == [1.0, 2.0]
    gj.save(gj.ones(2), str(tmp_path / "t.pt"))
    with open(tmp_path / "t.pt", "rb") as f:
        assert gj.load(f).tolist() == [1.0, 1.0]


def test_the_same_tensor_stays_one_tensor():
    t = gj.tensor([1.0])
    buf = io.BytesIO()
    gj.save({"a": t, "b": t, "c": gj.tensor([1.0])}, buf)
    buf.seek(0)
    out = gj.load(buf)
    assert out["a"] is out["b"] and out["a"] is not out["c"]


def test_model_and_optimizer_state_round_trip(tmp_path):
    model = gj.nn.Sequential(gj.nn.Linear(3, 4), gj.nn.Tanh(), gj.nn.Linear(4, 1))
    opt = gj.optim.Adam(model.parameters(), lr=0.01)
    x, y = gj.randn(8, 3), gj.randn(8, 1)

    def step(m, o):
        o.zero_grad()
        ((m(x) - y) ** 2).mean().backward()
        o.step()
    step(model, opt)
    gj.save({"model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    step(model, opt)
    want = [p.detach().numpy().copy() for p in model.parameters()]
    ckpt = gj.load(tmp_path / "ckpt.pt")
    clone = gj.nn.Sequential(gj.nn.Linear(3, 4), gj.nn.Tanh(), gj.nn.Linear(4, 1))
    clone.load_state_dict(ckpt["model"])
    opt2 = gj.optim.Adam(clone.parameters(), lr=1.0)
    opt2.load_state_dict(ckpt["opt"])
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.state[clone[0].weight]["step"] == 1
    step(clone, opt2)
    for got, expected in zip(clone.parameters(), want):
        np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-6)


def test_parameters_load_as_parameters():
    buf = io.BytesIO()
    gj.save(gj.nn.Parameter(gj.tensor([1.0])), buf)
    buf.seek(0)
    p = gj.load(buf)
    assert isinstance(p, gj.nn.Parameter) and p.requires_grad


@pytest.mark.parametrize("bad, message", [
    ((x for x in ()), "cannot store a generator"), ({"f": lambda: 0}, "cannot store a function")])
def test_unsupported_objects_are_named(bad, message):
    with pytest.raises(TypeError, match=message):
        gj.save(bad, io.BytesIO())


@pytest.mark.parametrize("location", ["cuda", "cuda:0", {"cpu": "cuda:1"}])
def test_map_location_other_than_cpu_is_an_error(location, tmp_path):
    gj.save(gj.ones(1), tmp_path / "t.pt")
    with pytest.raises(RuntimeError, match="only 'cpu' is available"):
        gj.load(tmp_path / "t.pt", map_location=location)


def test_not_an_archive_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not a zip archive"):
        gj.load(io.BytesIO(pickle.dumps({"a": 1})))


# ---- PyTorch-written files --------------------------------------------------------------

def check_expected(got, want):
    if isinstance(want, dict) and "dtype" in want and "value" in want:
        dtype = {"torch.float16": "torch.float32"}.get(want["dtype"], want["dtype"])
        assert str(got.dtype) == dtype and list(got.shape) == want["shape"]
        assert got.requires_grad == want["requires_grad"]
        np.testing.assert_array_equal(got.detach().numpy(), np.array(want["value"]))
    elif isinstance(want, dict):
        assert [str(k) for k in got] == list(want)
        for k, v in zip(got, want.values()):
            check_expected(got[k], v)
    elif isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            check_expected(g, w)
    else:
        assert got == want


@pytest.mark.parametrize("name", ["linear_bn", "optimizer", "tensors"])
def test_loads_pytorch_saved_files(name):
    check_expected(gj.load(PT / f"{name}.pt"), EXPECTED[name])


def test_pytorch_state_dict_loads_into_a_module():
    sd = gj.load(PT / "linear_bn.pt")
    lin = gj.nn.Linear(3, 2)
    lin.load_state_dict({k[2:]: v for k, v in sd.items() if k.startswith("0.")})
    np.testing.assert_array_equal(lin.weight.detach().numpy(),
                                  EXPECTED["linear_bn"]["0.weight"]["value"])
    loaded = gj.load(PT / "tensors.pt")
    assert isinstance(loaded["param"], gj.nn.Parameter)
    assert loaded["nested"] == [1, 2.5, "x", None, (3, 4)]


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > " + os.environ.get("GJ_PWNED", "/dev/null"),))


def pt_archive(payload: bytes, extra=None) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/byteorder", "little")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    buf.seek(0)
    return buf


MALICIOUS = {
    "os.system": pickle.dumps({"x": RunsCode()}, protocol=2),
    "builtins.eval": b"cbuiltins\neval\n(S'1+1'\ntR.",
    "torch storage then exec": b"cbuiltins\nexec\n(S'import os'\ntR.",
    "numpy reconstruct": pickle.dumps(np.arange(3)),
}


@pytest.mark.parametrize("payload", MALICIOUS.values(), ids=MALICIOUS.keys())
@pytest.mark.parametrize("weights_only", [True, False])
def test_a_pickle_that_would_run_code_is_refused(payload, weights_only, tmp_path,
                                                  monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("GJ_PWNED", str(marker))
    payload = pickle.dumps({"x": RunsCode()}, protocol=2) if b"system" in payload else payload
    with pytest.raises(pickle.UnpicklingError, match="refuses to load the global"):
        gj.load(pt_archive(payload), weights_only=weights_only)
    assert not marker.exists()


def test_a_crafted_layout_cannot_read_past_its_storage():
    """A _rebuild_tensor_v2 call whose size/stride reach beyond the storage bytes."""
    payload = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(("
               b"X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000"
               b"X\x03\x00\x00\x00cpuK\x02tQK\x00K\xe8\x85K\x01\x85\x89tR.")
    archive = pt_archive(payload, {"archive/data/0": np.ones(2, np.float32).tobytes()})
    with pytest.raises(pickle.UnpicklingError, match="reaches past its storage"):
        gj.load(archive)


def test_an_unknown_persistent_id_is_refused():
    payload = b"\x80\x02X\x04\x00\x00\x00evilQ."
    with pytest.raises(pickle.UnpicklingError, match="unsupported persistent id"):
        gj.load(pt_archive(payload))
