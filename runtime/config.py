"""gradjit's settings: every GRADJIT_* environment variable, read here and nowhere else, and
the "gradjit" logger.

    GRADJIT_BACKEND=interpret        run the reference interpreter (ir/interpret.py) instead
                                     of native code; default `native`
    GRADJIT_LOG=1                    log traces, cache hits and misses (and why a miss),
                                     compile times by phase, kernels and evictions to the
                                     "gradjit" logger (on stderr unless the application
                                     configured it); GRADJIT_LOG=json: one JSON object per
                                     event, for tools
    GRADJIT_NUM_THREADS=N            threads for large loop nests; default: the cores this
                                     process may run on (results do not depend on it)
    GRADJIT_BLAS_THREADS=N|keep      the BLAS's (OpenBLAS/MKL) own thread count, set when
                                     gradjit first binds it; default 1: gradjit splits large
                                     products across its own threads. Process-wide: NumPy's
                                     matmul shares the library. `keep` leaves it untouched
    GRADJIT_CACHE_DIR=DIR            where compiled object code is kept; default
                                     $XDG_CACHE_HOME/gradjit, else ~/.cache/gradjit
    GRADJIT_DISK_CACHE=0             neither read nor write the disk cache
    GRADJIT_BOUNDS_CHECK=1           compile kernels that check every buffer index (debugging)
    GRADJIT_MEMORY_CACHE_SIZE=N      compiled programs kept in memory, the least recently
                                     used dropped first; default 512
    GRADJIT_SECRET_FILE=PATH         the per-user key that signs disk-cache entries; default
                                     $XDG_CONFIG_HOME/gradjit/secret, else ~/.config/...
    GRADJIT_TARGET_CPU=NAME          compile for this LLVM CPU (haswell, znver3, ...) instead
                                     of the host; code the host cannot run is refused
    GRADJIT_TARGET_FEATURES=+f,-g    LLVM feature changes on top of the target CPU's
    GRADJIT_OPT_LEVEL=3              the LLVM pipeline for every kernel: `tiered` (default:
                                     O1 for programs of loops O3 does no better, O3 for the
                                     rest; runtime/tiers.py), `3` (always O3) or `1`

The environment is read once, when this module is imported (with gradjit). The hot path of
a cached call asks `plain_native()`, which must cost no more than a global read: a lookup
in os.environ costs ~0.4 us, a tenth of a tiny call. A program (or test) that changes
os.environ afterwards calls `reload()`; `set_value(name, value)` changes one setting for this
process as if the environment said so. A value is checked where it is used, so a bad one
is a ValueError naming the variable at the first compile that needs it, not at import.

A new variable: add it to VARIABLES (name, default, and the docstring above), read it with
`value(name)` or an accessor here, and add it to the README's environment table.
"""
from __future__ import annotations

import json
import logging
import os
import sys

# name -> default (the text an unset variable stands for)
VARIABLES = {
    "GRADJIT_BACKEND": "native",
    "GRADJIT_LOG": "0",
    "GRADJIT_NUM_THREADS": "",
    "GRADJIT_BLAS_THREADS": "1",
    "GRADJIT_CACHE_DIR": "",
    "GRADJIT_DISK_CACHE": "1",
    "GRADJIT_BOUNDS_CHECK": "0",
    "GRADJIT_MEMORY_CACHE_SIZE": "512",
    "GRADJIT_SECRET_FILE": "",
    "GRADJIT_TARGET_CPU": "",
    "GRADJIT_TARGET_FEATURES": "",
    "GRADJIT_OPT_LEVEL": "tiered",
}
OPT_LEVELS = ("tiered", "3", "1")
BACKENDS = ("native", "interpret")

log = logging.getLogger("gradjit")

_values: dict[str, str] = {}
_logging = False
_handler: logging.Handler | None = None   # the stderr handler gradjit added
_plain = True


def reload():
    """Reads every GRADJIT_* variable from os.environ again (unset or empty: the default)."""
    for name, default in VARIABLES.items():
        _values[name] = os.environ.get(name, "").strip() or default
    _derive()


def set_value(name: str, value: str | None):
    """Sets one variable for this process as if the environment said so (None: its default).

    Raises:
        KeyError: name is not one of VARIABLES.
    """
    if name not in VARIABLES:
        raise KeyError(f"{name} is not a gradjit setting (known: {', '.join(VARIABLES)})")
    _values[name] = str(value).strip() if value is not None and str(value).strip() \
        else VARIABLES[name]
    _derive()


