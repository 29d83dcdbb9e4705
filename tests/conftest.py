"""Fixtures shared by every test directory."""
import pytest

from runtime import config


@pytest.fixture
def gradjit_env(monkeypatch):
    """setting(name, value): sets a GRADJIT_* variable for this test (None unsets it) and
    makes gradjit read the environment again, as a new process would; undone afterwards."""
    def setting(name: str, value: str | None):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
        config.reload()
    yield setting
    monkeypatch.undo()
    config.reload()
