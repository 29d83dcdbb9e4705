"""The compile caches: in memory by a Function's structure, on disk as object code; logging.

Memory: the key is a hash of the canonical printed form (`print_function(fn, locs=False,
hints=False)`: ops, params, types, no names or source lines) plus the backend and options,
so a training loop that rebuilds the same graph every step compiles it once.

Disk: the object code MCJIT produced for a kernel (the kernel and its call trampoline), so
that a new process skips lowering, LLVM optimisation and code generation. The key hashes
the memory key with everything else that shapes the code: the lowering options, the source
of the code generator and runtime (which also carries gradjit's version), llvmlite's and
LLVM's versions, the target triple, CPU name and features, and the Python/NumPy ABI (the
trampoline reads CPython and NumPy object layouts). Keying on the IR rather than on the
LLVM IR means a hit needs neither codegen (nor its imports) nor a hash of the LLVM text.

    GRADJIT_CACHE_DIR=/path    the directory (default $XDG_CACHE_HOME/gradjit or ~/.cache/gradjit)
    GRADJIT_DISK_CACHE=0       no disk cache

The directory is created 0700 and used only when it belongs to the user and nobody else
can write to it (object code from it is executed). Entries are written to a temporary file
and renamed into place, so readers see whole files or none. An entry holds a header (JSON:
symbols, workspace size, the external symbols it imports) and the objects, with a SHA-256
of both; one that does not check out is deleted and rebuilt.

`GRADJIT_LOG=1` logs each hit, each miss (memory and disk, and why the disk missed) and the
compile or load time to the "gradjit" logger.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import sys
import tempfile
import threading
import time
import weakref

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


# ---- the disk cache ---------------------------------------------------------------------

FORMAT = b"gradjit object cache 1\n"
SOURCE_PACKAGES = ("ir", "codegen", "runtime", "gradjit")
_DIGEST = 32
KNOWN_LIMIT = 256
MAX_ENTRIES = 4096       # beyond this many files the least recently used quarter is deleted


def cache_dir() -> str:
    """GRADJIT_CACHE_DIR, else $XDG_CACHE_HOME/gradjit, else ~/.cache/gradjit."""
    chosen = os.environ.get("GRADJIT_CACHE_DIR")
    if chosen:
        return os.path.abspath(os.path.expanduser(chosen))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gradjit")


def disk_cache_enabled() -> bool:
    return os.environ.get("GRADJIT_DISK_CACHE", "1").strip() != "0"


def prepare_dir(path: str) -> str | None:
    """Creates path (0700) if needed; None when usable, else why not."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
    except OSError as e:
        return f"cannot create {path}: {e.strerror}"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"{path} belongs to another user"
    if st.st_mode & 0o022:
        return f"{path} is writable by group or others (mode {st.st_mode & 0o777:o})"
    return None


class CorruptEntry(Exception):
    """An entry that cannot be used as it is: deleted, then rebuilt."""


def pack_entry(header: dict, objects: list) -> bytes:
    header = dict(header, objects=[len(o) for o in objects])
    text = json.dumps(header, sort_keys=True).encode()
    body = FORMAT + len(text).to_bytes(8, "little") + text + b"".join(objects)
    return body + hashlib.sha256(body).digest()


def unpack_entry(data: bytes) -> tuple[dict, list]:
    """(header, objects) of an entry's bytes; CorruptEntry if they do not check out."""
    if not data.startswith(FORMAT):
        raise CorruptEntry("not a gradjit cache entry")
    if len(data) < len(FORMAT) + 8 + _DIGEST:
        raise CorruptEntry("truncated")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise CorruptEntry("checksum mismatch")
    at = len(FORMAT) + 8
    size = int.from_bytes(body[len(FORMAT):at], "little")
    try:
        header = json.loads(body[at:at + size])
        lengths = [int(n) for n in header["objects"]]
    except (ValueError, KeyError, TypeError) as e:
        raise CorruptEntry(f"bad header: {e}") from None
    at += size
    if at + sum(lengths) != len(body):
        raise CorruptEntry("object sizes do not match the file")
    objects = []
    for n in lengths:
        objects.append(body[at:at + n])
        at += n
    return header, objects


