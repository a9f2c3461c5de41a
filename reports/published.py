"""Published numbers to print beside bgbench's own (never computed here), each with the
paper, table and protocol it comes from. Every number below was read from the full texts
in ../shared/papers; the comment above each entry names the table.

A published number is shown beside a run only where the run used the same protocol: the
protocol name and every option the entry lists (``options``; other options such as the
seed are free) must be those of the protocol key compared (``meta.protocols``), and the
dataset must be the same. A rule that is a published frame list (``fgsegnet:200``) matches by
the training frames, not by its name: the run's ``frames`` digest (bgbench.framelists) must
be that of the entry's lists, so ``n:200`` (a seeded draw of 200 frames) never matches, and a
``frames:FILE#200`` holding exactly FgSegNet's lists does. Where ours covers fewer videos than the paper's category mean
(one CDnet baseline video against the four of the category), a footnote says so and its
mark stands beside the gap itself (``cell_marks``; ``marked_rows`` prints it there); so
does one where the paper forms its overall differently (pooled counts, or a value that is
not the mean of its categories).

Papers: 000 BMN-BSN, 001 two-stage CNN, 002 CDN-GM + MEDAL-net, 003 siamese FCN (in
Chinese), 004 CrossNet/HOFAM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from bgbench.scoring.aggregate import category_of, protocol_name, resolve_protocol
from bgbench.records.types import DatasetSummary, Results, Summary

CATEGORIES = ("badWeather", "baseline", "cameraJitter", "dynamicBackground", "intermittentObjectMotion",
              "lowFramerate", "nightVideos", "PTZ", "shadow", "thermal", "turbulence")
# Videos per CDnet2014 category (53 in 11 categories), the size of a paper's category mean
CDNET2014_VIDEOS = {"badWeather": 4, "baseline": 4, "cameraJitter": 4, "dynamicBackground": 6,
                    "intermittentObjectMotion": 6, "lowFramerate": 4, "nightVideos": 6, "PTZ": 4, "shadow": 6,
                    "thermal": 5, "turbulence": 4}
SOURCE = ("papers/000 Tables 1-2, papers/002 Tables III-V, papers/003 Tables 1-2, papers/004 Tables II-IV "
          "(see reports/published.py)")
# The ten categories in the order papers/000 Table 2 prints them (no PTZ)
_TEN = ("badWeather", "baseline", "cameraJitter", "dynamicBackground", "intermittentObjectMotion", "lowFramerate",
        "nightVideos", "shadow", "thermal", "turbulence")
WALLFLOWER = ("Bootstrap", "LightSwitch", "WavingTrees", "Camouflage", "ForegroundAperture", "TimeOfDay")


@dataclass(frozen=True)
class Reference:
    """One paper's numbers for one method, metric, dataset and protocol."""

    method: str
    source: str  # paper and table
    dataset: str
    protocol: str
    options: tuple[tuple[str, Any], ...] = ()  # protocol options the run must share
    rows: tuple[tuple[str, float], ...] = ()  # category (``per="category"``) or video name -> value
    overall: float | None = None  # the paper's overall, as printed; None where it prints none
    metric: str = "f_measure"
    per: str = "category"  # rows are category means of videos, or single videos
    # how the paper forms its overall: "category-mean" (CDnet: the mean of the category
    # means), "pooled" (the counts of every test frame summed), "as-printed" (unstated)
    aggregation: str = "category-mean"
    overall_videos: int | None = None  # videos behind the overall
    note: str = ""

    @property
    def values(self) -> dict[str, float]:
        return dict(self.rows)

    def paper_videos(self, row: str) -> int:
        """Videos behind one published row."""
        if self.per == "video":
            return 1
        return CDNET2014_VIDEOS.get(row, 0) if self.dataset == "CDnet2014" else 0


def _cdnet(values, cats=_TEN, scale=100.0) -> tuple[tuple[str, float], ...]:
    return tuple((c, round(v / scale, 6)) for c, v in zip(cats, values) if v is not None)


def _videos(cats) -> int:
    return sum(CDNET2014_VIDEOS[c] for c in cats)


