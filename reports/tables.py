"""Per-category metric tables from a results record (Markdown/plain text here)."""

from __future__ import annotations

import math
from typing import Any, Sequence


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def markdown(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, header))] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    def line(r): return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
    sep = "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


def protocols_and_datasets(results: dict) -> list[tuple[str, str]]:
    seen = []
    for per_proto in results["summary"].values():
        for proto, s in per_proto.items():
            for ds in s["datasets"]:
                if (proto, ds) not in seen:
                    seen.append((proto, ds))
    return sorted(seen)


def category_table(results: dict, protocol: str, dataset: str, metric: str = "f_measure") -> tuple[list[str], list[list[Any]]]:
    """Rows: methods; columns: the metric per category, then overall F, Re, Pr, PWC, fps."""
    summ = results["summary"]
    cats: list[str] = []
    for per_proto in summ.values():
        d = per_proto.get(protocol, {}).get("datasets", {}).get(dataset)
        if d:
            cats += [c for c in d["categories"] if c not in cats]
    cats = [c for c in cats if c != "-"]  # a dataset without categories: overall says it all
    header = ["method"] + cats + ["overall F", "Re", "Pr", "PWC", "FPS"]
    rows = []
    for method in sorted(summ):
        s = summ[method].get(protocol)
        d = s and s["datasets"].get(dataset)
        if not d:
            continue
        o = d["overall"]
        rows.append([method] + [d["categories"].get(c, {}).get(metric) for c in cats]
                    + [o["f_measure"], o["recall"], o["precision"], o["pwc"], d["fps_median"]])
    rows.sort(key=lambda r: -(r[-5] if r[-5] is not None and not math.isnan(r[-5]) else -1))
    return header, rows


def terminal_summary(results: dict) -> str:
    parts = []
    for proto, ds in protocols_and_datasets(results):
        header, rows = category_table(results, proto, ds)
        parts.append(f"{ds} · protocol {proto} · F-measure per category\n{markdown(header, rows)}")
    return "\n\n".join(parts)
