"""The disk cache of object code: a new process skips lowering, optimisation and codegen.

What is stored is the object code MCJIT produced for a kernel (the kernel and its call
trampoline). The key (`entry_key`) holds everything that shapes that code: the canonical IR
text (`print_function(fn, locs=False, hints=False)`), the memory key's options, the lowering
options, the LLVM pipeline level (runtime/tiers.py), gradjit's version and the source of the
code generator and runtime, the code generator's switches changed in-process
(runtime/code_switches.py), llvmlite's and LLVM's versions, the target triple, CPU name and
features (GRADJIT_TARGET_CPU included), and the Python/NumPy ABI (the trampoline reads CPython
and NumPy object layouts). The file name is the SHA-256 of the key; the key itself is stored in
the entry and compared before use. Entries are authenticated with HMAC-SHA256 under a per-user
secret and read only from files and a directory private to the user: runtime/cache_entry.py and
docs/cache.md say what is trusted and why. An entry that fails any check is deleted and
rebuilt, never loaded.

    GRADJIT_CACHE_DIR=/path     the directory (default $XDG_CACHE_HOME/gradjit or ~/.cache/gradjit)
    GRADJIT_DISK_CACHE=0        no disk cache
    GRADJIT_SECRET_FILE=/path   the MAC secret (default $XDG_CONFIG_HOME/gradjit/secret)

`GRADJIT_LOG=1` logs each hit and each miss with its reason (refused entries included).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import sys
import time
import weakref

from ir.core import Function, walk_ops
from runtime import code_switches, config, notes, phases, tiers
from runtime.config import log, logging_enabled
from runtime.cache_entry import (FORMAT, CorruptEntry, Untrusted, load_secret, pack_entry,
                                 prepare_private_dir, read_private_file, unpack_entry,
                                 write_atomic, _unlink)
from runtime.compile_cache import canonical_text

SOURCE_PACKAGES = ("ir", "codegen", "runtime", "gradjit")
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
KNOWN_LIMIT = 256
MAX_ENTRIES = 4096       # beyond this many files the least recently used quarter is deleted


def cache_dir() -> str:
    """GRADJIT_CACHE_DIR, else $XDG_CACHE_HOME/gradjit, else ~/.cache/gradjit."""
    return config.cache_dir()


def disk_cache_enabled() -> bool:
    return config.disk_cache()


def _source_files() -> list[tuple[str, str]]:
    """(label, path) of every file source_hash covers, in a fixed order."""
    files = []
    for pkg in SOURCE_PACKAGES:
        spec = importlib.util.find_spec(pkg)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".py"))
            if pkg == "gradjit":
                names = [n for n in names if n == "__init__.py"]
            files += [(f"{pkg}/{name}", os.path.join(folder, name)) for name in names]
    return files


def source_hash() -> str:
    """SHA-256 of the code that shapes generated code: ir, codegen, runtime (and gradjit's
    __init__, which holds the version). Read once per process."""
    global _SOURCE_HASH
    if _SOURCE_HASH is None:
        h = hashlib.sha256()
        for label, path in _source_files():
            with open(path, "rb") as f:
                h.update(f"{label}\0".encode() + f.read() + b"\0")
        _SOURCE_HASH = h.hexdigest()
    return _SOURCE_HASH


def remember_source_hash(directory: str):
    """Fills source_hash from a note in the (private) cache directory when no source file
    changed since the note was written, as Python trusts a .pyc by its source's size and
    mtime: hashing ~1 MB of source was ~10 ms of every warm start."""
    global _SOURCE_HASH
    if _SOURCE_HASH is not None:
        return
    stats = [(label, os.stat(path)) for label, path in _source_files()]
    stamp = repr([(label, st.st_size, st.st_mtime_ns) for label, st in stats])
    text = notes.recall(directory, "source", stamp)
    if text is not None and len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        _SOURCE_HASH = text
        return
    notes.remember(directory, "source", stamp, source_hash())


_SOURCE_HASH = None


def lowering_options(bounds_check: bool, vmath: bool = True, fn: Function | None = None) -> str:
    """The options lowering depends on besides the Function and the source: bounds checks,
    vectorisable math, and whether dots call NumPy's BLAS (code built with loop nests must
    not be served to a process that calls gemm, or back). Only a program with a dot asks the
    BLAS question (finding the library was ~5-10 ms of every warm start)."""
    if fn is not None and not any(op.prim.name == "dot_general" for op in walk_ops(fn)):
        return f"bounds_check={bounds_check} vmath={vmath} gemm=unused"
    from runtime import blas, blas_split      # NOTE: late: blas imports llvmlite's IR builder
    gemm = blas.available()
    rows = blas_split.cache_tag(fn) if gemm else ""
    return f"bounds_check={bounds_check} vmath={vmath} gemm={gemm}{rows}"


def environment(engine) -> dict:
    """What else object code depends on: versions, target, CPU, ABI."""
    import llvmlite
    import llvmlite.binding as llvm
    import numpy
    return {"format": FORMAT.decode().strip(), "gradjit": _gradjit_version(),
            "source": source_hash(), "llvmlite": llvmlite.__version__,
            "llvm": ".".join(map(str, llvm.llvm_version_info)), "triple": engine.triple,
            "cpu": engine.cpu, "features": engine.features,
            "python": f"{sys.implementation.cache_tag} {sys.version}", "numpy": numpy.__version__}


def _gradjit_version() -> str:
    # NOTE: read from the file, not imported: runtime sits below the gradjit package
    spec = importlib.util.find_spec("gradjit")
    if spec is None or not spec.origin:
        return "unknown"
    with open(spec.origin, encoding="utf-8") as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split("=", 1)[1].strip().strip("\"'")
    return "unknown"


def entry_key(fn: Function, memory_key: str, bounds_check: bool, engine,
              vmath: bool = True) -> dict:
    """The full key of fn's entry: compared with the one stored in the entry before use."""
    key = {"ir": canonical_text(fn), "memory_key": memory_key,
           "lowering": lowering_options(bounds_check, vmath, fn),
           "llvm_pipeline": tiers.speed_level(fn),
           "environment": environment(engine)}
    switches = code_switches.changed()      # only when some differ: the usual keys stay
    if switches:
        key["switches"] = switches
    return key


