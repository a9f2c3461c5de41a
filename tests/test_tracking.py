"""MLflow tracking against real SQLite stores and a real ``mlflow server`` on loopback, read
back with MLflow's client: logging runs in the background and records its outcome; logging
is idempotent (twice, retried, re-run: one parent, the right children); an upload cut off
by a failing client or a dying server is FAILED (or left RUNNING by a dead server) and the
retry finishes it; the logged names and values are the report's tables'."""

from __future__ import annotations

import csv
import dataclasses
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
from records_helpers import METRIC_NAMES, SCORED
from records_helpers import hist as hist_of

from bgbench import tracking
from bgbench.cli import main
from bgbench.records.results import load_results
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
    assert sorted(ch.data.tags["bgbench.label"] for ch in children) == sorted(methods)
    assert all(ch.data.tags["mlflow.parentRunId"] == pid and ch.data.tags["bgbench.protocol"] == protocol
               for ch in children)
    assert parents[0].info.status == "FINISHED" and all(ch.info.status == "FINISHED" for ch in children)
    return c, parents[0], children


# --- names and values: the report's ------------------------------------------------------------
FULL_KEY, N200_KEY = "full", "scene-specific[seed=0,rule=n:200]"
PROTOCOLS = {FULL_KEY: {"name": "full"}, N200_KEY: {"name": "scene-specific", "seed": 0, "rule": "n:200"}}
VIDEOS = ("CDnet2014/baseline/highway", "CDnet2014/baseline/office", "CDnet2014/PTZ/zoomInZoomOut", "UCSD/-/peds")


def _job(method: str, config: str, family: str, key: str, video: str, f: float, binary: bool = False,
         status: str = "ok") -> dict:
    """A job record as results.json holds it; every metric its own number near ``f``
    (fpr_shadow undefined: no shadow pixels)."""
    job = {"method": method, "config": config, "family": family, "protocol": PROTOCOLS[key]["name"],
           "protocol_key": key, "split": "s0", "video": video, "fingerprint": "f" * 16,
           "status": status, "error": None if status == "ok" else "RuntimeError: out of memory"}
    if status == "ok":
        hist = hist_of({255: (8, 2), 0: (2, 88)}) if binary else SCORED
        job.update(frames=10, counts={"tp": 10, "fp": 5, "tn": 80, "fn": 5, "shadow_errors": 0, "shadow_pixels": 0},
                   dice={"sum": 5.0, "frames": 10}, histograms=hist,
                   timing={"fps": 100 * f, "device": "cpu", "segment_seconds_total": 0.1},
                   metrics={k: (float("nan") if k == "fpr_shadow" else f + i / 1000) for i, k in enumerate(METRIC_NAMES)},
                   loss_history=[{"step": 0, "loss": 1.0}, {"step": 1, "loss": 0.5}] if family == "deep" else [])
    return job


ALL_LABELS = ("crossnet[paper]", "gmm_zivkovic", "frame_difference", "plugin_x[fast]")


def _results(run_dir: Path | None = None, labels=ALL_LABELS):
    """A typed record built from a plain dict with ``Results.from_json``: crossnet[paper]
    (deep), gmm_zivkovic under two keys of two protocols, frame_difference (binary: no AP),
    and a plug-in the registry does not know (its family only in the record); one failed job.
    Written to ``run_dir/results.json`` when given."""
    from bgbench.scoring.aggregate import summarize
    from bgbench.records.types import JobRecord, Results

    who = {"crossnet[paper]": ("crossnet", "paper", "deep", (FULL_KEY,)),
           "gmm_zivkovic": ("gmm_zivkovic", "default", "classical", (FULL_KEY, N200_KEY)),
           "frame_difference": ("frame_difference", "default", "classical", (FULL_KEY,)),
           "plugin_x[fast]": ("plugin_x", "fast", "classical", (FULL_KEY,))}
    jobs = []
    for n, label in enumerate(labels):
        method, config, family, keys = who[label]
        for k, key in enumerate(keys):
            for v, video in enumerate(VIDEOS):
                failed = label == "gmm_zivkovic" and key == N200_KEY and v == 3
                jobs.append(_job(method, config, family, key, video, 0.3 + 0.1 * n + 0.05 * k + 0.01 * v,
                                 binary=label == "frame_difference", status="failed" if failed else "ok"))
    summaries = summarize([JobRecord.from_json(j) for j in jobs])
    nested: dict = {}
    for (label, key), s in summaries.items():
        nested.setdefault(label, {})[key] = s.to_json()
    methods = {who[lab][0] for lab in labels}
    doc = {"schema_version": 2, "jobs": jobs, "summary": nested, "meta": {
        "created": "2024-05-01T12:00:00+0000", "run_id": "0123456789abcdef0123456789abcdef", "device": "cpu",
        "seed": 0, "threshold": 0.5, "suite": None, "config": None, "git": "abc",
        "methods": {m: {"lr": 0.001, "depth": 3, "sizes": [1, 2]} if m == "crossnet" else {"var_threshold": 16.0}
                    for m in methods},
        "families": {who[lab][0]: who[lab][2] for lab in labels},
        "configs": {who[lab][0]: who[lab][1] for lab in labels},
        "code": {}, "protocols": PROTOCOLS, "data": ["/data"], "videos": list(VIDEOS),
        "started": 1714564700.0, "finished": 1714564800.0, "versions": {"bgbench": "test"}}}
    if run_dir is not None:
        from bgbench.records.results import write_json

        write_json(run_dir / "results.json", doc)
    return Results.from_json(json.loads(json.dumps(doc).replace("NaN", "null")), "results.json")