_FULL: dict[str, Any] = dict(dataset="CDnet2014", protocol="full", overall_videos=_videos(_TEN))
_BMN: dict[str, Any] = dict(dataset="CDnet2014", protocol="cross-scene", per="category", overall_videos=_videos(_TEN),
            options=(("folds", 3), ("exclude", ("PTZ",)), ("formats", ("cdnet2014", "cdnet2012"))))
# papers/002 trains on 200 labelled frames per scene sampled as FgSegNet did (Sec. IV): FgSegNet's published lists
_MEDAL: dict[str, Any] = dict(dataset="CDnet2014", protocol="scene-specific", options=(("rule", "fgsegnet:200"),))
# papers/003 Table 1 rows: Baseline, Dynamic background, Shadow, Bad weather, Low frame rate,
# Night videos, PTZ, Camera jitter, Intermittent (nine categories), then Overall
_SIAMESE_CATS = ("baseline", "dynamicBackground", "shadow", "badWeather", "lowFramerate", "nightVideos", "PTZ",
                 "cameraJitter", "intermittentObjectMotion")
_SIAMESE: dict[str, Any] = dict(dataset="CDnet2014", protocol="scene-specific", options=(("rule", "fraction:0.3,val:0.1"),),
                aggregation="as-printed", overall_videos=_videos(_SIAMESE_CATS),
                note="papers/003 does not say how its overall is formed")
_CROSSNET: dict[str, Any] = dict(dataset="CDnet2014", protocol="sampled", options=(("fraction", 0.05),), aggregation="pooled",
                 overall_videos=sum(CDNET2014_VIDEOS.values()),
                 note="its overall sums the counts of every test frame of CDnet2014 (Sec. IV-A; 5% of each video "
                      "trains), and ours is pooled the same way")
_T4 = ("its overall is drawn from all confusion matrices combined (Sec. IV-A), and ours is pooled the same way; "
       "PTZ is left out (Sec. IV-B)")
# papers/002 Table III column order: BDW LFR NVD PTZ THM SHD IOM CJT DBG BSL TBL
_T3 = ("badWeather", "lowFramerate", "nightVideos", "PTZ", "thermal", "shadow", "intermittentObjectMotion",
       "cameraJitter", "dynamicBackground", "baseline", "turbulence")
# cdn_medal's Table V pairings (methods/cdn_medal.py paper_protocols): Wallflower sequence <- CDnet source
_MEDAL_WALLFLOWER = {"Bootstrap": "CDnet2014/baseline/highway", "Camouflage": "CDnet2014/shadow/copyMachine",
                     "ForegroundAperture": "CDnet2014/baseline/office", "LightSwitch": "CDnet2014/shadow",
                     "TimeOfDay": "CDnet2014/shadow/backdoor",
                     "WavingTrees": "CDnet2014/dynamicBackground/fountain02"}

