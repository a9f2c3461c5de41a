"""Per-category and per-metric tables from a run's typed results (``bgbench.records.types.Results``):
Markdown, CSV and LaTeX (booktabs; the best value of each column bold, the second underlined).

Tables are per protocol key (name and options; ``bgbench.scoring.aggregate.protocol_display``
prints it) and dataset. A method whose every job failed there is a row with "failed" and
its error below the table (``failure_notes``), never left out; a binary method's AP is
"n/a (binary)" (``BINARY_AP``)."""

from __future__ import annotations

import csv
import io
import math
import re
from typing import Any, Iterator, Sequence, TypeGuard, cast

from bgbench.records.types import DatasetSummary, Results, Summary
from bgbench.timing.untimed import NA, fps_cell, untimed_labels

# CDnet2014 category abbreviations, as the papers print them
ABBREV = {
    "badWeather": "BDW", "baseline": "BSL", "cameraJitter": "CJT", "dynamicBackground": "DMB",
    "intermittentObjectMotion": "IOM", "lowFramerate": "LFM", "nightVideos": "NGT", "PTZ": "PTZ",
    "shadow": "SHD", "thermal": "THM", "turbulence": "TBL",
}
# column label, results key, higher is better
METRICS = [
    ("Re", "recall", True), ("Sp", "specificity", True), ("FPR", "fpr", False), ("FNR", "fnr", False),
    ("PWC", "pwc", False), ("Pr", "precision", True), ("F", "f_measure", True), ("FPR-S", "fpr_shadow", False),
    ("MCC", "mcc", True), ("Dice", "mean_dice", True),
]


def _nan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _number(v: Any) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


FAILED = "failed"
BINARY_AP = "n/a (binary)"  # fewer than 3 output levels: one operating point, no PR curve (scoring.pr_curve)


# How a column's numbers are printed, by kind: metrics in [0, 1] (and PWC) with 4 decimals
# (3 in LaTeX, but FPR, often 0.00x, keeps 4), frames/s with 3 significant figures, average
# ranks with 1 decimal.
KINDS = ("text", "metric", "fps", "rank", "int")
TEX_DECIMALS = {"FPR": 4}  # by column label; 3 otherwise
_KIND_OF_LABEL = {"FPS": "fps", "RC": "rank", "RM": "rank", "avg rank (categories)": "rank",
                  "avg rank (metrics)": "rank", "videos": "int", "family": "text", "dataset": "text",
                  "category": "text"}


def column_kinds(header: Sequence[str]) -> list[str]:
    """The kind of each column, from its label: the first column is text, ``FPS`` is fps,
    average-rank columns are ranks, anything else a metric (a non-number prints as text)."""
    return ["text"] + [_KIND_OF_LABEL.get(h, "metric") for h in list(header)[1:]]


def significant(v: float, digits: int = 3) -> str:
    """``v`` with ``digits`` significant figures, never in exponent form: 0.312, 53.1, 368, 4865."""
    if v == 0 or not math.isfinite(v):
        return f"{v:.0f}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(v))), 0)
    decimals = max(digits - 1 - math.floor(math.log10(abs(round(v, decimals)))), 0)  # 99.96 -> 100, not 100.0
    return f"{v:.{decimals}f}"


def fmt(v: Any, kind: str = "metric", decimals: int = 4) -> str:
    """One cell as printed in Markdown, LaTeX and HTML; ``-`` for undefined values. Metrics
    get ``decimals`` decimals (4; 3 in LaTeX, where every point is width)."""
    if _nan(v):
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)) or kind == "text":
        return str(v)
    if kind == "fps":
        return significant(float(v))
    if kind == "rank":
        return f"{v:.1f}"
    if kind == "int":
        return f"{v:.0f}"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{decimals}f}" if abs(v) < 1000 else f"{v:.0f}"


def _md_cell(text: str) -> str:
    """A Markdown table cell: one line, and a ``|`` that cannot end the cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown(header: Sequence[str], rows: Sequence[Sequence[Any]], kinds: Sequence[str] | None = None) -> str:
    kinds = list(kinds) if kinds is not None else column_kinds(header)
    cells = [[_md_cell(h) for h in header]] + [[_md_cell(fmt(c, k)) for c, k in zip(r, kinds)] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r):
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"

    sep = "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


def to_csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Full precision: CSV is for machines."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if _nan(c) else c for c in r])
    return buf.getvalue()


# OT1, pdflatex's default font encoding, prints < and > as inverted marks: spell them out
_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}"}


def tex_escape(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(s))


def tex_label(s: str) -> str:
    """A \\label key: letters, digits and ``:.-`` only (``_`` breaks \\label under babel and
    hyperref, and an escaped ``\\_`` breaks it everywhere)."""
    return re.sub(r"[^A-Za-z0-9:.\-]+", "-", str(s)).strip("-")


def ranks_in_column(values: Sequence[Any], higher_better: bool) -> list[int | None]:
    """1 for the best, 2 for the second (ties share), None for undefined values and text
    ("failed", "n/a (binary)")."""
    defined = sorted({v for v in values if _number(v)}, reverse=higher_better)
    return [defined.index(v) + 1 if _number(v) else None for v in values]


# The tabular is shrunk to the line width only when it is wider (graphicx's \resizebox
# measures its content into \width first), so narrow tables keep the text's font size.
_FIT_OPEN = r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%"


def latex_tabular(header: Sequence[str], rows: Sequence[Sequence[Any]], higher_better: Sequence[bool | None],
                  kinds: Sequence[str] | None = None) -> list[str]:
    """The lines of one booktabs tabular, shrunk to the line width if it is wider; per
    column (``higher_better`` not None) the best value bold, the second underlined."""
    kinds = list(kinds) if kinds is not None else column_kinds(header)
    cols: list[Sequence[Any]] = list(zip(*rows)) if rows else [[] for _ in header]
    marks = [ranks_in_column(c, hb) if hb is not None else [None] * len(c) for c, hb in zip(cols, higher_better)]
    align = "".join("l" if k == "text" else "r" for k in kinds)
    decimals = [TEX_DECIMALS.get(h, 3) for h in header]
    lines = [_FIT_OPEN, r"\begin{tabular}{" + align + "}", r"\toprule",
             " & ".join(tex_escape(h) for h in header) + r" \\", r"\midrule"]
    for i, r in enumerate(rows):
        cells = []
        for j, (v, k) in enumerate(zip(r, kinds)):
            s = "--" if _nan(v) else tex_escape(fmt(v, k, decimals[j]))
            if marks[j][i] == 1:
                s = r"\textbf{" + s + "}"
            elif marks[j][i] == 2:
                s = r"\underline{" + s + "}"
            cells.append(s)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}"]
    return lines


def tex_note(text: str) -> str:
    """Escaped text that may break after ``/``, ``_``, ``.`` and ``:`` (paths and error
    messages in a note must not run into the margin)."""
    out = tex_escape(text)
    for ch in ("/", r"\_", ".", ":"):
        out = out.replace(ch, ch + r"\allowbreak{}")
    return out


def cite_line(labels: Sequence[Any]) -> str:
    """The line "Methods: a~\\cite{key}, ..." for the labels whose method has a paper
    (``bgbench.reports.citations``; the keys are in the report's references.bib)."""
    from .citations import cite_keys

    pairs = cite_keys(dict.fromkeys(str(x) for x in labels))
    return ("Methods: " + ", ".join(f"{tex_escape(lab)}~\\cite{{{key}}}" for lab, key in pairs) + ".") if pairs else ""


def latex_float(blocks: Sequence[tuple], caption: str = "", label: str = "", wide: bool = False,
                notes: Sequence[str] = (), cites: str = "") -> str:
    """One table float (``table*`` when ``wide``: both columns of a two-column paper) holding
    one or more tabulars, each ``(header, rows, higher_better[, kinds])``, stacked, then
    ``notes`` in small type (failures and their errors) and ``cites`` (LaTeX, ``cite_line``);
    a tabular wider than the line is scaled down to it, never beyond. Needs
    ``\\usepackage{booktabs,graphicx}`` (and the report's references.bib for the citations)."""
    env = "table*" if wide else "table"
    lines = [r"\begin{" + env + "}[t]", r"\centering", r"\setlength{\tabcolsep}{4pt}"]
    for n, block in enumerate(blocks):
        if n:
            lines.append(r"\par\medskip")
        lines += latex_tabular(*block)
    if notes or cites:
        lines.append(r"\par\smallskip{\footnotesize\raggedright "
                     + r"\par ".join([tex_note(t) for t in notes] + ([cites] if cites else [])) + r"\par}")
    if caption:
        lines.append(r"\caption{" + tex_escape(caption) + "}")
    if label:
        lines.append(r"\label{" + tex_label(label) + "}")
    lines.append(r"\end{" + env + "}")
    return "\n".join(lines) + "\n"


def latex(header: Sequence[str], rows: Sequence[Sequence[Any]], higher_better: Sequence[bool | None],
          caption: str = "", label: str = "", kinds: Sequence[str] | None = None, wide: bool = False,
          notes: Sequence[str] = (), cites: str = "") -> str:
    """A booktabs table; per column (``higher_better`` not None) best bold, second underlined."""
    return latex_float([(header, rows, higher_better, kinds)], caption, label, wide, notes, cites)


def protocols_and_datasets(results: Results) -> list[tuple[str, str]]:
    """Every (protocol key, dataset) of the record, a dataset where a method only failed too."""
    seen: set[tuple[str, str]] = set()
    for s in results.summaries.values():
        seen.update((s.protocol_key, ds) for ds in s.datasets)
        seen.update((s.protocol_key, ds) for ds in s.failures)
    return sorted(seen)


def failures(results: Results, protocol: str, dataset: str) -> list[dict]:
    """Per method label with failed jobs on ``dataset`` under ``protocol`` (a key):
    ``method``, ``failed`` and ``jobs`` (failed and all), ``all_failed``, ``errors``
    [{video, split, error}] and ``message``: the count and the error (the first, and how
    many others)."""
    out = []
    for s in results.under(protocol):
        errs = list(s.failures.get(dataset) or ())
        if not errs:
            continue
        d = s.datasets.get(dataset)
        ok = len(d.videos) if d else 0
        distinct = list(dict.fromkeys(e["error"] for e in errs))
        n = len(errs) + ok
        message = (f"{'all ' if not ok and n > 1 else ''}{len(errs)} of {n} job{'s' if n != 1 else ''} failed: "
                   f"{distinct[0]}"
                   + (f" (and {len(distinct) - 1} other error{'s' if len(distinct) > 2 else ''})"
                      if len(distinct) > 1 else "")
                   + ("" if not ok else f"; its numbers cover the other {ok} video{'s' if ok != 1 else ''}"))
        out.append({"method": s.label, "failed": len(errs), "jobs": n, "all_failed": not ok,
                    "errors": [dict(e) for e in errs], "message": message})
    return out


def failure_notes(results: Results, protocol: str, dataset: str) -> list[str]:
    """One line per method with failed jobs here, then per method with truncated training or
    degenerate output (``flag_notes``), for below a table; then what the means leave out
    (bgbench.scoring.coverage: undefined F or precision, rows over different video sets, videos
    skipped as bad data)."""
    from bgbench.scoring.coverage import coverage_notes

    return ([f"{f['method']}: {FAILED if f['all_failed'] else 'partly failed'}: {f['message']}"
             for f in failures(results, protocol, dataset)] + flag_notes(results, protocol, dataset)
            + coverage_notes(results, protocol, dataset))


TRUNCATED = "truncated"  # a row's marker: training stopped by the clock before its steps (records.types.JobRecord)
DEGENERATE = "degenerate"  # a row's marker: a constant map or no positive pixel (scoring.metrics.degenerate)


def _flags(results: Results, s: Summary, dataset: str) -> tuple[list, dict[str, str]]:
    truncated = [j for j in results.jobs_of(s.label, s.protocol_key) if j.truncated and j.key.dataset == dataset]
    degenerate = {v: why for v, why in s.degenerate.items() if v.split("/", 1)[0] == dataset}
    return truncated, degenerate


def marked(results: Results, s: Summary, dataset: str) -> str:
    """The label as tables print it: with "(truncated)" when a job's training was cut short by
    ``max_train_seconds``, "(degenerate)" when a video's output collapsed, so neither reads as
    a plain number."""
    truncated, degenerate = _flags(results, s, dataset)
    marks = [TRUNCATED] * bool(truncated) + [DEGENERATE] * bool(degenerate)
    return f"{s.label} ({', '.join(marks)})" if marks else s.label


def flag_notes(results: Results, protocol: str, dataset: str) -> list[str]:
    """One line per marked method: which jobs were truncated (steps trained of configured)
    and which videos' outputs are degenerate, and why."""
    out = []
    for s in results.under(protocol):
        truncated, degenerate = _flags(results, s, dataset)
        if truncated:
            out.append(f"{s.label}: {TRUNCATED}: {len(truncated)} job(s) trained fewer steps than configured "
                       f"(stopped by max_train_seconds: not comparable): "
                       + "; ".join(f"{j.key.video} {j.training_note()}" for j in truncated[:3]))
        if degenerate:
            out.append(f"{s.label}: {DEGENERATE} output on {len(degenerate)} video(s): "
                       + ", ".join(f"{v} ({why})" for v, why in list(degenerate.items())[:5]))
    return out


def _failed_only(results: Results, protocol: str, dataset: str) -> list[str]:
    return [f["method"] for f in failures(results, protocol, dataset) if f["all_failed"]]


def _entries(results: Results, protocol: str, dataset: str) -> Iterator[tuple[str, Summary, DatasetSummary]]:
    for s in results.under(protocol):
        d = s.datasets.get(dataset)
        if d:
            yield marked(results, s, dataset), s, d


def average_precision_cell(d: DatasetSummary) -> Any:
    """AP as tables show it: the number, or ``BINARY_AP`` for a method with fewer than 3
    output levels (no PR curve to sum)."""
    if d.binary:
        return BINARY_AP
    return d.average_precision


def column(header: Sequence[str], rows: Sequence[Sequence[Any]], name: str) -> list[Any]:
    """The cells of the column named ``name``."""
    i = list(header).index(name)
    return [r[i] for r in rows]


def select(header: Sequence[str], rows: Sequence[Sequence[Any]], names: Sequence[str]
           ) -> tuple[list[str], list[list[Any]]]:
    """The columns named ``names`` of a table, in that order."""
    idx = [list(header).index(n) for n in names]
    return [header[i] for i in idx], [[r[i] for i in idx] for r in rows]


def _by(header: Sequence[str], name: str):
    """A sort key: the column ``name``, highest first, undefined and text last."""
    i = list(header).index(name)
    return lambda r: -(r[i] if _number(r[i]) else -1)


def category_table(results: Results, protocol: str, dataset: str, metric: str = "f_measure",
                   abbreviate: bool = False) -> tuple[list[str], list[list[Any]]]:
    """Rows: methods, best overall F first, then those whose every job failed ("failed");
    columns: the metric per category, then overall F, Re, Pr, PWC and frames/s."""
    cats: list[str] = []
    for _, _, d in _entries(results, protocol, dataset):
        cats += [c for c in d.categories if c not in cats and c != "-"]
    header = ["method"] + [ABBREV.get(c, c) if abbreviate else c for c in cats] + ["overall F", "Re", "Pr", "PWC", "FPS"]
    rows = []
    untimed = untimed_labels(results)
    for method, s, d in _entries(results, protocol, dataset):  # method: the label as shown, marks and all
        o = d.overall
        rows.append([method] + [d.categories.get(c, {}).get(metric) for c in cats]
                    + [o.get("f_measure"), o.get("recall"), o.get("precision"), o.get("pwc"),
                       fps_cell(d.fps_median, s.label, untimed)])
    rows.sort(key=_by(header, "overall F"))
    for method in _failed_only(results, protocol, dataset):
        rows.append([method, FAILED] + [None] * (len(header) - 2))
    return header, rows


def metrics_table(results: Results, protocol: str, dataset: str) -> tuple[list[str], list[list[Any]], list[bool | None]]:
    """Rows: methods (then the failed ones); columns: every overall metric, average
    precision and frames/s."""
    header = ["method"] + [label for label, _, _ in METRICS] + ["AP", "FPS"]
    better: list[bool | None] = [None] + [hb for _, _, hb in METRICS] + [True, True]
    rows = []
    untimed = untimed_labels(results)
    for method, s, d in _entries(results, protocol, dataset):
        rows.append([method] + [d.overall.get(key) for _, key, _ in METRICS]
                    + [average_precision_cell(d), fps_cell(d.fps_median, s.label, untimed)])
    rows.sort(key=_by(header, "F"))
    for method in _failed_only(results, protocol, dataset):
        rows.append([method, FAILED] + [None] * (len(header) - 2))
    return header, rows, better


def long_table(results: Results, protocol: str) -> tuple[list[str], list[list[Any]]]:
    """Every metric of every method, dataset and category (and overall): one row each."""
    header = ["method", "dataset", "category"] + [key for _, key, _ in METRICS]
    rows = []
    for s in results.under(protocol):
        for ds, d in s.datasets.items():
            for cat, m in list(d.categories.items()) + [("overall", d.overall)]:
                rows.append([s.label, ds, cat] + [m.get(key) for _, key, _ in METRICS])
        for ds in sorted(set(s.failures) - set(s.datasets)):
            rows.append([s.label, ds, FAILED] + [None] * len(METRICS))
    return header, rows


def latex_category_table(results: Results, protocol: str, dataset: str, label: str = "") -> str:
    """F-measure per category (CDnet abbreviations) and overall, one row per method; a
    ``table*`` once there are more than six categories."""
    h, rows = category_table(results, protocol, dataset, abbreviate=True)
    h, rows = select(h, rows, h[:h.index("overall F") + 1])  # the categories and overall F
    n = len(h)
    caption = (f"F-measure per category and overall (the mean of the category means), {dataset}, protocol "
               f"{protocol_title(results, protocol)}. Best per column in bold, second underlined.")
    return latex([*h[:n - 1], "overall"], rows, [None] + [True] * (n - 1), caption, label,
                 wide=n > 8, notes=failure_notes(results, protocol, dataset), cites=cite_line(column(h, rows, "method")))


def latex_metrics_table(results: Results, protocol: str, dataset: str, label: str = "") -> str:
    """Every overall metric, as two stacked tabulars in one ``table*``: CDnet's seven
    metrics, then shadow FPR, MCC, mean Dice, average precision and frames/s."""
    h, rows, better = metrics_table(results, protocol, dataset)

    def block(names):
        return (*select(h, rows, names), [better[h.index(n)] for n in names])

    caption = (f"Overall metrics, {dataset}, protocol {protocol_title(results, protocol)}: CDnet's seven metrics "
               "(top); false positive rate on shadows (FPR-S), Matthews correlation (MCC), mean Dice, average "
               "precision (AP; n/a for a binary method, one operating point) and frames/s of segmentation (FPS; "
               "bottom). Best per column in bold, second underlined.")
    return latex_float([block(["method", "Re", "Sp", "FPR", "FNR", "PWC", "Pr", "F"]),
                        block(["method", "FPR-S", "MCC", "Dice", "AP", "FPS"])], caption, label, wide=True,
                       notes=failure_notes(results, protocol, dataset), cites=cite_line(column(h, rows, "method")))


def _status_cell(r: dict) -> Any:
    return FAILED if r.get("status") == "failed" else r.get("RC")


def ci_text(r: dict) -> str:
    """A leaderboard row's CI as printed: ``[lo, hi]``, or why there is none."""
    if r.get("ci_low") is None or _nan(r.get("ci_low")):
        return r.get("ci_note") or "-"
    return f"[{fmt(r['ci_low'], decimals=3)}, {fmt(r['ci_high'], decimals=3)}]"


def failure_text(board: dict) -> list[str]:
    """A leaderboard's failed methods, one line each."""
    return [f"{f['method']}: {'failed' if f['all_failed'] else 'partly failed'}: {f['message']}"
            for f in board.get("failures", [])] + list(board.get("flags", []))


# A leaderboard's columns: (header, header in LaTeX or None where LaTeX leaves it out,
# higher is better (None: not ranked), kind, the cell of a row (a dict of
# ``bgbench.reports.leaderboard.leaderboard``))
_LB_COLUMNS: tuple[tuple[str, str | None, bool | None, str, Any], ...] = (
    ("method", "method", None, "text", lambda r: f"{r['method']} ({r['marks']})" if r.get("marks") else r["method"]),
    ("family", None, None, "text", lambda r: r["family"]),
    ("avg rank (categories)", "RC", False, "rank", _status_cell),
    ("avg rank (metrics)", "RM", False, "rank", lambda r: r["RM"]),
    ("overall F", "F", True, "metric", lambda r: r["f_measure"]),
    ("95% CI", "95% CI", None, "text", lambda r: None if r.get("status") == "failed" else ci_text(r)),
    ("AP", "AP", True, "metric", lambda r: BINARY_AP if r.get("binary") else r.get("average_precision")),
    ("FPS", "FPS", True, "fps", lambda r: NA if r.get("fps_na") else r["fps"]),
)


def _tex_ci(r: dict, cell: Any) -> Any:
    """The CI in LaTeX: ``lo--hi``; none where the n is too small (one footnote says why)."""
    if isinstance(cell, str) and cell.startswith("["):
        return cell.strip("[]").replace(", ", "--")
    return None if r.get("ci_note") else cell


def leaderboard_table(board: dict, tex: bool = False) -> tuple[list[str], list[list[Any]], list[bool | None]]:
    """A leaderboard (``bgbench.reports.leaderboard.leaderboard``) as a table: short column names
    for LaTeX (``tex``; no family), descriptive ones otherwise. A failed method reads
    "failed" in the rank column (its error is in ``failure_notes``); a CI that cannot be
    given says why (in LaTeX: "--", and one footnote, ``leaderboard_tex_notes``)."""
    cols = [c for c in _LB_COLUMNS if not tex or c[1] is not None]
    rows = []
    for r in board["rows"]:
        cells = {c[0]: c[4](r) for c in cols}
        if tex:
            cells["95% CI"] = _tex_ci(r, cells["95% CI"])
        rows.append([cells[c[0]] for c in cols])
    return [cast(str, c[1]) if tex else c[0] for c in cols], rows, [c[2] for c in cols]  # tex: c[1] is not None


def leaderboard_kinds(tex: bool = False) -> list[str]:
    return [c[3] for c in _LB_COLUMNS if not tex or c[1] is not None]


def leaderboard_tex_notes(board: dict) -> list[str]:
    """Below the LaTeX leaderboard: why a CI is missing (once, not on every row), then the
    failures."""
    small = [r for r in board["rows"] if r.get("status") != "failed" and r.get("ci_note")]
    notes = []
    if small:
        notes.append("No 95% CI (--): n too small (fewer than 3 videos with a defined F): "
                     + ", ".join(f"{r['method']} ({r['ci_videos']})" for r in small) + ".")
    return notes + failure_text(board)


def latex_leaderboard(board: dict, label: str = "") -> str:
    h, rows, better = leaderboard_table(board, tex=True)
    caption = (f"Leaderboard, {board['dataset']}, protocol {board.get('protocol_display', board['protocol'])}, ordered "
               "by RC then RM (lower is better; 1 is best). RM: the average over CDnet's seven metrics (Re, Sp, FPR, "
               "FNR, PWC, Pr, F) of the method's rank on the overall value. RC: per category, methods are ranked by their average rank over the seven "
               "metrics; RC averages those ranks over categories. 95% CI: two-stage bootstrap of overall F over "
               "categories and videos, given with at least 3 videos. AP: average precision of the pooled PR curve "
               "(n/a for a binary method).")
    return latex(h, rows, better, caption, label, kinds=leaderboard_kinds(tex=True),
                 notes=leaderboard_tex_notes(board) + list(board.get("coverage", [])),
                 cites=cite_line(column(h, rows, "method")))


def protocol_title(results: Results, protocol: str) -> str:
    from bgbench.scoring.aggregate import protocol_display

    return protocol_display(protocol, results)


def terminal_summary(results: Results) -> str:
    parts = []
    for proto, ds in protocols_and_datasets(results):
        header, rows = category_table(results, proto, ds)
        notes = "".join(f"\n{n}" for n in failure_notes(results, proto, ds))
        parts.append(f"{ds} · protocol {protocol_title(results, proto)} · F-measure per category\n"
                     f"{markdown(header, rows)}{notes}")
    return "\n\n".join(parts)
