"""A run's jobs as a pandas DataFrame (``Results.frame()``): one row per job.

Columns, in this order: ``label``, ``method``, ``config``, ``family``, ``protocol`` (the
name), ``protocol_key`` (name and options; group by this, never by the name), ``dataset``,
``category``, ``video`` (the full id ``dataset/category/scene``), ``split``, ``status``
("ok" or "failed"), ``error``, ``frames``, then every metric (``METRIC_COLUMNS``: CDnet's
seven, shadow FPR, MCC, mean Dice, then any other metric a job recorded, by name), then
``fps`` (frames/s of ``segment``; NaN where the job has none, e.g. a failed one). A metric
that is undefined for the job (NaN in the record, null in results.json) or absent (a failed
job) is NaN. Rows are in the record's job order.

pandas is imported only here, when a frame is asked for: nothing else in bgbench needs it.
The numbers are the job records' own, so ``frame().groupby(...)`` means are the tables'
per-video numbers averaged as the reader chooses; the tables' category and overall means
(``bgbench.scoring.aggregate``) are the mean of videos per category, then of categories.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from bgbench.records.types import Results

ID_COLUMNS = ("label", "method", "config", "family", "protocol", "protocol_key", "dataset", "category", "video",
              "split", "status", "error", "frames")
METRIC_COLUMNS = ("recall", "specificity", "fpr", "fnr", "pwc", "precision", "f_measure", "fpr_shadow", "mcc",
                  "mean_dice")


def _category(video: str) -> str:
    parts = video.split("/")
    return parts[1] if len(parts) > 2 else ""


def _num(v: Any) -> float:
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
        return math.nan
    return float(v)


def rows(results: "Results") -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, one dict per job): what ``frame`` puts in a DataFrame, without pandas."""
    extra = sorted({k for j in results.jobs for k in (j.metrics or {}) if k not in METRIC_COLUMNS})
    metrics = list(METRIC_COLUMNS) + extra
    out = []
    for j in results.jobs:
        k = j.key
        row: dict[str, Any] = {"label": k.label, "method": k.method, "config": k.config, "family": j.family,
                               "protocol": j.protocol, "protocol_key": k.protocol_key, "dataset": k.dataset,
                               "category": _category(k.video), "video": k.video, "split": k.split,
                               "status": j.status, "error": j.error or "", "frames": j.frames}
        m = j.metrics or {}
        row.update({name: _num(m.get(name)) for name in metrics})
        row["fps"] = _num(j.fps)
        out.append(row)
    return list(ID_COLUMNS) + metrics + ["fps"], out


def frame(results: "Results") -> "pd.DataFrame":
    """One row per job (see the module's docstring for the columns)."""
    import pandas as pd

    columns, data = rows(results)
    df = pd.DataFrame(data, columns=columns)
    df["frames"] = df["frames"].astype("int64")
    for c in columns[len(ID_COLUMNS):]:
        df[c] = df[c].astype("float64")
    return df
