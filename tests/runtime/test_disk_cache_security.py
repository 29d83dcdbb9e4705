"""Attacks on the disk cache (issue 10): each must fail safely, i.e. the entry is refused
(logged with the reason, deleted, rebuilt) and the program still gives the right numbers.

The attacker can write the cache directory (a shared GRADJIT_CACHE_DIR, a file left by
another user) but cannot read this user's secret."""
import hashlib
import json
import logging
import os
import shutil
import stat

import numpy as np
import pytest

import runtime
from ir.interpret import interpret
from runtime import cache_entry
from runtime import disk_cache as cache
from runtime.cache_entry import pack_entry, unpack_entry
from tests.prim_samples import T, make_fn
from tests.runtime.test_disk_cache import entries, run_fresh, softplus

IS_ROOT = hasattr(os, "getuid") and os.getuid() == 0
NOBODY = 65534


@pytest.fixture
def cache_dir(tmp_path, monkeypatch, caplog, gradjit_env):
    path = tmp_path / "objects"
    gradjit_env("GRADJIT_CACHE_DIR", str(path))
    gradjit_env("GRADJIT_SECRET_FILE", str(tmp_path / "config" / "secret"))
    gradjit_env("GRADJIT_DISK_CACHE", None)
    gradjit_env("GRADJIT_LOG", "1")
    caplog.set_level(logging.INFO, logger="gradjit")
    runtime.clear_cache()
    yield path
    runtime.clear_cache()


def secret() -> bytes:
    return cache_entry.load_secret(cache.cache_dir(), [])


def other(n: int = 8, name: str = "other"):
    """The same signature as softplus(n), other numbers: exp(x) and the sum of exp(x)."""
    return make_fn(name, [T("f64", (n,))],
                   lambda b, x: [b.exp(x), b.reduce_sum(b.exp(x), axes=(0,))])


def outputs(fn) -> list:
    x = np.linspace(-2, 2, fn.params[0].type.shape[0])
    return [np.asarray(o) for o in runtime.compile(fn)(x)]


def assert_right(fn, **options):
    """fn compiled again (memory cache cleared) equals the interpreter."""
    runtime.clear_cache()
    x = np.linspace(-2, 2, fn.params[0].type.shape[0])
    exe = runtime.compile(fn, **options)
    for got, want in zip(exe(x), interpret(fn, x)):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    return exe


def compile_new_entry(fn, directory, **options):
    """Compiles fn (runtime.compile options); the path of the entry that appeared."""
    before = set(entries(directory)) if directory.exists() else set()
    runtime.compile(fn, **options)
    (new,) = set(entries(directory)) - before
    return new


def assert_refused(exe, caplog, why: str):
    assert "disk cache miss" in exe.origin and "deleted and rebuilt" in exe.origin
    assert why in caplog.text, caplog.text


def forge(header: dict, objects: list, magic: bytes) -> bytes:
    """An entry as anyone can write it: a plain SHA-256 in place of the MAC."""
    text = json.dumps(dict(header, objects=[len(o) for o in objects]), sort_keys=True).encode()
    body = magic + len(text).to_bytes(8, "little") + text + b"".join(objects)
    return body + hashlib.sha256(body).digest()


def test_an_entry_with_a_valid_sha256_does_not_run_foreign_code(cache_dir, caplog):
    fn, foreign = softplus(8, "victim"), other(8)
    victim = compile_new_entry(fn, cache_dir)
    victim_key = unpack_entry(victim.read_bytes(), secret())[0]["key"]
    header, objects = unpack_entry(compile_new_entry(foreign, cache_dir).read_bytes(), secret())
    assert not np.allclose(outputs(fn)[0], outputs(foreign)[0])   # running it would show
    # the format before issue 10, which this attack got past
    old = dict(header)
    del old["key"]
    victim.write_bytes(forge(old, objects, b"gradjit object cache 1\n"))
    assert_refused(assert_right(fn), caplog, "not an entry of this format")
    # today's format, the victim's key (public: IR text, versions, CPU), foreign code
    victim.write_bytes(forge(dict(header, key=victim_key), objects, cache_entry.FORMAT))
    caplog.clear()
    assert_refused(assert_right(fn), caplog, "MAC mismatch")
    assert unpack_entry(victim.read_bytes(), secret())[0]["function"] == "victim"


