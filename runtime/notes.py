"""Small facts a process works out once and the next one reads back: notes in the private
cache directory (the source hash, the BLAS's exact row step).

A note is a file named by its name and the SHA-256 of its key (everything the fact depends
on: file sizes and modification times, as Python trusts a .pyc; library paths; the CPU),
holding the value as text; the caller checks the value's form. One note per name: writing a new one
deletes the others of that name (their facts are stale). A missing, unreadable or corrupt
note, or one written for another key, reads as None: the caller works the fact out again
and writes a new note. Nothing is noted when the disk cache is off (GRADJIT_DISK_CACHE=0) or
its directory is not private to the user.
"""
from __future__ import annotations

import hashlib
import os

from runtime import config
from runtime.cache_entry import (CorruptEntry, _unlink, prepare_private_dir, read_private_file,
                                 write_atomic)


def directory() -> str | None:
    """The cache directory when notes may be kept there (disk cache on, directory private)."""
    if not config.disk_cache():
        return None
    found = config.cache_dir()
    return found if prepare_private_dir(found) is None else None


def _path(folder: str, name: str, key: str) -> str:
    return os.path.join(folder, f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:32]}.txt")


def recall(folder: str | None, name: str, key: str) -> str | None:
    """The value noted under name for exactly key, or None (no usable note)."""
    if folder is None:
        return None
    try:
        return read_private_file(_path(folder, name, key)).decode("utf-8")
    except (OSError, CorruptEntry, UnicodeDecodeError):
        return None


def remember(folder: str | None, name: str, key: str, value: str) -> None:
    """Notes value under name for key (replacing the other notes of that name). Best effort:
    a read-only or full disk means the fact is worked out again next time."""
    if folder is None:
        return
    path = _path(folder, name, key)
    try:
        for old in os.listdir(folder):
            if old.startswith(f"{name}-") and old.endswith(".txt") and \
                    os.path.join(folder, old) != path:
                _unlink(os.path.join(folder, old))
        write_atomic(folder, path, value.encode("utf-8"))
    except OSError:
        pass
