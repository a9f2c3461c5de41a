"""Content hashes of files: what every byte a result depends on is, independent of its name.

- ``file_digest(path)``: BLAKE2b (16-byte digest) of the file's whole bytes. Memoised per
  process by the file's (device, inode, size, mtime_ns, ctime_ns): an edit changes
  size or mtime, and even an edit that restores both changes ctime, which cannot be set
  back. A symlink and its target are one file (one digest, hashed once). File times tick
  coarsely (a few ms), so two writes of the same size within one tick leave the same stat:
  as git does with "racily clean" files, a digest is kept only for a file whose last change
  is older than ``RACY_NS`` when it was hashed; a younger file is hashed again each time.
- ``digests(paths)``: many files at once, on a few threads (hashlib releases the GIL on
  large buffers); all of ../shared/data (12,900 files, 188 MB) takes well under a second.
- ``tree_digest(paths)``: one hash over several files' digests, in the given order.
- ``path_digest(path)``: a file's digest, or for a folder one over every file below it
  (relative names and digests, sorted), so a replaced file inside the folder changes it.

The memo also lives on disk, in the frame cache's folder (``$BGBENCH_CACHE/digests/``, one
file per source folder), by the same stat key and under the same rule (settled files only), as
git keeps stat data in its index: a new process (a later run, `bgbench score`, a job's worker)
takes a digest from it only for a file whose (device, inode, size, mtime_ns, ctime_ns) is what
it was when hashed, so it reads the bytes again after any change, and a damaged or missing
memo file only costs the hashing. ``clear_memo`` forgets both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from bgbench import safefs

_memo: dict[tuple, str] = {}
_loaded: set[str] = set()  # folders whose memo file this process has read
_guard = threading.Lock()
_noting = 0  # open ``noting_reads`` blocks
_noted: dict[tuple, tuple[str, str]] = {}  # digests they memoised: stat key -> (path, digest), for the disk memo
_CHUNK = 1 << 22
RACY_NS = 2_000_000_000
_WORKERS = 4


def _stat_key(path: str | os.PathLike) -> tuple[str, tuple]:
    st = os.stat(path)  # follows links: a link and its target are one file (device, inode)
    return os.fspath(path), (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _hash_file(real: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(real, "rb", buffering=0) as f:
        while True:
            block = f.read(_CHUNK)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def _settled(key: tuple, now_ns: int) -> bool:
    """Its last change (mtime or ctime) older than RACY_NS: a later edit must change the stat."""
    return now_ns - max(key[3], key[4]) > RACY_NS


def _store() -> Path:
    from bgbench.data.framecache import cache_root

    return cache_root() / "digests"


def _memo_file(folder: str) -> Path:
    return _store() / (hashlib.blake2b(folder.encode(), digest_size=10).hexdigest() + ".json")


def _read_memo(folder: str) -> list[list]:
    try:
        d = json.loads(_memo_file(folder).read_text())
    except (OSError, ValueError):
        return []
    rows = d.get("files") if isinstance(d, dict) and d.get("folder") == folder else None
    return [r for r in rows if isinstance(r, list) and len(r) == 6] if isinstance(rows, list) else []


def _load(folders: Iterable[str]) -> None:
    """The disk memo of these folders into ``_memo`` (once per folder and process)."""
    for folder in set(folders) - _loaded:
        rows = _read_memo(folder)
        with _guard:
            _loaded.add(folder)
            for *key, digest in rows:
                _memo.setdefault(tuple(key), digest)


def _save(fresh: dict[tuple, tuple[str, str]]) -> None:
    """Settled digests just computed (key -> (path, digest)) added to their folders' memo
    files, merged with what another process may have written meanwhile; atomic replace; a
    cache folder that cannot be written only loses the memo."""
    by_folder: dict[str, dict[tuple, str]] = {}
    for key, (path, digest) in fresh.items():
        by_folder.setdefault(os.path.dirname(os.path.abspath(path)), {})[key] = digest
    from bgbench.data.framecache import WRITTEN_BY

    for folder, new in by_folder.items():
        changed = {k[:2] for k in new}  # (device, inode) hashed again: their older rows are stale
        rows = {key: r[5] for r in _read_memo(folder) if (key := tuple(r[:5]))[:2] not in changed}
        rows.update(new)
        target = _memo_file(folder)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"written_by": WRITTEN_BY, "folder": folder,
                                       "files": [[*k, d] for k, d in rows.items()]}))
            os.replace(tmp, target)
        except OSError:
            tmp.unlink(missing_ok=True)


def file_digest(path: str | os.PathLike) -> str:
    """BLAKE2b-128 of the file's bytes (hex), memoised while the file's stat is unchanged."""
    return digests([path])[0]


def digests(paths: Sequence[str | os.PathLike]) -> list[str]:
    """``file_digest`` of every path, in order; files not seen before are hashed on threads."""
    keys = [_stat_key(p) for p in paths]
    if any(key not in _memo for _, key in keys):
        _load(os.path.dirname(os.path.abspath(real)) for real, key in keys if key not in _memo)
    first: dict[tuple, str] = {}
    for real, key in keys:
        if key not in _memo:
            first.setdefault(key, real)
    todo = list(first.values())
    now = time.time_ns()
    if len(todo) > 8:
        with ThreadPoolExecutor(max_workers=min(_WORKERS, os.cpu_count() or 1)) as pool:
            done = dict(zip(todo, pool.map(_hash_file, todo)))
    else:
        done = {real: _hash_file(real) for real in todo}
    fresh = {key: done[real] for key, real in first.items()}
    settled = {key: d for key, d in fresh.items() if _settled(key, now)}
    with _guard:
        _memo.update(settled)
    if settled:
        _save({key: (first[key], d) for key, d in settled.items()})
    return [fresh[key] if key in fresh else _memo[key] for _, key in keys]


def tree_digest(paths: Iterable[str | os.PathLike], *extra: object) -> str:
    """One BLAKE2b-128 over the files' content digests in the given order (names left out:
    the same bytes reached by another spelling give the same value) and ``extra``'s repr."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(extra).encode())
    for d in digests(list(paths)):
        h.update(bytes.fromhex(d))
    return h.hexdigest()


