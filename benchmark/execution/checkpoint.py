"""Checkpoints: torch files that carry the producing config's fingerprint.

Loaded with ``weights_only=True`` (tensors, numbers, strings, lists and dicts only), and a
checkpoint made by another config is refused with a message instead of loaded silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bgbench import __version__
from bgbench.errors import BadInput


def save(path: Path, payload: dict[str, Any], fingerprint: str) -> None:
    import torch

    from bgbench.safefs import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "a checkpoint") as tmp:  # a full disk: DiskFull naming the folder, no temporary file left
        torch.save({"fingerprint": fingerprint, "bgbench": __version__, **payload}, tmp)


def _unreadable(path: Path, why: str) -> BadInput:
    why = " ".join(why.split())  # one line, whatever the reader's message
    return BadInput(f"is truncated or corrupt: not a readable bgbench checkpoint ({why[:300]})", path,
                    f"delete it (rm '{path}') to train again")


def check(path: Path) -> None:
    """Cheap structural check, without loading tensors: a checkpoint is a whole zip archive
    (torch.save's format); a truncated or corrupt one raises the BadInput of ``load``."""
    import zipfile

    from bgbench.safefs import regular_file

    path = Path(path)
    regular_file(path, f"delete it (rm '{path}') to train again")  # a FIFO would block the zip reader
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile, ValueError) as e:
        raise _unreadable(path, f"{type(e).__name__}: {e}") from None
    if not any(n.endswith("data.pkl") for n in names):
        raise _unreadable(path, "no data.pkl in the archive")


def load(path: Path, expect: str | None = None) -> dict[str, Any]:
    import torch

    from bgbench.safefs import regular_file

    regular_file(path, f"delete it (rm '{path}') to train again")
    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise _unreadable(Path(path), f"{type(e).__name__}: {e}") from None
    if not isinstance(data, dict):
        raise _unreadable(Path(path), f"holds a {type(data).__name__}, not a dict")
    if expect is not None and data.get("fingerprint") != expect:
        raise BadInput("was made by another config, protocol or split than this run's", path,
                       "delete it to train again, or run with the options that made it")
    return data


_weights_ok: dict[tuple, None] = {}  # (path, size, mtime) of weights files that loaded: checked once per process


def check_weights(path: str | Path, where: str) -> None:
    """Before any job: ``path`` loads with ``torch.load(weights_only=True)`` into a dict (memory-
    mapped where torch can, so a large file costs little). A truncated, foreign or unsafe file
    raises BadInput naming it (exit 2), instead of failing every job that would load it."""
    from bgbench.safefs import regular_file

    path = Path(path)
    regular_file(path, f"{where}: give a regular local file")
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _weights_ok:
        return
    fix = f"{where}: give a torch state dict saved with torch.save(model.state_dict(), FILE)"
    try:
        import torch
    except ImportError:  # the method that takes it is unavailable, and says so itself
        return
    try:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            data = torch.load(path, map_location="cpu", weights_only=True)  # the legacy (non-zip) format
    except Exception as e:  # noqa: BLE001 - any unloadable file: one message
        why = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        raise BadInput(f"cannot be loaded as torch weights with weights_only=True ({why})", path, fix) from None
    if not isinstance(data, dict):
        raise BadInput(f"holds a {type(data).__name__}, not a state dict", path, fix)
    _weights_ok[key] = None