REFERENCES: tuple[Reference, ...] = (
    # --- classical baselines, CDnet2014, protocol full (every scored frame) --------------------
    # papers/000 Table 2 (F in %, categories BDW BSL CJT DMB IOM LFM NGT SHD THM TBL, overall)
    Reference("gmm_sg", "papers/000 Table 2", rows=_cdnet((73.80, 82.45, 59.69, 63.30, 52.07, 53.73, 40.97, 73.70,
                                                             66.21, 46.63)), overall=0.6125, **_FULL),
    Reference("subsense", "papers/000 Table 2", rows=_cdnet((86.19, 95.03, 81.52, 81.77, 65.69, 64.45, 55.99, 89.86,
                                                               81.71, 77.92)), overall=0.7801, **_FULL),
    Reference("pawcs", "papers/000 Table 2", rows=_cdnet((81.52, 93.97, 81.37, 89.38, 77.64, 65.88, 41.52, 89.13,
                                                            83.24, 64.50)), overall=0.7681, **_FULL),
    # papers/002 Table III, GMM - Zivkovic (eleven categories, no overall printed)
    Reference("gmm_zivkovic", "papers/002 Table III", dataset="CDnet2014", protocol="full",
              rows=_cdnet((0.7406, 0.5065, 0.3960, 0.1046, 0.6548, 0.7232, 0.5325, 0.5670, 0.6328, 0.8382, 0.4169),
                          _T3, 1.0), overall_videos=53),
    # papers/002 Table V: Wallflower, parameters as for CDnet2014, every frame, hand-segmented frames scored
    Reference("gmm_sg", "papers/002 Table V", dataset="Wallflower", protocol="full", per="video",
              rows=tuple(zip(WALLFLOWER, (0.5306, 0.2296, 0.9767, 0.8307, 0.5778, 0.7203))), overall_videos=6),
    Reference("subsense", "papers/002 Table V", dataset="Wallflower", protocol="full", per="video",
              rows=tuple(zip(WALLFLOWER, (0.4192, 0.3201, 0.9597, 0.9535, 0.6635, 0.7107))), overall_videos=6),

    # --- BMN-BSN: 3-fold cross-scene on CDnet2014, PTZ excluded ---------------------------------
    # papers/000 Table 1, columns F1(%), Re(%), Pr(%); Overall row (= Table 2's 71.88)
    Reference("bmn_bsn", "papers/000 Table 1", rows=_cdnet((81.24, 95.21, 69.62, 63.71, 63.69, 64.26, 61.25, 85.88,
                                                              78.49, 55.44)), overall=0.7188, **_BMN),
    Reference("bmn_bsn", "papers/000 Table 1", metric="recall", overall=0.8250,
              rows=_cdnet((78.02, 96.77, 90.99, 86.76, 90.18, 65.38, 67.05, 96.70, 75.34, 77.76)), **_BMN),
    Reference("bmn_bsn", "papers/000 Table 1", metric="precision", overall=0.7032,
              rows=_cdnet((85.31, 93.71, 60.69, 56.62, 57.14, 70.45, 61.13, 78.93, 84.21, 55.03)), **_BMN),

    # --- CDN-GM + MEDAL-net: scene-specific, 200 labelled frames per video ----------------------
    # papers/002 Table III, row CDN-MEDAL-net (no PTZ entry, no overall printed)
    Reference("cdn_medal", "papers/002 Table III",
              rows=_cdnet((0.9045, 0.9561, 0.8450, None, 0.9129, 0.8683, 0.8249, 0.8427, 0.9372, 0.9615, 0.9187),
                          _T3, 1.0), overall_videos=_videos(_TEN), **_MEDAL),
    # papers/002 Table IV (overall from all confusion matrices combined, Sec. IV-A: pooled)
    Reference("cdn_medal", "papers/002 Table IV", metric="recall", overall=0.9232, aggregation="pooled",
              overall_videos=_videos(_TEN), note=_T4, **_MEDAL),
    Reference("cdn_medal", "papers/002 Table IV", metric="precision", overall=0.8724, aggregation="pooled",
              overall_videos=_videos(_TEN), note=_T4, **_MEDAL),
) + tuple(
    # papers/002 Table V, row CDN-MEDAL-net: each Wallflower sequence with the model of one
    # CDnet sequence (Sec. IV-C), i.e. one transfer protocol per pairing
    Reference("cdn_medal", "papers/002 Table V", dataset="Wallflower", protocol="transfer", per="video",
              options=(("source", (src,)), ("target", (f"Wallflower/-/{seq}",)), ("rule", "fgsegnet:200")),
              rows=((seq, f),), overall_videos=1)
    for seq, f in zip(WALLFLOWER, (0.7680, 0.5400, 0.8156, 0.9700, 0.8401, 0.7429))
    for src in (_MEDAL_WALLFLOWER[seq],)
) + (
    # --- siamese FCN: scene-specific, 30% train / 10% validation / 60% test -----------------------
    # papers/003 Table 1 (Fmeasure, RE, PRE per category; Overall row = Table 2's F 0.9834)
    Reference("siamese_fcn", "papers/003 Tables 1-2", overall=0.98338, rows=_cdnet(
        (0.99648, 0.99203, 0.99341, 0.98770, 0.98939, 0.96866, 0.98226, 0.98939, 0.99438), _SIAMESE_CATS, 1.0),
        **_SIAMESE),
    Reference("siamese_fcn", "papers/003 Tables 1-2", metric="recall", overall=0.97993, rows=_cdnet(
        (0.99751, 0.99271, 0.99013, 0.98794, 0.98679, 0.96330, 0.97916, 0.98680, 0.99396), _SIAMESE_CATS, 1.0),
        **_SIAMESE),
    Reference("siamese_fcn", "papers/003 Tables 1-2", metric="precision", overall=0.98685, rows=_cdnet(
        (0.99647, 0.99136, 0.99672, 0.98746, 0.99200, 0.97410, 0.98537, 0.99200, 0.99479), _SIAMESE_CATS, 1.0),
        **_SIAMESE),

    # --- CrossNet/HOFAM: one model from 5% of every CDnet2014 video's labelled frames ---------
    # papers/004 Table II, row CrossNet-HOFAM (= Table I row 1): averages only, no categories
    Reference("crossnet", "papers/004 Table II", overall=0.9776, **_CROSSNET),
    Reference("crossnet", "papers/004 Table II", metric="mean_dice", overall=0.9466, **_CROSSNET),
    Reference("crossnet", "papers/004 Table II", metric="recall", overall=0.9661, **_CROSSNET),
    Reference("crossnet", "papers/004 Table II", metric="precision", overall=0.9893, **_CROSSNET),
    # papers/004 Tables III (LIMU) and IV (LASIESTA): trained on CDnet2014, no retraining. Not
    # in ../shared/data (the paper suite's transfer uses UCSD and SBI2015 instead): shown only
    # for a run that transfers to them, by subset
    Reference("crossnet", "papers/004 Table III", dataset="LIMU", protocol="transfer",
              options=(("source", ("CDnet2014",)), ("target", ("LIMU",))), aggregation="as-printed",
              rows=(("CameraParameter", 0.7979), ("Intersection", 0.7851), ("LightSwitch", 0.8493)), overall=0.7981),
    Reference("crossnet", "papers/004 Table IV", dataset="LASIESTA", protocol="transfer",
              options=(("source", ("CDnet2014",)), ("target", ("LASIESTA",))), aggregation="as-printed",
              rows=(("O_MC", 0.6919), ("O_CL", 0.8602), ("I_OC", 0.8456), ("I_MC", 0.7895)), overall=0.8072),
)