def entry_name(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest() + ".gjo"


class CachedKernel:
    """Stands in for codegen's KernelSource when the object code came from the disk: the
    LLVM IR is only made (by lowering fn again) if someone asks for it."""

    def __init__(self, fn: Function, entry: str, workspace_bytes: int, bounds_check: bool,
                 vmath: bool = True):
        self.fn = fn
        self.vmath = vmath
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
            self._llvm_ir = runtime.lower(self.fn, self.bounds_check, self.vmath).llvm_ir
        return self._llvm_ir


class DiskCache:
    """Object code on disk (see the module docstring); counts hits, misses and writes."""

    def __init__(self):
        self.hits = self.misses = self.writes = self.refused = 0
        self._capture = None             # list collecting MCJIT's objects during a build
        self._hooked = weakref.WeakSet()  # the engines whose object cache hook is ours
        self._known: dict = {}           # entry symbol -> (objects, imports) seen this process

    def load_or_build(self, fn: Function, key: str, bounds_check: bool, build,
                      vmath: bool = True):
        """The Executable of fn: its object code from disk, or build() (then stored).

        Args:
            key: fn's memory-cache key (its canonical text and options, hashed).
            build: makes the Executable the ordinary way (lower, optimise, JIT).
            vmath: the lowering option (in the key), for lowering fn again if asked.
        """
        if not disk_cache_enabled():
            return _noted(build(), "disk cache off: GRADJIT_DISK_CACHE=0")
        from runtime.engine import create_execution_engine
        engine = create_execution_engine()
        directory = cache_dir()
        notes: list = []
        try:
            problem = prepare_private_dir(directory)
            if problem is not None:
                raise Untrusted(f"cache directory unusable: {problem}")
            secret = load_secret(directory, notes)
            remember_source_hash(directory)
        except Untrusted as e:
            self._miss(fn, "-", str(e))
            return _noted(build(), f"disk cache unusable: {e}")
        finally:
            for note in notes:
                self._log(note)
        full_key = entry_key(fn, key, bounds_check, engine, vmath)
        path = os.path.join(directory, entry_name(full_key))
        try:
            with phases.phase("load"):
                return self._load(path, fn, bounds_check, engine, full_key, secret, vmath)
        except FileNotFoundError:
            reason = "no entry"
        except (CorruptEntry, OSError) as e:
            reason = f"unusable entry ({e}), deleted and rebuilt"
            self.refused += 1
            _unlink(path)
        self._miss(fn, os.path.basename(path), reason)
        return self._build_and_store(fn, build, engine, directory, path, reason,
                                     full_key, secret)

    def _load(self, path: str, fn: Function, bounds_check: bool, engine, full_key: dict,
              secret: bytes, vmath: bool = True):
        from runtime.executable import Executable
        t0 = time.perf_counter()
        header, objects = unpack_entry(read_private_file(path), secret)
        if header.get("key") != full_key:
            raise CorruptEntry("the entry was written for another key (copied or replayed "
                               "under this file name)")
        engine.check_runnable()
        symbols = [header["entry"]]
        _provide(header.get("imports", []))
        addresses = engine.load_objects(objects, symbols)
        if not all(addresses):
            raise CorruptEntry("a symbol is missing from the object code")
        _touch(path)
        self._remember(header["entry"], objects, header.get("imports", []))
        kernel = CachedKernel(fn, header["entry"], int(header["workspace_bytes"]), bounds_check,
                              vmath)
        # NOTE: an entry written before "pool" was recorded may use it
        exe = Executable(fn, kernel, addresses[0], bool(header["trampoline"]), bounds_check,
                         engine, uses_pool=bool(header.get("pool", True)))
        engine.hold(exe, symbols[0])
        self.hits += 1
        self._log(f"disk cache hit for @{fn.name} ({os.path.basename(path)[:12]}): loaded in "
                  f"{(time.perf_counter() - t0) * 1e3:.1f} ms")
        return _noted(exe, "object code from the disk cache")

    def _build_and_store(self, fn, build, engine, directory: str, path: str, reason: str,
                         full_key: dict, secret: bytes):
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
                  "trampoline": exe.has_trampoline, "pool": exe.uses_pool,
                  "imports": imports, "function": fn.name, "key": full_key}
        try:
            write_atomic(directory, path, pack_entry(header, objects, secret))
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
        engine.object_cache = (self._notify, lambda module: None)
        self._hooked.add(engine)

    def _notify(self, module, data: bytes):
        if self._capture is not None:
            names = [f.name for f in module.functions
                     if f.is_declaration and not f.name.startswith("llvm.")
                     and not _uncallable(f)]
            names += [g.name for g in module.global_variables if g.is_declaration]
            self._capture.append((bytes(data), names))

    def _miss(self, fn: Function, name: str, reason: str):
        self.misses += 1
        self._log(f"disk cache miss for @{fn.name} ({name[:12]}): {reason}")

    @staticmethod
    def _log(message: str):
        if logging_enabled():
            log.info("%s", message)