def write_atomic(directory: str, path: str, data: bytes):
    """Writes a temporary file in directory and renames it to path (atomic on POSIX)."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".gjo")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def source_hash() -> str:
    """SHA-256 of the code that shapes generated code: ir, codegen, runtime (and gradjit's
    __init__, which holds the version). Read once per process."""
    global _SOURCE_HASH
    if _SOURCE_HASH is None:
        h = hashlib.sha256()
        for pkg in SOURCE_PACKAGES:
            spec = importlib.util.find_spec(pkg)
            for folder in (spec.submodule_search_locations or []) if spec else []:
                names = sorted(n for n in os.listdir(folder) if n.endswith(".py"))
                if pkg == "gradjit":
                    names = [n for n in names if n == "__init__.py"]
                for name in names:
                    with open(os.path.join(folder, name), "rb") as f:
                        h.update(f"{pkg}/{name}\0".encode() + f.read() + b"\0")
        _SOURCE_HASH = h.hexdigest()
    return _SOURCE_HASH


_SOURCE_HASH = None


def lowering_options(bounds_check: bool) -> str:
    """The options lowering depends on besides the Function and the source: module state of
    codegen (its vmath table, which tests patch) and whether dots call NumPy's BLAS (code
    built with loop nests must not be served to a process that calls gemm, or back)."""
    lower, vmath = sys.modules.get("codegen.lower"), sys.modules.get("codegen.vmath")
    table = "default"
    if lower is not None and not (vmath is not None and set(lower.VMATH) == set(vmath.VMATH)):
        table = ",".join(sorted(lower.VMATH))
    import runtime
    gemm = runtime.externals().gemm is not None
    return f"bounds_check={bounds_check} vmath={table} gemm={gemm}"


def environment(engine) -> str:
    """What else object code depends on: versions, target, CPU, ABI."""
    import llvmlite
    import llvmlite.binding as llvm
    import numpy
    return "|".join(map(str, [FORMAT, llvmlite.__version__, llvm.llvm_version_info, engine.triple,
                              engine.cpu, engine.features, sys.implementation.cache_tag,
                              sys.version, numpy.__version__, source_hash()]))


class CachedKernel:
    """Stands in for codegen's KernelSource when the object code came from the disk: the
    LLVM IR is only made (by lowering fn again) if someone asks for it."""

    def __init__(self, fn: Function, entry: str, workspace_bytes: int, bounds_check: bool):
        self.fn = fn
        self.entry = entry
        self.workspace_bytes = workspace_bytes
        self.bounds_check = bounds_check
        self.in_types = list(fn.param_types)
        self.out_types = list(fn.result_types)
        self._llvm_ir = None

    @property
    def llvm_ir(self) -> str:
        if self._llvm_ir is None:
            import runtime
            self._llvm_ir = runtime.lower(self.fn, self.bounds_check).llvm_ir
        return self._llvm_ir


class DiskCache:
    """Object code on disk (see the module docstring); counts hits, misses and writes."""

    def __init__(self):
        self.hits = self.misses = self.writes = 0
        self._capture = None             # list collecting MCJIT's objects during a build
        self._hooked = weakref.WeakSet()  # the engines whose object cache hook is ours
        self._known: dict = {}           # entry symbol -> (objects, imports) seen this process

    def load_or_build(self, fn: Function, key: str, bounds_check: bool, build):
        """The Executable of fn: its object code from disk, or build() (then stored).

        Args:
            key: fn's memory-cache key (its canonical text and options, hashed).
            build: makes the Executable the ordinary way (lower, optimise, JIT).
        """
        if not disk_cache_enabled():
            return _noted(build(), "disk cache off: GRADJIT_DISK_CACHE=0")
        from runtime.engine import create_execution_engine
        engine = create_execution_engine()
        directory = cache_dir()
        problem = prepare_dir(directory)
        if problem is not None:
            self._miss(fn, "-", f"cache directory unusable: {problem}")
            return _noted(build(), f"disk cache unusable: {problem}")
        text = "|".join([key, lowering_options(bounds_check), environment(engine)])
        disk_key = hashlib.sha256(text.encode()).hexdigest()
        path = os.path.join(directory, disk_key + ".gjo")
        try:
            return self._load(path, fn, bounds_check, engine)
        except FileNotFoundError:
            reason = "no entry"
        except (CorruptEntry, OSError) as e:
            reason = f"unusable entry ({e}), deleted and rebuilt"
            _unlink(path)
        self._miss(fn, disk_key, reason)
        return self._build_and_store(fn, build, engine, directory, path, reason)

    def _load(self, path: str, fn: Function, bounds_check: bool, engine):
        from runtime.executable import Executable
        t0 = time.perf_counter()
        with open(path, "rb") as f:
            header, objects = unpack_entry(f.read())
        symbols = [header["entry"]] + ([header["trampoline"]] if header["trampoline"] else [])
        _provide(header.get("imports", []))
        with engine.lock:
            if not all(s in engine.addresses for s in symbols):
                import llvmlite.binding as llvm
                for obj in objects:
                    engine.mcjit.add_object_file(llvm.ObjectFileRef.from_data(obj))
                engine.mcjit.finalize_object()
                for s in symbols:
                    engine.addresses[s] = engine.mcjit.get_function_address(s)
            addresses = [engine.addresses[s] for s in symbols]
        if not all(addresses):
            raise CorruptEntry("a symbol is missing from the object code")
        _touch(path)
        self._remember(header["entry"], objects, header.get("imports", []))
        kernel = CachedKernel(fn, header["entry"], int(header["workspace_bytes"]), bounds_check)
        exe = Executable(fn, kernel, addresses[0], (addresses + [None])[1], bounds_check, engine)
        self.hits += 1
        if logging_enabled():
            log.info("disk cache hit for @%s (%s): loaded in %.1f ms", fn.name,
                     os.path.basename(path)[:12], (time.perf_counter() - t0) * 1e3)
        return _noted(exe, "object code from the disk cache")

    def _build_and_store(self, fn, build, engine, directory: str, path: str, reason: str):
        self._hook(engine)
        captured = self._capture = []
        try:
            exe = build()
        finally:
            self._capture = None
        entry = exe.kernel.entry
        # NOTE: only the objects that define this kernel: MCJIT also reports the empty module
        # it was created with, and a build on another thread may finish meanwhile
        mine = [(obj, names) for obj, names in captured if entry.encode() in obj]
        if mine:
            self._remember(entry, [obj for obj, _ in mine],
                           sorted({n for _, names in mine for n in names}))
        if entry not in self._known:     # compiled before the hook was installed
            return _noted(exe, f"disk cache miss: {reason}; not stored")
        objects, imports = self._known[entry]
        header = {"entry": entry, "workspace_bytes": exe.kernel.workspace_bytes,
                  "trampoline": entry + ".py" if exe.has_trampoline else None,
                  "imports": imports, "function": fn.name}
        try:
            write_atomic(directory, path, pack_entry(header, objects))
            self.writes += 1
            prune(directory)
        except OSError as e:
            return _noted(exe, f"disk cache miss: {reason}; not stored: {e}")
        return _noted(exe, f"disk cache miss: {reason}; stored")

    def _remember(self, entry: str, objects: list, imports: list):
        """Keeps the objects of recent kernels, so that clear_cache() followed by a
        recompile (which the engine serves without compiling) can still store them."""
        self._known[entry] = (objects, imports)
        while len(self._known) > KNOWN_LIMIT:
            del self._known[next(iter(self._known))]

    def _hook(self, engine):
        """Receives every object MCJIT compiles (llvmlite's object cache notify hook)."""
        if engine in self._hooked:
            return
        engine.mcjit.set_object_cache(self._notify, lambda module: None)
        self._hooked.add(engine)

    def _notify(self, module, data: bytes):
        if self._capture is not None:
            names = [f.name for f in module.functions
                     if f.is_declaration and not f.name.startswith("llvm.")]
            names += [g.name for g in module.global_variables if g.is_declaration]
            self._capture.append((bytes(data), names))

    def _miss(self, fn: Function, disk_key: str, reason: str):
        self.misses += 1
        if logging_enabled():
            log.info("disk cache miss for @%s (%s): %s", fn.name, disk_key[:12], reason)


def _noted(exe, origin: str):
    exe.origin = origin
    return exe


def prune(directory: str, keep: int | None = None):
    """Deletes the least recently used entries when there are more than MAX_ENTRIES (a hit
    refreshes an entry's modification time), leaving three quarters of that many."""
    limit = MAX_ENTRIES if keep is None else keep
    try:
        found = [e for e in os.scandir(directory) if e.name.endswith(".gjo")]
        if len(found) <= limit:
            return
        found.sort(key=lambda e: e.stat().st_mtime_ns)
    except OSError:
        return
    for e in found[:len(found) - limit * 3 // 4]:
        _unlink(e.path)


def _touch(path: str):
    try:
        os.utime(path)
    except OSError:
        pass


def _unlink(path: str):
    try:
        os.unlink(path)
    except OSError:
        pass


def _provide(imports: list):
    """Registers the gradjit_* symbols an object imports before it is loaded (MCJIT aborts
    the process on a symbol it cannot resolve, so an unresolvable one is a miss instead)."""
    import llvmlite.binding as llvm
    for name in imports:
        if name.startswith("gradjit_") and "gemm" in name:
            from runtime import blas
            try:
                blas.register()
            except RuntimeError as e:
                raise CorruptEntry(f"needs {name}: {e}") from None
        if name.startswith("gradjit_lapacke_"):
            from runtime import lapack
            try:
                lapack.register()
            except RuntimeError as e:
                raise CorruptEntry(f"needs {name}: {e}") from None
        if not llvm.address_of_symbol(name):
            raise CorruptEntry(f"imports {name}, which this process does not provide")


DISK = DiskCache()