def _number_at(summary, name: str):
    """The number of ``summary`` a metric name stands for, found by walking the summary with
    the name's own parts (not through tracking's code)."""
    parts = name.split("/")
    if parts == ["jobs_failed"]:
        return summary.jobs_failed
    if parts == ["jobs_truncated"]:
        return summary.jobs_truncated
    if parts[0] == "average_precision":
        return summary.datasets[parts[1]].average_precision
    if parts[0] == "fps":
        return summary.datasets[parts[1]].fps_median
    metric, ds, cat = parts
    d = summary.datasets[ds]
    return d.overall[metric] if cat == "overall" else d.categories[cat][metric]


def test_every_logged_metric_is_a_number_of_the_summary():
    """Every name is the summary's number at the same dataset and category (the dataset's
    overall is the summary's, which the tables print as "overall"); nothing is averaged over
    datasets; every defined number of a table is logged; a binary method has no AP."""
    from bgbench.scoring.aggregate import ALL_KEYS

    res = _results()
    assert len(res.summaries) == 5
    for (label, key), s in res.summaries.items():
        m = tracking.run_metrics(s)
        assert m, label
        for name, v in m.items():
            assert v == _number_at(s, name), (label, key, name)
        assert not any(n.split("/")[-1] == "overall" and len(n.split("/")) != 3 for n in m)  # no cross-dataset overall
        assert not any(n in m for n in ("f_measure/overall", "fps", "average_precision"))
        for ds, d in s.datasets.items():
            cats = [c for c in d.categories if c != "-"]
            expected = {f"{k}/{ds}/{c}" for c in cats for k in ALL_KEYS if k != "fpr_shadow"}
            expected |= {f"{k}/{ds}/overall" for k in ALL_KEYS if k != "fpr_shadow"}
            assert expected <= set(m), (label, ds)
            assert f"fpr_shadow/{ds}/overall" not in m  # undefined: left out, never 0
            assert (f"average_precision/{ds}" in m) == (label != "frame_difference")
        assert m["jobs_failed"] == s.jobs_failed
    s = res.summary("gmm_zivkovic", N200_KEY)
    assert tracking.run_metrics(s)["jobs_failed"] == 1 and "UCSD" not in s.datasets
    # the overall is the mean of the category means, not of the videos
    f = tracking.run_metrics(res.summary("crossnet[paper]", FULL_KEY))  # videos' F: .306, .316 (baseline), .326 (PTZ)
    assert f["f_measure/CDnet2014/baseline"] == pytest.approx(0.311)
    assert f["f_measure/CDnet2014/PTZ"] == pytest.approx(0.326)
    assert f["f_measure/CDnet2014/overall"] == pytest.approx((0.311 + 0.326) / 2)  # not the videos' mean, .316
    assert f["f_measure/UCSD/overall"] == pytest.approx(0.336) and "f_measure/UCSD/-" not in f
    assert tracking._name("a+b/c") == "a_b_c"


def test_names_that_would_collide_are_refused():
    import dataclasses

    res = _results(labels=("gmm_zivkovic",))
    s = res.summary("gmm_zivkovic", FULL_KEY)
    d = s.datasets["CDnet2014"]
    odd = dataclasses.replace(d, categories={**d.categories, "overall": d.categories["baseline"]})
    with pytest.raises(ValueError, match="overall"):
        tracking.run_metrics(dataclasses.replace(s, datasets={"CDnet2014": odd}))


