"""The in-memory compile cache, keyed by a Function's structure, and gradjit's logging.

The key is a hash of the canonical printed form (`print_function(fn, locs=False,
hints=False)`: ops, params, types, no names or source lines) plus the backend and options,
so a training loop that rebuilds the same graph every step compiles it once.
`GRADJIT_LOG=1` logs each hit, miss and compile time to the "gradjit" logger.
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
    """Maps structural keys to Executables; counts hits, misses, compiles and their time."""

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
                    log.info("cache hit for @%s (key %s)", name, key[:12])
                return hit
            self.misses += 1
            t0 = time.perf_counter()
            value = build()
            seconds = time.perf_counter() - t0
            self.compiles += 1
            self.compile_seconds += seconds
            self.entries[key] = value
        if logging_enabled():
            log.info("cache miss for @%s (key %s, new structure): compiled in %.1f ms",
                     name, key[:12], seconds * 1e3)
        return value

    def info(self) -> dict:
        with self.lock:
            return {"hits": self.hits, "misses": self.misses, "compiles": self.compiles,
                    "compile_seconds": self.compile_seconds, "entries": len(self.entries)}

    def clear(self):
        with self.lock:
            self.entries.clear()
            self.hits = self.misses = self.compiles = 0
            self.compile_seconds = 0.0
