"""The in-memory compile cache: one bounded, least-recently-used map from a Function's
structure (and the options it was compiled with) to its Executable.

Two keys find a program. `compact_key` is nested tuples of the types, op names, parameters
and wiring (no names, no locations): building and hashing it is several times cheaper than
printing, which matters to the imperative front, whose training loop cuts a fresh Function
every step. `structural_key` hashes the canonical printed text, exact by construction: a
compact-key miss looks there before compiling, so two spellings of one structure (op params
in another order, say) still share one Executable. A program asked for with `prepare` (the
optimiser) is also known by the key of what prepare made of it, so two Functions that
optimise to one structure share one Executable too.

The cache holds at most GRADJIT_MEMORY_CACHE_SIZE programs (runtime.config); the least
recently used one is dropped first (logged under GRADJIT_LOG=1), with every key that led to
it. A dropped program that is asked for again is compiled again (or loaded from the disk
cache), so a loop whose shapes change every step no longer grows without bound.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

from ir.core import Function, freeze
from ir.printer import print_function
from runtime import config, phases
from runtime.config import logging_enabled


_building = threading.local()       # .memo: (fn, its canonical text) while fn is built


def canonical_text(fn: Function) -> str:
    """fn's canonical text (`print_function(fn, locs=False, hints=False)`). While fn is being
    built (get_or_build's build call) the text its key was made from is handed out, not
    printed again: the disk cache's entry key and codegen's symbol printed it twice more
    (~6 ms of the lstm's warm start)."""
    memo = getattr(_building, "memo", None)
    if memo is not None and memo[0] is fn:
        return memo[1]
    return print_function(fn, locs=False, hints=False)


def structural_key(fn: Function, *options) -> str:
    """A hash of fn's canonical text (no names, no locations) and options: equal structure
    and options, equal key."""
    return _keyed(print_function(fn, locs=False, hints=False), options)


def _keyed(text: str, options) -> str:
    return hashlib.sha256("|".join([text, *map(str, options)]).encode()).hexdigest()


def compact_key(fn: Function) -> tuple:
    """fn's structure as nested tuples: equal keys mean equal canonical text."""
    index = {v: i for i, v in enumerate(fn.params)}
    parts = [tuple([p.type for p in fn.params])]
    append = parts.append
    for op in fn.body:
        params = tuple([(k, freeze(v)) for k, v in op.params.items()]) if op.params else ()
        regions = tuple([compact_key(r) for r in op.regions]) if op.regions else ()
        append((op.prim.name, tuple([index[v] for v in op.inputs]), params,
                tuple([r.type for r in op.results]), regions))
        for r in op.results:
            index[r] = len(index)
    append(tuple([index[r] for r in fn.results]))
    return tuple(parts)


class _Program:
    """One cached value and every key that leads to it (all dropped together)."""
    __slots__ = ("value", "keys")

    def __init__(self, value):
        self.value = value
        self.keys: list = []


class CompileCache:
    """Structure -> Executable, least recently used dropped first; counts hits, misses,
    compiles, their time and evictions."""

    def __init__(self, size: int | None = None):
        self.size = size                 # None: GRADJIT_MEMORY_CACHE_SIZE, read per insertion
        self.lock = threading.RLock()
        self._by_key: dict = {}
        self._programs: OrderedDict[_Program, None] = OrderedDict()
        self.hits = self.misses = self.compiles = self.evictions = 0
        self.compile_seconds = 0.0

    def get_or_build(self, fn: Function, options: tuple, build, prepare=None):
        """The cached value for fn's structure under options, or build(fn, key) on a miss
        (timed, counted, cached), where fn is prepare(fn) when prepare is given and key its
        structural key. build may set an `origin` on its value (logged with the time)."""
        compact = (compact_key(fn), options)
        with self.lock:
            program = self._by_key.get(compact)
            if program is not None:
                return self._hit(program, fn, compact)
            text = print_function(fn, locs=False, hints=False)
            key = _keyed(text, options)
            program = self._by_key.get(key)
            if program is not None:
                self._alias(program, compact)
                return self._hit(program, fn, key)
            limit = self.size if self.size is not None else config.memory_cache_size()
            self.misses += 1
            t0 = time.perf_counter()
            with phases.collect() as times:
                if prepare is not None:
                    with phases.phase("optimise"):
                        fn = prepare(fn)
                    text = print_function(fn, locs=False, hints=False)
                    built_key = _keyed(text, options)
                    program = self._by_key.get(built_key)
                else:
                    built_key = key
                new = program is None
                if new:
                    outer, _building.memo = getattr(_building, "memo", None), (fn, text)
                    try:
                        program = _Program(build(fn, built_key))
                    finally:
                        _building.memo = outer
                    self.compiles += 1
                    self._alias(program, built_key)
            seconds = time.perf_counter() - t0
            self.compile_seconds += seconds
            self._alias(program, key)
            self._alias(program, compact)
            self._programs[program] = None
            self._programs.move_to_end(program)
            self._evict(limit)
        if logging_enabled():
            fields = dict(function=fn.name, key=key[:12], ms=round(seconds * 1e3, 3),
                          phases_ms={k: round(v * 1e3, 3) for k, v in times.items()})
            split = f" [{phases.breakdown(times)}]" if times else ""
            if new:
                how = getattr(program.value, "origin", "")
                config.event("compile", f"memory cache miss for @{fn.name} (key {key[:12]}, new "
                             f"structure): compiled in {seconds * 1e3:.1f} ms{split}"
                             + (f" ({how})" if how else ""), origin=how, **fields)
            else:
                config.event("compile", f"memory cache miss for @{fn.name} (key {key[:12]}): "
                             f"optimised in {seconds * 1e3:.1f} ms{split} to a structure "
                             "compiled before", origin="known structure", **fields)
        return program.value

    def _hit(self, program: _Program, fn: Function, key):
        self.hits += 1
        self._programs.move_to_end(program)
        if logging_enabled():
            config.event("cache_hit", f"memory cache hit for @{fn.name} (key {_short(key)})",
                         function=fn.name)
        return program.value

    def _alias(self, program: _Program, key):
        if key not in self._by_key:
            self._by_key[key] = program
            program.keys.append(key)

    def _evict(self, limit: int):
        while len(self._programs) > limit:
            program, _ = self._programs.popitem(last=False)
            for key in program.keys:
                del self._by_key[key]
            self.evictions += 1
            if logging_enabled():
                fn = getattr(program.value, "fn", None)
                name = getattr(fn, "name", "?")
                config.event("evict", f"memory cache full ({limit} programs): dropped @{name}, "
                             "the least recently used", function=name, limit=limit)

    def info(self) -> dict:
        with self.lock:
            return {"hits": self.hits, "misses": self.misses, "compiles": self.compiles,
                    "compile_seconds": self.compile_seconds, "entries": len(self._programs),
                    "evictions": self.evictions}

    def clear(self):
        with self.lock:
            self._by_key.clear()
            self._programs.clear()
            self.hits = self.misses = self.compiles = self.evictions = 0
            self.compile_seconds = 0.0


def _short(key) -> str:
    return key[:12] if isinstance(key, str) else f"#{hash(key) & 0xffffffffffff:012x}"
