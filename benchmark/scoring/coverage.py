"""What each table's means cover: the notes printed under every table and page.

A mean over videos leaves out what it cannot average: a video skipped as bad data (it never
ran), a failed job, and an undefined value (NaN, stored as null): F and recall where the
scored frames hold no foreground (TP + FN = 0), precision where nothing was predicted
(TP + FP = 0). Each of these is named under the table, and where two rows of one table
average different sets of videos for overall F, the note says which videos each row lacks
(docs/scoring.md, "What a mean covers"). Only the record is read: a report of an old run
says the same.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from bgbench.records.types import Results


def _undefined(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def data_skips(results: "Results") -> list[dict[str, Any]]:
    """The run's videos skipped as bad data (not a protocol's skips), as recorded."""
    return [dict(s) for s in results.meta.skipped if not s.get("protocol")]


def _why(s: dict[str, Any]) -> str:
    where, error = str(s.get("where", "")), str(s.get("error", ""))
    return error[len(where) + 2:] if where and error.startswith(where + ": ") else error


def _list(vids: list[str], limit: int = 8) -> str:
    shown = ", ".join(vids[:limit])
    return shown + (f" and {len(vids) - limit} more" if len(vids) > limit else "")


def coverage_notes(results: "Results", protocol: str, dataset: str) -> list[str]:
    """Lines for below the ``dataset`` table under ``protocol`` (a key): videos with F
    undefined, precision undefined per method, rows that average different video sets, and
    the videos skipped as bad data. Empty when every row averages every video."""
    rows: dict[str, dict[str, Mapping[str, float | None]]] = {}
    failed: dict[str, set[str]] = {}
    for s in results.under(protocol):
        d = s.datasets.get(dataset)
        rows[s.label] = dict(d.videos) if d else {}
        failed[s.label] = {f["video"] for f in (s.failures.get(dataset) or ())}
    notes: list[str] = []

    no_fg: dict[str, list[str]] = {}
    for label, videos in rows.items():
        for vid, m in videos.items():
            if _undefined(m.get("f_measure")) and _undefined(m.get("recall")):
                no_fg.setdefault(vid, []).append(label)
    if no_fg:
        parts = [f"{vid} ({'every method' if len(ls) == len(rows) else ', '.join(sorted(ls))})"
                 for vid, ls in sorted(no_fg.items())]
        notes.append("F undefined: the scored frames hold no foreground (TP + FN = 0, so recall is 0/0 and the official "
                     "F = 2PR/(P+R) is undefined); left out of the F and recall means of its category and overall, while the "
                     "metrics defined there (Pr, PWC, ...) average it: " + "; ".join(parts))
    for label, videos in sorted(rows.items()):
        none = sorted(v for v, m in videos.items() if _undefined(m.get("precision")))
        if none:
            notes.append(f"{label}: precision undefined (nothing predicted, TP + FP = 0; left out of the Pr means) on "
                         f"{_list(none)}")
    defined = {label: {v for v, m in videos.items() if not _undefined(m.get("f_measure"))}
               for label, videos in rows.items()}
    if len({frozenset(v) for v in defined.values()}) > 1:
        union = set().union(*defined.values())
        lacking = []
        for label in sorted(defined):
            missing = sorted(union - defined[label])
            if missing:
                why = ["failed" if v in failed[label] else ("F undefined" if v in rows[label] else "no job")
                       for v in missing]
                lacking.append(f"{label} lacks {_list([f'{v} ({w})' for v, w in zip(missing, why)])}")
        notes.append(f"Rows average different video sets (overall F over {len(union)} video(s) in all): "
                     + "; ".join(lacking))
    skips = data_skips(results)
    if skips:
        notes.append(f"Skipped as bad data ({len(skips)}, in no table or mean): "
                     + "; ".join(f"{s.get('video') or s.get('where')}: {_why(s)}" for s in skips))
    return notes
