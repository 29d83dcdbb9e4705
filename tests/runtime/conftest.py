"""Fixtures shared by the tests of the two-thread compile (test_parallel_compile.py,
test_pipeline_split.py)."""
import pytest

import runtime
from runtime import config, engine, llvm_split


@pytest.fixture
def split(monkeypatch):
    """use(True): every multi-kernel program is split (as if a core were idle, any size);
    use(False): one module. Each call starts a fresh engine and empty caches; no disk."""
    config.set_value("GRADJIT_DISK_CACHE", "0")
    monkeypatch.setattr(llvm_split, "idle_core", lambda: True)
    monkeypatch.setattr(llvm_split, "MIN_SIDE_LINES", 0)

    def use(on: bool):
        monkeypatch.setattr(llvm_split, "ENABLED", on)
        runtime.clear_cache()
        engine.fresh_execution_engine()
    yield use
    config.set_value("GRADJIT_DISK_CACHE", None)
    runtime.clear_cache()
    engine.fresh_execution_engine()
