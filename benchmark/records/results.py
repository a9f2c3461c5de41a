"""The results record on disk: one typed, versioned JSON document per run.

``{"schema_version", "meta", "jobs": [...], "summary"}``, as ``bgbench.records.types.Results``
writes and reads it (the schema and its checks live there). Reports and trackers only read
it, through ``load_results``. Writes are atomic (temporary file, rename).
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from bgbench.errors import BadInput
from bgbench.records.types import SCHEMA_VERSION, Results  # noqa: F401 - the schema is records'


def clean(obj: Any) -> Any:
    """NaN/inf become null: strict JSON that any reader accepts."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def write_json(path: Path, data: Any) -> None:
    """Atomic: a temporary file renamed over ``path``; on any failure it is removed, and a
    full disk raises ``bgbench.safefs.DiskFull`` naming the folder."""
    from bgbench.safefs import atomic_write, disk_full, is_disk_full

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if is_disk_full(e):
            raise disk_full(path.parent, path.name) from None
        raise
    text = json.dumps(clean(data), indent=1, allow_nan=False)  # a bad value fails before the file is touched
    with atomic_write(path, path.name) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def read_json(path: Path, missing_fix: str = "give a run folder made by 'bgbench run' or a results.json") -> Any:
    from bgbench.safefs import read_text

    try:
        return json.loads(read_text(path))  # a FIFO or device: BadInput naming it, never a hang
    except FileNotFoundError:
        raise BadInput("does not exist", path, missing_fix) from None
    except IsADirectoryError:
        raise BadInput("is a folder, not a JSON file", path, missing_fix) from None
    except OSError as e:
        raise BadInput(f"cannot be read ({e.strerror or e})", path, "check the file's permissions, or restore it") from None
    except UnicodeDecodeError:
        raise BadInput("is not valid JSON (not UTF-8 text)", path, "re-run or restore the file") from None
    except json.JSONDecodeError as e:
        raise BadInput(f"is not valid JSON ({e.msg}, line {e.lineno})", path, "re-run or restore the file") from None


def load_results(path: str | Path) -> Results:
    """A run's typed results from its folder or a results.json path. A missing, unreadable
    or malformed file, an older schema, a missing or mistyped field: BadInput naming the
    file (and the field)."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    return Results.from_json(read_json(p), p)


def git_hash() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str | None]:
    from importlib import metadata

    from bgbench import __version__

    out: dict[str, str | None] = {"bgbench": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "opencv-contrib-python-headless", "torch", "joblib", "mlflow", "bgslibrary"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "argv": sys.argv[1:]}