def path_digest(path: str | os.PathLike) -> str:
    """A file's digest; for a folder, a digest of (relative name, digest) of every file
    below it, sorted by name (so adding, removing, renaming or changing a file changes it)."""
    p = Path(path)
    if not p.is_dir():
        return file_digest(p)
    files = sorted(f for f in p.rglob("*") if f.is_file())
    h = hashlib.blake2b(digest_size=16)
    for f, d in zip(files, digests(files)):
        h.update(f"{f.relative_to(p).as_posix()}\0{d}\n".encode())
    return "dir:" + h.hexdigest()


@contextlib.contextmanager
def noting_reads() -> Iterator[None]:
    """Inside the block, every file ``safefs.read_bytes`` reads whole (any thread) is also
    hashed from the bytes read, and its digest memoised under the stat ``fstat`` gave before
    the read, by the rules ``digests`` keeps (a settled file only; none if the bytes are
    not the size that stat said): a decoder that reads each file once (the frame cache's
    build) leaves ``digests`` nothing to read again. On the way out the new digests join
    the disk memo. Blocks may nest and overlap across threads."""
    global _noting
    with _guard:
        _noting += 1
        safefs.on_read = _note
    try:
        yield
    finally:
        with _guard:
            _noting -= 1
            if not _noting:
                safefs.on_read = None
            fresh = dict(_noted) if not _noting else {}
            if not _noting:
                _noted.clear()
        if fresh:
            _save(fresh)


def _note(path: str | os.PathLike, st: os.stat_result, data: bytes, now_ns: int) -> None:
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if len(data) != st.st_size or key in _memo or not _settled(key, now_ns):
        return
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    with _guard:
        _memo[key] = digest
        _noted[key] = (os.fspath(path), digest)


def clear_memo() -> None:
    """Forget the memoised digests, in this process and on disk (tests; a long-lived process
    that wants every file read again)."""
    with _guard:
        _memo.clear()
        _loaded.clear()
    store = _store()
    for f in store.glob("*.json") if store.is_dir() else ():
        f.unlink(missing_ok=True)
