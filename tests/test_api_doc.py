"""docs/api.md stays the public contract as built.

Every name in the first column of its tables exists in gradjit, and every public name of
gradjit (and of its nn, optim, autograd and ir modules, and of Tensor) is in those tables.
"""
from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

import gradjit as gj

API_MD = Path(__file__).resolve().parent.parent / "docs" / "api.md"

# The founding contract's names (the first API.md): they must stay, documented and working.
FOUNDING = (
    "grad value_and_grad jit vjp jvp jacobian hessian make_ir ir.parse run_ir cond fori_loop "
    "scan TracerError tensor randn rand zeros ones full arange linspace eye zeros_like "
    "ones_like rand_like randn_like full_like manual_seed float32 float64 int32 int64 bool "
    "Tensor.requires_grad Tensor.requires_grad_ Tensor.is_leaf Tensor.grad Tensor.grad_fn "
    "Tensor.detach Tensor.item Tensor.numpy Tensor.tolist Tensor.shape Tensor.dtype "
    "Tensor.ndim Tensor.size Tensor.T Tensor.backward Tensor.add_ Tensor.mul_ Tensor.zero_ "
    "Tensor.copy_ Tensor.sub_ Tensor.div_ autograd.grad autograd.Function no_grad enable_grad "
    "optim.SGD optim.Adam nn.Module nn.Linear nn.functional nn.functional.relu "
    "nn.functional.softmax nn.functional.log_softmax nn.functional.cross_entropy "
    "nn.functional.mse_loss "
    "add sub mul div neg pow exp log log1p expm1 sqrt rsqrt abs sign sin cos tan tanh sigmoid "
    "relu maximum minimum where clamp sum mean max min prod var std logsumexp argmax matmul "
    "dot outer einsum reshape view transpose permute expand broadcast_to squeeze unsqueeze "
    "flatten concatenate cat stack split gather index_add softmax log_softmax cross_entropy"
).split()


def documented_names() -> list[str]:
    """The dotted name at the start of each backticked entry in a table's first column."""
    names = []
    for line in API_MD.read_text().splitlines():
        if not line.startswith("| `"):
            continue                       # prose, a header row or a |---| separator
        first_cell = line[2:].split(" | ")[0]
        for entry in re.findall(r"`([^`]+)`", first_cell):
            match = re.match(r"[A-Za-z_][\w.]*", entry)
            assert match, f"docs/api.md: {entry!r} in a first column is not a name"
            names.append(match.group().rstrip("."))
    return names


DOCUMENTED = documented_names()


def resolve(name: str):
    obj = gj
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def test_the_tables_are_found():
    # a change of table layout that the parser misses must fail here, not pass vacuously
    assert len(DOCUMENTED) > 300
    assert {"grad", "Tensor.backward", "nn.Linear", "ir.parse", "einsum"} <= set(DOCUMENTED)


@pytest.mark.parametrize("name", sorted(set(DOCUMENTED)))
def test_documented_name_exists(name):
    try:
        resolve(name)
    except AttributeError:
        pytest.fail(f"docs/api.md lists `{name}`, which gradjit does not have")


def _public(module: types.ModuleType) -> list[str]:
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [n for n in dir(module) if not n.startswith("_")
            # gradjit's own submodules (gradjit.cli) are the command line, not the API
            and not getattr(getattr(module, n), "__name__", "").startswith("gradjit.")]


def _undocumented(prefix: str, module: types.ModuleType) -> list[str]:
    return [prefix + n for n in _public(module) if prefix + n not in DOCUMENTED]


def test_every_public_name_is_documented():
    missing = _undocumented("", gj)
    for sub in ("ir", "autograd", "autograd.functional", "optim", "optim.lr_scheduler", "nn",
                "nn.functional", "nn.init", "nn.utils", "func", "utils", "utils.data",
                "utils.checkpoint", "linalg", "tree_util", "tree", "debug"):
        missing += _undocumented(sub + ".", resolve(sub))
    assert not missing, f"add a row to docs/api.md for: {missing}"


def test_every_public_tensor_attribute_is_documented():
    # an op of section 3 is also a method (x.exp()): its row there documents both
    documented = set(DOCUMENTED)
    missing = [n for n in dir(gj.Tensor) if not n.startswith("_")
               and f"Tensor.{n}" not in documented and n not in documented]
    assert not missing, f"add these Tensor attributes to docs/api.md: {missing}"


@pytest.mark.parametrize("name", FOUNDING)
def test_founding_contract_name_is_documented_and_exists(name):
    assert name in DOCUMENTED, f"`{name}` (founding contract) is missing from docs/api.md"
    resolve(name)
