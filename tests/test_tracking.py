"""MLflow tracking against a real SQLite store and a real ``mlflow server`` on loopback,
read back with MLflow's client; an unreachable server loses nothing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from benchmark.cli import main


def _client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _runs(uri):
    c = _client(uri)
    exp = c.get_experiment_by_name("bgbench")
    runs = c.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return c, parents, children


def _check_logged(uri, res):
    c, parents, children = _runs(uri)
    assert len(parents) == 1 and len(children) == 2
    pid = parents[0].info.run_id
    assert all(ch.data.tags["mlflow.parentRunId"] == pid for ch in children)
    gmm = next(ch for ch in children if ch.data.tags["bgbench.method"] == "gmm_zivkovic")
    s = res["summary"]["gmm_zivkovic"]["full"]["datasets"]["synthetic"]
    m = gmm.data.metrics
    assert m["f_measure/baseline"] == pytest.approx(s["categories"]["baseline"]["f_measure"])
    assert m["f_measure/overall"] == pytest.approx(s["overall"]["f_measure"])
    for key in ("recall/overall", "precision/overall", "pwc/overall", "fpr/overall", "fnr/overall",
                "specificity/overall", "mean_dice/overall", "average_precision", "fps"):
        assert key in m, key
    assert gmm.data.params["protocol"] == "full" and "params.history" in gmm.data.params
    assert parents[0].data.params["seed"] == "0"
    arts = {a.path for a in c.list_artifacts(pid)} | {a.path for a in c.list_artifacts(pid, "report")}
    assert "results.json" in arts and "report/leaderboard.html" in arts
    return c, pid


def test_sqlite_store_read_back(tmp_path):
    out = tmp_path / "run"
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["run", "--data", "synthetic", "--methods", "gmm_zivkovic,temporal_median", "--out", str(out),
                 "--tracking-uri", uri]) == 0
    res = json.loads((out / "results.json").read_text())
    _check_logged(uri, res)
    assert not (out / "tracking_pending.json").exists()
    assert not (Path.cwd() / "mlruns").exists()  # artifacts stay beside the store, not in the cwd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_then_log_later(tmp_path, capsys):
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    out = tmp_path / "run"
    assert main(["run", "--data", "synthetic", "--methods", "gmm_zivkovic,temporal_median", "--out", str(out),
                 "--tracking-uri", uri]) == 0  # the run itself succeeded
    err = capsys.readouterr().err
    assert "could not log to MLflow" in err and f"bgbench log {out}" in err
    assert (out / "results.json").exists() and (out / "tracking_pending.json").exists()

    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination",
         str(tmp_path / "server-artifacts"), "--workers", "1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.time() < deadline, "mlflow server did not start"
            assert server.poll() is None, "mlflow server exited"
            time.sleep(0.5)
        assert main(["log", str(out), "--tracking-uri", uri]) == 0  # uploaded over HTTP
        res = json.loads((out / "results.json").read_text())
        _check_logged(uri, res)
        assert not (out / "tracking_pending.json").exists()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
