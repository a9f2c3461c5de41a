"""MLflow tracking against real SQLite stores and a real ``mlflow server`` on loopback, read
back with MLflow's client: logging runs in the background and records its outcome; logging
is idempotent (twice, retried, re-run: one parent, the right children); an upload cut off
by a failing client or a dying server is FAILED (or left RUNNING by a dead server) and the
retry finishes it; the logged names and values are the report's tables'."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from benchmark import tracking
from benchmark.cli import main
from conftest import DATA, HIGHWAY, copy_scene, needs_data

UCSD_PEDS = DATA / "UCSD" / "peds"


@pytest.fixture(scope="module", autouse=True)
def _private_store_home(tmp_path_factory):
    """The per-user store and its template live in a folder of this module, not the user's."""
    old = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield
    if old is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = old


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    """A small real CDnet2014 scene: 120 frames of highway, every one scored."""
    root = tmp_path_factory.mktemp("data") / "CDnet2014"
    copy_scene(HIGHWAY, root / "baseline" / "highway", range(440, 560))
    return root


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


def _logged(out: Path, timeout: float = 300) -> dict:
    st = tracking.wait(out, timeout)
    assert st is not None and st["state"] == "logged", (st, (out / "tracking.log").read_text()[-3000:])
    return st


def _run(out: Path, data: list, methods: str, *extra: str) -> int:
    return main(["run", "--data", *map(str, data), "--methods", methods, "--out", str(out), *extra])


def _one_parent(uri, methods: set[str], protocol: str = "full"):
    c, parents, children = _runs(uri)
    assert len(parents) == 1, [p.info.run_name for p in parents]
    pid = parents[0].info.run_id
    assert sorted(ch.data.tags["bgbench.method"] for ch in children) == sorted(methods)
    assert all(ch.data.tags["mlflow.parentRunId"] == pid and ch.data.tags["bgbench.protocol"] == protocol
               for ch in children)
    assert parents[0].info.status == "FINISHED" and all(ch.info.status == "FINISHED" for ch in children)
    return c, parents[0], children


# --- names and values: the report's ------------------------------------------------------------
def test_metric_names_per_dataset_and_category():
    entry = {"jobs_failed": 0, "fps_median": 99.0, "datasets": {
        "CDnet2014": {"categories": {"baseline": {"f_measure": 0.8, "recall": float("nan")},
                                     "PTZ": {"f_measure": 0.4}},
                      "overall": {"f_measure": 0.6}, "average_precision": 0.7, "fps_median": 100.0},
        "UCSD": {"categories": {"-": {"f_measure": 0.2}}, "overall": {"f_measure": 0.2},
                 "average_precision": None, "fps_median": 50.0}}}
    m = tracking.run_metrics(entry)
    assert m == {"f_measure/CDnet2014/baseline": 0.8, "f_measure/CDnet2014/PTZ": 0.4,
                 "f_measure/CDnet2014/overall": 0.6,
                 "average_precision/CDnet2014": 0.7, "fps/CDnet2014": 100.0,
                 "f_measure/UCSD/overall": 0.2, "fps/UCSD": 50.0, "jobs_failed": 0.0}
    assert tracking._name("a+b/c") == "a_b_c"


def _report_figures(report: Path, protocol: str = "full") -> dict[str, float]:
    """Every figure of the report's full-precision CSV tables, under the name MLflow should
    log it by: per method, ``metric/dataset/category``, ``metric/dataset/overall``, AP, FPS."""
    out: dict[str, dict[str, float]] = {}
    with open(report / f"categories_{protocol}.csv") as f:
        for row in csv.DictReader(f):
            method, ds, cat = row.pop("method"), row.pop("dataset"), row.pop("category")
            if cat == "-":  # a dataset without categories: the report's overall row says it all
                continue
            for k, v in row.items():
                if v != "":
                    out.setdefault(method, {})[f"{k}/{ds}/{cat}"] = float(v)
    for table in report.glob(f"metrics_{protocol}_*.csv"):
        ds = table.stem[len(f"metrics_{protocol}_"):]
        with open(table) as f:
            for row in csv.DictReader(f):
                for col, name in (("AP", f"average_precision/{ds}"), ("FPS", f"fps/{ds}")):
                    try:
                        out[row["method"]][name] = float(row[col])
                    except ValueError:  # empty, or "n/a (binary)": no number in the report, none logged
                        pass
        with open(report / f"f_measure_{protocol}_{ds}.csv") as f:
            for row in csv.DictReader(f):
                assert float(row["overall F"]) == out[row["method"]][f"f_measure/{ds}/overall"]
    return out


