"""Folders a command writes to, checked before any work starts."""

from __future__ import annotations

import os
from pathlib import Path

from bgbench.errors import BadInput


def writable_dir(path: Path | str, option: str, fix: str | None = None) -> Path:
    """Make sure ``path`` is a folder this process can write to (created if missing): a probe
    file is created and removed, so an unwritable folder is refused before any work."""
    fix = fix or f"give {option} a folder you can write to (it is created if missing)"
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BadInput(f"is a file, not a folder ({option})", path, fix)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".bgbench-write-probe.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise BadInput(f"cannot be written ({option}: {e.strerror or e})", path, fix) from None
    return path


def check_cache_writable() -> None:
    """The decoded-frame cache must be writable before frames are decoded into it."""
    from bgbench.data.framecache import cache_root

    writable_dir(cache_root(), "$BGBENCH_CACHE", "set $BGBENCH_CACHE to a folder you can write to")
