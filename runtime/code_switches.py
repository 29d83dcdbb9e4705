"""The code generator's switches changed in this process, for the disk cache's key.

The key holds the code generator's source (disk_cache.source_hash), but a module-level
constant that shapes code (llvm_split.PIPELINE_SPLIT, gemm_tiles.MIN_MACS, ...) can be
changed in-process after import (tests, A/B comparisons), and a program built then must not
load the object built with the source's value, nor store its own under the source's key.

SWITCH_MODULES is the one table: every codegen module, and the runtime modules whose
constants decide how code is built. Their UPPER_CASE constants are snapshotted when each
module is imported (a finder in front of sys.meta_path wraps its loader), and `changed()`
lists those that differ now. The key gets only the differences, so an unchanged process
(the usual case) keeps its keys, and the codegen modules need not be imported to compute
one (a warm start loads objects without importing codegen).
"""
from __future__ import annotations

import sys

SWITCH_MODULES = ("codegen", "runtime.llvm_split", "runtime.blas_split")
_SWITCH_TYPES = (bool, int, float, str, tuple, frozenset)   # (not dicts: some are counters)

_PREFIXES = tuple(m + "." for m in SWITCH_MODULES)
_defaults: dict[str, dict] = {}       # module name -> {constant: value at import}


def _is_switch_module(name: str) -> bool:
    return name.startswith(_PREFIXES) or name in SWITCH_MODULES


def _snapshot(module) -> dict:
    return {k: v for k, v in vars(module).items()
            if k[:1].isalpha() and k.isupper() and isinstance(v, _SWITCH_TYPES)}


class _SnapshotOnImport:
    """A meta path finder that finds nothing itself: for a switch module, wraps the spec the
    other finders give so that its constants are snapshotted right after the module runs.
    (Not an importlib.abc.MetaPathFinder: importing importlib.abc costs ~25 ms.)"""

    def find_spec(self, name, path, target=None):
        if not _is_switch_module(name):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module):
            run(module)
            _defaults[name] = _snapshot(module)
        loader.exec_module = exec_module          # (a file loader is made per spec)
        return spec


def install():
    """Snapshots the switch modules imported already and catches the later ones."""
    if not any(isinstance(f, _SnapshotOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _SnapshotOnImport())
    for name, module in list(sys.modules.items()):
        if module is not None and _is_switch_module(name) and name not in _defaults:
            spec = getattr(module, "__spec__", None)
            if getattr(spec, "_initializing", False):
                raise ImportError(f"runtime.code_switches imported while {name} is being "
                                  "imported: its constants are not all set yet")
            _defaults[name] = _snapshot(module)


def changed() -> dict:
    """{"module.CONSTANT": repr(value)} of every switch whose value differs from the one
    its module set when imported (~20 us: a getattr per switch, no module is imported)."""
    out = {}
    for name, defaults in _defaults.items():
        module = sys.modules.get(name)
        if module is None:
            continue
        for key, default in defaults.items():
            value = getattr(module, key, _GONE)
            if value is not default and (type(value) is not type(default) or value != default):
                out[f"{name}.{key}"] = repr(value)
    return out


_GONE = object()


install()
