"""``bgbench check``: the CI regression gate. Compares a run's per-method, per-category
F-measure, and the methods' machine-normalised speed, with a stored reference.

Accuracy comes from the run's typed record (``bgbench.records.types.Results``, read with
``bgbench.records.results.load_results``), keyed by method label and protocol key: an F below the
reference by more than ``f_tol`` is a regression, and so is a reference entry missing from
the run. The reference file keeps its own format (``REF_SCHEMA``).

Speed is measured apart from the run, by ``speed_gate.measure``: one process, one job, one
thread, the reference workload and every method interleaved over several repeats. A speed
change is judged only beyond the larger of the tolerance and the spread measured on
either side (the check says which bound applied): a drop inside the spread is noise, not a
regression. The tables name the parameters that differ from the reference's.

A reference that is not a well-formed record is bad input (exit 2), never a regression
(exit 1), which CI would read as the code's fault.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

from bgbench.errors import BadInput
from bgbench.records.types import Results
from bgbench.records.results import read_json, write_json

REF_SCHEMA = "bgbench-reference/2"
NOT_COMPARABLE = ("NOT COMPARABLE ({n} truncated job(s): training stopped by max_train_seconds; "
                  "re-run without the cap, or with --accept-truncated)")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def accuracy_from(results: Results) -> dict[str, Any]:
    """accuracy[label][protocol key][dataset][category or "overall"] = F-measure, the
    summary's own numbers (the dataset's overall is the tables' mean of category means).
    Summaries are keyed by protocol key (name and options), so two rules of one protocol
    stay apart."""
    out: dict[str, Any] = {}
    for (label, key), s in sorted(results.summaries.items()):
        for ds, d in s.datasets.items():
            f = {c: m.get("f_measure") for c, m in d.categories.items()}
            f["overall"] = d.overall.get("f_measure")
            out.setdefault(label, {}).setdefault(key, {})[ds] = f
    return out


def params_from(results: Results) -> dict[str, Any]:
    """label -> its method's resolved parameters (``meta.methods``), per the record."""
    methods = results.meta.methods
    return {label: dict(methods.get(s.method, {})) for (label, _), s in sorted(results.summaries.items())}


def videos_from(results: Results) -> dict[str, Any]:
    """videos[label][protocol key][dataset] = the ids of the videos its numbers are over (its
    scored jobs), sorted: a run that lost a video (a failed job, less data) or gained one is
    not compared with these numbers as if it were the same."""
    out: dict[str, Any] = {}
    for (label, key), s in sorted(results.summaries.items()):
        for ds, d in s.datasets.items():
            out.setdefault(label, {}).setdefault(key, {})[ds] = sorted(d.videos)
    return out


def run_settings(results: Results) -> dict[str, Any]:
    """What every number of the run depends on beyond methods, data and protocols."""
    return {"threshold": results.meta.threshold, "seed": results.meta.seed}


def reference_from(results: Results, speed: dict | None) -> dict[str, Any]:
    return {"schema": REF_SCHEMA, "git": results.meta.git, "accuracy": accuracy_from(results),
            "videos": videos_from(results), "run": run_settings(results), "params": params_from(results),
            "speed": speed}


def validate_results(res: Results, where: Path | str) -> Results:
    """What the gate reads beyond the record's schema, checked: every dataset of every
    summary has an F-measure per category and overall. BadInput names what is wrong."""
    fix = "give a run folder written by 'bgbench run' (its results.json), or re-run"
    for (label, key), s in sorted(res.summaries.items()):
        for name, d in s.datasets.items():
            if not (all(isinstance(c, Mapping) and "f_measure" in c for c in d.categories.values())
                    and "f_measure" in d.overall):
                raise BadInput(f"summary[{label!r}][{key!r}][{name!r}] lacks categories/overall F-measures",
                               where, fix)
    return res


