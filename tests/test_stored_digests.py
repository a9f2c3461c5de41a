"""Digests and cache checks that a new process takes over from disk (filehash's stored memo,
the frame cache's ``verified`` stat): taken only while a file's stat is the one it had when
hashed, so an edit in place that keeps size and mtime is read again, and a damaged entry is
rebuilt; a damaged memo file only costs the hashing."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from bgbench.data import filehash, framecache


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A private cache, a settle time of 0 (files count as settled once their clock tick has
    passed: each test sleeps past it), and an empty in-process memo as in a new process."""
    monkeypatch.setenv("BGBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(filehash, "RACY_NS", 0)
    monkeypatch.setattr(filehash, "_memo", {})
    monkeypatch.setattr(filehash, "_loaded", set())
    monkeypatch.setattr(framecache, "_verified", {})
    monkeypatch.setattr(framecache, "_open", set())
    return tmp_path


def _new_process(monkeypatch):
    monkeypatch.setattr(filehash, "_memo", {})
    monkeypatch.setattr(filehash, "_loaded", set())
    monkeypatch.setattr(framecache, "_verified", {})


def _no_hashing(*_):
    raise AssertionError("hashed although the stored digest was valid")


def test_a_new_process_takes_stored_digests_until_the_file_changes(fresh, monkeypatch):
    files = [fresh / "d" / f"f{i}.bin" for i in range(12)]
    files[0].parent.mkdir()
    for i, f in enumerate(files):
        f.write_bytes(bytes([i]) * 1000)
    time.sleep(0.05)  # past the clock tick of the writes
    first = filehash.digests(files)
    assert list((fresh / "cache" / "digests").glob("*.json"))  # stored
    _new_process(monkeypatch)
    real_hash = filehash._hash_file
    monkeypatch.setattr(filehash, "_hash_file", _no_hashing)
    assert filehash.digests(files) == first  # from disk, nothing read
    # an edit in place that restores size and mtime: ctime moved, so the bytes are read again
    st = os.stat(files[3])
    files[3].write_bytes(b"\x07" * 1000)
    os.utime(files[3], ns=(st.st_atime_ns, st.st_mtime_ns))
    _new_process(monkeypatch)
    hashed = []
    monkeypatch.setattr(filehash, "_hash_file", lambda p: hashed.append(p) or real_hash(p))
    again = filehash.digests(files)
    assert hashed == [str(files[3])] and again[3] != first[3] and again[:3] == first[:3]
    # a damaged memo file: everything is hashed again, nothing is wrong
    for m in (fresh / "cache" / "digests").glob("*.json"):
        m.write_text("{not json")
    _new_process(monkeypatch)
    hashed.clear()
    assert filehash.digests(files) == again and len(hashed) == 12


def test_a_young_file_is_never_stored(fresh, monkeypatch):
    monkeypatch.setattr(filehash, "RACY_NS", 10**12)  # nothing is old enough
    f = fresh / "young.bin"
    f.write_bytes(b"x" * 100)
    filehash.digests([f])
    assert not (fresh / "cache" / "digests").exists()


def _stack(files):
    return framecache.cached_stack("v/a-bgr", files, lambda p: np.frombuffer(p.read_bytes(), np.uint8), (64,))


def test_a_verified_entry_is_not_hashed_again_until_it_changes(fresh, monkeypatch):
    src = fresh / "src"
    src.mkdir()
    files = [src / f"{i}.raw" for i in range(4)]
    for i, f in enumerate(files):
        f.write_bytes(bytes([i]) * 64)
    time.sleep(0.05)
    good = np.array(_stack(files))
    time.sleep(0.05)  # the entry's build tick has passed: the next check may record it
    _new_process(monkeypatch)
    _stack(files)  # hashes the entry once and records its stat
    (entry,) = fresh.joinpath("cache").glob("*.npy")
    import json

    assert json.loads(framecache._meta_path(entry).read_text())["verified"][2] == entry.stat().st_size
    _new_process(monkeypatch)
    monkeypatch.setattr(framecache, "_entry_checksum", _no_hashing)
    monkeypatch.setattr(filehash, "_hash_file", _no_hashing)
    assert np.array_equal(_stack(files), good)  # neither the entry nor its sources read
    monkeypatch.undo()
    # damage in place, same size: its stat changes, so it is hashed, found damaged and rebuilt
    monkeypatch.setenv("BGBENCH_CACHE", str(fresh / "cache"))
    monkeypatch.setattr(filehash, "RACY_NS", 0)
    _new_process(monkeypatch)
    with open(entry, "r+b") as f:
        f.seek(entry.stat().st_size - 64)
        f.write(bytes(range(64)))
    assert not np.array_equal(np.load(entry), good)
    assert np.array_equal(_stack(files), good)


def test_cache_clear_removes_the_stored_digests_bgbench_wrote_only(fresh):
    f = fresh / "a.bin"
    f.write_bytes(b"a" * 10)
    time.sleep(0.05)
    filehash.digests([f])
    store = fresh / "cache" / "digests"
    (theirs,) = list(store.glob("*.json"))
    mine = store / "notes.json"
    mine.write_text('{"mine": true}')
    framecache.clear()
    assert not theirs.exists() and mine.exists()


def _read_stack(files):
    from bgbench.safefs import read_bytes

    return framecache.cached_stack("v/r-bgr", files, lambda p: np.frombuffer(read_bytes(p), np.uint8), (64,))


def test_a_cache_build_takes_its_sources_digests_from_the_bytes_it_decodes(fresh, monkeypatch):
    src = fresh / "src"
    src.mkdir()
    files = [src / f"{i}.raw" for i in range(20)]
    for i, f in enumerate(files):
        f.write_bytes(bytes([i, 255 - i]) * 32)
    time.sleep(0.05)
    monkeypatch.setattr(filehash, "_hash_file", _no_hashing)  # no file is read a second time to hash it
    _read_stack(files)
    from bgbench import safefs

    assert safefs.on_read is None  # the hook is gone after the build
    noted = filehash.digests(files)
    monkeypatch.undo()
    monkeypatch.setenv("BGBENCH_CACHE", str(fresh / "cache"))
    _new_process(monkeypatch)
    assert noted == [filehash._hash_file(str(f)) for f in files]  # what hashing the files gives
    monkeypatch.setattr(filehash, "_hash_file", _no_hashing)
    assert filehash.digests(files) == noted  # and a new process finds them on disk


def test_reads_of_young_files_are_not_noted(fresh, monkeypatch):
    monkeypatch.setattr(filehash, "RACY_NS", 10**12)  # nothing is settled: a later edit could keep the stat
    f = fresh / "young.raw"
    f.write_bytes(b"y" * 64)
    _read_stack([f])
    hashed = []
    real = filehash._hash_file
    monkeypatch.setattr(filehash, "_hash_file", lambda p: hashed.append(p) or real(p))
    filehash.digests([f])
    assert hashed == [str(f)]


def test_entry_checksums_taken_while_building_are_the_files(fresh, monkeypatch):
    src = fresh / "src"
    src.mkdir()
    files = [src / f"{i}.raw" for i in range(6)]
    for i, f in enumerate(files):
        f.write_bytes(bytes(range(i, i + 64)))
    good = np.array(_stack(files))
    (entry,) = fresh.joinpath("cache").glob("*.npy")
    import json
    import zlib

    meta = json.loads(framecache._meta_path(entry).read_text())
    offset = len(entry.read_bytes()) - good.nbytes
    header = entry.read_bytes()[:offset]
    crcs = [zlib.crc32(bytes(range(i, i + 64))) for i in range(6)]  # worked out from the sources themselves
    assert meta["items_crc32"] == framecache._checksum(header, crcs) == framecache._entry_checksum(entry)
    # an entry that grew (bytes appended past its last item) is no whole stack: rebuilt, never read
    time.sleep(0.05)
    with open(entry, "ab") as f:
        f.write(b"\0" * 64)
    assert framecache._entry_checksum(entry) is None
    _new_process(monkeypatch)
    assert np.array_equal(_stack(files), good)
    (rebuilt,) = fresh.joinpath("cache").glob("*.npy")
    assert rebuilt.stat().st_size == offset + good.nbytes
    # a sidecar without the checksum (an entry of an older bgbench, never verified): rebuilt
    del meta["items_crc32"]
    framecache._meta_path(rebuilt).write_text(json.dumps(meta))
    _new_process(monkeypatch)
    built = []
    real_build = framecache._build
    monkeypatch.setattr(framecache, "_build", lambda *a: built.append(1) or real_build(*a))
    assert np.array_equal(_stack(files), good) and built == [1]
