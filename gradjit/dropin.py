"""Run an unmodified PyTorch script on gradjit: `gradjit torch script.py [args]`.

An import hook resolves `torch` and every `torch.X.Y` to `gradjit` and `gradjit.X.Y`
for this process only (real PyTorch, if installed, is untouched and never imported). A
submodule gradjit lacks fails the script's import with
`ModuleNotFoundError: gradjit does not implement torch.X`; a missing name inside a module
raises `AttributeError: gradjit does not implement torch.nn.Conv3d`.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import runpy
import sys

from tracer.dialect import use_torch_spellings


class TorchAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `torch...` modules and loads them as the matching `gradjit...` module."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "torch" and not fullname.startswith("torch."):
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        target = "gradjit" + spec.name[len("torch"):]
        try:
            return importlib.import_module(target)
        except ModuleNotFoundError as e:
            if e.name is not None and e.name.startswith("gradjit"):
                raise ModuleNotFoundError(f"gradjit does not implement {spec.name}",
                                          name=spec.name) from None
            raise

    def exec_module(self, module):
        # the module is gradjit's, already executed; the import system only records it
        # under the torch name (sys.modules['torch.nn'] is gradjit.nn)
        return None


def install() -> TorchAlias:
    """Makes `import torch` mean gradjit in this process (idempotent), and gives spellings
    PyTorch shares with NumPy PyTorch's meaning (torch.var(x, axis=0) is unbiased)."""
    use_torch_spellings()
    for finder in sys.meta_path:
        if isinstance(finder, TorchAlias):
            return finder
    finder = TorchAlias()
    sys.meta_path.insert(0, finder)
    return finder


def run_script(path: str, argv: list[str]) -> None:
    """Runs the script at path as __main__ with sys.argv = [path, *argv], torch = gradjit."""
    install()
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))   # as `python script.py`
    runpy.run_path(path, run_name="__main__")