def load_reference(path: Path) -> dict:
    fix = "write one with 'bgbench check RUN_DIR --reference FILE --update'"
    ref = read_json(path, missing_fix=f"give the reference JSON to --reference, or {fix}")
    if not isinstance(ref, dict) or ref.get("schema") != REF_SCHEMA:
        raise BadInput(f"is not a bgbench reference ({REF_SCHEMA})", path, fix)
    acc = ref.get("accuracy")
    if not isinstance(acc, dict):
        raise BadInput("has no 'accuracy' object", path, fix)
    if not acc:
        raise BadInput("has an empty 'accuracy' object: it checks nothing", path, fix)
    for method, per in acc.items():  # an empty or null level would silently drop its checks
        if not isinstance(per, dict) or not per:
            raise BadInput(f"accuracy[{method!r}] is not an object of protocols", path, fix)
        for proto, per_ds in per.items():
            if not isinstance(per_ds, dict) or not per_ds:
                raise BadInput(f"accuracy[{method!r}][{proto!r}] is not an object of datasets", path, fix)
            for ds, f in per_ds.items():
                if not isinstance(f, dict) or not any(_number(v) for v in f.values()) \
                        or not all(v is None or _number(v) for v in f.values()):
                    raise BadInput(f"accuracy[{method!r}][{proto!r}][{ds!r}] is not an object of numbers", path, fix)
    videos = ref.get("videos")
    if videos is not None and not (isinstance(videos, dict) and all(
            isinstance(per, dict) and all(isinstance(per_ds, dict) and all(
                isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in per_ds.values())
                for per_ds in per.values()) for per in videos.values())):
        raise BadInput("has 'videos' that is not label -> protocol -> dataset -> a list of video ids", path, fix)
    if not isinstance(ref.get("run", {}), dict):
        raise BadInput("has 'run' that is not an object", path, fix)
    speed = ref.get("speed")
    if speed is not None:
        ms = speed.get("methods") if isinstance(speed, dict) else None
        if not isinstance(ms, dict) or not all(
                isinstance(v, dict) and _number(v.get("median")) and (v.get("spread") is None or _number(v["spread"]))
                for v in ms.values()):
            raise BadInput("has a 'speed' section without a number 'median' (and 'spread') per method", path, fix)
    if not isinstance(ref.get("params", {}), dict):
        raise BadInput("has 'params' that is not an object", path, fix)
    return ref


def _changed(ref_params: dict, now_params: dict) -> str:
    keys = sorted(k for k in set(ref_params) | set(now_params) if ref_params.get(k) != now_params.get(k))
    return ", ".join(f"{k}: {ref_params.get(k)!r} -> {now_params.get(k)!r}" for k in keys)


def _f_items(f_ref_all: dict) -> list[tuple[str, str]]:
    """(key in the reference, metric name) of the F-measures to check on one dataset: every
    category and ``overall``; where the reference has one category, only that category (its
    F is the overall: one check, not two; and the run must have the category, not only an
    overall over others), named "F CATEGORY", or "F overall" for a dataset without
    categories ("-")."""
    cats = [c for c in f_ref_all if c != "overall"]
    if len(cats) == 1 and "overall" in f_ref_all:
        return [(cats[0], "F overall" if cats[0] == "-" else f"F {cats[0]}")]
    return [(c, f"F {c}") for c in f_ref_all]


def _first(ids: list[str]) -> str:
    return ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")


