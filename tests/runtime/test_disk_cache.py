"""The disk cache of object code: hits across processes, corrupt entries rebuilt, the
directory's permissions, the environment variables and the key."""
import gc
import hashlib
import hmac
import logging
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

import runtime
from ir.interpret import interpret
from runtime import blas, blas_split, cache_entry, engine
from runtime import disk_cache as cache
from runtime.cache_entry import CorruptEntry, pack_entry, unpack_entry
from tests.codegen.test_perf_gemm import dot_fn
from tests.prim_samples import T, make_fn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def cache_dir(tmp_path, gradjit_env):
    path = tmp_path / "objects"
    gradjit_env("GRADJIT_CACHE_DIR", str(path))
    gradjit_env("GRADJIT_SECRET_FILE", str(tmp_path / "config" / "secret"))
    gradjit_env("GRADJIT_DISK_CACHE", None)
    runtime.clear_cache()
    yield path
    runtime.clear_cache()


def softplus(n: int = 5, name: str = "softplus"):
    return make_fn(name, [T("f64", (n,))],
                   lambda b, x: [b.log1p(b.exp(x)), b.reduce_sum(x, axes=(0,))])


def secret() -> bytes:
    return cache_entry.load_secret(cache.cache_dir(), [])


def entries(path) -> list:
    return sorted(p for p in path.iterdir() if p.suffix == ".gjo")


def check_runs(exe, fn):
    x = np.linspace(-2, 2, fn.params[0].type.shape[0])
    for got, want in zip(exe(x), interpret(fn, x)):
        np.testing.assert_allclose(got, want, rtol=1e-13)


def test_a_compile_stores_one_entry_in_a_private_directory(cache_dir):
    fn = softplus(6)
    check_runs(runtime.compile(fn), fn)
    assert stat.S_IMODE(os.stat(cache_dir).st_mode) == 0o700
    (entry,) = entries(cache_dir)
    assert stat.S_IMODE(os.stat(entry).st_mode) & 0o077 == 0
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(".tmp-")]
    header, objects = unpack_entry(entry.read_bytes(), secret())
    assert header["function"] == "softplus" and header["entry"].startswith("gj_softplus_")
    assert objects and all(objects)


def test_after_clear_cache_the_code_comes_from_disk(cache_dir):
    fn = softplus(7)
    first = runtime.compile(fn)
    hits = runtime.cache_info()["disk_hits"]
    runtime.clear_cache()
    second = runtime.compile(fn)
    assert second is not first and "disk cache" in second.origin
    assert runtime.cache_info()["disk_hits"] == hits + 1
    check_runs(second, fn)
    assert second.kernel.entry == first.kernel.entry
    assert second.llvm_ir == first.llvm_ir          # lowered again only when asked


def test_a_hit_links_with_a_machine_that_compiles_nothing(cache_dir):
    """Object code from the disk is JIT-linked by an MCJIT whose machine is at level 0 (it
    only compiles its empty first module): counted as a link, not as a machine-code level,
    and the results are the built code's bits."""
    fn = softplus(9)
    x = np.linspace(-3, 3, 9)
    built = [a.copy() for a in runtime.compile(fn)(x)]
    runtime.clear_cache()
    gc.collect()                                    # the built code is freed: a real load
    links, machines = engine.links[0], dict(engine.machines)
    loaded = runtime.compile(fn)
    assert "disk cache" in loaded.origin
    assert engine.links[0] == links + 1 and engine.machines == machines
    assert [a.tobytes() for a in loaded(x)] == [a.tobytes() for a in built]


def test_an_entry_records_whether_its_kernel_uses_the_pool(cache_dir):
    fn = softplus(11)
    built = runtime.compile(fn)
    assert built.uses_pool is False and runtime.uses_pool(built.llvm_ir) is False
    (entry,) = entries(cache_dir)
    header, objects = unpack_entry(entry.read_bytes(), secret())
    assert header["pool"] is False
    del header["pool"]                     # an entry written before the field existed
    entry.write_bytes(pack_entry(header, objects, secret()))
    runtime.clear_cache()
    del built
    gc.collect()
    old = runtime.compile(fn)
    assert "disk cache" in old.origin and old.uses_pool is True      # assumed: it may
    check_runs(old, fn)


