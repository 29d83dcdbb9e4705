"""Notes in the cache directory (runtime/notes.py) and the facts kept there: the BLAS's exact
row step (runtime/blas_split.py) is probed once per library, CPU and setting, and probed
again when any of them changed or the note is missing, corrupt or unreadable."""
import os
import stat

import pytest

import runtime
from runtime import blas, blas_split, notes, threads

needs_blas = pytest.mark.skipif(not runtime.externals().gemm, reason="no BLAS found in NumPy")


@pytest.fixture
def store(tmp_path, gradjit_env):
    folder = tmp_path / "cache"
    gradjit_env("GRADJIT_CACHE_DIR", str(folder))
    gradjit_env("GRADJIT_DISK_CACHE", None)
    gradjit_env("GRADJIT_BLAS_THREADS", None)
    return folder


def note_files(folder, name):
    return sorted(p for p in folder.iterdir() if p.name.startswith(f"{name}-"))


def test_a_note_is_read_back_only_for_its_key(store):
    folder = notes.directory()
    assert folder == str(store)
    assert notes.recall(folder, "fact", "key 1") is None
    notes.remember(folder, "fact", "key 1", "one")
    assert notes.recall(folder, "fact", "key 1") == "one"
    assert notes.recall(folder, "fact", "key 2") is None
    [path] = note_files(store, "fact")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    notes.remember(folder, "fact", "key 2", "two")            # the older note goes
    assert [p.name for p in note_files(store, "fact")] != [path.name]
    assert len(note_files(store, "fact")) == 1
    assert notes.recall(folder, "fact", "key 1") is None
    notes.remember(folder, "other", "key 1", "three")         # other names are kept
    assert notes.recall(folder, "fact", "key 2") == "two"


def test_no_notes_without_a_private_disk_cache(store, gradjit_env, tmp_path):
    gradjit_env("GRADJIT_DISK_CACHE", "0")
    assert notes.directory() is None
    notes.remember(None, "fact", "k", "v")
    assert notes.recall(None, "fact", "k") is None
    gradjit_env("GRADJIT_DISK_CACHE", None)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    gradjit_env("GRADJIT_CACHE_DIR", str(shared))
    assert notes.directory() is None


def test_an_unreadable_note_reads_as_none(store):
    folder = notes.directory()
    notes.remember(folder, "fact", "k", "v")
    [path] = note_files(store, "fact")
    os.chmod(path, 0o666)                           # writable by others: never read
    assert notes.recall(folder, "fact", "k") is None
    path.unlink()
    path.mkdir()                                    # not a file at all
    assert notes.recall(folder, "fact", "k") is None
    path.rmdir()
    path.write_bytes(b"\xff\xfe")                   # not text
    os.chmod(path, 0o600)
    assert notes.recall(folder, "fact", "k") is None


# ---- the exact row step -------------------------------------------------------------------

@pytest.fixture
def probes(store, monkeypatch):
    """Counts the probes exact_rows runs (each call starts without its in-process memo)."""
    counted = []
    real = blas_split._probe

    def probe(found, dtype):
        counted.append(dtype)
        return real(found, dtype)
    monkeypatch.setattr(blas_split, "_probe", probe)
    blas_split.forget()
    threads.set_num_threads(1)          # (exact_rows probes only for kernels on one thread)
    yield counted
    threads.set_num_threads(None)
    blas_split.forget()


def rows(dtype="f32"):
    blas_split.forget()
    return blas_split.exact_rows(dtype)


@needs_blas
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_the_step_is_probed_once_then_read_from_the_note(probes, store, dtype):
    blas.register()                                # the BLAS on one thread, as exact_rows has it
    expected = blas_split._probe(blas.binding(), dtype)
    probes.clear()
    assert rows(dtype) == expected and probes == [dtype]
    [path] = note_files(store, f"rows-{dtype}")
    assert path.read_text() == ("none" if expected is None else str(expected))
    assert rows(dtype) == expected and probes == [dtype]         # no second probe
    path.write_text("24")                          # a later process believes the note ...
    assert rows(dtype) == 24 and probes == [dtype]


@needs_blas
def test_a_corrupt_note_is_probed_again_and_rewritten(probes, store):
    expected = rows()
    [path] = note_files(store, "rows-f32")
    for damage in ("", "7", "12.0", "-12", "garbage", "1" * 40):
        path.write_text(damage)
        probes.clear()
        assert rows() == expected and probes == ["f32"], damage
        assert path.read_text() == ("none" if expected is None else str(expected))
    os.chmod(path, 0o666)
    probes.clear()
    assert rows() == expected and probes == ["f32"]


@needs_blas
def test_another_library_file_cpu_or_setting_is_probed_again(probes, store, tmp_path,
                                                             monkeypatch):
    real = blas.binding()
    copy = tmp_path / "libfakeblas.so"                 # stands in for the library's file
    copy.write_bytes(b"x" * 10)
    fake = blas.Binding(str(copy), real.layout, real.int_bits, real.names, real.addresses,
                        real.lib)
    monkeypatch.setattr(blas, "binding", lambda: fake)
    expected = rows()
    assert probes == ["f32"]
    rows()
    assert probes == ["f32"]
    os.utime(copy, ns=(10**18, 10**18))                # a new mtime: an updated library
    rows()
    assert probes == ["f32"] * 2
    copy.write_bytes(b"x" * 11)                        # a new size, same mtime
    os.utime(copy, ns=(10**18, 10**18))
    rows()
    assert probes == ["f32"] * 3
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")  # OpenBLAS told to pick kernels
    rows()
    assert probes == ["f32"] * 4
    engine = runtime.create_execution_engine()
    monkeypatch.setattr(engine, "host_features", engine.host_features + ",+madeup")
    assert rows() == expected and probes == ["f32"] * 5
    before = note_files(store, "rows-f32")
    assert len(before) == 1
    copy.unlink()                                      # no file to key on: probe, no note
    assert rows() == expected and probes == ["f32"] * 6
    assert note_files(store, "rows-f32") == before


@needs_blas
def test_without_a_disk_cache_every_process_probes(probes, store, gradjit_env):
    gradjit_env("GRADJIT_DISK_CACHE", "0")
    expected = rows()
    rows()
    assert probes == ["f32", "f32"] and rows() == expected
    assert not store.exists() or note_files(store, "rows-f32") == []


@needs_blas
def test_the_note_key_names_what_the_step_depends_on():
    found = blas.binding()
    key = blas_split._note_key(found, "f32")
    engine = runtime.create_execution_engine()
    st = os.stat(found.path)
    for part in (found.path, str(st.st_size), str(st.st_mtime_ns), engine.host_cpu,
                 repr(blas_split._CHECKS)):
        assert part in key
    assert key != blas_split._note_key(found, "f64")


@needs_blas
def test_no_probe_while_kernels_run_on_several_threads(probes, store):
    # an exact split only pays on one thread: a cold start at the default thread count of a
    # multi-core machine must not spend the probe; one thread probes, and the note is then
    # used at any count
    threads.set_num_threads(2)
    assert rows() is None and blas_split.exact_rows("f32") is None and probes == []
    assert note_files(store, "rows-f32") == [] if store.exists() else True
    threads.set_num_threads(1)
    step = blas_split.exact_rows("f32")
    assert probes == ["f32"]
    threads.set_num_threads(2)
    assert blas_split.exact_rows("f32") == step and rows() == step and probes == ["f32"]
