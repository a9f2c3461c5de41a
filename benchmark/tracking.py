"""MLflow logging of a results record: one parent run per run folder, one nested run per
method label x protocol key. It reads only the typed record (``bgbench.records.types.Results``,
loaded with ``bgbench.records.results.load_results``), the job records' file times and the report,
and never changes a figure.

Where: ``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else one store per user,
``sqlite:///DATA/bgbench/mlflow.db`` with its artifacts in ``DATA/bgbench/mlartifacts``
(``DATA`` is ``$XDG_DATA_HOME``, by default ``~/.local/share``). A SQLite store is shared by
every run, so MLflow's schema migrations run once, not once per run; a new SQLite store is a
copy of an empty, already migrated one kept beside the per-user store (one per MLflow
version). Loggers of one SQLite store take turns (a lock file beside it).

When: ``bgbench run`` writes results.json and the report first, then starts the logger as a
background process (``python -m bgbench.tracking RUN_DIR``, niced, output in
``RUN_DIR/tracking.log``) and returns; importing MLflow and uploading cost the command
nothing. The logger records its outcome in ``RUN_DIR/tracking.json`` (``state``: pending,
logging, logged or failed; the URI, the parent run id, the error and the command that retries).
``bgbench log RUN_DIR`` logs in the foreground, to the URI the run used unless told another.

Idempotent: a run folder has a stable id (``meta.run_id``, kept when the folder is re-run),
tagged ``bgbench.run_id`` on the parent and its children (``bgbench.key`` = label|protocol
key on each child). Logging finds them by it and updates them, so logging twice, retrying, or
re-running a finished run never makes a second parent or child. A parent is RUNNING while
it uploads, FINISHED when everything is there, FAILED when the upload failed (when the store
is still there to be told; a dead server cannot be) and the next ``bgbench log`` finishes it.
MLflow cannot change a logged parameter: a run whose parameters changed (the folder was
re-run with another seed, say), or that holds metrics the record no longer has, is deleted
and logged anew. A child the record no longer has is deleted.

A child's label, method, config and family are the record's (``Summary``), tagged
``bgbench.label``, ``bgbench.method``, ``bgbench.config``, ``bgbench.family``; its parameters
are the method's resolved ones (``meta.methods``), the protocol's options, threshold, seed.

Metric names mirror the report's tables, per dataset: ``<metric>/<dataset>/<category>`` and
``<metric>/<dataset>/overall`` (the dataset's overall as the tables print it: the mean of
its category means) for every metric of the tables (f_measure, recall, precision,
specificity, fpr, fnr, pwc, fpr_shadow, mcc, mean_dice), ``average_precision/<dataset>``
(none for a binary method: the tables' "n/a (binary)"), ``fps/<dataset>``, ``jobs_failed``,
and training losses as ``train/<split>/<name>`` by step. A dataset without categories has
only the overall names. Each is a number of the summary (``metric_sources`` says which);
nothing is averaged across datasets.

Times: a parent spans the command that made the record (``meta.started`` to
``meta.finished``); a child spans its jobs (each job ends when its record was written and
lasted its fit, segment and scoring time); metrics carry the record's time, not the upload's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from bgbench.scoring.aggregate import ALL_KEYS
from bgbench.records.types import JobRecord, Results, RunMeta, Summary, label_of

EXPERIMENT = "bgbench"
STATE = "tracking.json"
LOG = "tracking.log"
LEGACY_PENDING = "tracking_pending.json"  # written by earlier versions when a store was unreachable
_FOLDER_LOCK = ".tracking.lock"
_PARENT, _CHILD = "parent", "child"


# --- where -------------------------------------------------------------------------------
def enabled_by_default() -> bool:
    """``BGBENCH_TRACKING=0`` turns logging off unless a run asks for a URI."""
    return os.environ.get("BGBENCH_TRACKING", "1") not in ("0", "off", "false")


def data_dir() -> Path:
    """The per-user folder of the default store: ``$XDG_DATA_HOME/bgbench`` (``~/.local/share/bgbench``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bgbench"


def default_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else the per-user SQLite store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{data_dir() / 'mlflow.db'}"


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    p = uri[len("sqlite:///"):].split("?", 1)[0]
    return None if p in ("", ":memory:") else Path(p)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created), held until the block ends; no-op where
    ``fcntl`` is missing."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _mlflow_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("mlflow")
    except metadata.PackageNotFoundError:
        return "unknown"


