"""Decoded-frame cache: one uint8 ``.npy`` memmap per video, kind and size.

The key hashes every source file's resolved path (symlinks followed: a scene reached through
a link and through its target is one entry, whatever name either spelling gives it), size and
modification time, so a changed source builds a new cache instead of serving stale pixels.
Files are written under a temporary name and renamed, so a killed run never leaves a
half-written cache behind.

Verified, not trusted: each entry's sidecar records a checksum of the entry file's bytes
(``items_crc32``: a BLAKE2b hash over its ``.npy`` header and the CRC-32 of each item,
every decoded frame's CRC taken by the thread that decoded it, from the bytes it writes)
and a hash of its source files' bytes (bgbench.data.filehash). The first time a process
opens an entry it checks the entry file and the sources again; an entry whose bytes were
damaged (even at the same size: a CRC-32 per item misses random damage to an item with
odds of 2**-32, and any burst of up to 32 bits), whose sources changed under the same size
and time, or whose sidecar is missing is rebuilt, never read. (Hashing the entry whole
with BLAKE2b after the build, and the sources by reading them again, made highway's build
0.73-0.85 s of wall time against 0.42-0.59 s now: ``python -m tests.perf.run_costs``.)

Resized copies of a video are cached only at sizes no larger than its native frames
(``FrameSource.caches_resized``); larger sizes are resized per call from the native entry.

What it costs: decoded pixels take 13-19x the disk space of the JPEG/PNG files they come
from (``bgbench cache info`` shows the ratio per entry). ``$BGBENCH_CACHE_MAX_GB`` caps the
total: after each new entry, the least recently used entries are deleted until the cache
fits (never one this process has open; a deleted entry is simply decoded again when next
needed). Every entry has a ``.json`` sidecar (its name, shape, frame count and source
bytes, and ``written_by: bgbench``, the entry's ownership marker); opening an entry marks it
used (its modification time).

``$BGBENCH_CACHE`` may point at a folder that holds other files too: ``clear`` and eviction
delete only what bgbench wrote (a stack with its marked sidecar, a generated dataset folder
with its ``.bgbench-synthetic`` marker, bgbench's own temporary files) and ``clear`` says
what it left. A stack is written with ordinary writes into space reserved up front
(``posix_fallocate``), so a full disk is an OSError (``DiskFull``, exit 2 naming the
folder, the temporary file removed), never a SIGBUS in a memory-mapped write.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import stat
import threading
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, cast

import numpy as np

from bgbench.data.filehash import noting_reads
from bgbench.data.imageio import decode_workers
from bgbench.execution.scoped import opencv_threads

CACHE_VERSION = 2  # 2: keyed by resolved paths, verified by content hash; EXIF orientation ignored, Wallflower colour masks by luma
MAX_GB_ENV = "BGBENCH_CACHE_MAX_GB"
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()
_open: set[Path] = set()  # entries this process has mapped: never evicted under it
_KEY = re.compile(r"^(?P<name>.+)-(?P<key>[0-9a-f]{20})\.npy$")
_STALE_TMP_S = 3600  # `cache clear` leaves younger temporary files: a build may be writing them
_verified: dict[Path, tuple] = {}  # entries this process checked: path -> their _stat_sig then
_OUR_TMP = re.compile(r"^(.+-[0-9a-f]{20}\.npy\.\d+\.[0-9a-f]+(\.json)?\.tmp|synthetic-v\d+-seed\d+\.\d+\.tmp)$")
_SYNTHETIC = re.compile(r"^synthetic-v\d+-seed\d+$")
SYNTHETIC_MARK = ".bgbench-synthetic"  # in a generated dataset folder of the cache
WRITTEN_BY = "bgbench"


def _lock(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def cache_root() -> Path:
    root = os.environ.get("BGBENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "bgbench"


def max_bytes() -> int | None:
    """The size cap from ``$BGBENCH_CACHE_MAX_GB`` (GB = 10**9 bytes), None if unset."""
    raw = os.environ.get(MAX_GB_ENV, "").strip()
    if not raw:
        return None
    try:
        gb = float(raw)
    except ValueError:
        from bgbench.errors import BadInput

        raise BadInput(f"is {raw!r}, not a number of gigabytes", f"${MAX_GB_ENV}", f"e.g. {MAX_GB_ENV}=20") from None
    if not gb >= 0:
        from bgbench.errors import BadInput

        raise BadInput(f"is {raw!r}, below zero", f"${MAX_GB_ENV}", f"e.g. {MAX_GB_ENV}=20, or unset it for no cap")
    return int(gb * 1e9)


def _source_stats(files: Sequence[Path], *extra: object) -> tuple[str, int]:
    h = hashlib.sha1(f"v{CACHE_VERSION}|{extra!r}".encode())
    size = 0
    folders: dict[str, str] = {}
    for f in files:
        # a link and its target: one key. realpath walks every component of the path; the
        # folder is resolved once and a file that is no link sits in it as named
        folder, name = os.path.split(os.fspath(f))
        if folder not in folders:
            folders[folder] = os.path.realpath(folder)
        st = os.lstat(f)
        if stat.S_ISLNK(st.st_mode):
            real = os.path.realpath(f)
            st = os.stat(real)
        else:
            real = os.path.join(folders[folder], name)
        size += st.st_size
        h.update(f"{real}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20], size


def _checksum(header: bytes, crcs: Sequence[int]) -> str:
    """The sidecar's ``items_crc32``: BLAKE2b-128 over the ``.npy`` header and the items' CRC-32s."""
    h = hashlib.blake2b(header, digest_size=16)
    h.update(np.asarray(crcs, "<u4").tobytes())
    return h.hexdigest()


def _entry_checksum(path: Path) -> str | None:
    """``_checksum`` of an entry file as it is on disk (each item's CRC on a thread: zlib
    releases the GIL), or None where it is no whole ``.npy`` stack (cut short or grown)."""
    arr = np.load(path, mmap_mode="r")
    offset = int(arr.offset)
    if os.path.getsize(path) != offset + arr.nbytes or arr.ndim < 1:
        return None
    with open(path, "rb", buffering=0) as f:
        header = f.read(offset)
    flat = arr.reshape(len(arr), -1)

    def crcs_from(lo: int) -> list[int]:
        return [zlib.crc32(flat[i]) for i in range(lo, min(lo + 64, len(flat)))]

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        crcs = [c for part in pool.map(crcs_from, range(0, len(flat), 64)) for c in part]
    return _checksum(header, crcs)


def _sources_hash(files: Sequence[Path]) -> str:
    from bgbench.data.filehash import tree_digest

    return tree_digest(files)


def _stat_sig(path: Path) -> tuple:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def verified() -> dict[Path, tuple]:
    """The entries this process has verified, with the stat they had then: a job process of
    the run (``bgbench.execution.isolated``) takes them over (``trust``) instead of hashing
    every entry again; an entry changed since (another stat) is verified again."""
    return dict(_verified)


def trust(entries: dict[Path, tuple]) -> None:
    _verified.update(entries)


def _verify(path: Path, files: Sequence[Path]) -> bool:
    """Whether the entry's bytes and its sources are what its sidecar says they were
    written from; checked once per process (again if the file changes meanwhile).

    The entry's bytes are hashed unless its sidecar records (``verified``) that an earlier
    check found them whole while the entry had the stat it has now (device, inode, size,
    mtime_ns, ctime_ns): an entry is never written after it is built (use is marked on the
    sidecar), so any later write changes its ctime, which cannot be set back; the stat is
    recorded only once the entry's last change is older than filehash.RACY_NS, so a write in
    the same clock tick cannot hide either. The sources are hashed through filehash's memo
    (on disk too: stat-keyed the same way)."""
    from bgbench.data.filehash import RACY_NS

    try:
        sig = _stat_sig(path)
        if _verified.get(path) == sig:
            return True
        meta = json.loads(_meta_path(path).read_text())
        if meta.get("sources_blake2b") != _sources_hash(files):
            return False
        if meta.get("verified") != list(sig):
            if meta.get("items_crc32") != _entry_checksum(path):
                return False
            if time.time_ns() - max(sig[3], sig[4]) > RACY_NS:
                _fsync(path)  # recorded whole only once on disk (another process may have built it just now)
                _write_meta(path, {**meta, "verified": list(sig)})
    except (OSError, ValueError):
        return False
    _verified[path] = sig
    return True


def _find(root: Path, safe: str, key: str) -> Path:
    """The entry for ``key``: under this name, or one built under another name from the same
    resolved files (a scene reached through a link named differently)."""
    path = root / f"{safe}-{key}.npy"
    if path.exists():
        return path
    return next(iter(sorted(root.glob(f"*-{key}.npy"))), path)


def cached_stack(
    name: str,
    files: Sequence[Path],
    decode: Callable[[Path], np.ndarray],
    shape: tuple[int, ...],
    *extra: object,
) -> np.ndarray:
    """Return a read-only memmap of ``decode(f)`` for every file, building it once.

    ``shape`` is one decoded item's shape; ``decode`` raises BadInput on bad files.
    """
    from bgbench.safefs import disk_full, is_disk_full

    limit = max_bytes()  # a bad $BGBENCH_CACHE_MAX_GB fails before any work
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if is_disk_full(e):
            raise disk_full(root, "the frame cache") from None
        raise
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    key, source_bytes = _source_stats(files, shape, *extra)
    path = _find(root, safe, key)
    with _lock(path):  # threads of one process build a cache once; processes race harmlessly
        if path.exists():
            try:
                arr = np.load(path, mmap_mode="r")
            except (OSError, ValueError):  # deleted (evicted, cleared) or damaged meanwhile: build again
                arr = None
            if arr is not None and arr.shape == (len(files), *shape) and _verify(path, files):
                _open.add(path)
                _touch(_meta_path(path))  # used: marked on the sidecar, so the entry's stat stays its build's
                return arr
            arr = None  # damaged, or its sources changed in place: built again, never read
        meta = {"name": name, "frames": len(files), "shape": list(shape), "source_bytes": source_bytes}
        try:
            arr = _build(path, files, decode, shape, meta)
        except OSError as e:
            if is_disk_full(e):
                raise disk_full(root, f"the decoded frames of {name}") from None
            raise
        _open.add(path)
        _verified[path] = _stat_sig(path)
    evict(limit)
    return arr


def release(arrays: Sequence[np.ndarray]) -> None:
    """The caller drops these memmaps from ``cached_stack``: their entries may be evicted
    again (a mapping still held elsewhere keeps reading its file, which POSIX keeps until unmapped)."""
    names = {os.path.abspath(cast(Any, a).filename) for a in arrays if getattr(a, "filename", None)}
    for p in [p for p in _open if os.path.abspath(p) in names]:
        _open.discard(p)


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:  # a read-only cache still serves
        pass


_OUR_TMP_DIGESTS = re.compile(r"^[0-9a-f]{20}\.json\.\d+\.[0-9a-f]{8}\.tmp$")


def _ours(path: Path) -> bool:
    """A JSON file bgbench wrote (its ``written_by`` marker)."""
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(d, dict) and d.get("written_by") == WRITTEN_BY


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _write_meta(path: Path, meta: dict) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.json.tmp")
    try:
        tmp.write_text(json.dumps({**meta, "written_by": WRITTEN_BY}))
        os.replace(tmp, _meta_path(path))
    except OSError:
        tmp.unlink(missing_ok=True)


def _build(path: Path, files: Sequence[Path], decode: Callable[[Path], np.ndarray], shape: tuple[int, ...],
           meta: dict) -> np.ndarray:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        header = _allocate(tmp, (len(files), *shape))
        offset = len(header)
        item = int(np.prod(shape, dtype=np.int64))
        crcs = [0] * len(files)
        fd = os.open(tmp, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            def fill(i: int) -> None:
                a = np.asarray(decode(files[i]))
                if a.shape != shape or a.dtype != np.uint8 or not a.flags.c_contiguous:
                    b = np.empty(shape, np.uint8)
                    b[...] = a  # as assigning into the stack would: the same casting and broadcasting
                    a = b
                data = memoryview(a.reshape(-1).data)
                crcs[i] = zlib.crc32(data)  # of the bytes written, while they are in this core's cache
                _write_at(fd, data, offset + i * item)

            # the pool decodes in parallel already: OpenCV on one thread of its own meanwhile,
            # set by this thread and restored after (never a process-wide change at import).
            # Items are written with pwrite, not through a writable memmap: first-touch page
            # faults on a fresh file mapping doubled the build's system time
            # (``python -m tests.perf.run_costs``). The sources' digests are taken from the
            # bytes the decoder reads (``noting_reads``), not by reading every file again.
            with noting_reads(), opencv_threads(1), ThreadPoolExecutor(max_workers=decode_workers()) as pool:
                list(pool.map(fill, range(len(files))))
        finally:
            os.close(fd)
        _write_meta(path, {**meta, "sources_blake2b": _sources_hash(files),  # the sidecar first: an entry
                           "items_crc32": _checksum(header, crcs)})  # never lacks it
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _sync_later(path)
    return np.load(path, mmap_mode="r")


def _write_at(fd: int, data: memoryview, offset: int) -> None:
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n


def _allocate(tmp: Path, shape: tuple[int, ...]) -> bytes:
    """A new ``.npy`` file of uint8 ``shape`` whose data blocks are reserved on disk before it
    is written (``posix_fallocate``; elsewhere zeros written): a disk without room fails here
    with OSError(ENOSPC), never halfway. Returns its header (its data starts after it)."""
    import io

    nbytes = int(np.prod(shape, dtype=np.int64))
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                                                "fortran_order": False, "shape": tuple(shape)})
    header = head.getvalue()
    offset = len(header)
    with open(tmp, "wb") as f:
        f.write(header)
        f.flush()
        if nbytes:
            if hasattr(os, "posix_fallocate"):
                try:
                    os.posix_fallocate(f.fileno(), offset, nbytes)
                except OSError as e:
                    if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                    _zeros(f, nbytes)
            else:
                _zeros(f, nbytes)
    return header


def _zeros(f, nbytes: int, block: int = 1 << 24) -> None:
    chunk = bytes(min(block, nbytes))
    left = nbytes
    while left:
        n = min(left, len(chunk))
        f.write(chunk[:n])
        left -= n
    f.flush()
    os.fsync(f.fileno())


_syncing: list[tuple[Path, threading.Thread]] = []
_sync_guard = threading.Lock()


def _sync_later(path: Path) -> None:
    """The new entry's pages written to disk (fsync) on a thread while the run goes on: a
    synchronous msync cost 0.18 s for highway's frames (``python -m tests.perf.run_costs``),
    more on a slow disk. The thread is not a daemon (the interpreter waits for it on exit; a
    job's worker waits in ``wait_synced``), and ``_verify`` syncs an entry itself before it
    marks it ``verified``, so a power cut can leave an unsynced entry only where its hash is
    still checked."""
    def sync() -> None:
        try:
            _fsync(path)
        except OSError:  # evicted or cleared meanwhile: nothing to keep
            pass

    t = threading.Thread(target=sync, name="bgbench-cache-sync")
    with _sync_guard:
        _syncing.append((path, t))
    t.start()


def wait_synced() -> None:
    """Until the entries this process built are on disk."""
    with _sync_guard:
        pending = list(_syncing)
    for _, t in pending:
        t.join()
    with _sync_guard:
        _syncing[:] = [(p, t) for p, t in _syncing if t.is_alive()]


def _fsync(path: Path) -> None:
    """``path``'s data on disk, whoever wrote it (cheap once the kernel has written it back)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- inspecting and trimming ------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One cache entry: a decoded stack (``kind`` "stack") or a generated dataset folder
    (``kind`` "synthetic"). ``source_bytes`` is None where unknown (entries built before
    sidecars were written, synthetic folders)."""

    path: Path
    name: str
    kind: str
    bytes: int
    last_used: float
    frames: int | None = None
    shape: tuple[int, ...] | None = None
    source_bytes: int | None = None
    owned: bool = True  # bgbench wrote it (its marker is there): only such entries are ever deleted


def _tree_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def entries(root: Path | None = None) -> list[Entry]:
    """Everything in the cache, least recently used first."""
    root = cache_root() if root is None else root
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        try:
            if p.is_dir() and p.name.startswith("synthetic-"):
                owned = (p / SYNTHETIC_MARK).is_file() or (  # or generated before markers: the name and layout
                    bool(_SYNTHETIC.match(p.name)) and [c.name for c in p.iterdir()] == ["synthetic"])
                out.append(Entry(p, p.name, "synthetic", _tree_bytes(p), p.stat().st_mtime, owned=owned))
                continue
            m = _KEY.match(p.name)
            if not (m and p.is_file()):
                continue
            st = p.stat()
            meta: Any = {}
            try:
                meta = json.loads(_meta_path(p).read_text())
            except (OSError, ValueError):
                pass
            if not isinstance(meta, dict):
                meta = {}
            shape = meta.get("shape")
            # a sidecar with bgbench's marker, or (written before markers) with every field bgbench writes
            owned = meta.get("written_by") == WRITTEN_BY or {"name", "frames", "shape", "source_bytes"} <= set(meta)
            used = _mtime(_meta_path(p)) or st.st_mtime  # use is marked on the sidecar (if there is one)
            out.append(Entry(p, meta.get("name", m.group("name")), "stack", st.st_size + _meta_bytes(p), used,
                             meta.get("frames"), tuple(shape) if shape else None, meta.get("source_bytes"), owned))
        except FileNotFoundError:  # removed while we looked
            continue
    return sorted(out, key=lambda e: (e.last_used, e.name))


def _meta_bytes(path: Path) -> int:
    try:
        return _meta_path(path).stat().st_size
    except OSError:
        return 0


def remove(entry: Entry) -> bool:
    """Delete one entry (and its sidecar); False if it was already gone."""
    try:
        if entry.kind == "synthetic":
            shutil.rmtree(entry.path)
        else:
            entry.path.unlink()
            _meta_path(entry.path).unlink(missing_ok=True)
        return True
    except FileNotFoundError:
        return False


def evict(limit: int | None, root: Path | None = None) -> list[Entry]:
    """Delete least recently used stacks until the cache holds at most ``limit`` bytes;
    entries this process has open and generated datasets stay. Returns what was deleted."""
    if limit is None:
        return []
    all_entries = entries(root)
    total = sum(e.bytes for e in all_entries)
    gone = []
    for e in all_entries:
        if total <= limit:
            break
        if e.kind != "stack" or e.path in _open or not e.owned:
            continue
        if remove(e):
            gone.append(e)
        total -= e.bytes
    return gone


def clear(root: Path | None = None) -> tuple[int, int, list[Path]]:
    """Delete every entry bgbench wrote (its marker is there), orphaned sidecars bgbench wrote,
    and bgbench's temporary files older than an hour (younger ones may be a build in
    progress). Nothing else: ``$BGBENCH_CACHE`` may be a folder the user keeps other files
    in. Returns (entries removed, bytes freed, the top-level paths left in the folder)."""
    root = cache_root() if root is None else root
    n = freed = 0
    for e in entries(root):
        if e.owned and remove(e):
            n, freed = n + 1, freed + e.bytes
    if root.is_dir():
        for p in root.iterdir():  # sidecars bgbench wrote whose entry is gone
            if p.suffix == ".json" and _KEY.match(p.with_suffix(".npy").name) and not p.with_suffix(".npy").exists():
                try:
                    meta = json.loads(p.read_text()) if p.is_file() else None
                except (OSError, ValueError):
                    meta = None
                if isinstance(meta, dict) and meta.get("written_by") == WRITTEN_BY:
                    p.unlink(missing_ok=True)
        now = time.time()
        store = root / "digests"  # filehash's stored digests (rebuilt on demand): those bgbench wrote
        if store.is_dir() and not store.is_symlink():
            for f in store.iterdir():
                if f.is_file() and not f.is_symlink() and (_ours(f) if f.name.endswith(".json") else (
                        _OUR_TMP_DIGESTS.match(f.name) is not None and now - f.stat().st_mtime > _STALE_TMP_S)):
                    f.unlink(missing_ok=True)
            if not any(store.iterdir()):
                store.rmdir()
        for p in root.iterdir():
            if not _OUR_TMP.match(p.name):
                continue
            try:
                st = p.lstat()
                if now - st.st_mtime > _STALE_TMP_S:
                    size = _tree_bytes(p) if p.is_dir() else st.st_size
                    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
                    freed += size
            except FileNotFoundError:
                continue
    left = sorted(root.iterdir()) if root.is_dir() else []
    return n, freed, left