def _video_rows(s: Any, ref_ids: list[str] | None, ds: str) -> list[tuple[str, str]]:
    """(metric, status) rows for a dataset's videos: a failed job is a regression, and so is a
    video of the reference's that the run did not score; a video the reference does not
    cover makes the numbers not comparable (the reference is over other data: update it).
    A reference written before video lists were kept (no ``videos``) checks failures only."""
    now = set(s.datasets[ds].videos) if s is not None and ds in s.datasets else set()
    failed = sorted({str(f.get("video")) for f in (s.failures.get(ds, ()) if s is not None else ())})
    rows = []
    if failed:
        rows.append(("jobs", f"REGRESSION ({len(failed)} failed job(s): {_first(failed)})"))
    if ref_ids is not None:
        missing = sorted(set(ref_ids) - now - set(failed))
        if missing:
            rows.append(("videos", f"REGRESSION ({len(missing)} of the reference's {len(ref_ids)} video(s) not in the "
                                   f"run: {_first(missing)})"))
        extra = sorted(now - set(ref_ids))
        if extra:
            rows.append(("videos", f"NOT COMPARABLE ({len(extra)} video(s) the reference does not cover: "
                                   f"{_first(extra)}; update the reference for new data)"))
    return rows


def compare_accuracy(results: Results, reference: dict, f_tol: float) -> list[dict[str, Any]]:
    """One row per (method, protocol, dataset, category; a dataset of one category: its
    overall only): reference, current, delta, status (ok | better | REGRESSION | REGRESSION
    (missing from the run) | NOT COMPARABLE (...)), changed parameters; ``method``,
    ``protocol``, ``dataset`` and ``category`` apart too, for machines. A method whose run has
    truncated jobs (training stopped by ``max_train_seconds`` before its steps, not accepted
    with ``--accept-truncated``) is not comparable: its numbers depend on the machine's speed,
    and the gate fails on it."""
    cur, params = accuracy_from(results), params_from(results)
    rows = []
    now_run = run_settings(results)
    for k, v in (reference.get("run") or {}).items():  # numbers at another threshold or seed are other numbers
        if k in now_run and now_run[k] != v:
            rows.append({"what": "run", "metric": k, "reference": None, "current": None, "delta": None,
                         "status": f"NOT COMPARABLE ({k} {now_run[k]!r}, the reference's {v!r})", "changed": "",
                         "method": None, "protocol": None, "dataset": None, "category": None})
    ref_videos = reference.get("videos")
    for method, per in reference["accuracy"].items():
        changed = _changed(reference.get("params", {}).get(method, {}), params.get(method, {})) if method in params else ""
        for proto, per_ds in per.items():
            for ds, f_ref_all in per_ds.items():
                now = cur.get(method, {}).get(_run_key(results, proto), {}).get(ds)
                where = f"{method} {proto} {ds}"
                ids = {"method": method, "protocol": proto, "dataset": ds}
                if now is None:
                    rows.append({"what": where, "metric": "all", "reference": None, "current": None, "delta": None,
                                 "status": "REGRESSION (missing from the run)", "changed": changed, **ids,
                                 "category": None})
                    continue
                s = results.summary(method, _run_key(results, proto))
                ref_ids = ref_videos.get(method, {}).get(proto, {}).get(ds) if isinstance(ref_videos, dict) else None
                for metric, status in _video_rows(s, ref_ids, ds):
                    rows.append({"what": where, "metric": metric, "reference": len(ref_ids) if ref_ids else None,
                                 "current": len(s.datasets[ds].videos) if s is not None and ds in s.datasets else 0,
                                 "delta": None, "status": status, "changed": changed, **ids, "category": None})
                for cat, name in _f_items(f_ref_all):
                    f_ref, f_now = f_ref_all[cat], now.get(cat)
                    if not _number(f_ref):  # undefined in the reference (no foreground): so it must stay
                        if _number(f_now):
                            rows.append({"what": where, "metric": name, "reference": None, "current": f_now,
                                         "delta": None, "status": "NOT COMPARABLE (F undefined in the reference)",
                                         "changed": changed, **ids, "category": cat})
                        continue
                    delta = f_now - f_ref if _number(f_now) else None
                    status = "REGRESSION" if delta is None or delta < -f_tol else "better" if delta > f_tol else "ok"
                    if s is not None and s.jobs_truncated:
                        status = NOT_COMPARABLE.format(n=s.jobs_truncated)
                    rows.append({"what": where, "metric": name, "reference": f_ref, "current": f_now,
                                 "delta": delta, "status": status, "changed": changed, **ids, "category": cat})
    return rows