def load_or_store_object(name: str, key: dict, compile_object) -> bytes:
    """The object code of a fixed runtime module (the thread pool): from the disk cache under
    `key` (with the checks kernels get: private files, MAC, the full key compared), else
    compile_object()'s bytes, stored for the next process.

    Args:
        name: what the object is (logged, and part of the key).
        key: everything the object code depends on (its IR, LLVM's version, the target).
        compile_object: () -> bytes, the object code built the ordinary way.
    """
    if not disk_cache_enabled():
        return compile_object()
    directory, notes = cache_dir(), []
    try:
        problem = prepare_private_dir(directory)
        if problem is not None:
            raise Untrusted(f"cache directory unusable: {problem}")
        secret = load_secret(directory, notes)
    except Untrusted as e:
        DISK._log(f"disk cache unusable for {name}: {e}")
        return compile_object()
    finally:
        for note in notes:
            DISK._log(note)
    full_key = {"object": name, "format": FORMAT.decode().strip(), **key}
    # NOTE: not a .gjo: kernels' entries are counted and pruned; this one is used by every
    # process that runs threads
    path = os.path.join(directory, f"{name}-{entry_name(full_key)[:-4]}.gjr")
    try:
        header, objects = unpack_entry(read_private_file(path), secret)
        if header.get("key") != full_key or len(objects) != 1:
            raise CorruptEntry("the entry was written for another key")
        DISK._log(f"disk cache hit for {name}")
        return objects[0]
    except FileNotFoundError:
        reason = "no entry"
    except (CorruptEntry, OSError) as e:
        reason = f"unusable entry ({e}), deleted and rebuilt"
        _unlink(path)
    DISK._log(f"disk cache miss for {name}: {reason}")
    data = compile_object()
    try:
        write_atomic(directory, path, pack_entry({"key": full_key, "entry": name}, [data],
                                                 secret))
    except OSError as e:                        # a full or read-only disk: built next time too
        DISK._log(f"disk cache could not store {name}: {e}")
    return data


