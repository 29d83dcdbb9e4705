"""The disk cache's key holds the code generator's switches changed in-process
(runtime/code_switches.py): a program built after a change neither loads the object built
with the source's value nor stores its own under the source's key."""
import ast
import subprocess
import sys

import pytest

import runtime
from codegen import gemm_tiles, summation
from runtime import code_switches, llvm_split
from runtime import disk_cache as cache
from runtime.engine import Engine
from tests.runtime.fresh import ROOT
from tests.runtime.test_disk_cache import cache_dir, check_runs, entries, softplus  # noqa: F401


def test_only_switches_changed_since_import_are_listed(monkeypatch):
    assert code_switches.changed() == {}
    monkeypatch.setattr(llvm_split, "PIPELINE_SPLIT", not llvm_split.PIPELINE_SPLIT)
    monkeypatch.setattr(gemm_tiles, "MIN_MACS", gemm_tiles.MIN_MACS + 1)
    assert code_switches.changed() == {
        "runtime.llvm_split.PIPELINE_SPLIT": repr(llvm_split.PIPELINE_SPLIT),
        "codegen.gemm_tiles.MIN_MACS": repr(gemm_tiles.MIN_MACS)}
    monkeypatch.setattr(gemm_tiles, "MIN_MACS", float(gemm_tiles.MIN_MACS - 1))  # == but
    assert "codegen.gemm_tiles.MIN_MACS" in code_switches.changed()             # a float


@pytest.mark.parametrize("module, name, value", [
    (llvm_split, "PIPELINE_SPLIT", False),
    (summation, "BLOCK", 64),
])
def test_a_program_built_with_a_switch_changed_does_not_load_the_old_object(
        cache_dir, monkeypatch, module, name, value):  # noqa: F811
    fn = softplus(9, name="switched")
    key = cache.entry_key(fn, "m", False, Engine())
    check_runs(runtime.compile(fn), fn)
    assert len(entries(cache_dir)) == 1
    runtime.clear_cache()
    monkeypatch.setattr(module, name, value)
    changed = cache.entry_key(fn, "m", False, Engine())
    assert changed != key and changed["switches"] == {f"{module.__name__}.{name}": repr(value)}
    second = runtime.compile(fn)
    assert second.origin == "disk cache miss: no entry; stored"    # built again, apart
    check_runs(second, fn)
    assert len(entries(cache_dir)) == 2
    monkeypatch.undo()
    runtime.clear_cache()
    assert cache.entry_key(fn, "m", False, Engine()) == key
    hits = runtime.cache_info()["disk_hits"]
    runtime.compile(fn)
    assert runtime.cache_info()["disk_hits"] == hits + 1      # the first entry again


def test_a_switch_module_imported_after_runtime_is_snapshotted_at_import():
    """In a fresh process: codegen modules are imported after runtime (a warm start imports
    none); their values at import are the reference, whatever happens to them later."""
    script = (
        "import sys\n"
        "import runtime\n"
        "from runtime import code_switches\n"
        "assert 'codegen.vector_dots' not in sys.modules\n"
        "assert code_switches.changed() == {}\n"
        "from codegen import vector_dots\n"
        "vector_dots.ENABLED = not vector_dots.ENABLED\n"
        "print(code_switches.changed())\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'codegen.vector_dots.ENABLED': 'False'}"


def test_a_runtime_switch_module_imported_later_is_snapshotted_at_import():
    """runtime.blas_split is imported only for a program with a product: its own last line
    keeps its values as imported, whatever happens to them later."""
    script = (
        "import sys\n"
        "import runtime\n"
        "from runtime import code_switches\n"
        "assert 'runtime.blas_split' not in sys.modules\n"
        "from runtime import blas_split\n"
        "assert code_switches.changed() == {}\n"
        "blas_split.PROBE_ROWS += 1\n"
        "print(code_switches.changed())\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'runtime.blas_split.PROBE_ROWS': '49'}"


# codegen modules that `import codegen` does not import: their constants do not shape code
NOT_IMPORTED_BY_CODEGEN = {"codegen.report", "codegen.tile_needs"}


def test_every_codegen_module_is_snapshotted_and_a_warm_start_keeps_its_key():
    """In a fresh process: the key made before codegen is imported (a warm start's) equals
    the one made after every switch module is imported and nothing changed; every codegen
    module but the two listed has its namespace kept by `import codegen`."""
    script = (
        "import os, sys\n"
        "import gradjit as gj, runtime\n"
        "from runtime import disk_cache, code_switches\n"
        "from runtime.engine import Engine\n"
        "fn = gj.make_ir(lambda x: gj.tanh(x).sum())(gj.ones(3))\n"
        "assert 'codegen' not in sys.modules\n"
        "before = disk_cache.entry_key(fn, 'm', False, Engine())\n"
        "import codegen, codegen.report, codegen.tile_needs\n"
        "from runtime import blas_split, llvm_split\n"
        "after = disk_cache.entry_key(fn, 'm', False, Engine())\n"
        "assert before == after and 'switches' not in after, (before, after)\n"
        "names = {'codegen.' + f[:-3] for f in os.listdir('codegen')\n"
        "         if f.endswith('.py') and f != '__init__.py'}\n"
        "print(sorted(names - set(codegen.IMPORTED_NAMESPACES)))\n"
        "print(sorted(n for n in code_switches._defaults if n.startswith('runtime.')))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    missing, runtime_modules = out.stdout.strip().splitlines()
    assert set(ast.literal_eval(missing)) == NOT_IMPORTED_BY_CODEGEN
    assert ast.literal_eval(runtime_modules) == sorted(code_switches.RUNTIME_SWITCH_MODULES)