@needs_data
def test_logged_figures_are_the_reports(tmp_path, scene, capsys):
    """A small real run (highway, one category; UCSD peds, no categories), logged in the
    background to a SQLite store: every logged metric is a figure of the report's tables,
    under its dataset and category, and every table figure is logged."""
    out, uri = tmp_path / "run", f"sqlite:///{tmp_path / 'store.db'}"
    t0 = time.time()
    assert _run(out, [scene, UCSD_PEDS], "gmm_zivkovic,frame_difference", "--tracking-uri", uri) == 0
    printed = capsys.readouterr()
    assert "in the background" in printed.err and "bgbench log" in printed.err
    res = json.loads((out / "results.json").read_text())
    meta = res["meta"]
    seconds = float(printed.out.rsplit(" s; results:", 1)[0].rsplit(";", 1)[1])
    assert seconds >= meta["wall_seconds"] and seconds <= time.time() - t0 + 0.5  # the whole command's time
    st = _logged(out)
    assert st["uri"] == uri and not (out / "mlflow.db").exists()

    c, parent, children = _one_parent(uri, {"gmm_zivkovic", "frame_difference"})
    expected = _report_figures(out / "report")
    for ch in children:
        method = ch.data.tags["bgbench.method"]
        logged = {k: v for k, v in ch.data.metrics.items() if k != "jobs_failed"}
        assert set(logged) == set(expected[method])
        for k, v in expected[method].items():
            assert logged[k] == pytest.approx(v, rel=1e-12, abs=1e-15), (method, k)
        assert "f_measure/CDnet2014/baseline" in logged and "f_measure/UCSD/overall" in logged
        assert not any(k in logged for k in ("f_measure/overall", "fps", "average_precision"))
        s = res["summary"][method]["full"]["datasets"]
        assert logged["fps/UCSD"] == s["UCSD"]["fps_median"] and ch.data.metrics["jobs_failed"] == 0

        # its configuration, threshold and protocol options, as params and as config.json
        p = ch.data.params
        assert p["threshold"] == "0.5" and p["protocol"] == "full" and p["protocol_options.name"] == "full"
        assert p["config"] == "default" and p["seed"] == "0"
        cfg = json.loads(Path(c.download_artifacts(ch.info.run_id, "config.json", str(tmp_path))).read_text())
        assert cfg["params"] == meta["methods"][method] and cfg["threshold"] == 0.5
        assert cfg["protocol_options"] == meta["protocols"]["full"]
        own = {a.path for a in c.list_artifacts(ch.info.run_id, "report")}
        assert {"report/f_measure_CDnet2014.csv", "report/metrics_UCSD.csv", "report/pr_CDnet2014.png",
                "report/categories.csv"} <= own
        table = Path(c.download_artifacts(ch.info.run_id, "report/categories.csv", str(tmp_path))).read_text()
        assert {r.split(",")[0] for r in table.splitlines()[1:]} == {method}  # its own rows only

    # durations are the run's, not the upload's
    start, end = meta["started"], meta["finished"]
    assert parent.info.start_time == round(start * 1000) and parent.info.end_time == round(end * 1000)
    assert end < st["started"]  # the record was finished before the logger began
    for ch in children:
        assert start - 1 <= ch.info.start_time / 1000 < ch.info.end_time / 1000 <= end + 1
    first, second = sorted(children, key=lambda ch: ch.info.start_time)  # one job at a time: each its own span
    assert first.info.end_time <= second.info.start_time + 100
    assert parent.data.params["seed"] == "0" and parent.data.tags["bgbench.run_id"] == meta["run_id"]
    pid = parent.info.run_id
    arts = {a.path for a in c.list_artifacts(pid)} | {a.path for a in c.list_artifacts(pid, "report")}
    assert "results.json" in arts and "report/leaderboard.html" in arts
    assert not (Path.cwd() / "mlruns").exists()  # artifacts stay beside the store, not in the cwd