def test_labels_method_config_and_family_come_from_the_record():
    """crossnet[paper] is method crossnet, config paper, family deep: the summary's fields,
    never the label taken apart; a plug-in the registry does not know keeps its recorded
    family; params are the run's resolved ones (meta.methods)."""
    res = _results()
    s = res.summary("crossnet[paper]", FULL_KEY)
    cfg = tracking.child_config(res, s)
    assert (cfg["method"], cfg["config"], cfg["label"]) == ("crossnet", "paper", "crossnet[paper]")
    assert cfg["family"] == "deep"
    assert cfg["params"] == {"lr": 0.001, "depth": 3, "sizes": [1, 2]} and cfg["protocol_options"] == {"name": "full"}
    assert cfg["splits"] == ["s0"] and cfg["videos"] == 4 and cfg["device"] == "cpu"
    tags = tracking.child_tags(s, cfg["family"], "rid", "pid")
    assert tags["bgbench.label"] == "crossnet[paper]" and tags["bgbench.method"] == "crossnet"
    assert tags["bgbench.config"] == "paper" and tags["bgbench.family"] == "deep"
    assert tags["bgbench.key"] == f"crossnet[paper]|{FULL_KEY}"
    plug = tracking.child_config(res, res.summary("plugin_x[fast]", FULL_KEY))
    assert (plug["method"], plug["config"], plug["family"]) == ("plugin_x", "fast", "classical")
    n200 = tracking.child_config(res, res.summary("gmm_zivkovic", N200_KEY))
    assert n200["protocol"] == "scene-specific" and n200["protocol_options"]["rule"] == "n:200"
    assert tracking.train_curves(res.jobs_of("crossnet[paper]")) == [("train/s0/loss", 1.0, 0),
                                                                     ("train/s0/loss", 0.5, 1)]


