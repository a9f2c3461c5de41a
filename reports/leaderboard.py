"""A leaderboard with CDnet's ranking scheme and, beyond it, uncertainty: a bootstrap 95%
confidence interval of each method's overall F over videos, and a paired test between the
top two methods.

- RM: the average, over the seven CDnet metrics (Re, Sp, FPR, FNR, PWC, Pr, F), of the
  method's rank on that metric's overall value.
- RC: per category, methods are ranked by their average rank over the seven metrics in
  that category; RC is the average of those ranks over categories.
- CI: a two-stage bootstrap (2000 resamples, seeded): categories are drawn with
  replacement, then videos with replacement within each drawn category; overall F = mean
  of category means is recomputed each time; 2.5/97.5 percentiles. (Resampling videos only
  within categories would give no spread where a category has one video.)
- Paired test: per-video F differences of the top two methods on their shared videos;
  two-sided sign-flip permutation test of the mean difference (exact up to 16 videos,
  else 20000 random flips, seeded).
- Published: beside each method's overall F, the paper's F (``reports.published``) where
  the run used the paper's protocol: the paper's mean over the categories (or videos) ours
  covers, else its overall; ``footnotes`` say where ours covers fewer videos or the paper
  forms its overall differently. ``skipped``: what the protocol could not serve on this
  dataset (a video too short for the rule, an empty fold), with the reason, from the run.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from .tables import _nan

SEVEN = (("recall", True), ("specificity", True), ("fpr", False), ("fnr", False), ("pwc", False),
         ("precision", True), ("f_measure", True))


def _rank(values: list[float], higher_better: bool) -> list[float]:
    """Competition ranks (1 = best, ties share the lower rank); undefined values rank last."""
    keyed = [(-v if higher_better else v) if not _nan(v) else math.inf for v in values]
    return [1 + sum(1 for o in keyed if o < k) for k in keyed]


def _avg_rank(metric_rows: dict[str, dict]) -> dict[str, float]:
    methods = list(metric_rows)
    total = defaultdict(float)
    for key, hb in SEVEN:
        for m, r in zip(methods, _rank([metric_rows[m].get(key) for m in methods], hb)):
            total[m] += r
    return {m: total[m] / len(SEVEN) for m in methods}


def _video_f(results: dict, method: str, protocol: str, dataset: str) -> dict[str, float]:
    d = results["summary"][method][protocol]["datasets"][dataset]
    return {v: m.get("f_measure") for v, m in d["videos"].items()}


def bootstrap_ci(video_f: dict[str, float], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    by_cat: dict[str, list[float]] = defaultdict(list)
    for vid, f in video_f.items():
        if not _nan(f):
            by_cat[vid.split("/")[1]].append(f)
    if not by_cat:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    cats = [np.asarray(fs) for _, fs in sorted(by_cat.items())]
    # per category, n resampled category means; then n draws of categories
    means = np.stack([a[rng.integers(0, len(a), size=(n, len(a)))].mean(axis=1) for a in cats])  # C x n
    pick = rng.integers(0, len(cats), size=(n, len(cats)))
    stats = means[pick, np.arange(n)[:, None]].mean(axis=1)
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def paired_test(a: dict[str, float], b: dict[str, float], n: int = 20000, seed: int = 0) -> dict[str, Any]:
    shared = sorted(v for v in a if v in b and not _nan(a[v]) and not _nan(b[v]))
    d = np.array([a[v] - b[v] for v in shared])
    if len(d) == 0:
        return {"videos": 0, "mean_difference": float("nan"), "p_value": float("nan")}
    obs = abs(d.mean())
    if len(d) <= 16:
        signs = ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1) * 2 - 1
    else:
        signs = np.random.default_rng(seed).choice([-1, 1], size=(n, len(d)))
    p = float(np.mean(np.abs((signs * d).mean(axis=1)) >= obs - 1e-15))
    return {"videos": len(d), "mean_difference": float(d.mean()), "p_value": p}


def leaderboard(results: dict, protocol: str, dataset: str, families: dict[str, str] | None = None) -> dict[str, Any]:
    summ = results["summary"]
    methods = [m for m in sorted(summ) if dataset in summ[m].get(protocol, {}).get("datasets", {})]
    ds = {m: summ[m][protocol]["datasets"][dataset] for m in methods}
    rm = _avg_rank({m: ds[m]["overall"] for m in methods})
    cats = sorted({c for m in methods for c in ds[m]["categories"]})
    rc_sum = defaultdict(float)
    for c in cats:
        avg = _avg_rank({m: ds[m]["categories"].get(c, {}) for m in methods})
        for m, r in zip(methods, _rank([avg[m] for m in methods], higher_better=False)):
            rc_sum[m] += r
    rows = []
    for m in methods:
        lo, hi = bootstrap_ci(_video_f(results, m, protocol, dataset))
        o = ds[m]["overall"]
        rows.append({"method": m, "family": (families or {}).get(m, ""), "RM": rm[m], "RC": rc_sum[m] / len(cats),
                     "f_measure": o.get("f_measure"), "ci_low": lo, "ci_high": hi, "recall": o.get("recall"),
                     "precision": o.get("precision"), "pwc": o.get("pwc"), "mcc": o.get("mcc"),
                     "average_precision": ds[m].get("average_precision"), "fps": ds[m].get("fps_median"),
                     "videos": len(ds[m]["videos"])})
    from .published import compare

    comp = compare(results, protocol, dataset)
    h = comp["header"]
    for r in rows:
        pub = next((p for p in comp["rows"] if p[0] == r["method"] and p[h.index("metric")] == "f_measure"), None)
        same = pub and pub[h.index("mean published (same categories)")]
        r["published_f"] = same if same is not None else (pub and pub[h.index("published overall")])
        r["published_overall"] = pub and pub[h.index("published overall")]
        r["published_source"] = pub and pub[h.index("published in")]
        r["published_notes"] = (pub and pub[h.index("notes")]) or ""
    rows.sort(key=lambda r: (r["RC"], r["RM"]))
    by_f = sorted(rows, key=lambda r: -(r["f_measure"] if not _nan(r["f_measure"]) else -1))
    test = None
    if len(by_f) >= 2:
        a, b = by_f[0]["method"], by_f[1]["method"]
        test = {"a": a, "b": b, **paired_test(_video_f(results, a, protocol, dataset), _video_f(results, b, protocol, dataset))}
    return {"protocol": protocol, "dataset": dataset, "rows": rows, "paired_test": test,
            "footnotes": comp["footnotes"], "skipped": skipped_here(results, protocol, dataset)}


def skipped_here(results: dict, protocol: str, dataset: str) -> list[dict]:
    """The run's protocol skips for this protocol (by name) on this dataset, and its empty folds."""
    out = []
    for s in results.get("meta", {}).get("skipped", []):
        key = s.get("protocol")
        if not key or key.split("[", 1)[0] != protocol:
            continue
        where = str(s.get("where", ""))
        if "/" not in where or where.split("/", 1)[0].lower() == dataset.lower():
            out.append(s)
    return out


def notes_markdown(board: dict) -> str:
    """Below a leaderboard: the published F beside ours, its footnotes, and the skips."""
    parts = []
    pub = [r for r in board["rows"] if r.get("published_f") is not None]
    if pub:
        from .tables import markdown

        parts.append("Published F beside ours (same protocol; the paper's mean over the categories or videos ours "
                     "covers):\n\n" + markdown(
                         ["method", "overall F (ours)", "published F", "published overall", "published in", "notes"],
                         [[r["method"], r["f_measure"], r["published_f"], r["published_overall"], r["published_source"],
                           r["published_notes"]] for r in pub]))
    if board.get("footnotes"):
        parts.append("\n".join(board["footnotes"]))
    if board.get("skipped"):
        parts.append("Skipped by the protocol:\n" + "\n".join(
            f"- {s['where']} ({', '.join(s.get('methods', []))}; {s['protocol']}): {s.get('reason', s['error'])}"
            for s in board["skipped"]))
    return "".join(f"\n{p}\n" for p in parts)