def compiled_object(text: str, machine, symbol: str) -> tuple:
    """(the object code MCJIT makes of module text for machine, captured through its object
    cache hook: the one object that defines symbol, for load_or_store_object; the finalised
    MCJIT that made it). The caller runs the code from that MCJIT instead of linking the
    bytes into a second one (~1-1.5 ms per module of a cold start)."""
    import llvmlite.binding as llvm
    captured = []
    module = llvm.parse_assembly(text)
    module.verify()
    jit = llvm.create_mcjit_compiler(module, machine)
    jit.set_object_cache(lambda _module, data: captured.append(bytes(data)), lambda _m: None)
    jit.finalize_object()
    found = [data for data in captured if symbol.encode() in data]
    if len(found) != 1:
        jit.close()
        raise RuntimeError(f"LLVM produced no object code for {symbol}")
    return found[0], jit


def linked(obj: bytes, machine, built: dict):
    """The MCJIT running obj: built["jit"] when obj was just compiled here (compiled_object),
    else a new one (owning machine(), which should be at level 0: an MCJIT compiles its empty
    first module when finalised, ~1 ms at level 2, ~0.35 at 0) that obj is added to."""
    import llvmlite.binding as llvm
    jit = built.get("jit")
    if jit is not None:
        return jit
    jit = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine())
    jit.add_object_file(llvm.ObjectFileRef.from_data(obj))
    jit.finalize_object()
    return jit


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


def _uncallable(f) -> bool:
    """Whether declaration f takes scalable vectors on x86: only declared for the loop
    vectoriser's legality check (codegen/vmath_trig.py's `gradjit_sin_huge_f64_mx`), never
    called, since x86 code cannot pass scalable vectors. Listed as an import, it made every
    entry of a program with sin, cos or tan unusable in the next process (no process
    provides it): each run compiled them again."""
    return _X86 and "vscale" in str(f.global_value_type)


def _provide(imports: list):
    """Registers the gradjit_* symbols an object imports before it is loaded (MCJIT aborts
    the process on a symbol it cannot resolve, so an unresolvable one is a miss instead)."""
    import llvmlite.binding as llvm
    for name in imports:
        library = None
        if name.startswith("gradjit_"):
            # NOTE: late: only entries that call the BLAS need it (its import: ~5 ms)
            from runtime import blas, blas_tiles, lapack, shared_code
            library = (blas_tiles if name in blas_tiles.SYMBOLS else blas if "gemm" in name
                       else lapack if "lapacke" in name
                       else shared_code if name in shared_code.SYMBOLS else None)
            if library is blas_tiles:
                blas_tiles.provide_symbol(name)   # logs a failure; the check below refuses
                library = None
            if library is shared_code:
                shared_code.provide()        # logs a failure; the check below refuses then
                library = None
        if library is not None:
            try:
                library.register()
            except RuntimeError as e:
                raise CorruptEntry(f"needs {name}: {e}") from None
        if not llvm.address_of_symbol(name):
            raise CorruptEntry(f"imports {name}, which this process does not provide")


DISK = DiskCache()
