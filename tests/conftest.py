"""Shared fixtures. Real data is reached at $BGBENCH_DATA, else ../shared/data from the project root.

Tests that read it carry the ``needs_data`` marker (``@needs_data`` or ``pytestmark = needs_data``):
they are skipped, saying why, where the folder is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BGBENCH_DATA") or ROOT.parent / "shared" / "data").resolve()
CDNET = DATA / "CDnet2014"
HIGHWAY = CDNET / "baseline" / "highway"
TRAFFIC = CDNET / "cameraJitter" / "traffic"

needs_data = pytest.mark.needs_data


def pytest_collection_modifyitems(config, items):
    if DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"no real data at {DATA} (set BGBENCH_DATA or provide ../shared/data)")
    for item in items:
        if item.get_closest_marker("needs_data"):
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Tests decode into their own cache, never the user's."""
    os.environ["BGBENCH_CACHE"] = str(tmp_path_factory.mktemp("bgbench-cache"))
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["BGBENCH_TRACKING"] = "0"  # MLflow only where a test asks for it (--tracking-uri)
    yield


@pytest.fixture(scope="session")
def highway():
    from bgbench.data.formats import discover

    (v,) = discover(HIGHWAY)
    return v


def copy_scene(src: Path, dst: Path, frames: range, gt: bool = True) -> Path:
    """A small CDnet-layout copy of a real scene (frames ``frames``) to break on purpose."""
    (dst / "input").mkdir(parents=True)
    (dst / "groundtruth").mkdir()
    for i in frames:
        shutil.copy(src / "input" / f"in{i:06d}.jpg", dst / "input")
        if gt:
            shutil.copy(src / "groundtruth" / f"gt{i:06d}.png", dst / "groundtruth")
    shutil.copy(src / "ROI.bmp", dst)
    (dst / "temporalROI.txt").write_text(f"{frames.start} {frames.stop - 1}\n")
    return dst


def reference_counts(pred: np.ndarray, gt: np.ndarray, roi: np.ndarray) -> dict[str, int]:
    """A straightforward comparator: boolean masks per frame, as the official C++ code does."""
    out = dict.fromkeys(("tp", "fp", "tn", "fn", "shadow_errors", "shadow_pixels"), 0)
    for p, g in zip(pred, gt):
        valid = roi & (g != 85) & (g != 170)
        pos, neg = valid & (g == 255), valid & ((g == 0) | (g == 50))
        shadow = valid & (g == 50)
        out["tp"] += int(np.sum(p & pos))
        out["fn"] += int(np.sum(~p & pos))
        out["fp"] += int(np.sum(p & neg))
        out["tn"] += int(np.sum(~p & neg))
        out["shadow_errors"] += int(np.sum(p & shadow))
        out["shadow_pixels"] += int(np.sum(shadow))
    return out


def cli_error(capsys, *argv) -> str:
    """Run the CLI in-process; assert exit 2 with one stderr line; return that line."""
    from bgbench.cli import main

    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("bgbench: error: ")
    return err
