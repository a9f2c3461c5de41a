"""The installed wheel is one name, ``bgbench``: a user's own ``benchmark/``, ``methods/`` and
``reports/`` packages in the working folder (common in paper repositories) cannot stand in for
bgbench's, in the run itself or in its report worker."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import CDNET, ROOT, needs_data

FOREIGN = 'raise ImportError("the user\'s own {name} package was imported instead of bgbench\'s")\n'


@pytest.mark.slow
@needs_data
def test_wheel_runs_a_deep_smoke_config_beside_foreign_packages(tmp_path):
    src = tmp_path / "src"  # built from a copy: setuptools writes build/ beside the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "benchmark", "baselines", "methods", "reports"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if (ROOT / name).is_dir() else {}))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("bgbench-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # the dependencies (torch, OpenCV, ...) come from this environment; bgbench from the wheel alone
    # (a path line in a .pth file adds the folder without running the editable install's finder)
    Path(site, "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    work = tmp_path / "paper-repo"
    for name in ("benchmark", "methods", "reports", "baselines"):
        (work / name).mkdir(parents=True)
        (work / name / "__init__.py").write_text(FOREIGN.format(name=name))
    out = work / "runs"
    clip = CDNET / "baseline" / "office"
    run = subprocess.run([str(venv / "bin" / "bgbench"), "run", "--methods", "cdn_medal", "--config", "smoke",
                          "--protocol", "scene-specific", "--data", str(clip), "--out", str(out), "--no-tracking"],
                         cwd=work, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    where = subprocess.run([str(py), "-c", "import bgbench, bgbench.methods.cdn_medal as m; print(bgbench.__file__);"
                            "print(m.__file__)"], cwd=work, capture_output=True, text=True, check=True).stdout
    assert all(str(site) in line for line in where.split()), where  # the wheel's copy, not the source tree
    res = json.loads((out / "results.json").read_text())
    (job,) = res["jobs"]
    assert job["status"] == "ok" and job["method"] == "cdn_medal" and job["config"] == "smoke"
    assert (out / "report" / "leaderboard.html").is_file()