# What a paper does not give in the text we have: said in a footnote wherever the method is shown
MISSING = {
    ("two_stage_cnn", "scene-specific"): "papers/001 compares per-category F-measures in its Table 1, which is not in "
                                         "the text we have (only the claims +4.9% over the state of the art and 5 fps)",
    ("siamese_fcn", "transfer"): "papers/003 gives its CDnet baseline -> SBI2015 Highway results in Table 3, which is "
                                 "not in the text we have",
}


def _legacy() -> dict[str, dict[str, float]]:
    """``PUBLISHED[method][category]``: CDnet2014 F-measures, as earlier versions had them
    (plus ``overall``: the printed one, else the mean of the categories)."""
    out = {}
    for r in REFERENCES:
        if r.dataset == "CDnet2014" and r.metric == "f_measure" and r.rows and r.method not in out:
            d = dict(r.rows)
            d["overall"] = r.overall if r.overall is not None else sum(d.values()) / len(d)
            out[r.method] = d
    return out


PUBLISHED: dict[str, dict[str, float]] = _legacy()


# --- matching a run ----------------------------------------------------------------------
def _norm(v: Any) -> Any:
    return tuple(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v)


def options_match(run_options: Mapping[str, Any] | None, required: tuple[tuple[str, Any], ...]) -> bool:
    if not required:
        return True
    if run_options is None:
        return False
    return all(_frames_match(run_options, v) if k == "rule" and _is_list_rule(v)
               else k in run_options and _norm(run_options[k]) == _norm(v) for k, v in required)


def _is_list_rule(rule: Any) -> bool:
    from bgbench.framelists import is_list_rule

    return isinstance(rule, str) and is_list_rule(rule)


def _frames_match(run_options: Mapping[str, Any], rule: str) -> bool:
    """Whether the run trained on exactly the frames of the published list ``rule``."""
    from bgbench.framelists import load

    return run_options.get("frames") is not None and str(run_options["frames"]) == load(rule).digest