@pytest.mark.slow  # several seconds: the fast lane stays under 3 minutes; CI runs it
def test_log_run_nests_each_label_and_protocol_key(tmp_path):
    """A hand-made record into a SQLite store: one parent, one FINISHED child per (label,
    protocol key), tagged and parametrised from the record, its metrics the summary's;
    logging again updates the same runs."""
    run = tmp_path / "run"
    res = _results(run)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    pid = tracking.log_run(res, run, uri)
    c, parents, children = _runs(uri)
    assert [p.info.run_id for p in parents] == [pid] and parents[0].info.status == "FINISHED"
    assert parents[0].info.start_time == 1714564700000 and parents[0].info.end_time == 1714564800000
    # a protocol key's options, named as MLflow allows
    assert parents[0].data.params["protocols.scene-specific_seed_0_rule_n:200_.rule"] == "n:200"
    by_key = {ch.data.tags["bgbench.key"]: ch for ch in children}
    assert set(by_key) == {f"{label}|{key}" for label, key in res.summaries}
    for (label, key), s in res.summaries.items():
        ch = by_key[f"{label}|{key}"]
        assert ch.info.status == "FINISHED" and ch.data.tags["mlflow.parentRunId"] == pid
        assert ch.data.tags["bgbench.label"] == label and ch.data.tags["bgbench.method"] == s.method
        assert ch.data.tags["bgbench.protocol_key"] == key and ch.data.tags["bgbench.protocol"] == s.protocol
        assert ch.data.params["method"] == s.method and ch.data.params["config"] == s.config
        assert ch.data.params["family"] == s.family and ch.data.params["protocol_key"] == key
        logged = {k: v for k, v in ch.data.metrics.items() if not k.startswith("train/")}
        assert logged == tracking.run_metrics(s)
        for name, v in logged.items():
            assert v == _number_at(s, name)
    crossnet = by_key[f"crossnet[paper]|{FULL_KEY}"]
    assert crossnet.data.params["params.lr"] == "0.001" and crossnet.data.params["params.sizes"] == "[1, 2]"
    assert (crossnet.data.tags["bgbench.method"], crossnet.data.tags["bgbench.config"]) == ("crossnet", "paper")
    assert crossnet.data.metrics["train/s0/loss"] == 0.5

    ids = {ch.info.run_id for ch in children}
    assert tracking.log_run(res, run, uri) == pid  # idempotent: the same parent and children
    _, parents, children = _runs(uri)
    assert len(parents) == 1 and {ch.info.run_id for ch in children} == ids


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
@pytest.mark.slow
def test_logged_figures_are_the_reports(tmp_path, scene, capsys):
    """A small real run (highway, one category; UCSD peds, no categories), logged in the
    background to a SQLite store: every logged metric is a figure of the report's tables,
    under its dataset and category, and every table figure is logged."""
    out, uri = tmp_path / "run", f"sqlite:///{tmp_path / 'store.db'}"
    t0 = time.time()
    assert _run(out, [scene, UCSD_PEDS], "gmm_zivkovic,frame_difference", "--tracking-uri", uri) == 0
    printed = capsys.readouterr()
    assert "in the background" in printed.err and "bgbench log" in printed.err
    res = load_results(out)
    meta = res.meta
    seconds = float(printed.out.rsplit(" s; results:", 1)[0].rsplit(";", 1)[1])
    assert seconds >= meta.wall_seconds and seconds <= time.time() - t0 + 0.5  # the whole command's time
    st = _logged(out)
    assert st["uri"] == uri and not (out / "mlflow.db").exists()

    c, parent, children = _one_parent(uri, {"gmm_zivkovic", "frame_difference"})
    expected = _report_figures(out / "report")
    for ch in children:
        method = ch.data.tags["bgbench.label"]
        logged = {k: v for k, v in ch.data.metrics.items() if k not in ("jobs_failed", "jobs_truncated")}
        assert set(logged) == set(expected[method])
        for k, v in expected[method].items():
            assert logged[k] == pytest.approx(v, rel=1e-12, abs=1e-15), (method, k)
        assert "f_measure/CDnet2014/baseline" in logged and "f_measure/UCSD/overall" in logged
        assert not any(k in logged for k in ("f_measure/overall", "fps", "average_precision"))
        s = res.summary(method, "full")
        assert logged["fps/UCSD"] == s.datasets["UCSD"].fps_median and ch.data.metrics["jobs_failed"] == 0
        for k, v in ch.data.metrics.items():  # each the summary's own number
            assert v == _number_at(s, k), (method, k)
        assert ch.data.tags["bgbench.method"] == s.method and ch.data.tags["bgbench.family"] == s.family == "classical"

        # its configuration, threshold and protocol options, as params and as config.json
        p = ch.data.params
        assert p["threshold"] == "0.5" and p["protocol"] == "full" and p["protocol_options.name"] == "full"
        assert p["config"] == "default" and p["seed"] == "0"
        cfg = json.loads(Path(c.download_artifacts(ch.info.run_id, "config.json", str(tmp_path))).read_text())
        assert cfg["params"] == meta.methods[method] and cfg["threshold"] == 0.5
        assert cfg["protocol_options"] == meta.protocols["full"]
        own = {a.path for a in c.list_artifacts(ch.info.run_id, "report")}
        assert {"report/f_measure_CDnet2014.csv", "report/metrics_UCSD.csv", "report/categories.csv"} <= own
        # a PR figure where there is a curve: a binary method alone (gmm_zivkovic's 0/255 masks)
        # has one operating point, already a table row, and its report draws none
        assert ("report/pr_CDnet2014.png" in own) == (method == "frame_difference"), (method, sorted(own))
        table = Path(c.download_artifacts(ch.info.run_id, "report/categories.csv", str(tmp_path))).read_text()
        assert {r.split(",")[0] for r in table.splitlines()[1:]} == {method}  # its own rows only

    # durations are the run's, not the upload's
    start, end = meta.started, meta.finished
    assert parent.info.start_time == round(start * 1000) and parent.info.end_time == round(end * 1000)
    assert end < st["started"]  # the record was finished before the logger began
    for ch in children:
        assert start - 1 <= ch.info.start_time / 1000 < ch.info.end_time / 1000 <= end + 1
    # one job at a time: each its own span (a span's start is estimated from its records' write
    # times less their timed seconds, which leave out a worker's start-up: up to a second)
    first, second = sorted(children, key=lambda ch: ch.info.start_time)
    assert first.info.end_time <= second.info.start_time + 1000
    assert parent.data.params["seed"] == "0" and parent.data.tags["bgbench.run_id"] == meta.run_id
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

    run_id = load_results(out).meta.run_id
    assert _run(out, [scene], "gmm_zivkovic,frame_difference") == 0  # a finished run, re-run: every job reused
    assert load_results(out).meta.run_id == run_id
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
    assert list((Path(os.environ["XDG_DATA_HOME"]) / "bgbench").glob("mlflow-empty-*.db"))  # the template was kept


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


