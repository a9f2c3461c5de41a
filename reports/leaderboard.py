"""A leaderboard with CDnet's ranking scheme and, beyond it, uncertainty: a bootstrap 95%
confidence interval of each method's overall F over videos, and paired tests of the best
method against each other one. One leaderboard per protocol key (name and options) and
dataset: runs of one protocol under other options tested other pixels and are not ranked
together.

- RM: the average, over the seven CDnet metrics (Re, Sp, FPR, FNR, PWC, Pr, F), of the
  method's rank on that metric's overall value.
- RC: per category, methods are ranked by their average rank over the seven metrics in
  that category; RC is the average of those ranks over categories.
- CI: a two-stage bootstrap (2000 resamples, seeded with the run's ``--seed``): categories
  are drawn with replacement, then videos with replacement within each drawn category;
  overall F = mean of category means is recomputed each time; 2.5/97.5 percentiles.
  (Resampling videos only within categories would give no spread where a category has one
  video.) Given only with at least ``MIN_UNITS`` (3) videos: with one the interval has zero
  width, with two at most three values; otherwise "n too small".
- Paired tests: the method with the best overall F (or a pre-declared ``reference``)
  against each other method, on their shared videos: a two-sided sign-flip permutation
  test whose statistic is aggregated as overall F is (per-video F differences, sign-flipped
  per video, averaged within categories, then over categories), so it tests the difference
  the table shows. Exact over all 2^n flips up to 16 videos (the smallest p it can give is
  2/2^n), else 20000 random flips (seeded) with p = (k+1)/(N+1), never 0. Fewer than 3
  shared videos: no test ("n too small"). Picking the best method on the same videos is a
  selection that makes its p-values optimistic; the page says so, and Holm's adjustment
  covers the several comparisons (not the selection).
- Failed: a method whose every job on the dataset failed is listed, last, with "failed" and
  its error; one that failed on some videos keeps its row over the rest, with a note.
- Published: beside each method's overall F, the paper's F (``bgbench.reports.published``) where
  the run used the paper's protocol: the paper's mean over the categories (or videos) ours
  covers, else its overall; ``published_marks`` point to the footnotes that say where ours
  covers fewer videos or the paper forms its overall differently. ``skipped``: what the
  protocol could not serve on this dataset (a video too short for the rule, an empty fold),
  with the reason, from the run.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Mapping, Sequence, cast

import numpy as np

from bgbench.scoring.aggregate import category_of, protocol_display, resolve_protocol
from bgbench.scoring.coverage import coverage_notes
from bgbench.records.types import Results

from .tables import _nan, ci_text, failure_text, failures, fmt, markdown  # noqa: F401 - ci_text, failure_text: re-exported

SEVEN = (("recall", True), ("specificity", True), ("fpr", False), ("fnr", False), ("pwc", False),
         ("precision", True), ("f_measure", True))
MIN_UNITS = 3  # videos below which no CI and no test is given
BOOTSTRAP = 2000  # resamples
EXACT_UP_TO = 16  # videos: every sign flip enumerated
RANDOM_FLIPS = 20000
TOO_SMALL = "n too small"


def _rank(values: Sequence[Any], higher_better: bool) -> list[float]:
    """Competition ranks (1 = best, ties share the lower rank); undefined values rank last."""
    keyed = [(-v if higher_better else v) if not _nan(v) else math.inf for v in values]
    return [1 + sum(1 for o in keyed if o < k) for k in keyed]


def _avg_rank(metric_rows: dict[str, Mapping[str, float | None]]) -> dict[str, float]:
    methods = list(metric_rows)
    total: defaultdict[str, float] = defaultdict(float)
    for key, hb in SEVEN:
        for m, r in zip(methods, _rank([metric_rows[m].get(key) for m in methods], hb)):
            total[m] += r
    return {m: total[m] / len(SEVEN) for m in methods}


def _video_f(results: Results, label: str, protocol: str, dataset: str) -> dict[str, float | None]:
    d = results.summaries[(label, protocol)].datasets[dataset]
    return {v: m.get("f_measure") for v, m in d.videos.items()}


def run_seed(results: Results) -> int:
    """The run's ``--seed`` (``meta.seed``), which seeds the bootstrap and the random flips."""
    return results.meta.seed