def _ours(results: Results, entry: Summary, ref: Reference, dataset: str) -> DatasetSummary | None:
    """Our dataset summary of ``entry`` (one label under one protocol key) if its key is
    ``ref``'s protocol with ``ref``'s options (from ``meta.protocols``; a record without
    them matches only an entry that asks for no option)."""
    if entry.protocol != ref.protocol:
        return None
    if not options_match(results.meta.protocols.get(entry.protocol_key), ref.options):
        return None
    return entry.datasets.get(dataset)


def _our_value(d: DatasetSummary, ref: Reference, row: str) -> tuple[float | None, int]:
    """Our value of one published row and the number of our videos behind it."""
    if ref.per == "video":
        hit = [m for vid, m in d.videos.items() if vid.rsplit("/", 1)[-1] == row]
        return (hit[0].get(ref.metric), 1) if hit else (None, 0)
    cat = d.categories.get(row)
    return (cat.get(ref.metric) if cat else None), sum(1 for vid in d.videos if category_of(vid) == row)


def _our_overall(d: DatasetSummary, ref: Reference) -> float | None:
    return (d.pooled if ref.aggregation == "pooled" else d.overall).get(ref.metric)


def _order(name: str) -> tuple:
    return (CATEGORIES.index(name) if name in CATEGORIES else len(CATEGORIES),
            WALLFLOWER.index(name) if name in WALLFLOWER else len(WALLFLOWER), name)


def compare(results: Results, protocol: str, dataset: str = "CDnet2014") -> dict[str, Any]:
    """Ours beside the published numbers for one protocol key (or a name that stands for
    one key of the record) and dataset of a run.

    ``rows``: one per (method, published entry) whose protocol matches: per published
    category (or video) present in the run, ours, published and the gap; then both means
    over those same rows, the paper's overall, ours formed the paper's way, the metric, the
    source and footnote marks. ``footnotes``: ``[n] text`` lines (fewer videos than the
    paper's means, how the paper forms its overall, what a paper does not give).
    ``cell_marks``: ``"ROW:COLUMN"`` (row index, header name) -> the marks that qualify that
    cell: a category's gap where ours has fewer videos than the paper's mean, the means' gap
    when any of its categories has, the published overall when it covers more videos or is
    formed otherwise."""
    key = resolve_protocol(results, protocol)
    name = protocol_name(key, results)
    entries = [s for s in results.under(key) if dataset in s.datasets]
    matched = []  # (label, ref, our dataset summary, present rows)
    for entry in entries:
        for ref in REFERENCES:
            if (ref.method != entry.method or ref.protocol != name or ref.dataset.lower() != dataset.lower()):
                continue
            d = _ours(results, entry, ref, dataset)
            if not d:
                continue
            present = [r for r, _ in ref.rows if _our_value(d, ref, r)[1] > 0]
            if ref.rows and not present:
                continue
            matched.append((entry.label, ref, d, present))
    cols = sorted({r for *_, present in matched for r in present}, key=_order)
    header = ["method"]
    for c in cols:
        header += [f"{c} ours", f"{c} published", f"{c} gap"]
    header += ["mean ours", "mean published (same categories)", "gap", "published overall",
               "ours overall (as published)", "metric", "published in", "notes"]
    notes: list[str] = []

    def mark(text: str) -> str:
        if text not in notes:
            notes.append(text)
        return f"[{notes.index(text) + 1}]"

    rows: list[list[Any]] = []
    cell_marks: dict[str, str] = {}
    for label, ref, d, present in matched:
        pub = ref.values
        row: list = [label]
        ours_vals, pub_vals, fewer, fewer_cols = [], [], [], []
        for c in cols:
            ours, n = _our_value(d, ref, c) if c in pub else (None, 0)
            p = pub.get(c)
            row += [ours, p, None if ours is None or p is None else ours - p]
            if ours is not None and p is not None:
                ours_vals.append(ours)
                pub_vals.append(p)
            if c in present and n < ref.paper_videos(c):
                fewer.append(f"{c} {n} of {ref.paper_videos(c)}")
                fewer_cols.append(f"{c} gap")
        mean_ours = sum(ours_vals) / len(ours_vals) if ours_vals else None
        mean_pub = sum(pub_vals) / len(pub_vals) if pub_vals else None
        ours_overall = _our_overall(d, ref) if ref.overall is not None else None
        marks, overall_marks = [], []
        i = len(rows)
        if fewer:
            m = mark(f"{label} ({ref.source}): ours averages fewer videos than the paper's category means: "
                     + ", ".join(fewer) + " videos")
            marks.append(m)
            for col in fewer_cols + ["gap"]:  # the gaps that compare fewer videos with a whole category mean
                cell_marks[f"{i}:{col}"] = m
        n_ours = len(d.videos)
        if ref.overall is not None and ref.overall_videos and n_ours < ref.overall_videos:
            overall_marks.append(mark(f"{label} ({ref.source}): the published overall is over {ref.overall_videos} "
                                      f"videos, ours over {n_ours}"))
        if ref.overall is not None and ref.aggregation != "category-mean":
            how = (ref.note or "the paper pools the counts of every test frame, and so does ours here"
                   if ref.aggregation == "pooled" else
                   "the overall is as printed" + (f" ({ref.note})" if ref.note else "")
                   + "; ours is the mean of our category means")
            overall_marks.append(mark(f"{ref.source}: {how}"))
        if overall_marks:
            cell_marks[f"{i}:published overall"] = "".join(overall_marks)
        marks += overall_marks
        row += [mean_ours, mean_pub, None if mean_ours is None or mean_pub is None else mean_ours - mean_pub,
                ref.overall, ours_overall, ref.metric, ref.source, "".join(marks)]
        rows.append(row)
    for entry in entries:
        why = MISSING.get((entry.method, name))
        if why:
            mark(f"{entry.label}: no published number: {why}")
    from .citations import PAPERS, reference_text, source_key

    cited = sorted({k for _, ref, _, _ in matched if (k := source_key(ref.source))}
                   | {k for entry in entries if MISSING.get((entry.method, name))
                      and (k := source_key(MISSING[(entry.method, name)]))})
    return {"protocol": key, "dataset": dataset, "header": header, "rows": rows, "cell_marks": cell_marks,
            "footnotes": [f"[{i + 1}] {t}" for i, t in enumerate(notes)],
            "references": [{"key": k, "papers": sorted(p for p, v in PAPERS.items() if v == k),
                            "text": reference_text(k)} for k in cited]}


