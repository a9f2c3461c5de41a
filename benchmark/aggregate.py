"""From job records to per-video, per-category and overall numbers.

Category = mean of its videos' metrics (each metric on its own); overall = mean of the
category means, per dataset, as the CDnet site computes them. Undefined values (NaN) are
left out of a mean; ``pooled`` gives the metrics of the summed counts instead.
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


def summarize(jobs: list[dict]) -> dict[str, Any]:
    """summary[method][protocol] = {"datasets": {name: {videos, categories, overall, pooled,
    average_precision, best_threshold}}, "fps_median", "jobs_ok", "jobs_failed"}."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for j in jobs:
        groups[(method_label(j), j["protocol"])].append(j)
    out: dict[str, Any] = {}
    for (label, proto), js in sorted(groups.items()):
        ok = [j for j in js if j["status"] == "ok"]
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
            hist = np.sum([[j["histograms"]["negative"], j["histograms"]["shadow"], j["histograms"]["positive"]] for j in dj], axis=0)
            pr = pr_curve(hist)
            fps = [j["timing"]["fps"] for j in dj if j["timing"].get("fps")]
            datasets[ds] = {
                "fps_median": statistics.median(fps) if fps else None,
                "videos": videos, "categories": categories, "overall": overall,
                "pooled": metrics(counts, dice), "counts": counts,
                "average_precision": pr["average_precision"], "best_threshold": pr["best_threshold"],
                "best_f": pr["best_f"],
            }
        fps = [j["timing"]["fps"] for j in ok if j.get("timing") and j["timing"].get("fps")]
        out.setdefault(label, {})[proto] = {
            "datasets": datasets,
            "fps_median": statistics.median(fps) if fps else None,
            "jobs_ok": len(ok),
            "jobs_failed": len(js) - len(ok),
        }
    return out
