"""PyTorch's keyword names for every argument: `torch.matmul(input=a, other=b)`,
`x.add(other=y, alpha=2)`, `torch.cat(tensors=[...], dim=0)`.

recorded/signatures.json holds the keyword names PyTorch 2.13's argument parser accepts for
each public function, Tensor method, torch.nn.functional and torch.linalg function (recorded
by recorded/record_signatures.py). Every one of those names that gradjit implements must
accept every recorded keyword, except the few listed below with the reason.
"""
from __future__ import annotations

import inspect
import json
import pathlib

import numpy as np
import pytest

import gradjit as torch
import gradjit.linalg
import gradjit.nn.functional as F

SIGNATURES = json.loads((pathlib.Path(__file__).parent / "recorded" / "signatures.json")
                        .read_text())
NAMESPACES = {"torch": torch, "Tensor": torch.Tensor, "torch.nn.functional": F,
              "torch.linalg": gradjit.linalg}

# keywords gradjit does not take anywhere, and why
NOT_TAKEN = {
    "out": "out= is taken by the ops of tracer/out.py only (add, sub, mul, div, matmul, cat)",
    "layout": "gradjit has one layout (strided)",
    "pin_memory": "gradjit is a CPU compiler: there is no pinned host memory",
    "memory_format": "gradjit has one memory format (contiguous)",
    "out_dtype": "mm/bmm's out_dtype (a low-precision accumulate option) is not implemented",
}
# (namespace, name) -> keywords not taken by that one function (None: the whole signature)
EXEMPT = {
    ("torch", "vmap"): None,          # gradjit's vmap is JAX's (in_axes, out_axes)
    ("torch", "while_loop"): None,    # JAX's while_loop(cond_fun, body_fun, init_val)
    ("torch", "cond"): None,          # JAX's cond(pred, true_fn, false_fn, *operands)
    ("torch", "compile"): None,       # TorchDynamo's options do not apply
    ("torch", "result_type"): None,   # NumPy's result_type(*arrays_and_dtypes)
    ("torch", "full"): {"names"},     # named tensors
    ("Tensor", "view"): {"dtype"},    # view(dtype) reinterprets bits: not implemented
    ("Tensor", "normal_"): {"generator"},
    ("Tensor", "uniform_"): {"generator"},
    ("torch.nn.functional", "mse_loss"): {"weight"},   # new in 2.13, not implemented
    ("torch.nn.functional", "l1_loss"): {"weight"},
}


def _ours(namespace: str, name: str):
    owner = NAMESPACES[namespace]
    if namespace == "Tensor":
        obj = inspect.getattr_static(owner, name, None)
        return None if isinstance(obj, property) else obj
    return getattr(owner, name, None) if name in dir(owner) else None


def _keywords(fn, method: bool) -> set[str]:
    params = list(inspect.signature(fn).parameters.values())
    if method and params and params[0].kind != params[0].VAR_POSITIONAL:
        params = params[1:]                                   # self
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _implemented():
    for namespace, table in SIGNATURES.items():
        for name, overloads in sorted(table.items()):
            fn = _ours(namespace, name)
            if fn is not None and callable(fn):
                yield namespace, name, fn, overloads


def test_the_walk_covers_the_op_surface():
    # the walk is not vacuous: the ops users call most are in it
    walked = {(ns, name) for ns, name, _, _ in _implemented()}
    for must in [("torch", "matmul"), ("torch", "sum"), ("torch", "cat"), ("torch", "where"),
                 ("Tensor", "add"), ("Tensor", "view"), ("torch.nn.functional", "relu"),
                 ("torch.nn.functional", "cross_entropy"), ("torch.linalg", "norm")]:
        assert must in walked
    assert len(walked) > 250


def test_every_recorded_keyword_is_taken():
    missing = []
    for namespace, name, fn, overloads in _implemented():
        exempt = EXEMPT.get((namespace, name), set())
        if exempt is None:
            continue
        want = {p for overload in overloads for p, _ in overload}
        want -= set(NOT_TAKEN) | exempt
        lacking = want - _keywords(fn, namespace == "Tensor")
        if lacking:
            missing.append(f"{namespace}.{name}: {sorted(lacking)}")
    assert not missing, "PyTorch keyword names not taken:\n" + "\n".join(missing)


