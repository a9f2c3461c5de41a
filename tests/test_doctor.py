"""``bgbench doctor`` runs the GPU checks; here on the CPU at smoke sizes, from a source tree
laid out by .ci/srcview with MLflow and Dask hidden (as on the GPU machine, which has neither)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from conftest import CDNET, ROOT, needs_data

OFFICE = CDNET / "baseline" / "office"


@pytest.mark.slow
@needs_data
def test_doctor_from_the_source_tree_without_mlflow_or_dask(tmp_path):
    view = tmp_path / "src"
    subprocess.run(["bash", str(ROOT / ".ci" / "srcview"), str(view)], check=True, capture_output=True)
    for name in ("mlflow", "dask"):
        (tmp_path / "hide" / name).mkdir(parents=True)
        (tmp_path / "hide" / name / "__init__.py").write_text(f"raise ImportError('{name} is hidden')\n")
    out = tmp_path / "doc"
    env = {"PYTHONPATH": f"{tmp_path / 'hide'}:{view}", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-P", "-m", "bgbench.cli", "doctor", "--scene", str(OFFICE), "--config", "smoke",
                          "--device", "cpu", "--methods", "bmn_bsn,gmm_sg", "--steps", "3", "--warmup-steps", "1",
                          "--videos", "2", "--gmm-frames", "12", "--out", str(out)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    rep = json.loads((out / "doctor.json").read_text())
    assert [c["check"] for c in rep["checks"]] == ["environment", "deep:bmn_bsn", "gmm_sg"]
    assert all(c["status"] == "ok" for c in rep["checks"]) and rep["ok"]
    deep = rep["checks"][1]["result"]
    assert deep["method"] == "bmn_bsn" and deep["infer_fps_batch1"] > 0 and deep["stages"]
    assert all(s["timed_steps"] == 2 for s in deep["stages"].values())  # 3 steps, 1 of them untimed
    g = rep["checks"][2]["result"]
    assert g["bit_identical_to_numpy"] is True and g["videos"] == 2 and g["frames"] == 12
    assert "| deep:bmn_bsn | ok |" in (out / "doctor.md").read_text()


@pytest.mark.slow
@needs_data
def test_a_check_past_the_budget_is_stopped_and_said(tmp_path, monkeypatch):
    from bgbench.timing import doctor

    def slow(*a, **k):
        time.sleep(30)
        return {}

    monkeypatch.setattr(doctor, "deep_check", slow)
    t0 = time.monotonic()
    rep = doctor.run_doctor(OFFICE, tmp_path, methods=["crossnet", "bmn_bsn"], config="smoke", device="cpu",
                            steps=3, warmup=1, budget=5.0, echo=lambda s: None)
    assert time.monotonic() - t0 < 20
    status = {c["check"]: c["status"] for c in rep["checks"]}
    assert status == {"environment": "ok", "deep:crossnet": "budget", "deep:bmn_bsn": "budget"}
    assert rep["ok"] is False
    assert json.loads((tmp_path / "doctor.json").read_text())["checks"][1]["error"].startswith("stopped after")
