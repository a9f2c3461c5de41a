"""Per-video tables: one metric (F by default) of every method on every video of one
protocol key and dataset, as SBI2015 and UCSD papers print them (per sequence).

Orientation: with at most ``WIDE_UP_TO`` videos, one row per method (best overall first,
as ``category_table`` orders them) and one column per video, then ``overall`` (the tables'
overall: the mean of the category means); with more, one row per video (in category
order) and one column per method, the last row ``overall``. A video is named by its scene
where that is unique in the dataset, else ``category/scene``. A cell reads "failed" where
the method's job on that video failed, "-" where it did not run or the metric is
undefined there; a method whose every job failed is a row (or column) of "failed".

``video_metrics_table``: every metric of every job, one row per job (method, dataset,
category, video, split, status, metrics, fps), for CSV: the numbers of ``Results.frame()``
without pandas.

The cells are the job records' own numbers (``DatasetSummary.videos``, which holds each
video's job metrics unchanged)."""

from __future__ import annotations

from typing import Any, Sequence

from bgbench.records.frame import rows as frame_rows
from bgbench.records.types import Results

from .tables import (FAILED, METRICS, _number, cite_line, column, failure_notes, failures, latex, markdown, protocol_title,
                     to_csv)

WIDE_UP_TO = 12  # videos: up to this many, methods are rows and videos columns
_BETTER = {key: hb for _, key, hb in METRICS}
_NAMES = {key: label for label, key, _ in METRICS}


def _order(results: Results, protocol: str, dataset: str, metric: str) -> tuple[list[str], dict, dict]:
    """(method labels in table order, label -> DatasetSummary, label -> {video: "failed"})."""
    entries = {s.label: s.datasets[dataset] for s in results.under(protocol) if dataset in s.datasets}
    failed: dict[str, dict[str, str]] = {}
    for f in failures(results, protocol, dataset):
        failed[f["method"]] = {e["video"]: FAILED for e in f["errors"]}
    hb = _BETTER.get(metric, True)

    def key(label: str):
        v = entries[label].overall.get(metric)
        return (0, -v if hb else v) if _number(v) else (1, 0)

    ranked = sorted(entries, key=key)
    return ranked + sorted(m for m in failed if m not in entries), entries, failed


def _video_names(videos: Sequence[str]) -> dict[str, str]:
    scenes = [v.rsplit("/", 1)[-1] for v in videos]
    return {v: s if scenes.count(s) == 1 else v.split("/", 1)[-1] for v, s in zip(videos, scenes)}


def _cell(label: str, video: str, entries: dict, failed: dict, metric: str) -> Any:
    d = entries.get(label)
    if d is not None and video in d.videos:
        return d.videos[video].get(metric)
    return failed.get(label, {}).get(video)


def video_table(results: Results, protocol: str, dataset: str, metric: str = "f_measure"
                ) -> tuple[list[str], list[list[Any]], list[bool | None]]:
    """(header, rows, higher is better per column) of ``metric`` per video and method; see
    the module's docstring for the orientation and the cells."""
    methods, entries, failed = _order(results, protocol, dataset, metric)
    videos = sorted({v for d in entries.values() for v in d.videos} | {v for f in failed.values() for v in f},
                    key=lambda v: (v.split("/")[1] if v.count("/") >= 2 else "", v))
    names = _video_names(videos)

    def overall(label: str) -> Any:
        d = entries.get(label)
        return d.overall.get(metric) if d is not None else FAILED

    hb = _BETTER.get(metric, True)
    if len(videos) <= WIDE_UP_TO:
        header = ["method"] + [names[v] for v in videos] + ["overall"]
        rows = [[m] + [_cell(m, v, entries, failed, metric) for v in videos] + [overall(m)] for m in methods]
        return header, rows, [None] + [hb] * (len(header) - 1)
    header = ["video"] + methods
    rows = [[names[v]] + [_cell(m, v, entries, failed, metric) for m in methods] for v in videos]
    rows.append(["overall"] + [overall(m) for m in methods])
    return header, rows, [None] * len(header)  # a column is one method: nothing to rank in it


def markdown_video_table(results: Results, protocol: str, dataset: str, metric: str = "f_measure") -> str:
    h, rows, _ = video_table(results, protocol, dataset, metric)
    return (f"{dataset} · protocol {protocol_title(results, protocol)} · {_NAMES.get(metric, metric)} per video "
            f"(overall: the mean of the category means)\n\n" + markdown(h, rows, ["text"] + ["metric"] * (len(h) - 1))
            + "\n" + "".join(f"\n{n}\n" for n in failure_notes(results, protocol, dataset)))


def csv_video_table(results: Results, protocol: str, dataset: str, metric: str = "f_measure") -> str:
    h, rows, _ = video_table(results, protocol, dataset, metric)
    return to_csv(h, rows)


def latex_video_table(results: Results, protocol: str, dataset: str, metric: str = "f_measure",
                      label: str = "") -> str:
    """A booktabs table (``table*`` when wider than eight columns); with methods as rows,
    the best of each video's column bold and the second underlined."""
    h, rows, better = video_table(results, protocol, dataset, metric)
    name = _NAMES.get(metric, metric)
    marks = " Best per column in bold, second underlined." if any(b is not None for b in better) else ""
    caption = (f"{name} per video, {dataset}, protocol {protocol_title(results, protocol)}; overall: the mean of "
               f"the category means.{marks}")
    methods = h[1:] if h[0] == "video" else column(h, rows, "method")
    return latex(h, rows, better, caption, label, kinds=["text"] + ["metric"] * (len(h) - 1), wide=len(h) > 8,
                 notes=failure_notes(results, protocol, dataset), cites=cite_line(methods))


def video_metrics_table(results: Results, protocol: str) -> tuple[list[str], list[list[Any]]]:
    """Every job of one protocol key, every metric and fps (for CSV), in job-id order."""
    columns, data = frame_rows(results)
    keep = ["label", "dataset", "category", "video", "split", "status"] + columns[columns.index("frames") + 1:]
    picked = sorted((r for r in data if r["protocol_key"] == protocol),
                    key=lambda r: (r["label"], r["video"], r["split"]))
    return ["method" if c == "label" else c for c in keep], [[r[c] for c in keep] for r in picked]