def _pair():
    a = torch.tensor([[1.0, -2.0], [3.0, 0.5]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[0.5, 1.5], [-1.0, 2.0]], dtype=torch.float64)
    return a, b


CALLS = [   # (keyword call, positional call)
    (lambda a, b: torch.matmul(input=a, other=b), lambda a, b: torch.matmul(a, b)),
    (lambda a, b: torch.sum(input=a * b, dim=0), lambda a, b: torch.sum(a * b, 0)),
    (lambda a, b: a.add(other=b, alpha=2), lambda a, b: a.add(b, alpha=2)),
    (lambda a, b: torch.cat(tensors=[a, b], dim=0), lambda a, b: torch.cat([a, b], 0)),
    (lambda a, b: torch.where(condition=b > 0, input=a, other=b),
     lambda a, b: torch.where(b > 0, a, b)),
    (lambda a, b: torch.mul(input=a, other=b), lambda a, b: a * b),
    (lambda a, b: torch.max(a, other=b), lambda a, b: torch.maximum(a, b)),
    (lambda a, b: a.reshape(shape=(4,)) * b.view(size=(4,)), lambda a, b: a.reshape(4) * b.view(4)),
    (lambda a, b: a.permute(dims=(1, 0)).expand(size=(3, 2, 2)),
     lambda a, b: a.permute(1, 0).expand(3, 2, 2)),
    (lambda a, b: torch.swapaxes(a, axis0=0, axis1=1), lambda a, b: a.transpose(0, 1)),
    (lambda a, b: torch.stack(a.split(split_size=1), dim=0), lambda a, b: torch.stack(a.split(1))),
    (lambda a, b: F.softmax(input=a, dim=-1), lambda a, b: F.softmax(a, -1)),
    (lambda a, b: F.relu(input=a), lambda a, b: F.relu(a)),
    (lambda a, b: torch.tensordot(a=a, b=b, dims=1), lambda a, b: torch.tensordot(a, b, 1)),
    (lambda a, b: torch.clamp(input=a, min=-1.0, max=1.0), lambda a, b: torch.clamp(a, -1.0, 1.0)),
]


@pytest.mark.parametrize("by_keyword, by_position", CALLS)
def test_keyword_calls_equal_positional_calls(by_keyword, by_position):
    a, b = _pair()
    got = by_keyword(a, b)
    got.sum().backward()
    g_kw = a.grad.numpy().copy()
    a.grad = None
    want = by_position(a, b)
    want.sum().backward()
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy())
    np.testing.assert_allclose(g_kw, a.grad.numpy())
    assert type(got.grad_fn).__name__ == type(want.grad_fn).__name__


def test_keyword_arguments_are_saved_as_positional_ones():
    # mul saves both operands: changing one in place after a keyword call must fail backward
    # exactly as after a positional call
    a, b = _pair()
    b = b.clone().requires_grad_()
    c = b * 1.0
    y = torch.mul(input=a, other=c)
    c.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_creation_keywords():
    assert torch.zeros(size=(2, 3)).shape == (2, 3)
    assert torch.ones(size=[4]).shape == (4,)
    assert torch.randn(size=(2,), generator=None).shape == (2,)
    x = torch.ones(2, 2)
    assert x.new_zeros(size=(3,)).shape == (3,)
    assert torch.zeros_like(input=x).shape == (2, 2)
    with pytest.raises(TypeError, match="multiple values for argument 'size'"):
        torch.zeros(2, size=(2,))
    with pytest.raises(TypeError, match="multiple values for argument 'shape'"):
        x.reshape(4, shape=(4,))


def test_inplace_keywords():
    x = torch.zeros(3)
    x.add_(other=torch.ones(3), alpha=2)
    x.addcmul_(tensor1=torch.ones(3), tensor2=torch.full((3,), 2.0), value=0.5)
    x.clamp_(min=0.0, max=2.5)
    x.copy_(other=x * 2)
    assert x.tolist() == [5.0, 5.0, 5.0]
    x.uniform_(0.0, to=0.5)
    assert float(x.max()) < 0.5
