"""Per-category and per-metric tables from a results record: Markdown, CSV and LaTeX
(booktabs; the best value of each column bold, the second underlined)."""

from __future__ import annotations

import csv
import io
import math
from typing import Any, Sequence

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


def _fmt(v: Any, digits: int = 4) -> str:
    if _nan(v):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def markdown(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, header))] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r):
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"

    sep = "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


def to_csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if _nan(c) else c for c in r])
    return buf.getvalue()


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(s))


def ranks_in_column(values: Sequence[Any], higher_better: bool) -> list[int | None]:
    """1 for the best, 2 for the second (ties share), None for undefined values."""
    defined = sorted({v for v in values if not _nan(v)}, reverse=higher_better)
    return [None if _nan(v) else defined.index(v) + 1 for v in values]


def latex(header: Sequence[str], rows: Sequence[Sequence[Any]], higher_better: Sequence[bool | None],
          caption: str = "", label: str = "") -> str:
    """A booktabs table; per column (``higher_better`` not None) best bold, second underlined."""
    cols = list(zip(*rows)) if rows else [[] for _ in header]
    marks = [ranks_in_column(c, hb) if hb is not None else [None] * len(c) for c, hb in zip(cols, higher_better)]
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule",
             " & ".join(tex_escape(h) for h in header) + r" \\", r"\midrule"]
    for i, r in enumerate(rows):
        cells = []
        for j, v in enumerate(r):
            s = tex_escape(_fmt(v)) if j == 0 or not isinstance(v, float) else _fmt(v)
            if marks[j][i] == 1:
                s = r"\textbf{" + s + "}"
            elif marks[j][i] == 2:
                s = r"\underline{" + s + "}"
            cells.append(s)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(r"\caption{" + tex_escape(caption) + "}")
    if label:
        lines.append(r"\label{" + tex_escape(label) + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def protocols_and_datasets(results: dict) -> list[tuple[str, str]]:
    seen = set()
    for per_proto in results["summary"].values():
        for proto, s in per_proto.items():
            seen.update((proto, ds) for ds in s["datasets"])
    return sorted(seen)


def _entries(results: dict, protocol: str, dataset: str):
    for method in sorted(results["summary"]):
        s = results["summary"][method].get(protocol)
        d = s and s["datasets"].get(dataset)
        if d:
            yield method, s, d


def category_table(results: dict, protocol: str, dataset: str, metric: str = "f_measure",
                   abbreviate: bool = False) -> tuple[list[str], list[list[Any]]]:
    """Rows: methods, best overall F first; columns: the metric per category, then overall
    F, Re, Pr, PWC and frames/s."""
    cats: list[str] = []
    for _, _, d in _entries(results, protocol, dataset):
        cats += [c for c in d["categories"] if c not in cats and c != "-"]
    header = ["method"] + [ABBREV.get(c, c) if abbreviate else c for c in cats] + ["overall F", "Re", "Pr", "PWC", "FPS"]
    rows = []
    for method, _, d in _entries(results, protocol, dataset):
        o = d["overall"]
        rows.append([method] + [d["categories"].get(c, {}).get(metric) for c in cats]
                    + [o["f_measure"], o["recall"], o["precision"], o["pwc"], d.get("fps_median")])
    rows.sort(key=lambda r: -(r[-5] if not _nan(r[-5]) else -1))
    return header, rows


def metrics_table(results: dict, protocol: str, dataset: str) -> tuple[list[str], list[list[Any]], list[bool | None]]:
    """Rows: methods; columns: every overall metric, average precision and frames/s."""
    header = ["method"] + [m[0] for m in METRICS] + ["AP", "FPS"]
    better: list[bool | None] = [None] + [m[2] for m in METRICS] + [True, True]
    rows = []
    for method, _, d in _entries(results, protocol, dataset):
        rows.append([method] + [d["overall"].get(m[1]) for m in METRICS] + [d.get("average_precision"), d.get("fps_median")])
    rows.sort(key=lambda r: -(r[7] if not _nan(r[7]) else -1))
    return header, rows, better


def long_table(results: dict, protocol: str) -> tuple[list[str], list[list[Any]]]:
    """Every metric of every method, dataset and category (and overall): one row each."""
    header = ["method", "dataset", "category"] + [m[1] for m in METRICS]
    rows = []
    for method in sorted(results["summary"]):
        s = results["summary"][method].get(protocol)
        if not s:
            continue
        for ds, d in s["datasets"].items():
            for cat, m in list(d["categories"].items()) + [("overall", d["overall"])]:
                rows.append([method, ds, cat] + [m.get(k[1]) for k in METRICS])
    return header, rows


def terminal_summary(results: dict) -> str:
    parts = []
    for proto, ds in protocols_and_datasets(results):
        header, rows = category_table(results, proto, ds)
        parts.append(f"{ds} · protocol {proto} · F-measure per category\n{markdown(header, rows)}")
    return "\n\n".join(parts)