def value(name: str) -> str:
    """The text of a variable (its default when unset)."""
    return _values[name]


def _derive():
    """The flags the hot path reads, recomputed whenever a value changes."""
    global _logging, _plain
    _logging = _flag("GRADJIT_LOG")
    _plain = _values["GRADJIT_BACKEND"] == "native" and not _logging
    global _handler
    if _logging and not log.handlers:
        _handler = logging.StreamHandler(sys.stderr)
        log.addHandler(_handler)
        log.setLevel(logging.INFO)
    if _handler is not None:            # ours (an application's own handlers are left alone)
        _handler.setFormatter(_JsonFormatter() if _values["GRADJIT_LOG"] == "json"
                              else _TextFormatter("%(message)s"))


class _TextFormatter(logging.Formatter):
    """GRADJIT_LOG=1's lines, each starting "gradjit: " once (a warning that must read well
    without this handler, through logging's last resort, carries the prefix itself)."""

    def format(self, record) -> str:
        text = super().format(record)
        return text if text.startswith("gradjit: ") else "gradjit: " + text


class _JsonFormatter(logging.Formatter):
    """GRADJIT_LOG=json: one JSON object per event (its name, the message, its fields)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {"time": round(record.created, 6), "event": getattr(record, "event", "log"),
                "message": record.getMessage()}
        data.update(getattr(record, "fields", {}))
        return json.dumps(data, default=str)


def event(name: str, message: str, **fields):
    """Logs one event when GRADJIT_LOG asks: text, or a JSON object with `fields` (json)."""
    if _logging:
        log.info("%s", message, extra={"event": name, "fields": fields})


def _flag(name: str) -> bool:
    return _values[name] != "0"


def plain_native() -> bool:
    """True when the settings ask for the default: native code, no logging (per call)."""
    return _plain


def logging_enabled() -> bool:
    """Whether GRADJIT_LOG asks for logs."""
    return _logging


def backend() -> str:
    """GRADJIT_BACKEND: 'native' or 'interpret'.

    Raises:
        ValueError: any other value.
    """
    chosen = _values["GRADJIT_BACKEND"]
    if chosen not in BACKENDS:
        raise ValueError(f"GRADJIT_BACKEND={chosen!r}: expected 'native' or 'interpret'")
    return chosen


def bounds_check() -> bool:
    return _flag("GRADJIT_BOUNDS_CHECK")


def disk_cache() -> bool:
    return _flag("GRADJIT_DISK_CACHE")


def cache_dir() -> str:
    """GRADJIT_CACHE_DIR, else $XDG_CACHE_HOME/gradjit, else ~/.cache/gradjit."""
    chosen = _values["GRADJIT_CACHE_DIR"]
    if chosen:
        return os.path.abspath(os.path.expanduser(chosen))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gradjit")


def opt_level() -> str:
    """GRADJIT_OPT_LEVEL: 'tiered', '3' or '1'.

    Raises:
        ValueError: any other value.
    """
    chosen = _values["GRADJIT_OPT_LEVEL"].lower()
    if chosen not in OPT_LEVELS:
        raise ValueError(f"GRADJIT_OPT_LEVEL={_values['GRADJIT_OPT_LEVEL']!r}: expected "
                         "'tiered', '3' or '1'")
    return chosen


def num_threads() -> int | None:
    """GRADJIT_NUM_THREADS, or None when unset.

    Raises:
        ValueError: not a positive integer.
    """
    return _positive("GRADJIT_NUM_THREADS")


def blas_threads() -> int | None:
    """GRADJIT_BLAS_THREADS: the thread count gradjit gives the BLAS, or None for `keep`.

    Raises:
        ValueError: neither a positive integer nor `keep`.
    """
    if _values["GRADJIT_BLAS_THREADS"].lower() == "keep":
        return None
    try:
        return _positive("GRADJIT_BLAS_THREADS")
    except ValueError:
        raise ValueError(f"GRADJIT_BLAS_THREADS={_values['GRADJIT_BLAS_THREADS']!r}: expected "
                         "a positive integer or 'keep'") from None


def memory_cache_size() -> int:
    """GRADJIT_MEMORY_CACHE_SIZE: how many compiled programs the memory cache keeps.

    Raises:
        ValueError: not a positive integer.
    """
    return _positive("GRADJIT_MEMORY_CACHE_SIZE")


def _positive(name: str) -> int | None:
    text = _values[name]
    if not text:
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{name}={text!r}: expected a positive integer")
    return n


reload()
