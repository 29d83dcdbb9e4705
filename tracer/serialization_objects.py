"""Saving whole objects (a Module, a user's model class) as torch.save does, and loading
them back only where PyTorch's weights_only unpickler would.

save writes such an object as its class path plus its attributes (`vars(obj)`, encoded like
any other tree, so Parameters stay tensors and shared tensors stay shared); a module-level
function or class it refers to (`F.relu` kept as an activation) is written as its path.
load rebuilds one with `cls.__new__(cls)` and the saved attributes, never calling __init__
or anything the file names. As PyTorch 2.6+, `weights_only=True` (the default) refuses a
class or function unless it is allowlisted with `serialization.add_safe_globals` or the
`safe_globals` context manager, with PyTorch's error text; `weights_only=False` allows
every name, importing its module (as unpickling would).
"""
from __future__ import annotations

import importlib
import pickle
import sys
import types

_SAFE: list = []            # add_safe_globals
_SCOPED: list = []          # safe_globals context managers, innermost last


def add_safe_globals(safe_globals: list) -> None:
    """torch.serialization.add_safe_globals: classes/functions weights_only loads allow."""
    _SAFE.extend(safe_globals)


def get_safe_globals() -> list:
    return list(_SAFE)


def clear_safe_globals() -> None:
    _SAFE.clear()


class safe_globals:
    """torch.serialization.safe_globals(list): allowlists the names inside a `with`."""

    def __init__(self, safe_globals: list):
        self.names = list(safe_globals)

    def __enter__(self):
        _SCOPED.append(self.names)
        return self

    def __exit__(self, *exc):
        _SCOPED.remove(self.names)
        return False


def global_path(x) -> str | None:
    """'module:qualname' of a module-level class or function (None for anything else)."""
    module = getattr(x, "__module__", None)
    qualname = getattr(x, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def is_global(x) -> bool:
    return isinstance(x, (type, types.FunctionType, types.BuiltinFunctionType)) \
        and global_path(x) is not None


def is_instance_of_a_class(x) -> bool:
    """An object save writes as class + attributes: an instance of a module-level class
    outside builtins (not a function, a class, a module or a generator) with a __dict__."""
    cls = type(x)
    return hasattr(x, "__dict__") and cls.__module__ != "builtins" \
        and global_path(cls) is not None and not isinstance(x, (type, types.ModuleType))


def resolve(path: str, weights_only: bool):
    """The class or function at path, if this load may use it."""
    module_name, qualname = path.split(":", 1)
    module = sys.modules.get(module_name)
    if module is None and not weights_only:
        module = importlib.import_module(module_name)
    target = module
    for part in qualname.split(".") if module is not None else ():
        target = getattr(target, part, None)
    allowed = not weights_only or any(target is s for s in _SAFE) or \
        any(target is s for names in _SCOPED for s in names)
    if module is None or target is None or not allowed:
        raise _refusal(module_name + "." + qualname)
    return target


def _refusal(name: str) -> pickle.UnpicklingError:
    """PyTorch 2.13's text for a weights_only load meeting a global it does not allow."""
    return pickle.UnpicklingError(
        "Weights only load failed. This file can still be loaded, to do so you have two "
        "options, \x1b[1mdo those steps only if you trust the source of the checkpoint"
        "\x1b[0m. \n\t(1) In PyTorch 2.6, we changed the default value of the `weights_only` "
        "argument in `torch.load` from `False` to `True`. Re-running `torch.load` with "
        "`weights_only` set to `False` will likely succeed, but it can result in arbitrary "
        "code execution. Do it only if you got the file from a trusted source.\n\t(2) "
        "Alternatively, to load with `weights_only=True` please check the recommended steps "
        "in the following error message.\n\tWeightsUnpickler error: Unsupported global: "
        f"GLOBAL {name} was not an allowed global by default. Please use "
        f"`torch.serialization.add_safe_globals([{name}])` or the "
        f"`torch.serialization.safe_globals([{name}])` context manager to allowlist this "
        "global if you trust this class/function.\n\nCheck the documentation of torch.load "
        "to learn more about types accepted by default with weights_only "
        "https://pytorch.org/docs/stable/generated/torch.load.html.")


def rebuild(cls, state: dict):
    """An instance of cls with the saved attributes, without calling its __init__."""
    if not isinstance(cls, type):
        raise RuntimeError(f"gradjit.load: the file asks for an instance of {cls!r}, which "
                           "is not a class")
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj
