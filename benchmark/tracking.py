"""MLflow logging of a results record: one parent run per ``bgbench run``, one nested run
per method x protocol. It only reads results.json and the report folder.

The default store is ``sqlite:///OUT/mlflow.db`` (no server needed); ``--tracking-uri`` or
``MLFLOW_TRACKING_URI`` select any other, an ``mlflow server`` included. A store that cannot
be reached does not fail the run: the results stay on disk, a marker says so, and
``bgbench log RUN_DIR`` uploads them later.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from .aggregate import ALL_KEYS

EXPERIMENT = "bgbench"
PENDING = "tracking_pending.json"


def enabled_by_default() -> bool:
    """``BGBENCH_TRACKING=0`` turns logging off unless a run asks for a URI."""
    return os.environ.get("BGBENCH_TRACKING", "1") not in ("0", "off", "false")


def default_uri(run_dir: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(run_dir).resolve() / 'mlflow.db'}"


def _categories(d: dict, ds: str) -> dict[str, dict]:
    """Categories of one dataset; a dataset without categories counts as one, by its name."""
    return {(ds if c == "-" else c): m for c, m in d["categories"].items()}


def run_metrics(entry: dict) -> dict[str, float]:
    """Metrics of one method x protocol: ``<metric>/<category>`` and ``<metric>/overall``
    (mean of the category means over every dataset), ``average_precision``, ``fps``."""
    cats: dict[str, dict] = {}
    for ds, d in entry["datasets"].items():
        cats.update(_categories(d, ds))
    out: dict[str, float] = {}
    for key in ALL_KEYS:
        vals = []
        for c, m in cats.items():
            v = m.get(key)
            if v is not None and not math.isnan(v):
                out[f"{key}/{c}"] = v
                vals.append(v)
        if vals:
            out[f"{key}/overall"] = sum(vals) / len(vals)
    aps = [d["average_precision"] for d in entry["datasets"].values() if d.get("average_precision") is not None]
    if aps:
        out["average_precision"] = sum(aps) / len(aps)
    if entry.get("fps_median"):
        out["fps"] = entry["fps_median"]
    return {k: float(v) for k, v in out.items() if v is not None and not math.isnan(v)}


def _params(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_params(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v) if isinstance(v, (list, tuple)) else str(v)
    return {k: v[:500] for k, v in out.items()}


def log_run(results: dict, run_dir: Path, uri: str | None = None, report_dir: Path | None = None,
            experiment: str = EXPERIMENT) -> str:
    """Log to MLflow and return the parent run id. Raises on an unreachable store."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    import logging

    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):  # after the import: mlflow configures its loggers on import
        logging.getLogger(name).setLevel(logging.WARNING)

    run_dir = Path(run_dir)
    uri = uri or default_uri(run_dir)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        kwargs = {}
        if uri.startswith("sqlite:"):  # keep artifacts beside the database, not in the cwd
            kwargs["artifact_location"] = (run_dir.resolve() / "mlartifacts").as_uri()
        exp_id = client.create_experiment(experiment, **kwargs)
    else:
        exp_id = exp.experiment_id
    meta = results["meta"]
    now = int(time.time() * 1000)
    parent = client.create_run(exp_id, run_name=f"bgbench {meta.get('suite') or 'run'} {meta.get('created', '')}",
                               tags={"bgbench.run_dir": str(run_dir.resolve()), "mlflow.source.git.commit": str(meta.get("git"))})
    pid = parent.info.run_id
    top = {"suite": meta.get("suite"), "seed": meta.get("seed"), "device": meta.get("device"),
           "threshold": meta.get("threshold"), "config": meta.get("config"), "git": meta.get("git"),
           "versions": meta.get("versions", {}), "protocols": meta.get("protocols", {}),
           "videos": len(meta.get("videos", []))}
    client.log_batch(pid, params=[Param(k, v) for k, v in _params(top).items()])
    if report_dir is not None and Path(report_dir).is_dir():
        client.log_artifacts(pid, str(report_dir), artifact_path="report")
    client.log_artifact(pid, str(run_dir / "results.json"))
    for method, per_proto in results["summary"].items():
        for proto, entry in per_proto.items():
            child = client.create_run(exp_id, run_name=f"{method} · {proto}",
                                      tags={"mlflow.parentRunId": pid, "bgbench.method": method, "bgbench.protocol": proto})
            cid = child.info.run_id
            jobs = [j for j in results["jobs"] if j["protocol"] == proto and _label(j) == method]
            first = jobs[0] if jobs else {}
            params = {"method": method, "protocol": proto, "seed": meta.get("seed"),
                      "protocol_options": meta.get("protocols", {}).get(first.get("protocol_key"), {}),
                      "params": meta.get("methods", {}).get(first.get("method", method), {}),
                      "device": ",".join(sorted({j["timing"]["device"] for j in jobs if j.get("timing")}))}
            metrics = [Metric(k, v, now, 0) for k, v in run_metrics(entry).items()]
            metrics += [Metric("jobs_failed", float(entry["jobs_failed"]), now, 0)]
            for j in jobs:  # training curves
                for step, h in enumerate(j.get("loss_history") or []):
                    for k, v in h.items():
                        if k != "step" and isinstance(v, (int, float)):
                            metrics.append(Metric(f"train/{k}", float(v), now, int(h.get("step", step))))
            for k in range(0, len(metrics), 900):
                client.log_batch(cid, metrics=metrics[k:k + 900], params=[Param(a, b) for a, b in _params(params).items()] if k == 0 else [])
            client.set_terminated(cid)
    client.set_terminated(pid)
    return pid


def _label(job: dict) -> str:
    from .aggregate import method_label

    return method_label(job)


def log_or_defer(results: dict, run_dir: Path, uri: str | None, report_dir: Path | None) -> str | None:
    """Log; on failure keep everything on disk, write a marker, say how to upload later."""
    import sys

    from .results import write_json

    uri = uri or default_uri(run_dir)
    try:
        pid = log_run(results, run_dir, uri, report_dir)
    except Exception as e:  # noqa: BLE001 - any tracking failure leaves the results intact
        write_json(Path(run_dir) / PENDING, {"uri": uri, "error": f"{type(e).__name__}: {e}"[:2000]})
        print(f"bgbench: could not log to MLflow at {uri} ({type(e).__name__}); results are kept in {run_dir}; "
              f"upload them later with: bgbench log {run_dir} --tracking-uri {uri}", file=sys.stderr)
        return None
    pending = Path(run_dir) / PENDING
    if pending.exists():
        pending.unlink()
    print(f"bgbench: logged to MLflow at {uri} (parent run {pid})", file=sys.stderr)
    return pid
