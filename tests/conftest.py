"""Shared fixtures. Real data is reached at $BGBENCH_DATA, else ../shared/data from the project root.

Tests that read it carry the ``needs_data`` marker (``@needs_data`` or ``pytestmark = needs_data``):
they are skipped, saying why, where the folder is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bgbench.scoring.reference import reference_counts  # noqa: F401  (the one reference comparator, for tests)

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


def cli_error(capsys, *argv) -> str:
    """Run the CLI in-process; assert exit 2 with one stderr line; return that line."""
    from bgbench.cli import main

    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("bgbench: error: ")
    return err


@pytest.fixture
def fork_workers(monkeypatch):
    """Job workers forked from this process (a run's own are started by a fork server): for
    tests that inject a fault into this process (a monkeypatched method or writer) that its
    jobs must see. Forks happen with OpenCV's pool stopped; keep torch work out of such tests."""
    from bgbench.execution import isolated

    monkeypatch.setattr(isolated, "start_method", lambda device="cpu": "fork")
