"""Decoded-frame cache: one uint8 ``.npy`` memmap per video, kind and size.

The key hashes every source file's name, size and modification time, so a changed source
builds a new cache instead of serving stale pixels. Files are written under a temporary
name and renamed, so a killed run never leaves a half-written cache behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

CACHE_VERSION = 1
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def cache_root() -> Path:
    root = os.environ.get("BGBENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "bgbench"


def source_key(files: Sequence[Path], *extra: object) -> str:
    h = hashlib.sha1(f"v{CACHE_VERSION}|{extra!r}".encode())
    for f in files:
        st = os.stat(f)
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


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
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    path = root / f"{safe}-{source_key(files, shape, *extra)}.npy"
    with _lock(path):  # threads of one process build a cache once; processes race harmlessly
        if path.exists():
            arr = np.load(path, mmap_mode="r")
            if arr.shape == (len(files), *shape):
                return arr
        return _build(path, files, decode, shape)


def _build(path: Path, files: Sequence[Path], decode: Callable[[Path], np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(files), *shape))
    try:
        def fill(i: int) -> None:
            out[i] = decode(files[i])

        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(fill, range(len(files))))
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return np.load(path, mmap_mode="r")