def bootstrap_ci(video_f: dict[str, float | None], n: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float] | None:
    """The two-stage bootstrap 95% CI of overall F (mean of category means) from per-video
    F (``dataset/category/video`` ids), or None with fewer than ``MIN_UNITS`` videos of
    defined F: a resampled mean of one or two values is no interval."""
    by_cat: dict[str, list[float]] = defaultdict(list)
    for vid, f in sorted(video_f.items()):  # by id: the same draws whatever the dict's order
        if not _nan(f):
            by_cat[category_of(vid)].append(f)  # type: ignore[arg-type]  # _nan: not None
    if sum(len(fs) for fs in by_cat.values()) < MIN_UNITS:
        return None
    rng = np.random.default_rng(seed)
    cats = [np.asarray(fs) for _, fs in sorted(by_cat.items())]
    # per category, n resampled category means; then n draws of categories
    means = np.stack([a[rng.integers(0, len(a), size=(n, len(a)))].mean(axis=1) for a in cats])  # C x n
    pick = rng.integers(0, len(cats), size=(n, len(cats)))
    stats = means[pick, np.arange(n)[:, None]].mean(axis=1)
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def _ci_units(video_f: dict[str, float | None]) -> int:
    return sum(1 for f in video_f.values() if not _nan(f))


def paired_test(a: dict[str, float | None], b: dict[str, float | None], n: int = RANDOM_FLIPS, seed: int = 0
                ) -> dict[str, Any]:
    """Two-sided sign-flip test of overall F(a) - overall F(b) on the videos both scored.

    The statistic weights videos as overall F does: d_v = F_a(v) - F_b(v), averaged within
    each category, then over categories (each video weighs 1 / (categories x videos of its
    category)). Under the null each d_v is as likely negated. Exact (all 2^n sign vectors)
    up to ``EXACT_UP_TO`` videos, p = share of flips with |statistic| >= observed; beyond,
    ``n`` random flips and p = (k + 1) / (n + 1). ``min_p``: the smallest p the test can
    give (2 / 2^n exact, 1 / (n + 1) random). Fewer than ``MIN_UNITS`` videos: no p."""
    shared = sorted(v for v in a if v in b and not _nan(a[v]) and not _nan(b[v]))
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, v in enumerate(shared):
        by_cat[category_of(v)].append(i)
    d = np.array([cast(float, a[v]) - cast(float, b[v]) for v in shared], float)  # shared: defined in both
    w = np.zeros(len(shared))
    for idx in by_cat.values():
        w[idx] = 1.0 / (len(by_cat) * len(idx))
    x = w * d
    out: dict[str, Any] = {"videos": len(shared), "categories": len(by_cat),
                           "difference": float(x.sum()) if len(shared) else float("nan"),
                           "p_value": None, "test": None, "flips": None, "min_p": None, "note": ""}
    if len(shared) < MIN_UNITS:
        out["note"] = f"{TOO_SMALL} ({len(shared)} shared video{'s' if len(shared) != 1 else ''}; at least {MIN_UNITS})"
        return out
    obs = abs(float(x.sum()))
    tol = 1e-12  # the same sum in another order
    if len(shared) <= EXACT_UP_TO:
        signs = ((np.arange(2 ** len(x))[:, None] >> np.arange(len(x))) & 1) * 2 - 1
        hits = int(np.count_nonzero(np.abs(signs @ x) >= obs - tol))
        out.update(p_value=hits / 2 ** len(x), test="exact", flips=2 ** len(x), min_p=2 / 2 ** len(x))
    else:
        signs = np.random.default_rng(seed).choice([-1, 1], size=(n, len(x)))
        hits = int(np.count_nonzero(np.abs(signs @ x) >= obs - tol))
        out.update(p_value=(hits + 1) / (n + 1), test="random", flips=n, min_p=1 / (n + 1))
    return out


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of the defined p-values (None stays None)."""
    idx = sorted((i for i, p in enumerate(p_values) if p is not None), key=lambda i: cast(float, p_values[i]))
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (len(idx) - rank) * cast(float, p_values[i])))  # idx: the defined ones
        out[i] = running
    return out


def paired_tests(results: Results, protocol: str, dataset: str, methods: list[str], reference: str | None = None,
                 seed: int = 0) -> dict[str, Any] | None:
    """``reference`` (pre-declared) or else the best overall F of ``methods`` (ranked by
    overall F, best first) against each other method; None with fewer than two."""
    if len(methods) < 2:
        return None
    declared = reference is not None and reference in methods
    ref = reference if declared and reference is not None else methods[0]
    tests = [{"a": ref, "b": m, **paired_test(_video_f(results, ref, protocol, dataset),
                                              _video_f(results, m, protocol, dataset), seed=seed)}
             for m in methods if m != ref]
    for t, adj in zip(tests, holm([t["p_value"] for t in tests])):
        t["p_holm"] = adj
    why = ("pre-declared before the run" if declared else
           "the best overall F on these same videos: a selection, so the p-values are optimistic")
    return {"reference": ref, "declared": declared, "why": why, "seed": seed, "tests": tests}


def _signed(v: float | None) -> str:
    return "-" if _nan(v) else f"{v:+.4f}"


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return f"{p:.3g}" if p >= 1e-3 else f"{p:.1e}"


def paired_text(pt: dict | None) -> list[str]:
    """The paired tests in words: what was compared and why, the rule, then one line each."""
    if not pt:
        return []
    n = len(pt["tests"])
    lines = [f"Paired sign-flip tests of overall F: {pt['reference']} against each other method "
             f"({n} comparison{'s' if n != 1 else ''}), on the videos both scored. {pt['reference']} was chosen as "
             f"{pt['why']}. Each video's F difference is flipped in sign; the statistic averages the differences "
             "within categories, then over categories, as overall F does. Exact over all 2^n flips up to "
             f"{EXACT_UP_TO} videos (the smallest p possible is 2/2^n), else {RANDOM_FLIPS} random flips seeded with "
             f"{pt['seed']}, p = (k+1)/(N+1); below {MIN_UNITS} shared videos no test is made. Holm's adjustment "
             "covers the comparisons, not the choice of the reference."]
    for t in pt["tests"]:
        head = f"{t['a']} vs {t['b']}: difference in overall F {_signed(t['difference'])}"
        if t["p_value"] is None:
            lines.append(f"{head}; {t['note']}: no test.")
            continue
        how = "exact" if t["test"] == "exact" else f"{t['flips']} random flips"
        lines.append(f"{head} over {t['videos']} videos in {t['categories']} categor"
                     f"{'ies' if t['categories'] != 1 else 'y'}: p = {_p(t['p_value'])} ({how}; smallest possible "
                     f"{_p(t['min_p'])}), Holm-adjusted p = {_p(t['p_holm'])}.")
    return lines


def leaderboard(results: Results, protocol: str, dataset: str, reference: str | None = None) -> dict[str, Any]:
    """One protocol key (or a name that stands for one key) on one dataset; ``reference``:
    a method declared beforehand to test the others against (default: the best overall F,
    a selection the page states). Each row's family is the one its jobs recorded."""
    key = resolve_protocol(results, protocol)
    seed = run_seed(results)
    entries = {s.label: s for s in results.under(key)}
    ds = {m: s.datasets[dataset] for m, s in entries.items() if dataset in s.datasets}
    methods = list(ds)
    rm = _avg_rank({m: ds[m].overall for m in methods})
    cats = sorted({c for m in methods for c in ds[m].categories})
    rc_sum: defaultdict[str, float] = defaultdict(float)
    for c in cats:
        avg = _avg_rank({m: ds[m].categories.get(c, {}) for m in methods})
        for m, rank in zip(methods, _rank([avg[m] for m in methods], higher_better=False)):
            rc_sum[m] += rank
    failed = {f["method"]: f for f in failures(results, key, dataset)}
    from bgbench.timing.untimed import untimed_labels

    untimed = untimed_labels(results)  # their FPS reads "n/a" (no speed to report)
    from .tables import DEGENERATE, TRUNCATED, _flags, flag_notes

    rows: list[dict[str, Any]] = []
    for m in methods:
        vf = _video_f(results, m, key, dataset)
        ci = bootstrap_ci(vf, seed=seed)
        units = _ci_units(vf)
        o = ds[m].overall
        fl = failed.get(m)
        truncated, degenerate = _flags(results, entries[m], dataset)
        marks = ", ".join([TRUNCATED] * bool(truncated) + [DEGENERATE] * bool(degenerate))
        rows.append({"method": m, "family": entries[m].family,
                     "status": "partial" if fl else TRUNCATED if truncated else "ok", "marks": marks,
                     "error": fl["message"] if fl else "", "RM": rm[m], "RC": rc_sum[m] / len(cats) if cats else None,
                     "f_measure": o.get("f_measure"), "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None,
                     "ci_note": "" if ci else f"{TOO_SMALL} ({units} video{'s' if units != 1 else ''})",
                     "ci_videos": units,  # the videos with a defined F the interval would be over
                     "recall": o.get("recall"), "precision": o.get("precision"), "pwc": o.get("pwc"),
                     "mcc": o.get("mcc"), "average_precision": ds[m].average_precision,
                     "binary": ds[m].binary, "fps": ds[m].fps_median, "videos": len(ds[m].videos),
                     "fps_na": ds[m].fps_median is None and m in untimed})
    from .published import compare

    comp = compare(results, key, dataset)
    h = comp["header"]
    for r in rows:
        i = next((i for i, p in enumerate(comp["rows"])
                  if p[h.index("method")] == r["method"] and p[h.index("metric")] == "f_measure"),
                 None)
        pub = comp["rows"][i] if i is not None else None
        same = pub and pub[h.index("mean published (same categories)")]
        r["published_f"] = same if same is not None else (pub and pub[h.index("published overall")])
        r["published_overall"] = pub and pub[h.index("published overall")]
        r["published_source"] = pub and pub[h.index("published in")]
        r["published_notes"] = (pub and pub[h.index("notes")]) or ""
        col = "gap" if same is not None else "published overall"
        r["published_marks"] = comp.get("cell_marks", {}).get(f"{i}:{col}", "") if i is not None else ""
    rows.sort(key=lambda r: (r["RC"] if r["RC"] is not None else math.inf, r["RM"]))
    for m, fl in sorted(failed.items()):
        if m not in ds:  # every job of the method on this dataset failed: listed, not dropped
            rows.append({"method": m, "family": entries[m].family, "status": "failed",
                         "error": fl["message"], "RM": None, "RC": None, "f_measure": None, "ci_low": None,
                         "ci_high": None, "ci_note": "", "recall": None, "precision": None, "pwc": None, "mcc": None,
                         "average_precision": None, "binary": False, "fps": None, "videos": 0, "published_f": None,
                         "published_overall": None, "published_source": None, "published_notes": "",
                         "published_marks": ""})
    by_f = [r["method"] for r in sorted((r for r in rows if not _nan(r["f_measure"])), key=lambda r: -r["f_measure"])]
    return {"protocol": key, "protocol_display": protocol_display(key, results), "dataset": dataset, "rows": rows,
            "seed": seed, "paired_tests": paired_tests(results, key, dataset, by_f, reference, seed),
            "failures": list(failed.values()), "flags": flag_notes(results, key, dataset), "footnotes": comp["footnotes"],
            "skipped": skipped_here(results, key, dataset), "coverage": coverage_notes(results, key, dataset)}


def skipped_here(results: Results, protocol: str, dataset: str) -> list[dict]:
    """The run's protocol skips for this protocol key on this dataset, and its empty folds."""
    out = []
    for s in results.meta.skipped:
        if s.get("protocol") != protocol:
            continue
        where = str(s.get("where", ""))
        if "/" not in where or where.split("/", 1)[0].lower() == dataset.lower():
            out.append(dict(s))
    return out


def statistics_text(board: dict) -> list[str]:
    """How the CI was made and the paired tests, as sentences for the page and Markdown."""
    lines = [f"95% CI: two-stage bootstrap of overall F ({BOOTSTRAP} resamples seeded with the run's seed "
             f"{board.get('seed', 0)}: categories with replacement, then videos within them); given only with at "
             f"least {MIN_UNITS} videos, else \"{TOO_SMALL}\"."]
    return lines + paired_text(board.get("paired_tests"))


def notes_markdown(board: dict) -> str:
    """Below a leaderboard: failures, the statistics, the published F beside ours, its
    footnotes, and the skips."""
    parts = []
    if board.get("failures") or board.get("flags"):
        parts.append("Failed jobs (a method with every job failed is listed with \"failed\"; one with some failed is "
                     "ranked on the rest):\n" + "\n".join(f"- {t}" for t in failure_text(board)))
    stats = statistics_text(board)
    parts.append("\n\n".join(stats[:2]) + "".join(f"\n\n- {t}" if i == 0 else f"\n- {t}"
                                                  for i, t in enumerate(stats[2:])))
    pub = [r for r in board["rows"] if r.get("published_f") is not None]
    if pub:
        parts.append("Published F beside ours (same protocol; the paper's mean over the categories or videos ours "
                     "covers; a mark beside it points to a footnote below):\n\n" + markdown(
                         ["method", "overall F (ours)", "published F", "gap", "published overall", "published in",
                          "notes"],
                         [[r["method"], r["f_measure"], r["published_f"], published_gap(r), r["published_overall"],
                           r["published_source"], r["published_notes"]] for r in pub],
                         ["text", "metric", "metric", "text", "metric", "text", "text"]))
    if board.get("footnotes"):
        parts.append("\n".join(board["footnotes"]))
    if board.get("coverage"):  # what the means leave out (bgbench.scoring.coverage)
        parts.append("\n".join(f"- {t}" for t in board["coverage"]))
    if board.get("skipped"):
        parts.append("Skipped by the protocol:\n" + "\n".join(
            f"- {s['where']} ({', '.join(s.get('methods', []))}): {s.get('reason', s['error'])}"
            for s in board["skipped"]))
    return "".join(f"\n{p}\n" for p in parts)


def published_gap(r: dict) -> str:
    """Ours minus the published F, with the footnote marks that qualify it beside it."""
    if _nan(r.get("f_measure")) or _nan(r.get("published_f")):
        return "-"
    gap = f"{r['f_measure'] - r['published_f']:+.4f}"
    return f"{gap} {r['published_marks']}" if r.get("published_marks") else gap