def test_an_entry_copied_over_another_keys_file_with_the_same_signature(cache_dir, caplog):
    fn, foreign = softplus(8, "victim"), other(8)
    victim = compile_new_entry(fn, cache_dir)
    shutil.copyfile(compile_new_entry(foreign, cache_dir), victim)
    exe = assert_right(fn)                  # not exp(x): the wrong program did not run
    assert_refused(exe, caplog, "written for another key")
    assert unpack_entry(victim.read_bytes(), secret())[0]["function"] == "victim"


def test_an_entry_copied_over_another_keys_file_with_another_signature(cache_dir):
    """In new processes: loaded, the big kernel would write far past the small buffers."""
    fn, big = softplus(5, "small"), softplus(200_000, "big")
    _, want, _ = run_fresh(fn)
    _, _, _ = run_fresh(big)
    small_entry, big_entry = sorted(entries(cache_dir), key=lambda p: p.stat().st_size)
    shutil.copyfile(big_entry, small_entry)
    origin, got, log = run_fresh(fn)        # check=True: a crash fails here
    assert "written for another key" in log and "deleted and rebuilt" in origin
    assert got == want


def test_an_entry_with_a_valid_mac_under_another_secret(cache_dir, caplog):
    fn = softplus(8, "victim")
    victim = compile_new_entry(fn, cache_dir)
    header, objects = unpack_entry(victim.read_bytes(), secret())
    # right key, right code, signed by someone else's gradjit: still not this user's entry
    victim.write_bytes(pack_entry(header, objects, os.urandom(32)))
    assert_refused(assert_right(fn), caplog, "MAC mismatch")


def test_an_old_valid_entry_replayed_under_a_new_key(cache_dir, caplog):
    fn = softplus(8, "victim")
    old = compile_new_entry(fn, cache_dir)
    old_bytes = old.read_bytes()
    runtime.clear_cache()
    new = compile_new_entry(fn, cache_dir, vmath=False)   # another key: libm calls
    new_key = unpack_entry(new.read_bytes(), secret())[0]["key"]
    assert new_key != unpack_entry(old_bytes, secret())[0]["key"]
    new.write_bytes(old_bytes)                  # valid MAC, this user's, another key
    assert_refused(assert_right(fn, vmath=False), caplog, "written for another key")
    assert unpack_entry(new.read_bytes(), secret())[0]["key"] == new_key


@pytest.mark.skipif(not IS_ROOT, reason="giving a file to another user (chown) needs root")
def test_an_entry_owned_by_another_user(cache_dir, caplog):
    fn = softplus(8, "victim")
    victim = compile_new_entry(fn, cache_dir)
    os.chown(victim, NOBODY, NOBODY)
    assert_refused(assert_right(fn), caplog, "belongs to another user")
    assert victim.stat().st_uid == os.getuid()          # rebuilt by us


@pytest.mark.skipif(not IS_ROOT, reason="giving a directory to another user (chown) needs root")
def test_a_cache_directory_owned_by_another_user(cache_dir, caplog):
    fn = softplus(8, "victim")
    compile_new_entry(fn, cache_dir)
    os.chown(cache_dir, NOBODY, NOBODY)
    exe = assert_right(fn)
    assert "disk cache unusable" in exe.origin and "belongs to another user" in caplog.text


def test_a_world_writable_entry(cache_dir, caplog):
    fn = softplus(8, "victim")
    victim = compile_new_entry(fn, cache_dir)
    os.chmod(victim, 0o666)
    assert_refused(assert_right(fn), caplog, "writable by group or others")
    assert stat.S_IMODE(victim.stat().st_mode) & 0o077 == 0


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o703])
def test_a_cache_directory_others_can_write(cache_dir, caplog, mode):
    fn = softplus(8, "victim")
    victim = compile_new_entry(fn, cache_dir)
    os.chmod(cache_dir, mode)
    exe = assert_right(fn)
    assert "disk cache unusable" in exe.origin and "writable by group or others" in caplog.text
    assert "disk cache hit" not in caplog.text and victim.exists()


def test_a_symbolic_link_to_a_valid_entry(cache_dir, caplog, tmp_path):
    fn = softplus(8, "victim")
    victim = compile_new_entry(fn, cache_dir)
    elsewhere = tmp_path / "elsewhere.gjo"
    shutil.move(victim, elsewhere)
    victim.symlink_to(elsewhere)
    assert_refused(assert_right(fn), caplog, "symbolic link")
    assert not victim.is_symlink()