def test_the_parent_is_named_by_its_folder_and_what_ran_with_the_resolved_device(tmp_path, monkeypatch):
    """Issue 25, item 8: the parent run reads "FOLDER · labels · protocols", not "bgbench run
    <timestamp>"; its device parameter is the one the jobs ran on, never "auto"; no tag holds
    an absolute path; a folder logged under an older name is renamed, not duplicated."""
    run = tmp_path / "deep_cpu"
    res = _results(run, labels=("crossnet[paper]",))
    res = dataclasses.replace(res, meta=dataclasses.replace(res.meta, device="auto"))
    assert tracking.parent_run_name(res, run) == "deep_cpu · crossnet[paper] · full"
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setattr(tracking, "parent_run_name", lambda results, run_dir: "bgbench run 2024-05-01T12:00:00+0000")
    pid = tracking.log_run(res, run, uri)
    monkeypatch.undo()
    assert tracking.log_run(res, run, uri) == pid  # the same parent, renamed
    c, parents, children = _runs(uri)
    (parent,) = parents
    assert parent.info.run_name == "deep_cpu · crossnet[paper] · full"
    assert parent.data.params["device"] == "cpu" and children[0].data.params["device"] == "cpu"
    assert parent.data.tags["bgbench.run_dir"] == "deep_cpu"
    for r in parents + children:
        for k, v in r.data.tags.items():
            assert not v.startswith("/") and str(tmp_path) not in v, (k, v)
    # many labels and protocols: the first three of each, the rest counted
    many = _results(tmp_path / "many")
    name = tracking.parent_run_name(many, tmp_path / "many")
    assert name.startswith("many · ") and name.endswith(" · full, scene-specific")
    assert "+1 more" in name and name.count("·") == 2
    # every job failed: the device is still resolved, never "auto"
    failed = dataclasses.replace(res, jobs=tuple(dataclasses.replace(j, timing=None) for j in res.jobs))
    assert tracking.resolved_device(failed) in ("cpu", "cuda")


def test_a_deferred_helper_runs_once_its_parent_has_exited_or_its_wait_is_over(tmp_path):
    """``child.after_exit``: the helper's interpreter waits, importing nothing of note, until
    the process that started it has exited (the command line: its start-up then cannot slow
    the command's own exit), or until its seconds are over (a parent that lives on)."""
    (tmp_path / "stamp_helper.py").write_text(
        "import sys, time\nopen(sys.argv[1], 'w').write(repr(time.time()))\n")
    parent = (
        "import os, subprocess, sys, time\n"
        "from bgbench.execution.child import after_exit\n"
        "env = dict(os.environ, PYTHONPATH=sys.argv[1])\n"
        "subprocess.Popen(after_exit('stamp_helper', os.getpid(), float(sys.argv[2])) + [sys.argv[3]], env=env,"
        " start_new_session=True)\n"
        "time.sleep(float(sys.argv[4]))\n"
        "print(repr(time.time()))\n")
    for wait, lives, late in ((30.0, 1.0, False), (0.5, 3.0, True)):
        stamp = tmp_path / f"stamp{wait}"
        r = subprocess.run([sys.executable, "-c", parent, str(tmp_path), str(wait), str(stamp), str(lives)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        exited = float(r.stdout.split()[-1])  # the parent's last moment
        deadline = time.monotonic() + 20
        while not stamp.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        ran = float(stamp.read_text())
        if late:  # the parent lived on: the helper ran when its 0.5 s were over, while the parent slept
            assert ran < exited - 1.5
        else:  # it waited for the parent's exit, not for its 30 s
            assert exited <= ran < exited + 10


def test_the_command_line_defers_its_logger_and_python_callers_do_not(tmp_path, monkeypatch):
    """``bgbench run`` from the console (``main()`` with no argv) asks for the deferred logger,
    an in-process call does not; ``start_background`` then starts ``child.after_exit``'s
    command with this process as the parent to wait for."""
    import bgbench.api

    seen = []

    def fake_run(cfg, echo=None, started=None, exiting=False):
        seen.append(exiting)
        raise SystemExit(0)  # nothing to run: only what the command asked for

    monkeypatch.setattr(bgbench.api, "run", fake_run)
    for argv in (["run", "--data", "synthetic", "--methods", "knn"], None):
        if argv is None:
            monkeypatch.setattr(sys, "argv", ["bgbench", "run", "--data", "synthetic", "--methods", "knn"])
        try:
            main(argv)
        except SystemExit:
            pass
    assert seen == [False, True]
    started = []

    class FakePopen:
        pid = 4242

        def __init__(self, cmd, **kw):
            started.append(cmd)

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    for after_exit in (False, True):
        tracking.start_background(tmp_path, "sqlite:///" + str(tmp_path / "m.db"), after_exit=after_exit)
    plain, deferred = started
    assert plain[plain.index("-m") + 1] == "bgbench.tracking"
    i = deferred.index("-m")
    assert deferred[i + 1:i + 5] == ["bgbench.execution.child", str(os.getpid()), str(tracking.AFTER_EXIT_WAIT),
                                     "bgbench.tracking"]
    token = deferred.index("--token")
    assert deferred[i + 5:token] == plain[plain.index("-m") + 2:plain.index("--token")]  # the logger's arguments