SCRIPT = """
import sys, numpy as np, runtime, ir
fn = ir.parse(sys.stdin.read())
x = np.linspace(-2, 2, fn.params[0].type.shape[0])
exe = runtime.compile(fn)
print(exe.origin)
print(b"".join(o.tobytes() for o in exe(x)).hex())
"""


def run_fresh(fn, **env) -> tuple[str, str, str]:
    """Compiles and runs fn in a new process: (origin, output bytes as hex, log)."""
    out = subprocess.run([sys.executable, "-c", SCRIPT], input=str(fn), text=True, check=True,
                         capture_output=True, cwd=ROOT,
                         env=dict(os.environ, GRADJIT_LOG="1", **env))
    origin, data = out.stdout.splitlines()
    return origin, data, out.stderr


def test_a_second_process_starts_warm(cache_dir):
    fn = softplus(9, "warm")
    origin, cold, log = run_fresh(fn)
    assert "disk cache miss for @warm" in log and "no entry" in log and "stored" in origin
    origin, warm, log = run_fresh(fn)
    assert "disk cache hit for @warm" in log and origin == "object code from the disk cache"
    assert warm == cold


def test_a_corrupt_entry_is_deleted_and_rebuilt(cache_dir):
    fn = softplus(11, "damaged")
    _, want, _ = run_fresh(fn)
    (entry,) = entries(cache_dir)
    good = entry.read_bytes()
    for damage in (good[:len(good) // 2], good[:-1] + bytes([good[-1] ^ 1]), b"junk"):
        entry.write_bytes(damage)
        _, got, log = run_fresh(fn)
        assert "unusable entry" in log and "deleted and rebuilt" in log
        assert got == want
        unpack_entry(entry.read_bytes(), secret())             # a valid entry again
    _, got, log = run_fresh(fn)
    assert "disk cache hit" in log and got == want


def test_corruption_is_also_caught_within_one_process(cache_dir, caplog, gradjit_env):
    fn = softplus(12, "again")
    runtime.compile(fn)
    (entry,) = entries(cache_dir)
    entry.write_bytes(entry.read_bytes()[:100])
    runtime.clear_cache()
    gradjit_env("GRADJIT_LOG", "1")
    with caplog.at_level(logging.INFO, logger="gradjit"):
        exe = runtime.compile(fn)
    assert "truncated" in caplog.text or "MAC mismatch" in caplog.text
    check_runs(exe, fn)
    unpack_entry(entry.read_bytes(), secret())


def test_a_directory_others_can_write_is_not_used(tmp_path, gradjit_env, caplog):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    gradjit_env("GRADJIT_CACHE_DIR", str(shared))
    gradjit_env("GRADJIT_LOG", "1")
    runtime.clear_cache()
    fn = softplus(13)
    with caplog.at_level(logging.INFO, logger="gradjit"):
        exe = runtime.compile(fn)
    assert "writable by group or others" in caplog.text
    check_runs(exe, fn)
    assert entries(shared) == []


def test_gradjit_disk_cache_0_turns_it_off(cache_dir, gradjit_env):
    gradjit_env("GRADJIT_DISK_CACHE", "0")
    fn = softplus(14)
    exe = runtime.compile(fn)
    check_runs(exe, fn)
    assert "GRADJIT_DISK_CACHE=0" in exe.origin
    assert not cache_dir.exists() or entries(cache_dir) == []


def test_default_directory_follows_xdg_then_home(monkeypatch, tmp_path, gradjit_env):
    gradjit_env("GRADJIT_CACHE_DIR", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == str(tmp_path / "xdg" / "gradjit")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == str(tmp_path / "home" / ".cache" / "gradjit")
    gradjit_env("GRADJIT_CACHE_DIR", "~/elsewhere")
    assert cache.cache_dir() == str(tmp_path / "home" / "elsewhere")


def test_lowering_options_are_part_of_the_key(cache_dir):
    fn = softplus(15)
    runtime.compile(fn)
    runtime.clear_cache()
    exe = runtime.compile(fn, vmath=False)             # libm calls instead of polynomials
    assert "disk cache miss" in exe.origin
    assert len(entries(cache_dir)) == 2
    runtime.clear_cache()
    exe = runtime.compile(fn, vmath=False)
    assert exe.origin == "object code from the disk cache"
    assert '@"log1p"' in exe.llvm_ir                   # lowered again with the same option
    x = np.linspace(-2, 2, 15)
    for got, want in zip(exe(x), interpret(fn, x)):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
    runtime.clear_cache()
    assert "disk cache miss" in runtime.compile(fn, bounds_check=True).origin
    assert len(entries(cache_dir)) == 3


def test_the_key_names_versions_target_and_source():
    engine = runtime.create_execution_engine()
    import llvmlite
    env = cache.environment(engine)
    assert env["cpu"] == engine.cpu and env["features"] == engine.features
    assert env["triple"] == engine.triple and env["llvmlite"] == llvmlite.__version__
    assert env["numpy"] == np.__version__ and env["source"] == cache.source_hash()
    import gradjit
    assert env["gradjit"] == gradjit.__version__
    key = cache.entry_key(softplus(4), "k", False, engine)
    assert "reduce_sum" in key["ir"] and key["memory_key"] == "k"
    assert key["environment"] == env and "bounds_check=False" in key["lowering"]


def test_entry_format_rejects_damage():
    key = b"k" * 32
    good = pack_entry({"entry": "e", "workspace_bytes": 64}, [b"abc", b"de"], key)
    header, objects = unpack_entry(good, key)
    assert header["entry"] == "e" and objects == [b"abc", b"de"]
    text = b'{"objects": [9]}'                        # well formed, sizes that lie
    body = cache_entry.FORMAT + len(text).to_bytes(8, "little") + text + b"abc"
    lying = body + hmac.new(key, body, hashlib.sha256).digest()
    bad = [b"", good[:10], good[:-3], b"x" + good[1:], good[:-1] + b"\0", lying]
    for data in bad:
        with pytest.raises(CorruptEntry):
            unpack_entry(data, key)
    with pytest.raises(CorruptEntry, match="sizes"):
        unpack_entry(lying, key)


def test_prune_keeps_the_most_recently_used_entries(tmp_path):
    for k in range(10):
        path = tmp_path / f"{k:02d}.gjo"
        path.write_bytes(b"x")
        os.utime(path, ns=(10**18 + k, 10**18 + k))
    (tmp_path / "other.txt").write_bytes(b"not an entry")
    cache.prune(str(tmp_path), keep=12)
    assert len(entries(tmp_path)) == 10                    # under the limit: untouched
    cache.prune(str(tmp_path), keep=8)
    assert [p.name for p in entries(tmp_path)] == ["04.gjo", "05.gjo", "06.gjo", "07.gjo",
                                                   "08.gjo", "09.gjo"]
    assert (tmp_path / "other.txt").exists()


@pytest.fixture
def fresh_source_hash(monkeypatch):
    monkeypatch.setattr(cache, "_SOURCE_HASH", None)
    full = cache.source_hash()
    monkeypatch.setattr(cache, "_SOURCE_HASH", None)
    return full


def notes(path) -> list:
    return sorted(p.name for p in path.iterdir() if p.name.startswith("source-"))


def test_the_source_hash_is_remembered_by_size_and_mtime(tmp_path, fresh_source_hash,
                                                         monkeypatch):
    cache.remember_source_hash(str(tmp_path))
    assert cache.source_hash() == fresh_source_hash
    [note] = notes(tmp_path)
    assert (tmp_path / note).read_text() == fresh_source_hash
    assert stat.S_IMODE((tmp_path / note).stat().st_mode) == 0o600
    monkeypatch.setattr(cache, "_SOURCE_HASH", None)
    (tmp_path / note).write_text("a" * 64)      # a later process believes the note ...
    cache.remember_source_hash(str(tmp_path))
    assert cache.source_hash() == "a" * 64


def test_a_bad_or_foreign_note_is_not_believed(tmp_path, fresh_source_hash, monkeypatch):
    cache.remember_source_hash(str(tmp_path))
    [note] = notes(tmp_path)
    for damage in ("not a hash", "A" * 64, "a" * 63):
        monkeypatch.setattr(cache, "_SOURCE_HASH", None)
        (tmp_path / note).write_text(damage)
        cache.remember_source_hash(str(tmp_path))
        assert cache.source_hash() == fresh_source_hash
    monkeypatch.setattr(cache, "_SOURCE_HASH", None)
    (tmp_path / note).write_text("b" * 64)
    os.chmod(tmp_path / note, 0o666)             # writable by others: never read
    cache.remember_source_hash(str(tmp_path))
    assert cache.source_hash() == fresh_source_hash


def test_a_changed_source_file_gets_a_new_note(tmp_path, monkeypatch):
    src = tmp_path / "src.py"
    src.write_text("x = 1\n")
    monkeypatch.setattr(cache, "_source_files", lambda: [("ir/src.py", str(src))])
    monkeypatch.setattr(cache, "_SOURCE_HASH", None)
    store = tmp_path / "cache"
    store.mkdir(mode=0o700)
    cache.remember_source_hash(str(store))
    first, [first_note] = cache.source_hash(), notes(store)
    src.write_text("x = 2\n")
    os.utime(src, ns=(1, 1))                     # a new mtime (and content)
    monkeypatch.setattr(cache, "_SOURCE_HASH", None)
    cache.remember_source_hash(str(store))
    assert cache.source_hash() != first
    assert len(notes(store)) == 1 and notes(store) != [first_note]


def test_only_a_program_with_a_dot_asks_whether_the_blas_is_there():
    no_dot = cache.lowering_options(False, True, softplus(4))
    assert no_dot.endswith("gemm=unused")
    with_dot = cache.lowering_options(False, True, dot_fn((4, 3), (3, 2), ((1,), (0,))))
    assert with_dot.endswith(f"gemm={blas.available()}")     # too small to split: no probe
    full = cache.lowering_options(False, True)                  # no Function: the full answer
    big = cache.lowering_options(False, True, dot_fn((256, 784), (784, 256), ((1,), (0,))))
    assert full.startswith(with_dot) and big.startswith(with_dot)
    if blas.available():         # a split f64 product: the probed f64 row step (blas_split)
        assert big.endswith(" rows=f64:" + str(blas_split.exact_rows("f64")))
        assert set(big.split(" rows=")[1:]) < set(full.split(" rows=")[1:])


@pytest.mark.parametrize("trig", ["sin", "cos", "tan"])
def test_a_program_with_trig_starts_warm(cache_dir, trig):
    """A trig kernel declares a scalable vector variant of its rare path for the loop
    vectoriser only (codegen/vmath_trig.py): on x86 it is never called, so it is no import
    of the entry; listed as one, the next process refused every such entry and compiled it
    again."""
    fn = make_fn(f"warm_{trig}", [T("f32", (2000,))], lambda b, x: [getattr(b, trig)(x)])
    origin, cold, log = run_fresh(fn)
    assert "stored" in origin
    origin, warm, log = run_fresh(fn)
    assert f"disk cache hit for @warm_{trig}" in log, log
    assert origin == "object code from the disk cache" and "unusable" not in log
    assert warm == cold
