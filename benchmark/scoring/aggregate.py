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
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence, cast

import numpy as np

from bgbench.records.types import DatasetSummary, JobRecord, Summary
from bgbench.scoring.metrics import METRIC_KEYS, metrics, pr_curve, sum_counts

if TYPE_CHECKING:
    from bgbench.records.types import Results

ALL_KEYS = METRIC_KEYS + ("fpr_shadow", "mcc", "mean_dice")


def _mean(values: Iterable[float | None]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else float("nan")


def dataset_of(video_id: str) -> str:
    return video_id.split("/", 1)[0]


def category_of(video_id: str) -> str:
    return video_id.split("/")[1]


def _option_text(v: Any) -> str:
    return "+".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def protocol_display(key: str, results: "Results | None" = None) -> str:
    """``key`` as a reader sees it: the name, then its options in brackets, e.g.
    ``scene-specific (rule=first-half)``. The options come from the record's
    ``meta.protocols``; the seed is left out where it is the run's (``meta.seed``), since
    the page states that once. A record without them shows the key as it is."""
    if results is None:
        return key
    opts = results.meta.protocols.get(key)
    if not isinstance(opts, dict) or "name" not in opts:
        return key
    run_seed = results.meta.seed
    shown = [f"{k}={_option_text(v)}" for k, v in opts.items()
             if k != "name" and not (k == "seed" and v == run_seed)]
    return f"{opts['name']} ({', '.join(shown)})" if shown else str(opts["name"])


def protocol_name(key: str, results: "Results | None" = None) -> str:
    """The protocol's name for ``key``: from a summary or ``meta.protocols``, else the key
    itself (a key without options is its name)."""
    if results is None:
        return key
    s = next((s for s in results.under(key) if s.protocol), None)
    if s is not None:
        return s.protocol
    opts = results.meta.protocols.get(key)
    if isinstance(opts, dict) and opts.get("name"):
        return str(opts["name"])
    return key


def resolve_protocol(results: "Results", protocol: str) -> str:
    """The summary key ``protocol`` stands for: itself if it is a key of the record, else the
    one key whose protocol has that name. A name that stands for several keys is refused
    (ValueError naming them): their runs tested different pixels."""
    keys = results.protocol_keys()
    if protocol in keys:
        return protocol
    named = [k for k in keys if protocol_name(k, results) == protocol]
    if len(named) == 1:
        return named[0]
    if named:
        raise ValueError(f"protocol {protocol!r} ran with {len(named)} sets of options: {', '.join(named)}; "
                         "name one of these keys")
    return protocol


def _failure(j: JobRecord) -> dict[str, Any]:
    return {"video": j.key.video, "split": j.key.split, "error": j.error or "failed (no error recorded)"}


def category_means(videos: Mapping[str, Mapping[str, float | None]]
                   ) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """(categories, overall) from ``{video id: metrics}``: a category is the mean of its
    videos' metrics (each on its own), overall the mean of the category means (CDnet's rule)."""
    cats: dict[str, list[Mapping[str, float | None]]] = defaultdict(list)
    for vid, m in sorted(videos.items()):
        cats[category_of(vid)].append(m)
    categories = {c: {k: _mean(m.get(k) for m in ms) for k in ALL_KEYS} for c, ms in sorted(cats.items())}
    return categories, {k: _mean(cm[k] for cm in categories.values()) for k in ALL_KEYS}


def _dataset_summary(jobs: Sequence[JobRecord]) -> DatasetSummary:
    """The numbers of one label's ok jobs on one dataset under one protocol key."""
    # scored jobs (the only ones given) have metrics, counts, dice and histograms (JobRecord: None otherwise)
    videos = {j.key.video: dict(cast("Mapping[str, float | None]", j.metrics))
              for j in sorted(jobs, key=lambda j: j.key.video)}
    categories, overall = category_means(videos)
    counts = sum_counts(cast("Mapping[str, int]", j.counts) for j in jobs)
    dices = [cast("Mapping[str, float]", j.dice) for j in jobs]
    dice = {"sum": sum(d["sum"] for d in dices), "frames": sum(d["frames"] for d in dices)}
    # the PR curve and AP pool the pixels of every video of the dataset
    hists = [cast("Mapping[str, list[Any]]", j.histograms) for j in jobs]
    hist = np.sum([[h["negative"], h["shadow"], h["positive"]] for h in hists], axis=0)
    pr = pr_curve(hist)
    fps = [j.fps for j in jobs if j.fps]
    return DatasetSummary(videos=videos, categories=categories, overall=overall, pooled=metrics(counts, dice),
                          counts=counts, average_precision=pr["average_precision"],
                          best_threshold=pr["best_threshold"], best_f=pr["best_f"], output_levels=pr["levels"],
                          fps_median=statistics.median(fps) if fps else None)


def summarize(jobs: Sequence[JobRecord]) -> dict[tuple[str, str], Summary]:
    """One ``Summary`` per (method label, protocol key): per dataset, the videos' metrics,
    category means, overall (mean of the category means), pooled counts' metrics, PR/AP over
    the pooled histograms and the median fps; the failed jobs by dataset; the family the
    jobs recorded. A label whose every job failed keeps its entry, with no datasets and its
    failures, so reports list it rather than drop it."""
    groups: dict[tuple[str, str], list[JobRecord]] = defaultdict(list)
    for j in jobs:
        groups[(j.key.label, j.key.protocol_key)].append(j)
    out: dict[tuple[str, str], Summary] = {}
    for (label, key), js in sorted(groups.items()):
        ok = [j for j in js if j.scored]  # truncated jobs are in the numbers, counted and marked apart
        failures: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for j in sorted((j for j in js if not j.scored), key=lambda j: (j.key.video, j.key.split)):
            failures[j.key.dataset].append(_failure(j))
        by_ds: dict[str, list[JobRecord]] = defaultdict(list)
        for j in ok:
            by_ds[j.key.dataset].append(j)
        fps = [j.fps for j in ok if j.fps]
        first = js[0]
        out[(label, key)] = Summary(
            label=label, method=first.key.method, config=first.key.config,
            family=next((j.family for j in js if j.family), ""), protocol=first.protocol, protocol_key=key,
            datasets={ds: _dataset_summary(dj) for ds, dj in sorted(by_ds.items())},
            failures={ds: tuple(f) for ds, f in sorted(failures.items())},
            fps_median=statistics.median(fps) if fps else None, jobs_ok=sum(j.ok for j in ok),
            jobs_failed=len(js) - len(ok), jobs_truncated=sum(j.truncated for j in ok),
            degenerate={j.key.video: j.degenerate for j in sorted(ok, key=lambda j: j.key.video) if j.degenerate})
    return out
