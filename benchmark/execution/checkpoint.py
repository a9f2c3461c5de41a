"""Checkpoints: torch files that carry the producing config's fingerprint.

Loaded with ``weights_only=True`` (tensors, numbers, strings, lists and dicts only), and a
checkpoint made by another config is refused with a message instead of loaded silently.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bgbench import __version__
from bgbench.errors import BadInput


def save(path: Path, payload: dict[str, Any], fingerprint: str) -> None:
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"fingerprint": fingerprint, "bgbench": __version__, **payload}, tmp)
    os.replace(tmp, path)


def _unreadable(path: Path, why: str) -> BadInput:
    why = " ".join(why.split())  # one line, whatever the reader's message
    return BadInput(f"is truncated or corrupt: not a readable bgbench checkpoint ({why[:300]})", path,
                    f"delete it (rm '{path}') to train again")


def check(path: Path) -> None:
    """Cheap structural check, without loading tensors: a checkpoint is a whole zip archive
    (torch.save's format); a truncated or corrupt one raises the BadInput of ``load``."""
    import zipfile

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile, ValueError) as e:
        raise _unreadable(path, f"{type(e).__name__}: {e}") from None
    if not any(n.endswith("data.pkl") for n in names):
        raise _unreadable(path, "no data.pkl in the archive")


def load(path: Path, expect: str | None = None) -> dict[str, Any]:
    import torch

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
