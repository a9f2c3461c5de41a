"""One self-contained HTML leaderboard page: sortable tables, plots embedded as data URIs.
Opens offline. ``?sort=COLUMN&dir=asc|desc`` in the URL sorts the first table on load."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

COLUMNS = [("method", "method"), ("family", "family"), ("RC", "avg rank (categories)"), ("RM", "avg rank (metrics)"),
           ("f_measure", "overall F"), ("ci", "95% CI"), ("recall", "Re"), ("precision", "Pr"), ("pwc", "PWC"),
           ("mcc", "MCC"), ("average_precision", "AP"), ("fps", "FPS"), ("videos", "videos")]

_SCRIPT = """
function sortTable(table, col, dir) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const num = v => { const x = parseFloat(v); return isNaN(x) ? null : x; };
  rows.sort((a, b) => {
    const x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
    const nx = num(x), ny = num(y);
    let c = (nx !== null && ny !== null) ? nx - ny : String(x).localeCompare(String(y));
    return dir === 'desc' ? -c : c;
  });
  rows.forEach(r => body.appendChild(r));
  table.dataset.sorted = table.tHead.rows[0].cells[col].dataset.key + ':' + dir;
}
document.querySelectorAll('table.lb').forEach(t => {
  Array.from(t.tHead.rows[0].cells).forEach((th, i) => th.addEventListener('click', () => {
    const dir = th.dataset.dir === 'desc' ? 'asc' : 'desc'; th.dataset.dir = dir; sortTable(t, i, dir);
  }));
});
const q = new URLSearchParams(location.search);
if (q.get('sort')) {
  const t = document.querySelector('table.lb');
  const i = Array.from(t.tHead.rows[0].cells).findIndex(th => th.dataset.key === q.get('sort'));
  if (i >= 0) sortTable(t, i, q.get('dir') || 'desc');
}
"""

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 24px}th,td{padding:4px 9px;border-bottom:1px solid #ddd;text-align:right}
th{cursor:pointer;background:#f4f4f4}td:first-child,th:first-child,td:nth-child(2){text-align:left}
img{max-width:560px;margin:4px 12px 12px 0;border:1px solid #eee}.note{color:#666;font-size:90%}
"""


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4f}" if isinstance(v, float) and abs(v) < 1000 else (f"{v:.0f}" if isinstance(v, float) else str(v))


def _cell(key: str, row: dict) -> str:
    if key == "ci":
        v, text = row.get("ci_low"), f"[{_fmt(row.get('ci_low'))}, {_fmt(row.get('ci_high'))}]"
    else:
        v = row.get(key)
        text = _fmt(v)
    dv = "" if v is None or (isinstance(v, float) and math.isnan(v)) else v
    return f'<td data-v="{html.escape(str(dv))}">{html.escape(text)}</td>'


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(Path(path).name)}" src="data:image/png;base64,{data}">'


def page(results: dict, boards: list[dict], figures: dict[tuple[str, str], list[Path]], mosaic: Path | None) -> str:
    meta = results["meta"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>bgbench leaderboard</title><style>{_STYLE}</style>"
             "</head><body><h1>bgbench leaderboard</h1>",
             f"<p class='note'>run {html.escape(str(meta.get('created', '')))} · git {html.escape(str(meta.get('git')))} · "
             f"device {html.escape(str(meta.get('device')))} · threshold {meta.get('threshold')} · "
             f"{len(meta.get('videos', []))} videos. Click a column to sort.</p>"]
    for b in boards:
        parts.append(f"<h2>{html.escape(b['dataset'])} · protocol {html.escape(b['protocol'])}</h2>")
        parts.append("<table class='lb'><thead><tr>" + "".join(
            f"<th data-key='{k}'>{html.escape(label)}</th>" for k, label in COLUMNS) + "</tr></thead><tbody>")
        for r in b["rows"]:
            parts.append("<tr>" + "".join(_cell(k, r) for k, _ in COLUMNS) + "</tr>")
        parts.append("</tbody></table>")
        t = b.get("paired_test")
        if t:
            parts.append(f"<p class='note'>Paired sign-flip test, {html.escape(t['a'])} vs {html.escape(t['b'])} over "
                         f"{t['videos']} shared videos: mean F difference {_fmt(t['mean_difference'])}, "
                         f"p = {_fmt(t['p_value'])}.</p>")
        for f in figures.get((b["protocol"], b["dataset"]), []):
            parts.append(_img(f))
    if mosaic is not None:
        parts.append("<h2>Qualitative results</h2><p class='note'>TP green, FP red, FN pink, TN black, ignored grey.</p>")
        parts.append(_img(mosaic).replace("max-width:560px", ""))
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)
