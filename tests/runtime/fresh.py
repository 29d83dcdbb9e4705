"""A script run in a new Python process with a disk cache and secret of its own, for the
tests of what a second process takes from the cache."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_with_cache(script: str, tmp_path) -> subprocess.CompletedProcess:
    """script run with GRADJIT_LOG=1 and the cache and secret under tmp_path (the caller's
    other GRADJIT_ settings dropped); asserts it exits 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADJIT_")}
    env.update(GRADJIT_CACHE_DIR=str(tmp_path / "cache"), GRADJIT_LOG="1",
               GRADJIT_SECRET_FILE=str(tmp_path / "secret" / "key"))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    return out
