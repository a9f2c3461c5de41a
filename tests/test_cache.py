"""The decoded-frame cache: sidecars, `bgbench cache info|clear`, and the size cap that
evicts least recently used entries."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from bgbench.data import framecache
from bgbench.cli import main


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """A cache of its own (never the session's, which `clear` would empty), no cap."""
    root = tmp_path / "cache"
    monkeypatch.setenv("BGBENCH_CACHE", str(root))
    monkeypatch.delenv(framecache.MAX_GB_ENV, raising=False)
    monkeypatch.setattr(framecache, "_open", set())
    return root


def _sources(folder: Path, n: int, size: int = 1000) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        f = folder / f"in{i:06d}.jpg"
        f.write_bytes(bytes(size))
        files.append(f)
    return files


def _stack(name: str, files: list[Path], shape=(10, 20)) -> np.ndarray:
    return framecache.cached_stack(name, files, lambda f: np.full(shape, int(f.stem[2:]) % 256, np.uint8), shape)


def test_entries_carry_their_source_size(cache, tmp_path):
    files = _sources(tmp_path / "a", 3, size=50)
    arr = _stack("DS/cat/a-bgr", files)
    assert arr.shape == (3, 10, 20) and arr[2].max() == 2
    (e,) = framecache.entries()
    assert (e.name, e.kind, e.frames, e.shape, e.source_bytes) == ("DS/cat/a-bgr", "stack", 3, (10, 20), 150)
    assert e.bytes >= 600  # 3 x 10 x 20 pixels, plus the .npy header and the sidecar
    assert np.array_equal(_stack("DS/cat/a-bgr", files), arr)  # opened again, not rebuilt
    assert len(framecache.entries()) == 1


def test_cache_info_and_clear_commands(cache, tmp_path, capsys):
    _stack("DS/cat/a-bgr", _sources(tmp_path / "a", 2, size=40))
    _stack("DS/cat/a-gt", _sources(tmp_path / "b", 2, size=40), shape=(10, 20))
    assert main(["cache", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["root"] == str(cache) and info["max_bytes"] is None
    assert [e["name"] for e in info["entries"]] == ["DS/cat/a-bgr", "DS/cat/a-gt"]
    assert info["x_source"] == pytest.approx(sum(e["bytes"] for e in info["entries"]) / 160)
    assert main(["cache", "info"]) == 0
    text = capsys.readouterr().out
    assert str(cache) in text and "DS/cat/a-gt" in text and "20x10" in text and "total: 2 entries" in text
    assert main(["cache", "clear"]) == 0
    assert "2 entries deleted" in capsys.readouterr().out
    assert framecache.entries() == [] and not list(cache.glob("*.json"))


def test_size_cap_evicts_least_recently_used(cache, tmp_path, monkeypatch):
    a, b, c = (_sources(tmp_path / x, 4) for x in "abc")
    _stack("v/a-bgr", a, shape=(100, 100))  # each entry about 40 kB
    _stack("v/b-bgr", b, shape=(100, 100))
    first, second = sorted(framecache.entries(), key=lambda e: e.name)
    os.utime(framecache._meta_path(first.path), (1, 1_000_000))  # a used long ago, b recently (use: the sidecar)
    os.utime(framecache._meta_path(second.path), (1, 2_000_000))
    framecache._open.clear()  # as if another process had built them
    monkeypatch.setenv(framecache.MAX_GB_ENV, "0.0001")  # 100 kB: room for two entries
    _stack("v/c-bgr", c, shape=(100, 100))
    assert sorted(e.name for e in framecache.entries()) == ["v/b-bgr", "v/c-bgr"]
    # an entry this process has open is never evicted, even over the cap
    monkeypatch.setenv(framecache.MAX_GB_ENV, "0")
    _stack("v/a-bgr", a, shape=(100, 100))
    assert sorted(e.name for e in framecache.entries()) == ["v/a-bgr", "v/c-bgr"]


def test_opening_marks_an_entry_used(cache, tmp_path):
    files = _sources(tmp_path / "a", 2)
    _stack("v/a-bgr", files)
    (e,) = framecache.entries()
    os.utime(framecache._meta_path(e.path), (1, 1_000_000))
    _stack("v/a-bgr", files)
    assert framecache.entries()[0].last_used > 1_000_000


def test_bad_cap_is_refused(cache, monkeypatch, capsys):
    monkeypatch.setenv(framecache.MAX_GB_ENV, "lots")
    assert main(["cache", "info"]) == 2
    assert framecache.MAX_GB_ENV in capsys.readouterr().err


def test_clear_leaves_a_build_in_progress(cache, tmp_path):
    _stack("v/a-bgr", _sources(tmp_path / "a", 2))
    young = cache / "v_b-bgr-0123456789abcdef0123.npy.123.abcd.tmp"
    young.write_bytes(b"x")
    old = cache / "v_c-bgr-0123456789abcdef0123.npy.123.abcd.tmp"
    old.write_bytes(b"x")
    os.utime(old, (1, 1))
    n, freed, left = framecache.clear()
    assert n == 1 and freed > 0
    assert young.exists() and not old.exists()
    assert left == [young]


def test_a_new_entry_reaches_the_disk_before_it_is_recorded_whole(cache, tmp_path, monkeypatch):
    """A stack is written with pwrite (every item at its place, read back exactly) and synced
    to disk on a thread, not on the build's path; the check that records an entry ``verified``
    (no more hashing) syncs the entry itself first, whoever built it."""
    import threading
    import time

    files = _sources(tmp_path / "s", 5)
    release = threading.Event()
    synced: list[str] = []
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        release.wait(10)
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else "?")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    arr = _stack("DS/cat/s-bgr", files, shape=(3, 4, 2))
    assert [int(arr[i].max()) for i in range(5)] == [0, 1, 2, 3, 4] and arr.shape == (5, 3, 4, 2)
    (entry,) = [p for p in cache.glob("*.npy")]
    assert not synced  # the build returned while its sync still waits
    monkeypatch.setattr(framecache, "_verified", {})  # as a later process finds it
    old = time.time_ns() - 5 * 10**9
    os.utime(entry, ns=(old, old))  # (settled, so the check would record it) ...
    monkeypatch.setattr(framecache, "_stat_sig", lambda p: (*tuple(os.stat(p))[1:3], os.stat(p).st_size, old, old))
    waiter = threading.Thread(target=lambda: _stack("DS/cat/s-bgr", files, shape=(3, 4, 2)))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive() and "verified" not in json.loads(entry.with_suffix(".json").read_text())
    release.set()  # ... but only once the entry is on disk
    waiter.join(10)
    framecache.wait_synced()
    assert synced and synced[0].endswith(entry.name)
    assert json.loads(entry.with_suffix(".json").read_text())["verified"]