# --- idempotence on a SQLite store; the per-user default store ---------------------------------
@pytest.mark.slow
@needs_data
def test_log_twice_and_rerun_make_no_duplicates(tmp_path, scene, monkeypatch):
    """Into the default per-user store: the run logs in the background; ``bgbench log`` again,
    and re-running the finished run, update the same parent and children; a re-run with
    fewer methods drops the child it no longer has."""
    monkeypatch.setenv("BGBENCH_TRACKING", "1")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = tracking.default_uri()
    db = Path(os.environ["XDG_DATA_HOME"]) / "bgbench" / "mlflow.db"
    assert uri == f"sqlite:///{db}"
    out = tmp_path / "run"
    assert _run(out, [scene], "gmm_zivkovic,frame_difference") == 0
    first = _logged(out)
    assert db.exists() and not (out / "mlflow.db").exists()
    _, parent, children = _one_parent(uri, {"gmm_zivkovic", "frame_difference"})
    assert first["parent_run_id"] == parent.info.run_id
    ids = {ch.info.run_id for ch in children}

    assert main(["log", str(out)]) == 0  # twice: the URI the run used, the same runs
    _, again, children2 = _one_parent(uri, {"gmm_zivkovic", "frame_difference"})
    assert again.info.run_id == parent.info.run_id and {ch.info.run_id for ch in children2} == ids
    assert again.info.start_time == parent.info.start_time

    run_id = json.loads((out / "results.json").read_text())["meta"]["run_id"]
    assert _run(out, [scene], "gmm_zivkovic,frame_difference") == 0  # a finished run, re-run: every job reused
    assert json.loads((out / "results.json").read_text())["meta"]["run_id"] == run_id
    _logged(out)
    _, again, children3 = _one_parent(uri, {"gmm_zivkovic", "frame_difference"})
    assert again.info.run_id == parent.info.run_id and {ch.info.run_id for ch in children3} == ids

    assert _run(out, [scene], "gmm_zivkovic") == 0  # the record now holds one method: so does MLflow
    _logged(out)
    _, again, children4 = _one_parent(uri, {"gmm_zivkovic"})
    assert again.info.run_id == parent.info.run_id


def test_new_store_is_a_copy_of_a_migrated_template(tmp_path):
    db = tmp_path / "new" / "mlflow.db"
    assert tracking.new_sqlite_store(db) and not tracking.new_sqlite_store(db)
    c = _client(f"sqlite:///{db}")
    assert [e.name for e in c.search_experiments()] == ["Default"]
    assert c.get_experiment("0").artifact_location == str(tmp_path / "new" / "mlartifacts" / "0")
    assert (Path(os.environ["XDG_DATA_HOME"]) / "bgbench").glob("mlflow-empty-*.db")


def test_outcome_file_and_dead_logger(tmp_path):
    """A superseded logger writes nothing; a logger that died without a word is reported failed."""
    tracking._transition(tmp_path, "new", force=True, state="pending", uri="sqlite:///x.db")
    assert tracking._transition(tmp_path, "old", state="logged", uri="sqlite:///x.db") is None
    assert tracking.read_state(tmp_path)["token"] == "new"
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    tracking._transition(tmp_path, "new", state="logging", uri="sqlite:///x.db", pid=p.pid)
    st = tracking.wait(tmp_path, 10)
    assert st["state"] == "failed" and "died" in st["error"] and st["retry"].startswith("bgbench log ")
    assert tracking.wait(tmp_path / "nothing", 1) is None


