"""Checkpoints: torch files that carry the producing config's fingerprint.

Loaded with ``weights_only=True`` (tensors, numbers, strings, lists and dicts only), and a
checkpoint made by another config is refused with a message instead of loaded silently.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import __version__
from .errors import BadInput


def save(path: Path, payload: dict[str, Any], fingerprint: str) -> None:
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"fingerprint": fingerprint, "bgbench": __version__, **payload}, tmp)
    os.replace(tmp, path)


def load(path: Path, expect: str | None = None) -> dict[str, Any]:
    import torch

    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise BadInput(f"cannot be read as a bgbench checkpoint ({type(e).__name__}: {e})", path,
                       "delete it to train again") from None
    if expect is not None and data.get("fingerprint") != expect:
        raise BadInput("was made by another config, protocol or split than this run's", path,
                       "delete it to train again, or run with the options that made it")
    return data
