"""The compile cache in memory, by a Function's structure; logging.

Memory: the key is a hash of the canonical printed form (`print_function(fn, locs=False,
hints=False)`: ops, params, types, no names or source lines) plus the backend and options,
so a training loop that rebuilds the same graph every step compiles it once.

Disk: runtime/disk_cache.py (object code, authenticated; docs/cache.md).

`GRADJIT_LOG=1` logs each hit, each miss (memory and disk, and why the disk missed) and the
compile or load time to the "gradjit" logger.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import time

from ir.core import Function
from ir.printer import print_function

log = logging.getLogger("gradjit")


def logging_enabled() -> bool:
    """Whether GRADJIT_LOG asks for logs; attaches a stderr handler the first time."""
    if os.environ.get("GRADJIT_LOG", "") in ("", "0"):
        return False
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("gradjit: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    return True


def structural_key(fn: Function, *options) -> str:
    text = print_function(fn, locs=False, hints=False)
    return hashlib.sha256("|".join([text, *map(str, options)]).encode()).hexdigest()


class CompileCache:
    """Maps structural keys to Executables; counts hits, misses, compiles and their time.

    `build(key)` makes a missing value and may return a note on how (logged with the time).
    """

    def __init__(self):
        self.lock = threading.RLock()
        self.entries: dict = {}
        self.hits = self.misses = self.compiles = 0
        self.compile_seconds = 0.0

    def get_or_build(self, key: str, build, name: str):
        """The cached value for key, or build() (timed, counted, cached) on a miss."""
        with self.lock:
            hit = self.entries.get(key)
            if hit is not None:
                self.hits += 1
                if logging_enabled():
                    log.info("memory cache hit for @%s (key %s)", name, key[:12])
                return hit
            self.misses += 1
            t0 = time.perf_counter()
            value = build()
            seconds = time.perf_counter() - t0
            self.compiles += 1
            self.compile_seconds += seconds
            self.entries[key] = value
        if logging_enabled():
            how = getattr(value, "origin", "")
            log.info("memory cache miss for @%s (key %s, new structure): compiled in %.1f ms%s",
                     name, key[:12], seconds * 1e3, f" ({how})" if how else "")
        return value

    def info(self) -> dict:
        from runtime.disk_cache import DISK
        with self.lock:
            return {"hits": self.hits, "misses": self.misses, "compiles": self.compiles,
                    "compile_seconds": self.compile_seconds, "entries": len(self.entries),
                    "disk_hits": DISK.hits, "disk_misses": DISK.misses,
                    "disk_writes": DISK.writes}

    def clear(self):
        with self.lock:
            self.entries.clear()
            self.hits = self.misses = self.compiles = 0
            self.compile_seconds = 0.0


def source_hash() -> str:
    """SHA-256 of the sources that shape generated code (runtime.disk_cache.source_hash;
    kept here for callers that compare it across processes, e.g. tracer.distributed)."""
    from runtime.disk_cache import source_hash as of_sources
    return of_sources()
