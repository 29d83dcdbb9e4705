"""The code generator's switches changed in this process, for the disk cache's key.

The key holds the code generator's source (disk_cache.source_hash), but a module-level
constant that shapes code (llvm_split.PIPELINE_SPLIT, gemm_tiles.MIN_MACS, ...) can be
changed in-process after import (tests, A/B comparisons), and a program built then must not
load the object built with the source's value, nor store its own under the source's key.

The switches are the UPPER_CASE constants of every codegen module and of the runtime modules
in RUNTIME_SWITCH_MODULES. Their values as imported are kept by the modules themselves, with
no import hook: codegen/__init__.py copies its modules' namespaces once it has imported them
all (`codegen.IMPORTED_NAMESPACES`: importing any codegen module runs it first), and each
runtime switch module calls `snapshot()` on its last line. `changed()` lists the switches
that differ now. The key gets only the differences, so an unchanged process (the usual case)
keeps its keys, and the codegen modules need not be imported to compute one (a warm start
loads objects without importing codegen).
"""
from __future__ import annotations

import sys

RUNTIME_SWITCH_MODULES = ("runtime.llvm_split", "runtime.blas_split")
_SWITCH_TYPES = (bool, int, float, str, tuple, frozenset)   # (not dicts: some are counters)

_defaults: dict[str, dict] = {}       # module name -> {constant: value at import}


def switches(namespace: dict) -> dict:
    """The switch constants of a module's namespace."""
    return {k: v for k, v in namespace.items()
            if k[:1].isalpha() and k.isupper() and isinstance(v, _SWITCH_TYPES)}


def snapshot(name: str):
    """Called by a runtime switch module on its last line: its values as imported."""
    _defaults[name] = switches(vars(sys.modules[name]))


def _codegen_defaults():
    """Takes in the codegen modules' values as imported, once codegen is (not before: a warm
    start never imports it)."""
    codegen = sys.modules.get("codegen")
    namespaces = getattr(codegen, "IMPORTED_NAMESPACES", None)
    if namespaces is not None and "codegen" not in _defaults:
        _defaults.update({name: switches(namespace) for name, namespace in namespaces.items()})
        _defaults["codegen"] = {}         # (last: another thread sees all or none)


def changed() -> dict:
    """{"module.CONSTANT": repr(value)} of every switch whose value differs from the one
    its module set when imported (~20 us: a getattr per switch, no module is imported)."""
    _codegen_defaults()
    out = {}
    for name, defaults in list(_defaults.items()):    # (a module may be imported meanwhile)
        module = sys.modules.get(name)
        if module is None:
            continue
        for key, default in defaults.items():
            value = getattr(module, key, _GONE)
            if value is not default and (type(value) is not type(default) or value != default):
                out[f"{name}.{key}"] = repr(value)
    return out


_GONE = object()