def references_text(comp: dict) -> str:
    """The full references of the papers a comparison's published numbers come from."""
    refs = comp.get("references") or []
    return ("References:\n" + "\n".join(f"- {', '.join(r['papers'])} [{r['key']}]: {r['text']}" for r in refs)
            if refs else "")


def marked_rows(comp: dict) -> list[list]:
    """``compare``'s rows for printing: a gap (or published overall) that a footnote
    qualifies carries its mark in the cell, e.g. ``-0.4615 [1]``; other cells as they are."""
    h, marks = comp["header"], comp.get("cell_marks", {})
    out = []
    for i, row in enumerate(comp["rows"]):
        cells = list(row)
        for j, col in enumerate(h):
            m = marks.get(f"{i}:{col}")
            if m:
                v = cells[j]
                text = "-" if v is None else (f"{v:+.4f}" if col.endswith("gap") else f"{v:.4f}")
                cells[j] = f"{text} {m}"
        out.append(cells)
    return out


def csv_columns(comp: dict) -> tuple[list[str], list[list]]:
    """``compare`` for CSV: numbers stay numbers, and each gap that a footnote qualifies has
    a ``... note`` column right beside it with the mark."""
    h, marks = comp["header"], comp.get("cell_marks", {})
    marked = [col for col in h if any(k.split(":", 1)[1] == col for k in marks)]
    header = [x for col in h for x in ([col, f"{col} note"] if col in marked else [col])]
    rows = []
    for i, row in enumerate(comp["rows"]):
        rows.append([x for col, v in zip(h, row)
                     for x in ([v, marks.get(f"{i}:{col}", "")] if col in marked else [v])])
    return header, rows


def comparison(results: Results, protocol: str, dataset: str = "CDnet2014") -> tuple[list[str], list[list]]:
    """``compare`` as (header, rows)."""
    c = compare(results, protocol, dataset)
    return c["header"], c["rows"]

