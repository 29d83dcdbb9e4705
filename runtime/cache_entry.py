"""What the disk cache trusts: the entry format, its MAC, the per-user secret, file checks.

An entry is object code this process will execute, so it is used only when all of these hold
(docs/cache.md says why each one):

- the file is a regular file (not a symbolic link) owned by the current user and writable
  by nobody else, in a directory with the same properties;
- its HMAC-SHA256 under this user's secret checks out: the secret is 32 random bytes made on
  first use, mode 0600, OUTSIDE the cache directory (GRADJIT_SECRET_FILE, else
  $XDG_CONFIG_HOME/gradjit/secret, else ~/.config/gradjit/secret), so only this user's
  gradjit can have written the entry;
- the full key stored in its header (canonical IR text, options, versions, CPU) equals the
  key of the program asked for, so an entry copied or replayed under another key's file
  name is never run in its place.

Layout: FORMAT, an 8-byte little-endian header length, the header (JSON), the objects, and
the 32-byte HMAC of everything before it.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import tempfile

from runtime import config

FORMAT = b"gradjit object cache 2\n"
_MAC = 32
SECRET_BYTES = 32


class CorruptEntry(Exception):
    """An entry that cannot be used as it is (damaged, foreign, or for another key): it is
    deleted and rebuilt, never loaded."""


class Untrusted(Exception):
    """The cache cannot be used at all (the secret or the directory is not private): the
    program is compiled, and nothing is read from or written to the disk."""


def pack_entry(header: dict, objects: list, secret: bytes) -> bytes:
    header = dict(header, objects=[len(o) for o in objects])
    text = json.dumps(header, sort_keys=True).encode()
    body = FORMAT + len(text).to_bytes(8, "little") + text + b"".join(objects)
    return body + hmac.new(secret, body, hashlib.sha256).digest()


def unpack_entry(data: bytes, secret: bytes) -> tuple[dict, list]:
    """(header, objects) of an entry's bytes; CorruptEntry unless its MAC checks out.

    Nothing of the entry (not even its header) is parsed before the MAC is verified.
    """
    if not data.startswith(FORMAT):
        raise CorruptEntry("not an entry of this format (an older gradjit's, or not gradjit's)")
    if len(data) < len(FORMAT) + 8 + _MAC:
        raise CorruptEntry("truncated")
    body, mac = data[:-_MAC], data[-_MAC:]
    if not hmac.compare_digest(hmac.new(secret, body, hashlib.sha256).digest(), mac):
        raise CorruptEntry("MAC mismatch: damaged, or not written by this user's gradjit")
    at = len(FORMAT) + 8
    size = int.from_bytes(body[len(FORMAT):at], "little")
    try:
        header = json.loads(body[at:at + size])
        lengths = [int(n) for n in header["objects"]]
    except (ValueError, KeyError, TypeError) as e:
        raise CorruptEntry(f"bad header: {e}") from None
    at += size
    if at + sum(lengths) != len(body) or min(lengths, default=0) < 0:
        raise CorruptEntry("object sizes do not match the file")
    objects = []
    for n in lengths:
        objects.append(body[at:at + n])
        at += n
    return header, objects


# ---- files and directories ---------------------------------------------------------------

def _uid() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def not_private(st: os.stat_result, what: str) -> str | None:
    """Why a file or directory with this stat is not private to the user, or None."""
    uid = _uid()
    if uid is not None and st.st_uid != uid:
        return f"{what} belongs to another user (uid {st.st_uid}, we are {uid})"
    if st.st_mode & 0o022:
        return f"{what} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def prepare_private_dir(path: str) -> str | None:
    """Creates path (0700) if needed; None when it is private to the user, else why not."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
    except OSError as e:
        return f"cannot create {path}: {e.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory"
    return not_private(st, path)


def read_private_file(path: str) -> bytes:
    """The bytes of path, which must be a regular file private to the user.

    Raises:
        FileNotFoundError: no such file.
        CorruptEntry: a symbolic link, not a regular file, another user's, or writable by
            others (checked on the open file, so it cannot be swapped in between).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise
    except OSError as e:
        if os.path.islink(path):
            raise CorruptEntry("the entry is a symbolic link") from None
        raise CorruptEntry(f"cannot open: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise CorruptEntry("not a regular file")
        problem = not_private(st, "the entry")
        if problem:
            raise CorruptEntry(problem)
        return f.read()


def write_atomic(directory: str, path: str, data: bytes):
    """Writes a temporary file (mode 0600) in directory and renames it to path."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".gjo")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str):
    """Best-effort removal (a file another process already removed is fine)."""
    try:
        os.unlink(path)
    except OSError:
        pass


# ---- the per-user secret -----------------------------------------------------------------

def secret_path() -> str:
    """GRADJIT_SECRET_FILE, else $XDG_CONFIG_HOME/gradjit/secret, else ~/.config/gradjit/secret."""
    chosen = config.value("GRADJIT_SECRET_FILE")
    if chosen:
        return os.path.abspath(os.path.expanduser(chosen))
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.abspath(os.path.join(base, "gradjit", "secret"))


def load_secret(cache_directory: str, notes: list) -> bytes:
    """This user's MAC key, created on first use.

    A secret file that others could read or write (any group/other permission bit) is
    treated as leaked: it is replaced by a new secret (every entry signed with the old one
    is then rebuilt) and a note says so. Appends such notes to `notes`.

    Raises:
        Untrusted: the secret is inside the cache directory, is a symbolic link or not a
            regular file, belongs to another user, or its directory is not private.
    """
    path = secret_path()
    inside = os.path.commonpath([path, os.path.abspath(cache_directory)])
    if inside == os.path.abspath(cache_directory):
        raise Untrusted(f"the secret file {path} is inside the cache directory; "
                        "set GRADJIT_SECRET_FILE to a path outside it")
    problem = prepare_private_dir(os.path.dirname(path))
    if problem:
        raise Untrusted(f"the secret's directory is not private: {problem}")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return _create_secret(path, replace=False) or load_secret(cache_directory, notes)
    except OSError as e:
        raise Untrusted(f"cannot open the secret file {path}: {e.strerror} "
                        "(a symbolic link is refused)") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise Untrusted(f"the secret file {path} is not a regular file")
        uid = _uid()
        if uid is not None and st.st_uid != uid:
            raise Untrusted(f"the secret file {path} belongs to another user (uid {st.st_uid})")
        secret = f.read()
    if st.st_mode & 0o077:
        notes.append(f"the secret file {path} had mode {stat.S_IMODE(st.st_mode):o} (others "
                     "could read or write it): replaced by a new secret; entries signed "
                     "with the old one will be rebuilt")
        return _create_secret(path, replace=True)
    if len(secret) != SECRET_BYTES:
        notes.append(f"the secret file {path} held {len(secret)} bytes, not {SECRET_BYTES}: "
                     "replaced by a new secret")
        return _create_secret(path, replace=True)
    return secret


def _create_secret(path: str, replace: bool) -> bytes | None:
    """Writes 32 random bytes to a 0600 temporary file, then links it into place (or
    renames over the old one): readers never see a partial secret. None when another
    process created the file first (the caller then reads and checks that one)."""
    secret = os.urandom(SECRET_BYTES)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".secret-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
            return secret
        try:
            os.link(tmp, path)
        except FileExistsError:
            return None
        return secret
    finally:
        _unlink(tmp)