def damaged(good: bytes) -> list:
    """Truncations and flips in every part of an entry: magic, length, header, code, MAC."""
    cuts = [0, 1, 10, len(good) // 2, len(good) - 33, len(good) - 1]
    flips = [0, 25, 40, len(good) // 2, len(good) - 40, len(good) - 1]
    return [good[:n] for n in cuts] + [
        good[:k] + bytes([good[k] ^ 0x20]) + good[k + 1:] for k in flips] + [
        good + b"\0", b"\0" * len(good)]


def test_truncated_and_corrupt_entries(cache_dir, caplog):
    fn = softplus(8, "victim")
    victim = compile_new_entry(fn, cache_dir)
    good = victim.read_bytes()
    for bad in damaged(good):
        victim.write_bytes(bad)
        caplog.clear()
        exe = assert_right(fn)
        assert_refused(exe, caplog, "unusable entry")
        assert victim.read_bytes() != bad
    caplog.clear()
    assert "from the disk cache" in assert_right(fn).origin


def test_a_secret_others_can_read_is_replaced(cache_dir, caplog, tmp_path):
    """Repair, not refusal: a secret others could read may have leaked, so it is replaced
    by a new one (0600), and entries signed with the old one are rebuilt."""
    fn = softplus(8, "victim")
    victim = compile_new_entry(fn, cache_dir)
    path = tmp_path / "config" / "secret"
    old = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    exe = assert_right(fn)
    assert "had mode 644" in caplog.text and "replaced by a new secret" in caplog.text
    assert_refused(exe, caplog, "MAC mismatch")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() != old
    unpack_entry(victim.read_bytes(), path.read_bytes())


def test_a_secret_in_a_directory_others_can_write_is_refused(cache_dir, caplog, tmp_path):
    fn = softplus(8, "victim")
    compile_new_entry(fn, cache_dir)
    os.chmod(tmp_path / "config", 0o777)
    exe = assert_right(fn)
    assert "disk cache unusable" in exe.origin and "secret's directory" in caplog.text


def test_a_secret_that_is_a_symbolic_link_is_refused(cache_dir, caplog, tmp_path):
    fn = softplus(8, "victim")
    compile_new_entry(fn, cache_dir)
    path = tmp_path / "config" / "secret"
    planted = tmp_path / "planted"
    planted.write_bytes(os.urandom(32))
    os.chmod(planted, 0o600)
    path.unlink()
    path.symlink_to(planted)
    exe = assert_right(fn)
    assert "disk cache unusable" in exe.origin and "symbolic link" in caplog.text


@pytest.mark.skipif(not IS_ROOT, reason="giving a file to another user (chown) needs root")
def test_a_secret_owned_by_another_user_is_refused(cache_dir, caplog, tmp_path):
    fn = softplus(8, "victim")
    compile_new_entry(fn, cache_dir)
    os.chown(tmp_path / "config" / "secret", NOBODY, NOBODY)
    exe = assert_right(fn)
    assert "disk cache unusable" in exe.origin and "belongs to another user" in caplog.text


def test_a_secret_inside_the_cache_directory_is_refused(cache_dir, caplog, gradjit_env):
    gradjit_env("GRADJIT_SECRET_FILE", str(cache_dir / "secret"))
    exe = assert_right(softplus(8, "victim"))
    assert "disk cache unusable" in exe.origin and "inside the cache directory" in caplog.text
    assert not (cache_dir / "secret").exists()


def test_the_secret_is_made_0600_in_the_config_directory(tmp_path, monkeypatch, gradjit_env):
    gradjit_env("GRADJIT_SECRET_FILE", None)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert cache_entry.secret_path() == str(tmp_path / "xdg" / "gradjit" / "secret")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = tmp_path / "home" / ".config" / "gradjit" / "secret"
    assert cache_entry.secret_path() == str(path)
    notes: list = []
    first = cache_entry.load_secret(str(tmp_path / "cache"), notes)
    assert len(first) == 32 and notes == [] and path.read_bytes() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert cache_entry.load_secret(str(tmp_path / "cache"), notes) == first
    assert [p.name for p in path.parent.iterdir()] == ["secret"]     # no temporary left


def test_the_entry_key_includes_the_target_cpu(cache_dir, monkeypatch, gradjit_env):
    fn = softplus(8, "victim")
    compile_new_entry(fn, cache_dir)
    gradjit_env("GRADJIT_TARGET_CPU", "x86-64-v2")
    engine = runtime.create_execution_engine()
    if engine.runnable_problem is not None:
        pytest.skip(f"this host cannot run x86-64-v2 code: {engine.runnable_problem}")
    entry = compile_new_entry(fn, cache_dir)          # a new entry, not the host's
    key = unpack_entry(entry.read_bytes(), secret())[0]["key"]
    assert key["environment"]["cpu"] == "x86-64-v2"
    assert_right(fn)
