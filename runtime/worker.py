"""The data-parallel worker: a Ray actor that runs gradjit programs shipped as IR text.

It imports only `ir` and `runtime` (and NumPy): the program arrives as printed IR, is
parsed with `ir.parse`, checked against its SHA-256, verified and compiled through the
runtime (with this machine's own disk cache), and kept by hash. Later calls send only the
hash and the arrays. The user's Python code never reaches a worker. (The driver's side is
tracer/distributed/; this module sits in runtime/ so that a worker process never imports the
tracer package, whose import attaches the whole Tensor surface.)
"""
from __future__ import annotations

import hashlib
import os
import socket

import runtime
import runtime.disk_cache
from ir import parse, verify
from runtime.threads import set_num_threads


class LoadError(RuntimeError):
    """The worker could not parse, verify or compile a program (the reason is the message)."""


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ProgramWorker:
    """One worker's state: compiled programs by hash. Wrapped with ray.remote by cluster.py."""

    def __init__(self, rank: int, threads: int | None = None):
        self.rank = rank
        if threads is not None:
            set_num_threads(threads)
        self.programs: dict[str, object] = {}
        self.calls = 0

    def info(self) -> dict:
        """Who and where this worker is, for error messages and inspection."""
        import sys

        return {"rank": self.rank, "pid": os.getpid(), "host": socket.gethostname(),
                "source_hash": runtime.disk_cache.source_hash(),
                "modules": sorted(m for m in sys.modules
                                  if m.split(".")[0] in ("tracer", "gradjit"))}

    def load(self, digest: str, text: str) -> bool:
        """Parses, verifies and compiles text (unless already held); True if it was new."""
        if digest in self.programs:
            return False
        if digest_of(text) != digest:
            raise LoadError(f"program text does not match its hash {digest[:12]} "
                            "(corrupted in transfer)")
        try:
            fn = parse(text)
            verify(fn)
            exe = runtime.compile(fn)
        except Exception as e:               # noqa: BLE001  any reason: reported, not hidden
            raise LoadError(f"{type(e).__name__}: {e}") from None
        self.programs[digest] = exe
        return True

    def run(self, digest: str, text: str | None, *arrays) -> list:
        """Runs program `digest` on arrays (loading it from text first when given)."""
        if text is not None:
            self.load(digest, text)
        exe = self.programs.get(digest)
        if exe is None:
            raise LoadError(f"program {digest[:12]} was never shipped to this worker")
        self.calls += 1
        return list(exe(*arrays))

    def held(self) -> list[str]:
        return sorted(self.programs)

    def call_count(self) -> int:
        return self.calls
