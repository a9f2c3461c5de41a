"""From job records to per-video, per-category and overall numbers.

Category = mean of its videos' metrics (each metric on its own); overall = mean of the
category means, per dataset, as the CDnet site computes them. Undefined values (NaN) are
left out of a mean; ``pooled`` gives the metrics of the summed counts instead.

Jobs are grouped by method label and by the protocol's full key (``protocol_key``: name and
options, e.g. ``scene-specific[seed=0,rule=n:200]``), never by the protocol's name alone:
two rules of one protocol test different pixels and are never ranked or averaged together.
``protocol_display`` gives the key as a reader sees it, ``scene-specific (rule=n:200)``.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any, Iterable

import numpy as np

from .scoring import METRIC_KEYS, metrics, pr_curve, sum_counts

ALL_KEYS = METRIC_KEYS + ("fpr_shadow", "mcc", "mean_dice")


def method_label(job: dict) -> str:
    cfg = job.get("config") or "default"
    return job["method"] if cfg == "default" else f"{job['method']}[{cfg}]"


def _mean(values: Iterable[float | None]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else float("nan")


def dataset_of(video_id: str) -> str:
    return video_id.split("/", 1)[0]


def category_of(video_id: str) -> str:
    return video_id.split("/")[1]


def protocol_key(job: dict) -> str:
    """The job's protocol key (name and options); a record older than keys has its name."""
    return job.get("protocol_key") or job["protocol"]


def _option_text(v: Any) -> str:
    return "+".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def protocol_display(key: str, results: dict | None = None) -> str:
    """``key`` as a reader sees it: the name, then its options in brackets, e.g.
    ``scene-specific (rule=first-half)``. The options come from the record's
    ``meta.protocols``; the seed is left out where it is the run's (``meta.seed``), since
    the page states that once. A record without them shows the key as it is."""
    meta = (results or {}).get("meta") or {}
    opts = (meta.get("protocols") or {}).get(key)
    if not isinstance(opts, dict) or "name" not in opts:
        return key
    run_seed = meta.get("seed", 0) if meta.get("seed") is not None else 0
    shown = [f"{k}={_option_text(v)}" for k, v in opts.items()
             if k != "name" and not (k == "seed" and v == run_seed)]
    return f"{opts['name']} ({', '.join(shown)})" if shown else str(opts["name"])


def protocol_name(key: str, results: dict | None = None) -> str:
    """The protocol's name for ``key``: from a summary entry or ``meta.protocols``, else the
    key itself (a key without options is its name)."""
    for per in ((results or {}).get("summary") or {}).values():
        entry = per.get(key) if isinstance(per, dict) else None
        if isinstance(entry, dict) and entry.get("protocol"):
            return entry["protocol"]
    opts = (((results or {}).get("meta") or {}).get("protocols") or {}).get(key)
    if isinstance(opts, dict) and opts.get("name"):
        return opts["name"]
    return key.split("[", 1)[0]


def resolve_protocol(results: dict, protocol: str) -> str:
    """The summary key ``protocol`` stands for: itself if it is a key of the record, else the
    one key whose protocol has that name. A name that stands for several keys is refused
    (ValueError naming them): their runs tested different pixels."""
    keys = sorted({k for per in results.get("summary", {}).values() for k in per})
    if protocol in keys:
        return protocol
    named = [k for k in keys if protocol_name(k, results) == protocol]
    if len(named) == 1:
        return named[0]
    if named:
        raise ValueError(f"protocol {protocol!r} ran with {len(named)} sets of options: {', '.join(named)}; "
                         "name one of these keys")
    return protocol


def _failure(j: dict) -> dict:
    return {"video": j["video"], "split": j.get("split"), "error": j.get("error") or "failed (no error recorded)"}


def summarize(jobs: list[dict]) -> dict[str, Any]:
    """summary[method][protocol key] = {"protocol" (its name), "protocol_key", "datasets":
    {name: {videos, categories, overall, pooled, average_precision, best_threshold, best_f,
    output_levels, ...}}, "failures": {dataset: [{video, split, error}]}, "fps_median",
    "jobs_ok", "jobs_failed"}. A method whose every job failed keeps its entry, with no
    datasets and its failures, so reports list it rather than drop it."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for j in jobs:
        groups[(method_label(j), protocol_key(j))].append(j)
    out: dict[str, Any] = {}
    for (label, key), js in sorted(groups.items()):
        ok = [j for j in js if j["status"] == "ok"]
        failures: dict[str, list[dict]] = defaultdict(list)
        for j in sorted((j for j in js if j["status"] != "ok"), key=lambda j: (j["video"], str(j.get("split")))):
            failures[dataset_of(j["video"])].append(_failure(j))
        by_ds: dict[str, list[dict]] = defaultdict(list)
        for j in ok:
            by_ds[dataset_of(j["video"])].append(j)
        datasets = {}
        for ds, dj in sorted(by_ds.items()):
            videos = {j["video"]: j["metrics"] for j in sorted(dj, key=lambda j: j["video"])}
            cats: dict[str, list[dict]] = defaultdict(list)
            for vid, m in videos.items():
                cats[category_of(vid)].append(m)
            categories = {c: {k: _mean(m.get(k) for m in ms) for k in ALL_KEYS} for c, ms in sorted(cats.items())}
            overall = {k: _mean(cm[k] for cm in categories.values()) for k in ALL_KEYS}
            counts = sum_counts(j["counts"] for j in dj)
            dice = {"sum": sum(j["dice"]["sum"] for j in dj), "frames": sum(j["dice"]["frames"] for j in dj)}
            # the PR curve and AP pool the pixels of every video of the dataset
            hist = np.sum([[j["histograms"]["negative"], j["histograms"]["shadow"], j["histograms"]["positive"]] for j in dj], axis=0)
            pr = pr_curve(hist)
            fps = [j["timing"]["fps"] for j in dj if j["timing"].get("fps")]
            datasets[ds] = {
                "fps_median": statistics.median(fps) if fps else None,
                "videos": videos, "categories": categories, "overall": overall,
                "pooled": metrics(counts, dice), "counts": counts,
                "average_precision": pr["average_precision"], "best_threshold": pr["best_threshold"],
                "best_f": pr["best_f"], "output_levels": pr["levels"],
            }
        fps = [j["timing"]["fps"] for j in ok if j.get("timing") and j["timing"].get("fps")]
        out.setdefault(label, {})[key] = {
            "protocol": js[0]["protocol"], "protocol_key": key,
            "datasets": datasets,
            "failures": dict(sorted(failures.items())),
            "fps_median": statistics.median(fps) if fps else None,
            "jobs_ok": len(ok),
            "jobs_failed": len(js) - len(ok),
        }
    return out