def new_sqlite_store(db: Path) -> bool:
    """Create an empty, migrated MLflow store at ``db`` by copying a template (made once per
    MLflow version under ``data_dir()``) instead of replaying every migration. False, and
    nothing done, if ``db`` exists or the template cannot be made (MLflow then creates it)."""
    db = Path(db)
    if db.exists():
        return False
    template = data_dir() / f"mlflow-empty-{_mlflow_version()}.db"
    try:
        with _locked(template.with_name(template.name + ".lock")):
            if not template.exists():
                tmp = template.with_name(f".{template.name}.{os.getpid()}.tmp")
                tmp.unlink(missing_ok=True)
                MlflowClient = _mlflow_client()
                MlflowClient(tracking_uri=f"sqlite:///{tmp}").search_experiments(max_results=1)
                _dispose_engines()
                os.replace(tmp, template)
        db.parent.mkdir(parents=True, exist_ok=True)
        tmp = db.with_name(f".{db.name}.{os.getpid()}.tmp")
        shutil.copyfile(template, tmp)
        import sqlite3

        con = sqlite3.connect(tmp)  # the Default experiment's artifacts beside this store, not the template's
        try:
            con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                        (str(db.resolve().parent / "mlartifacts" / "0"),))
            con.commit()
        finally:
            con.close()
        if db.exists():  # made meanwhile by someone else
            tmp.unlink()
            return False
        os.replace(tmp, db)
        return True
    except (OSError, ImportError) as e:  # an unwritable data dir: MLflow migrates a new store itself
        print(f"bgbench: no store template ({type(e).__name__}: {e}); MLflow creates {db} itself", file=sys.stderr)
        return False


def _mlflow_client():
    """MLflow's client class, imported now (not before: it takes seconds), its INFO chatter off."""
    import logging

    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):  # after the import: mlflow configures its loggers on import
        logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient


def _dispose_engines() -> None:
    """Close the SQLAlchemy engines MLflow caches per URI (so a file can be moved on)."""
    try:
        from mlflow.store.tracking import sqlalchemy_store

        for eng in list(getattr(sqlalchemy_store.SqlAlchemyStore, "_engine_map", {}).values()):
            eng.dispose()
    except Exception:  # noqa: BLE001 - best effort on a private attribute
        pass


# --- the record's identity and times -------------------------------------------------------
def _read(path: Path) -> str:
    """A run-folder file's text; a FIFO or other special file is an OSError here (never a hang)."""
    from bgbench.errors import BadInput
    from bgbench.safefs import read_text

    try:
        return read_text(path)
    except BadInput as e:
        raise OSError(str(e)) from None


def folder_id(run_dir: Path) -> str:
    """The stable id of a run folder: the one its results.json already holds (a re-run keeps
    it, whatever schema that older record has), else a new one. Only ``meta.run_id`` is read:
    the folder's MLflow runs are found by it."""
    try:
        old = json.loads(_read(Path(run_dir) / "results.json"))["meta"].get("run_id")
        if isinstance(old, str) and re.fullmatch(r"[0-9a-f]{32}", old):
            return old
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return uuid.uuid4().hex


def record_id(results: Results, run_dir: Path) -> str:
    """``meta.run_id``; a record without one gets an id from its folder and creation time
    (stable for that record)."""
    meta = results.meta
    if meta.run_id:
        return meta.run_id
    return hashlib.sha1(f"{Path(run_dir).resolve()}|{meta.created}".encode()).hexdigest()[:32]