# --- a real mlflow server on loopback ----------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``mlflow server`` on 127.0.0.1 with a SQLite backend in a test folder; started as a
    process group, waited for with bounded retries, killed with its workers."""

    def __init__(self, folder: Path, port: int | None = None):
        self.folder, self.port = folder, port or _free_port()
        self.db = folder / "server.db"
        folder.mkdir(parents=True, exist_ok=True)
        tracking.new_sqlite_store(self.db)  # a migrated store: the server starts without migrating
        self.proc = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Server":
        log = open(self.folder / "server.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--backend-store-uri", f"sqlite:///{self.db}", "--artifacts-destination", str(self.folder / "artifacts"),
             "--workers", "1"], cwd=self.folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        for _ in range(600):  # bounded: 300 s on a loaded machine
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise AssertionError("mlflow server exited:\n" + (self.folder / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        self.kill()
        raise AssertionError("mlflow server did not answer within 300 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture
def servers(tmp_path):
    """Makes servers (not started) in this test's folder; kills every one at the end."""
    made: list[Server] = []

    def make(name: str = "server") -> Server:
        made.append(Server(tmp_path / name))
        return made[-1]

    yield make
    for s in made:
        s.kill()


@pytest.fixture
def server(servers):
    return servers("server-a").start()


def _status(uri, run_id) -> str:
    return _client(uri).get_run(run_id).info.status


@pytest.mark.slow
@needs_data
def test_server_log_twice_and_a_client_failure_then_retry(tmp_path, scene, server, monkeypatch):
    """Over HTTP: logging twice makes one parent and its children; a client that fails once
    the parent exists leaves it FAILED, and the retry finishes it (FINISHED), no duplicate."""
    out = tmp_path / "run"
    assert _run(out, [scene], "gmm_zivkovic,frame_difference", "--tracking-uri", server.uri) == 0
    first = _logged(out)
    assert main(["log", str(out)]) == 0
    _, parent, children = _one_parent(server.uri, {"gmm_zivkovic", "frame_difference"})
    assert parent.info.run_id == first["parent_run_id"]
    ids = {ch.info.run_id for ch in children}

    from mlflow.tracking import MlflowClient

    def fail(self, *a, **k):
        raise ConnectionError("simulated: the connection dropped")

    monkeypatch.setattr(MlflowClient, "log_artifacts", fail)  # after the parent and results.json
    assert main(["log", str(out)]) == 1
    st = tracking.read_state(out)
    assert st["state"] == "failed" and "simulated" in st["error"] and st["parent_run_id"] == parent.info.run_id
    assert _status(server.uri, parent.info.run_id) == "FAILED"
    monkeypatch.undo()

    assert main(["log", str(out)]) == 0
    _, again, children = _one_parent(server.uri, {"gmm_zivkovic", "frame_difference"})
    assert again.info.run_id == parent.info.run_id and {ch.info.run_id for ch in children} == ids
    assert tracking.read_state(out)["state"] == "logged"


@pytest.mark.slow
@needs_data
def test_server_down_then_killed_mid_upload_then_retry(tmp_path, scene, servers, monkeypatch):
    """No server: the run finishes, the background logger records the failure and the retry
    command. A server that dies mid-upload leaves a run that is not FINISHED; after it restarts
    on its store, ``bgbench log`` finishes the same parent: FINISHED, no duplicates."""
    srv = servers()
    out = tmp_path / "run"
    assert _run(out, [scene], "gmm_zivkovic,frame_difference", "--tracking-uri", srv.uri) == 0
    st = tracking.wait(out, 300)
    assert st["state"] == "failed" and st["retry"] == f"bgbench log {out.resolve()} --tracking-uri {srv.uri}"
    assert (out / "results.json").exists() and "could not log" in (out / "tracking.log").read_text()

    from mlflow.tracking import MlflowClient

    real = MlflowClient.log_artifact

    def die_then_upload(self, *a, **k):
        srv.kill()  # the server dies mid-upload: after the parent run was created
        return real(self, *a, **k)

    srv.start()
    monkeypatch.setattr(MlflowClient, "log_artifact", die_then_upload)
    assert main(["log", str(out)]) == 1
    monkeypatch.undo()
    st = tracking.read_state(out)
    assert st["state"] == "failed" and st["parent_run_id"]
    srv.start()  # the same store, the same port
    assert _status(srv.uri, st["parent_run_id"]) in ("RUNNING", "FAILED")  # a dead server could not be told
    assert main(["log", str(out)]) == 0
    _, parent, _ = _one_parent(srv.uri, {"gmm_zivkovic", "frame_difference"})
    assert parent.info.run_id == st["parent_run_id"]