def _run_key(results: Results, proto: str) -> str:
    """The run's protocol key for a reference's: the same key, or (a reference written when
    summaries were keyed by protocol name) the one key of that name; ambiguous stays as is."""
    from bgbench.scoring.aggregate import resolve_protocol

    try:
        return resolve_protocol(results, proto)
    except ValueError:
        return proto


SPEED_UNIT = "frames per reference-workload time"  # frames/s x the reference workload's seconds, same machine
SPEED_UNIT_SHORT = "frames/ref"


def compare_speed(speed: dict | None, reference: dict, speed_tol: float, params: dict | None = None
                  ) -> list[dict[str, Any]]:
    """One row per method: normalised speed median (reference, current; ``unit``
    ``SPEED_UNIT``: frames/s times the seconds the reference workload took in the same
    repeat), relative change, the bound applied (max of tolerance and measured spreads),
    status."""
    ref = (reference.get("speed") or {}).get("methods", {})
    if not ref:
        return []
    now = (speed or {}).get("methods", {})
    rows = []
    for label, r in ref.items():
        changed = _changed(reference.get("params", {}).get(label, {}), (params or {}).get(label, {})) if params else ""
        c = now.get(label)
        if c is None:
            rows.append({"what": label, "reference": r["median"], "current": None, "relative": None, "bound": None,
                         "status": "REGRESSION (not measured)", "changed": changed, "unit": SPEED_UNIT})
            continue
        spread = max(r.get("spread") or 0.0, c.get("spread") or 0.0)
        bound = max(speed_tol, spread)
        rel = c["median"] / r["median"] - 1.0
        why = "measured spread" if spread > speed_tol else "tolerance"
        status = (f"REGRESSION (beyond the {why} {bound:.0%})" if rel < -bound else
                  f"faster (beyond the {why} {bound:.0%})" if rel > bound else f"ok (within the {why} {bound:.0%})")
        rows.append({"what": label, "reference": r["median"], "current": c["median"], "relative": rel, "bound": bound,
                     "status": status, "changed": changed, "unit": SPEED_UNIT})
    return rows


def check_reference_target(path: Path, run_dir: Path) -> None:
    """Before ``--update`` writes ``path``: BadInput if it is a file of the run folder (its
    results.json, a job record, the report) or an existing file that is not a bgbench
    reference (``REF_SCHEMA``): ``--update`` replaces a reference, never anything else."""
    import os

    from bgbench.safefs import read_text

    path, run_dir = Path(path), Path(run_dir)
    fix = "give --reference a file outside the run folder, e.g. ci_reference.json"
    if path.resolve().is_relative_to(run_dir.resolve()):
        what = "the run's own record" if path.name == "results.json" else "inside the run folder"
        raise BadInput(f"is {what} ({run_dir}); --update would overwrite it with a reference", "--reference", fix)
    if not os.path.lexists(path):
        return
    try:
        doc = json.loads(read_text(path))
    except (OSError, ValueError, BadInput):
        doc = None
    if not (isinstance(doc, dict) and isinstance(doc.get("schema"), str) and doc["schema"].startswith("bgbench-reference/")):
        raise BadInput("exists and is not a bgbench reference; --update would overwrite it", path,
                       "give --reference a new file name or an existing reference, or move the file away")


def update(results: Results, speed: dict | None, path: Path) -> None:
    cut = sorted(label for (label, _), s in results.summaries.items() if s.jobs_truncated)
    if cut:  # a reference from training cut short by the clock would gate every later run against noise
        raise BadInput(f"has truncated jobs ({', '.join(cut)}: training stopped by max_train_seconds)", "RUN_DIR",
                       "re-run without the cap (or with --accept-truncated) before writing a reference from it")
    write_json(path, reference_from(results, speed))