def _epoch(created: Any) -> float | None:
    try:
        return datetime.strptime(str(created), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None


def run_span(meta: RunMeta) -> tuple[float, float]:
    """(start, end) in epoch seconds of the command that made the record: ``meta.started`` and
    ``meta.finished``; without them, ``created`` minus ``wall_seconds``."""
    if meta.started is not None and meta.finished is not None:
        return float(meta.started), float(meta.finished)
    end = _epoch(meta.created)
    if end is None:
        end = time.time()
    return end - float(meta.wall_seconds or 0.0), end


def _job_span(job: JobRecord, run_dir: Path) -> tuple[float, float] | None:
    """(start, end) of one job: its record's own times if it has them, else the time its
    record was written minus its fit, segment and scoring seconds."""
    t = job.timing or {}
    if t.get("started") is not None and t.get("finished") is not None:
        return float(t["started"]), float(t["finished"])
    from bgbench.execution.runner import job_path

    end = None
    for fp in (job.fingerprint or None, None):  # records named by fingerprint; older ones were not
        try:
            end = job_path(run_dir, job.key.method, job.protocol, job.key.split, job.key.video, fp).stat().st_mtime
            break
        except OSError:
            continue
    if end is None:
        return None
    spent = sum(float(t.get(k) or 0.0) for k in ("fit_seconds", "segment_seconds_total", "scoring_seconds"))
    return end - spent, end


def child_span(jobs: Iterable[JobRecord], run_dir: Path, parent: tuple[float, float]) -> tuple[float, float]:
    spans = [s for s in (_job_span(j, run_dir) for j in jobs) if s is not None]
    if not spans:
        return parent
    return min(s for s, _ in spans), max(e for _, e in spans)


# --- what is logged ---------------------------------------------------------------------
_BAD = re.compile(r"[^\w\-. :]")
NO_CATEGORY = "-"  # the category of a dataset without categories (the tables leave its column out)


def _name(part: str) -> str:
    """A dataset or category name as a metric-name segment (MLflow allows word characters,
    ``-``, ``.``, space and ``:``; ``/`` separates segments)."""
    return _BAD.sub("_", str(part)) or "_"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def metric_sources(summary: Summary) -> dict[str, tuple[str, ...]]:
    """Every metric name a nested run may carry and where its number is in ``summary``:
    ``(dataset, "categories", category, metric)``, ``(dataset, "overall", metric)``,
    ``(dataset, "average_precision")``, ``(dataset, "fps_median")``, ``("jobs_failed",)`` or
    ``("jobs_truncated",)``.
    The names are the report's: ``<metric>/<dataset>/<category>`` and
    ``<metric>/<dataset>/overall`` (the dataset's overall as the tables print it: the mean
    of its category means), ``average_precision/<dataset>`` (none for a binary method: the
    tables' "n/a (binary)"), ``fps/<dataset>``, ``jobs_failed``, ``jobs_truncated``. Nothing is averaged across
    datasets. Two numbers that would share a name (a category called "overall", names that
    differ only in characters MLflow refuses) are a ValueError, never one hiding the other."""
    out: dict[str, tuple[str, ...]] = {}

    def put(name: str, source: tuple[str, ...]) -> None:
        if name in out and out[name] != source:
            raise ValueError(f"{summary.label} under {summary.protocol_key}: {source} and {out[name]} "
                             f"would both be logged as {name!r}")
        out[name] = source

    for ds, d in summary.datasets.items():
        dn = _name(ds)
        for cat in d.categories:
            if cat == NO_CATEGORY:  # a dataset without categories: its overall is that one group
                continue
            for key in ALL_KEYS:
                put(f"{key}/{dn}/{_name(cat)}", (ds, "categories", cat, key))
        for key in ALL_KEYS:
            put(f"{key}/{dn}/overall", (ds, "overall", key))
        if not d.binary:
            put(f"average_precision/{dn}", (ds, "average_precision"))
        put(f"fps/{dn}", (ds, "fps_median"))
    put("jobs_failed", ("jobs_failed",))
    put("jobs_truncated", ("jobs_truncated",))
    return out


def summary_value(summary: Summary, source: tuple[str, ...]) -> Any:
    """The number of ``summary`` at ``source`` (a value of ``metric_sources``)."""
    if source == ("jobs_failed",):
        return summary.jobs_failed
    if source == ("jobs_truncated",):
        return summary.jobs_truncated
    d = summary.datasets[source[0]]
    if source[1] == "categories":
        return d.categories[source[2]].get(source[3])
    if source[1] == "overall":
        return d.overall.get(source[2])
    return getattr(d, source[1])


def run_metrics(summary: Summary) -> dict[str, float]:
    """The metrics of one method label under one protocol key (``metric_sources`` names
    them), each the summary's own number; undefined values are left out."""
    out = {}
    for name, source in metric_sources(summary).items():
        v = summary_value(summary, source)
        if _finite(v):
            out[name] = float(v)
    return out


def train_curves(jobs: Iterable[JobRecord]) -> list[tuple[str, float, int]]:
    """Training losses by step, ``train/<split>/<name>``: one model per split (a fold, a
    video), whose history every job of that split repeats."""
    out, seen = [], set()
    for j in jobs:
        if not j.loss_history or j.key.split in seen:
            continue
        seen.add(j.key.split)
        for step, h in enumerate(j.loss_history):
            for k, v in h.items():
                if k != "step" and _finite(v):
                    out.append((f"train/{_name(j.key.split)}/{_name(k)}", float(v), int(h.get("step", step))))
    return out


def _params(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested values flattened to ``a.b.c`` names, each part as MLflow allows it (a protocol
    key's ``[seed=0,rule=n:200]`` becomes ``_seed_0_rule_n:200_``); lists as JSON."""
    out: dict[str, str] = {}
    for k, v in d.items():
        name = f"{prefix}{_name(k)}"
        flat = (_params(v, f"{name}.") if isinstance(v, Mapping) and v else
                {name: json.dumps(dict(v) if isinstance(v, Mapping) else list(v))
                 if isinstance(v, (list, tuple, Mapping)) else str(v)})
        for n, text in flat.items():
            if n in out:
                raise ValueError(f"two parameters would both be logged as {n!r}")
            out[n] = text
    return {k: v[:6000] for k, v in out.items()}


def resolved_device(results: Results, jobs: Iterable[JobRecord] | None = None) -> str:
    """The device(s) the jobs ran on, as they recorded it (``timing.device``: ``cpu``,
    ``cuda:0``), comma-separated; never the ``auto`` that was asked. Without a job that says
    (every job failed), ``meta.device`` resolved here (``auto``: cuda if this machine has
    it, else cpu)."""
    jobs = results.jobs if jobs is None else jobs
    devices = sorted({str(j.timing["device"]) for j in jobs if j.timing and j.timing.get("device")})
    if devices:
        return ",".join(devices)
    asked = results.meta.device
    if asked != "auto":
        return asked
    try:
        from bgbench.execution.device import resolve

        return resolve(asked)
    except Exception:  # noqa: BLE001 - no torch here: the CPU is what auto gets
        return "cpu"


def parent_run_name(results: Results, run_dir: Path) -> str:
    """The parent run's name: the run folder and what ran, e.g. ``deep_cpu · siamese_fcn[cpu] ·
    scene-specific`` (labels and protocol names in the record's order; more than three of either
    are counted, so the name stays readable)."""
    def some(items: list[str]) -> str:
        return ", ".join(items) if len(items) <= 3 else f"{', '.join(items[:3])} +{len(items) - 3} more"

    labels = list(dict.fromkeys(label for label, _ in results.summaries))
    names = list(dict.fromkeys(s.protocol for s in results.summaries.values()))
    if not labels:
        labels = [label_of(m, results.meta.configs.get(m, "default")) for m in results.meta.methods]
        names = list(dict.fromkeys(str(p.get("name", k)) for k, p in results.meta.protocols.items()))
    return " · ".join(x for x in (Path(run_dir).resolve().name, some(labels), some(names)) if x)[:250]


def parent_params(meta: RunMeta, device: str | None = None) -> dict[str, str]:
    """The parent's parameters; ``device`` the resolved one (``resolved_device``), never auto;
    the experiment file's name and SHA-1 where the run came from one (its text is the
    ``experiment.toml`` artifact)."""
    exp = {"experiment": {"file": meta.experiment.get("file"), "sha1": meta.experiment.get("sha1")}} \
        if meta.experiment else {}
    return _params({"suite": meta.suite, "seed": meta.seed, "device": device or meta.device,
                    "threshold": meta.threshold, "config": meta.config, "protocols": meta.protocols,
                    "videos": len(meta.videos), **exp})


def parent_tags(meta: RunMeta, run_dir: Path, rid: str) -> dict[str, str]:
    """What may change between re-runs of one folder goes in tags (mutable), not params. No
    absolute path: the run folder is named by its own name (paths are the machine's, not the run's)."""
    tags = {"bgbench.run_id": rid, "bgbench.kind": _PARENT, "bgbench.run_dir": Path(run_dir).resolve().name,
            "bgbench.created": str(meta.created), "mlflow.source.git.commit": str(meta.git),
            "bgbench.executor": f"{meta.executor} jobs={meta.jobs} threads={meta.threads}"}
    tags.update({f"bgbench.version.{k}": str(v) for k, v in meta.versions.items()})
    return tags


def _summary_jobs(results: Results, summary: Summary) -> tuple[JobRecord, ...]:
    return tuple(results.jobs_of(summary.label, summary.protocol_key))


def child_config(results: Results, summary: Summary, jobs: Sequence[JobRecord] | None = None) -> dict[str, Any]:
    """A nested run's configuration, what its parameters and ``config.json`` hold: the
    label's method, config and family as its records name them, the method's resolved
    parameters (``meta.methods``), the protocol and its options, threshold, seed, device.
    ``jobs``: the summary's jobs where the caller has them already."""
    meta = results.meta
    jobs = _summary_jobs(results, summary) if jobs is None else jobs
    family = results.family(summary.label)
    devices = sorted({str(j.timing["device"]) for j in jobs if j.timing and j.timing.get("device")})
    return {"method": summary.method, "label": summary.label, "config": summary.config, "family": family,
            "params": dict(meta.methods.get(summary.method, {})), "protocol": summary.protocol,
            "protocol_key": summary.protocol_key,
            "protocol_options": dict(meta.protocols.get(summary.protocol_key, {})),
            "threshold": meta.threshold, "seed": meta.seed, "device": resolved_device(results, jobs),
            "splits": sorted({j.key.split for j in jobs}), "videos": len({j.key.video for j in jobs})}


def child_report(results: Results, summary: Summary, out: Path, jobs: Sequence[JobRecord]) -> list[Path]:
    """The nested run's own tables and plots: the report's per-dataset category and metrics
    tables (Markdown, CSV) and PR curves, for this label and protocol key alone (``jobs``:
    the summary's)."""
    from bgbench.reports import plots, tables

    key = summary.protocol_key
    sub = dataclasses.replace(results, jobs=tuple(jobs), summaries={(summary.label, key): summary})
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def write(name: str, text: str) -> None:
        (out / name).write_text(text)
        written.append(out / name)

    for p, ds in tables.protocols_and_datasets(sub):
        slug = _name(ds).replace(" ", "")
        h, rows = tables.category_table(sub, p, ds)
        write(f"f_measure_{slug}.md", tables.markdown(h, rows) + "\n")
        write(f"f_measure_{slug}.csv", tables.to_csv(h, rows))
        h, rows, _ = tables.metrics_table(sub, p, ds)
        write(f"metrics_{slug}.md", tables.markdown(h, rows) + "\n")
        write(f"metrics_{slug}.csv", tables.to_csv(h, rows))
        written += plots.pr_curves(sub, p, ds, out / f"pr_{slug}.png")
    h, rows = tables.long_table(sub, key)
    write("categories.csv", tables.to_csv(h, rows))
    return written


def child_tags(summary: Summary, family: str, rid: str, parent_run_id: str) -> dict[str, str]:
    """A nested run's tags: its identity (``bgbench.key`` = label|protocol key) and the
    label, method, config, family and protocol, each from the record."""
    return {"mlflow.parentRunId": parent_run_id, "bgbench.run_id": rid, "bgbench.kind": _CHILD,
            "bgbench.key": f"{summary.label}|{summary.protocol_key}", "bgbench.label": summary.label,
            "bgbench.method": summary.method, "bgbench.config": summary.config, "bgbench.family": family,
            "bgbench.protocol": summary.protocol, "bgbench.protocol_key": summary.protocol_key,
            # truncated training (max_train_seconds) and collapsed outputs are said on the run itself
            "bgbench.status": "truncated" if summary.jobs_truncated else "ok" if summary.jobs_ok else "failed",
            **({"bgbench.degenerate": "; ".join(f"{v}: {why}" for v, why in summary.degenerate.items())[:5000]}
               if summary.degenerate else {})}


# --- logging ------------------------------------------------------------------------------
def _open(uri: str, experiment: str):
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    MlflowClient = _mlflow_client()
    db = _sqlite_path(uri)
    if db is not None:
        new_sqlite_store(db)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        return client, exp.experiment_id
    kwargs = {}
    if db is not None:  # keep artifacts beside the database, not in the cwd
        kwargs["artifact_location"] = (db.resolve().parent / "mlartifacts").as_uri()
    return client, client.create_experiment(experiment, **kwargs)


def _search(client, exp_id: str, rid: str, kind: str) -> list:
    from mlflow.entities import ViewType

    out, token = [], None
    while True:
        page = client.search_runs([exp_id],
                                  filter_string=f"tags.`bgbench.run_id` = '{rid}' and tags.`bgbench.kind` = '{kind}'",
                                  run_view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token)
        out += list(page)
        token = page.token
        if not token:
            return out


def _reusable(run, params: dict[str, str], metric_keys: set[str]) -> bool:
    """Can ``run`` be brought to mirror the record in place? Not if a logged parameter has
    another value now (MLflow cannot change it) or the run holds metrics the record lacks."""
    old = run.data.params
    if any(k in old and old[k] != v for k, v in params.items()):
        return False
    return not (set(run.data.metrics) - metric_keys)


def _upsert(client, exp_id: str, found: list, name: str, start: float, tags: dict[str, str],
            params: dict[str, str], metric_keys: set[str]) -> str:
    """The run to update: the one found if it can mirror the record, else a new one (any other
    found is deleted: a duplicate from an earlier version, or a run that cannot be updated)."""
    from mlflow.entities import Param, RunStatus, RunTag

    keep = next((r for r in found if _reusable(r, params, metric_keys)), None)
    for r in found:
        if r is not keep:
            client.delete_run(r.info.run_id)
    if keep is None:
        run = client.create_run(exp_id, start_time=int(start * 1000), tags=tags, run_name=name)
        rid = run.info.run_id
    else:
        rid = keep.info.run_id
        client.update_run(rid, status=RunStatus.to_string(RunStatus.RUNNING), name=name)
    client.log_batch(rid, params=[Param(k, v) for k, v in params.items()],
                     tags=[RunTag(k, v) for k, v in tags.items()])
    return rid


def _log_metrics(client, rid: str, metrics: list) -> None:
    for k in range(0, len(metrics), 900):
        client.log_batch(rid, metrics=metrics[k:k + 900])


def log_run(results: Results, run_dir: Path, uri: str | None = None, report_dir: Path | None = None,
            experiment: str = EXPERIMENT, progress: dict | None = None) -> str:
    """Log (or bring up to date) the record's parent and its nested runs, one per (label,
    protocol key) of ``results.summaries``; return the parent run id. Raises on failure,
    after marking what it started FAILED where the store still answers. ``progress``
    receives ``parent_run_id`` as soon as it is known."""
    import tempfile

    from mlflow.entities import Metric, RunStatus

    run_dir = Path(run_dir)
    uri = uri or default_uri()
    progress = {} if progress is None else progress
    client, exp_id = _open(uri, experiment)
    meta = results.meta
    rid = record_id(results, run_dir)
    start, end = run_span(meta)
    end_ms = int(end * 1000)
    pid = _upsert(client, exp_id, _search(client, exp_id, rid, _PARENT), parent_run_name(results, run_dir), start,
                  parent_tags(meta, run_dir, rid), parent_params(meta, resolved_device(results)), set())
    progress["parent_run_id"] = pid
    current = [pid]
    try:
        client.log_artifact(pid, str(run_dir / "results.json"))
        if meta.experiment and isinstance(meta.experiment.get("text"), str):  # the file the run came from, as it was
            with tempfile.TemporaryDirectory(prefix="bgbench-exp-") as tmp:
                (Path(tmp) / "experiment.toml").write_text(meta.experiment["text"])
                client.log_artifact(pid, str(Path(tmp) / "experiment.toml"))
        if report_dir is not None and Path(report_dir).is_dir():
            client.log_artifacts(pid, str(report_dir), artifact_path="report")
        children: dict[Any, list[Any]] = {}
        for r in _search(client, exp_id, rid, _CHILD):
            children.setdefault(r.data.tags.get("bgbench.key"), []).append(r)
        wanted = set()
        for (label, key), summary in sorted(results.summaries.items()):
            jobs = _summary_jobs(results, summary)
            c_start, c_end = child_span(jobs, run_dir, (start, end))
            cfg = child_config(results, summary, jobs)
            metrics = [Metric(k, v, end_ms, 0) for k, v in run_metrics(summary).items()]
            metrics += [Metric(k, v, end_ms, step) for k, v, step in train_curves(jobs)]
            tags = child_tags(summary, cfg["family"], rid, pid)
            wanted.add(tags["bgbench.key"])
            cid = _upsert(client, exp_id, children.get(tags["bgbench.key"], []), f"{label} · {key}", c_start, tags,
                          _params({k: v for k, v in cfg.items() if k != "splits"}), {m.key for m in metrics})
            current.append(cid)
            _log_metrics(client, cid, metrics)
            with tempfile.TemporaryDirectory(prefix="bgbench-child-") as tmp:
                (Path(tmp) / "config.json").write_text(json.dumps(cfg, indent=1, default=str))
                client.log_artifact(cid, str(Path(tmp) / "config.json"))
                if report_dir is not None and Path(report_dir).is_dir():
                    child_report(results, summary, Path(tmp) / "report", jobs)
                    client.log_artifacts(cid, str(Path(tmp) / "report"), artifact_path="report")
            client.set_terminated(cid, RunStatus.to_string(RunStatus.FINISHED), end_time=int(c_end * 1000))
            current.pop()
        for key, runs in children.items():
            if key not in wanted:  # the record no longer has it (the folder was re-run with fewer methods)
                for r in runs:
                    client.delete_run(r.info.run_id)
        client.set_terminated(pid, RunStatus.to_string(RunStatus.FINISHED), end_time=end_ms)
    except BaseException:
        for r in reversed(current):  # tell the store, if it still answers; a retry finishes them
            try:
                client.set_terminated(r, RunStatus.to_string(RunStatus.FAILED), end_time=end_ms)
            except Exception:  # noqa: BLE001
                break
        raise
    return pid


# --- the outcome file, the background logger, the retry ----------------------------------
_STATE_LOCK = ".tracking.state.lock"


def read_state(run_dir: Path) -> dict | None:
    try:
        return json.loads(_read(Path(run_dir) / STATE))
    except (OSError, ValueError):
        return None


def _write_state(run_dir: Path, **state: Any) -> dict:
    from bgbench.records.results import write_json

    state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_json(Path(run_dir) / STATE, state)
    return state


def _transition(run_dir: Path, token: str, force: bool = False, **state: Any) -> dict | None:
    """Write the logger ``token``'s state, unless a newer logger owns the file (then None);
    ``force`` takes the file over."""
    with _locked(Path(run_dir) / _STATE_LOCK):
        cur = read_state(run_dir)
        if not force and cur is not None and cur.get("token") not in (None, token):
            return None
        return _write_state(run_dir, token=token, **state)


def retry_command(run_dir: Path, uri: str) -> str:
    return f"bgbench log {run_dir} --tracking-uri {uri}"


def log_folder(run_dir: Path, uri: str | None = None, token: str | None = None, report: bool = True) -> dict:
    """Log a run folder now and record the outcome in ``RUN_DIR/tracking.json``; return that
    outcome. ``report``: upload ``RUN_DIR/report`` if there is one (not for a run made with
    ``--no-report``, whose report folder, if any, is an older run's). One logger per folder
    at a time (a lock file in it): a second waits its turn. A background logger (``token``)
    that a newer one has superseded by then logs nothing and returns state ``superseded``;
    without ``token`` (``bgbench log``) it takes over."""
    from bgbench.records.results import load_results

    run_dir = Path(run_dir)
    load_results(run_dir)  # a missing or bad record is BadInput, before anything is written
    uri = uri or default_uri()
    report_dir = run_dir / "report" if report and (run_dir / "report").is_dir() else None
    force, token = token is None, token or uuid.uuid4().hex
    with _locked(run_dir / _FOLDER_LOCK):
        t0 = time.time()
        if _transition(run_dir, token, force, state="logging", uri=uri, pid=os.getpid(), started=t0) is None:
            return {"state": "superseded", "uri": uri}
        progress: dict = {}
        db = _sqlite_path(uri)
        try:
            res = load_results(run_dir)  # read again under the lock: a re-run may have rewritten it meanwhile
            with _locked(db.with_name(db.name + ".lock")) if db is not None else contextlib.nullcontext():
                pid = log_run(res, run_dir, uri, report_dir, progress=progress)
        except Exception as e:  # noqa: BLE001 - any tracking failure leaves the results intact
            st: dict[str, Any] = {"state": "failed", "uri": uri, "parent_run_id": progress.get("parent_run_id"),
                  "error": f"{type(e).__name__}: {e}"[:2000], "started": t0, "seconds": round(time.time() - t0, 3),
                  "retry": retry_command(run_dir, uri)}
        else:
            (run_dir / LEGACY_PENDING).unlink(missing_ok=True)
            st = {"state": "logged", "uri": uri, "parent_run_id": pid, "started": t0,
                  "seconds": round(time.time() - t0, 3)}
        st["pid"] = os.getpid()
        return _transition(run_dir, token, **st) or st


def log_now(run_dir: Path, uri: str | None = None) -> int:
    """``bgbench log``: log in the foreground, to ``uri``, else the URI the run used, else the
    default; say what happened; 0 if logged, 1 if not."""
    if uri is None:
        uri = (read_state(run_dir) or {}).get("uri") or _legacy_uri(run_dir) or default_uri()
    return _say(log_folder(run_dir, uri), run_dir)


def _legacy_uri(run_dir: Path) -> str | None:
    try:
        return json.loads(_read(Path(run_dir) / LEGACY_PENDING)).get("uri")
    except (OSError, ValueError):
        return None


def _say(st: dict, run_dir: Path) -> int:
    if st["state"] == "logged":
        print(f"bgbench: logged to MLflow at {st['uri']} (parent run {st['parent_run_id']})", file=sys.stderr)
        return 0
    if st["state"] == "superseded":
        print(f"bgbench: a newer logger of {run_dir} took over; nothing to do", file=sys.stderr)
        return 0
    print(f"bgbench: could not log {run_dir} to MLflow at {st['uri']} ({st['error']}); the results are kept; "
          f"retry with: {st['retry']}", file=sys.stderr)
    return 1


AFTER_EXIT_WAIT = 10.0  # seconds a deferred logger waits for the command to exit, at most


def start_background(run_dir: Path, uri: str | None = None, report: bool = True, after_exit: bool = False) -> dict:
    """Start the logger as a detached, niced process and return at once; it records its
    outcome in ``RUN_DIR/tracking.json`` (written here first: ``pending``, with its pid).
    ``after_exit``: this process exits as soon as it returns (the command line), so the
    logger waits for that (at most AFTER_EXIT_WAIT seconds) before its interpreter loads
    anything: on a busy machine its start-up no longer slows the command's own exit."""
    from bgbench.execution.child import after_exit as deferred, module_command

    run_dir = Path(run_dir).resolve()
    uri = uri or default_uri()
    token = uuid.uuid4().hex
    with _locked(run_dir / _STATE_LOCK):  # the logger's first state waits for ours
        pending = {"state": "pending", "uri": uri, "retry": retry_command(run_dir, uri), "token": token}
        _write_state(run_dir, **pending)
        try:
            with open(run_dir / LOG, "ab") as log:
                cmd = deferred("bgbench.tracking", os.getpid(), AFTER_EXIT_WAIT) if after_exit else \
                    module_command("bgbench.tracking")
                p = subprocess.Popen(
                    cmd + [str(run_dir), "--tracking-uri", uri, "--token", token] + ([] if report else ["--no-report"]),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=str(run_dir),
                    start_new_session=True, close_fds=True)
        except OSError as e:
            return _write_state(run_dir, **{**pending, "state": "failed", "error": f"could not start the logger: {e}"})
        return _write_state(run_dir, **pending, pid=p.pid)


def _alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child, now reaped
            return False
    except (ChildProcessError, OSError, AttributeError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def wait(run_dir: Path, timeout: float = 600.0) -> dict | None:
    """Wait for the folder's logger to finish; return its final state (``logged`` or
    ``failed``; a logger that died without saying is reported failed), the last state seen
    on timeout, or None if the folder has no tracking state."""
    deadline = time.monotonic() + timeout
    while True:
        st = read_state(run_dir)
        if st is None or st.get("state") in ("logged", "failed"):
            return st
        if st.get("state") in ("pending", "logging") and st.get("pid") and not _alive(int(st["pid"])):
            time.sleep(0.2)  # it may have written its outcome just now
            st = read_state(run_dir) or st
            if st.get("state") in ("pending", "logging"):
                return {**st, "state": "failed", "error": "the logger died before recording its outcome",
                        "retry": retry_command(Path(run_dir), st.get("uri") or default_uri())}
            return st
        if time.monotonic() > deadline:
            return st
        time.sleep(0.2)


def _main(argv: list[str] | None = None) -> int:
    """The background logger: ``python -m bgbench.tracking RUN_DIR [--tracking-uri URI]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bgbench.tracking", description="log a run folder to MLflow")
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--tracking-uri")
    ap.add_argument("--token", help="the id start_background gave this logger")
    ap.add_argument("--no-report", action="store_true", help="the run made no report: upload none")
    args = ap.parse_args(argv)
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)  # the user's next command comes first
    uri = args.tracking_uri or default_uri()
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} logging {args.run_dir} to {uri}", flush=True)
    try:
        st = log_folder(args.run_dir, uri, args.token, report=not args.no_report)
    except Exception as e:  # noqa: BLE001 - e.g. an unreadable results.json: say so in the outcome file
        st = {"state": "failed", "uri": uri, "error": f"{type(e).__name__}: {e}"[:2000],
              "retry": retry_command(args.run_dir, uri)}
        _transition(args.run_dir, args.token or uuid.uuid4().hex, **st)
    return _say(st, args.run_dir)


if __name__ == "__main__":
    code = _main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the outcome is recorded: skip the seconds of tearing MLflow's modules down
