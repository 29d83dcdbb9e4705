"""The module-level __getattr__ of gradjit's PyTorch-named namespaces.

A name gradjit lacks raises an AttributeError that says so in PyTorch's terms
("gradjit does not implement torch.nn.Conv3d"), never one naming an internal module.
"""
from __future__ import annotations


def missing_names(torch_name: str, module_name: str):
    """A module __getattr__ for the namespace that stands for `torch_name` (e.g. torch.nn)."""
    def __getattr__(name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        raise AttributeError(f"gradjit does not implement {torch_name}.{name} "
                             f"(module {module_name!r} has no attribute {name!r})")
    return __getattr__
