"""runtime/prepare.py: the call trampolines and the thread pool built on a second thread while
the first kernel is generated. Only where it happens changes: the same disk-cache entries
(file names and bytes), the same results, as when the compiling thread builds them."""
import os
import subprocess
import sys

import pytest

from runtime import pool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# prints: second threads started, which thread built the trampolines and the pool (read
# from the thread names recorded by wrappers), and the results' bytes as hex digests
SCRIPT = """
import hashlib, threading
import numpy as np
from runtime import pool, prepare, trampoline
import runtime
built = {}
for module, name in ((trampoline, "_link"), (pool, "_compile")):
    def wrapped(*a, _real=getattr(module, name), _name=name, **k):
        built[_name] = threading.current_thread().name
        return _real(*a, **k)
    setattr(module, name, wrapped)
from tests.runtime.test_threads import BIG, chain
y = np.linspace(-1, 1, BIG).astype(np.float32)
out = runtime.compile(chain(BIG))(y, y)
prepare.wait()
print(prepare.starts, built.get("_link"), built.get("_compile"),
      hashlib.sha256(b"".join(o.tobytes() for o in out)).hexdigest()[:16])
"""


def run(tmp_path, prepare: str, cache: str) -> list:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env.update(GRADJIT_NUM_THREADS="2", GRADJIT_PREPARE=prepare,
               GRADJIT_CACHE_DIR=str(tmp_path / cache),
               GRADJIT_SECRET_FILE=str(tmp_path / "secret"))
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def entries(folder) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()
            if p.suffix in (".gjr", ".gjo")}


@pytest.mark.skipif(pool.cores() < 2, reason="one core: no pool to build")
def test_a_second_thread_builds_the_same_code(tmp_path):
    off = run(tmp_path, "0", "off")
    on = run(tmp_path, "1", "on")
    assert off[:3] == ["0", "MainThread", "MainThread"]
    assert on[:3] == ["1", "gradjit-prepare", "gradjit-prepare"]
    assert on[3] == off[3]                                   # the same results
    assert entries(tmp_path / "on") == entries(tmp_path / "off")
    again = run(tmp_path, "1", "on")     # all from the disk cache: no kernel built, no thread
    assert again == ["0", "MainThread", "MainThread", off[3]]
