"""One self-contained HTML leaderboard page: sortable tables, plots embedded as data URIs,
the videos that were skipped and the jobs that failed, with their reasons. Opens offline.

A header click sorts by that column, best first (ascending for ranks and PWC, descending
for the other metrics, A-Z for names); a second click reverses. An arrow marks the sorted
column. ``?sort=COLUMN&dir=asc|desc`` in the URL sorts the first table on load (best first
without ``dir``).

One table per protocol key and dataset, headed with the protocol's options. A method whose
every job failed there is a row reading "failed" (its error in the row's tooltip and in the
note below the table); the CI and the paired tests say when n is too small, which methods
were compared and why; a binary method's AP reads "n/a (binary)"."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from bgbench.scoring.aggregate import protocol_display
from bgbench.records.types import Results

from .leaderboard import ci_text, failure_text, published_gap, statistics_text
from .tables import BINARY_AP, FAILED, fmt

# key, label, which way is better ("high", "low" or "text"), number kind, tooltip
COLUMNS = [
    ("method", "method", "text", "text", "the method (and its config when not the default)"),
    ("family", "family", "text", "text", "classical or deep"),
    ("RC", "avg rank (categories)", "low", "rank",
     "RC: per category, methods are ranked by their average rank over CDnet's seven metrics; RC is the mean of "
     "those ranks over categories. Lower is better, 1 is best."),
    ("RM", "avg rank (metrics)", "low", "rank",
     "RM: the mean over CDnet's seven metrics (Re, Sp, FPR, FNR, PWC, Pr, F) of the method's rank on the overall "
     "value. Lower is better, 1 is best."),
    ("f_measure", "overall F", "high", "metric", "F-measure: the mean over categories of the mean over their videos"),
    ("ci", "95% CI", "high", "metric",
     "two-stage bootstrap 95% confidence interval of overall F (sorts by its lower end); given only with at least 3 "
     "videos, else 'n too small'"),
    ("recall", "Re", "high", "metric", "recall"),
    ("precision", "Pr", "high", "metric", "precision"),
    ("pwc", "PWC", "low", "metric", "percentage of wrong classifications: lower is better"),
    ("mcc", "MCC", "high", "metric", "Matthews correlation coefficient"),
    ("average_precision", "AP", "high", "metric", "average precision: the step-wise sum under the PR curve of the "
     "dataset's pooled pixels; n/a for a binary method (fewer than 3 output levels: one operating point, no curve)"),
    ("fps", "FPS", "high", "fps", "median over videos of frames/s of segment alone (decoding and scoring excluded)"),
    ("videos", "videos", "high", "int", "videos scored"),
    ("published_f", "published F", "high", "metric", "the paper's F under the same protocol, over the categories "
     "(or videos) ours covers; a mark points to a footnote below the table (reports/published.py)"),
]

_SCRIPT = """
const ARROW = {asc: '\\u25b2', desc: '\\u25bc'};
function bestFirst(th) { return th.dataset.better === 'high' ? 'desc' : 'asc'; }
function sortTable(table, col, dir) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const text = table.tHead.rows[0].cells[col].dataset.better === 'text';
  const val = v => (v === undefined || v === '') ? null : (text ? v : parseFloat(v));
  rows.sort((a, b) => {
    const x = val(a.cells[col].dataset.v), y = val(b.cells[col].dataset.v);
    if (x === null || y === null) return (x === null) - (y === null);  // no value: last either way
    const c = text ? String(x).localeCompare(String(y)) : x - y;
    return dir === 'desc' ? -c : c;
  });
  rows.forEach(r => body.appendChild(r));
  Array.from(table.tHead.rows[0].cells).forEach((th, i) => {
    th.dataset.dir = i === col ? dir : '';
    th.setAttribute('aria-sort', i === col ? (dir === 'asc' ? 'ascending' : 'descending') : 'none');
    th.querySelector('.arrow').textContent = i === col ? ARROW[dir] : '';
  });
  table.dataset.sorted = table.tHead.rows[0].cells[col].dataset.key + ':' + dir;
}
document.querySelectorAll('table.lb').forEach(t => {
  Array.from(t.tHead.rows[0].cells).forEach((th, i) => th.addEventListener('click', () => {
    const dir = th.dataset.dir ? (th.dataset.dir === 'asc' ? 'desc' : 'asc') : bestFirst(th);
    sortTable(t, i, dir);
  }));
});
const q = new URLSearchParams(location.search);
if (q.get('sort')) {
  const t = document.querySelector('table.lb');
  const ths = Array.from(t.tHead.rows[0].cells);
  const i = ths.findIndex(th => th.dataset.key === q.get('sort'));
  if (i >= 0) sortTable(t, i, q.get('dir') || bestFirst(ths[i]));
}
"""

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 12px;font-size:14px}
th,td{padding:4px 7px;border-bottom:1px solid #ddd;text-align:right}table.lb td{white-space:nowrap}
table.lb th{cursor:pointer;background:#f4f4f4;user-select:none;vertical-align:bottom;max-width:7.5em}
table.lb th:hover{background:#e8e8e8}
.arrow{display:inline-block;width:1em;font-size:80%;color:#357}
td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left}
table.issues td{text-align:left;vertical-align:top}code{font-size:90%}
img{max-width:560px;margin:4px 12px 12px 0;border:1px solid #eee}img.wide{max-width:100%}
.note{color:#555;font-size:90%;max-width:1000px}dt{font-weight:600}dd{margin:0 0 6px 16px}
"""

_RANKS = ("<dl class='note'><dt>How to read the table</dt>"
          "<dd><b>avg rank (metrics)</b> (RM): the method's rank among the methods on each of CDnet's seven metrics "
          "(Re, Sp, FPR, FNR, PWC, Pr, F) of the overall values, averaged over the seven.</dd>"
          "<dd><b>avg rank (categories)</b> (RC): in each category, the methods are ranked by their average rank over "
          "the seven metrics in that category; RC is the mean of those ranks over the categories (CDnet's overall "
          "ranking). For both, lower is better and 1 is best; rows start ordered by RC, then RM.</dd>"
          "<dd><b>95% CI</b>: a two-stage bootstrap of overall F (categories, then videos within them), seeded "
          "with the run's seed; given only with at least 3 videos, else <i>n too small</i>. "
          "<b>AP</b>: n/a for a binary method (one operating point: a point, not a curve, in the PR plot). "
          "<b>FPS</b>: median over the videos of frames/s of segmentation alone, on the run's device.</dd>"
          "<dd>Click a column header to sort by it, best first; click again to reverse.</dd></dl>")


def _cell(key: str, kind: str, row: dict) -> str:
    failed = row.get("status") == "failed"
    v = row.get("ci_low" if key == "ci" else key)
    if key == "ci":
        text = "-" if failed else ci_text(row)
    elif key == "RC" and failed:
        text = FAILED
    elif key == "method" and row.get("marks"):  # truncated training, degenerate output: said in the row
        text = f"{v} ({row['marks']})"
    elif key == "average_precision" and row.get("binary"):
        text = BINARY_AP
    elif key == "fps" and row.get("fps_na"):
        text = "n/a"
    elif key == "published_f" and row.get("published_marks") and v is not None:
        text = f"{fmt(v, kind)} {row['published_marks']}"
    else:
        text = fmt(v, kind)
    dv = "" if v is None or (isinstance(v, float) and math.isnan(v)) else v
    return f'<td data-v="{html.escape(str(dv))}">{html.escape(text)}</td>'


def _row(r: dict) -> str:
    tip = f" title='{html.escape(r['error'], quote=True)}'" if r.get("error") else ""
    return f"<tr{tip}>" + "".join(_cell(k, kind, r) for k, _, _, kind, _ in COLUMNS) + "</tr>"


def _header(initial: tuple[str, str] | None) -> str:
    cells = []
    for key, label, better, _, tip in COLUMNS:
        d = initial[1] if initial and initial[0] == key else ""
        aria = {"asc": "ascending", "desc": "descending"}.get(d, "none")
        arrow = {"asc": "\u25b2", "desc": "\u25bc"}.get(d, "")
        cells.append(f"<th data-key='{key}' data-better='{better}' data-dir='{d}' aria-sort='{aria}' "
                     f"title='{html.escape(tip, quote=True)}'>{html.escape(label)}"
                     f"<span class='arrow'>{arrow}</span></th>")
    return "<thead><tr>" + "".join(cells) + "</tr></thead>"


def _img(path: Path, cls: str = "") -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    c = f" class='{cls}'" if cls else ""
    return f'<img{c} alt="{html.escape(Path(path).name)}" src="data:image/png;base64,{data}">'


def _issues(results: Results) -> list[str]:
    """The skipped videos (failed validation, or a protocol could not use them) and the
    failed jobs, with their reasons, as the results record holds them."""
    parts = []
    skipped = results.meta.skipped
    if skipped:
        parts.append(f"<h2>Skipped ({len(skipped)})</h2><p class='note'>Left out of every table above: videos that "
                     "failed validation (<code>--on-bad-data skip</code>), and videos or splits a protocol could not "
                     "serve. Each message names the fix.</p><table class='issues'><thead><tr><th>where</th>"
                     "<th>protocol (methods)</th><th>why</th></tr></thead><tbody>")
        for s in skipped:
            where, error = str(s.get("where", "")), str(s.get("error", ""))
            if s.get("reason"):
                why = s["reason"] + (f" -- fix: {s['fix']}" if s.get("fix") else "")
            else:
                why = error[len(where) + 2:] if where and error.startswith(where + ": ") else error
            proto = (f"{protocol_display(s['protocol'], results)} ({', '.join(s.get('methods') or [])})"
                     if s.get("protocol") else "every protocol")
            parts.append(f"<tr><td><code>{html.escape(where)}</code></td><td>{html.escape(proto)}</td>"
                         f"<td>{html.escape(why)}</td></tr>")
        parts.append("</tbody></table>")
    failed = list(results.jobs_of(ok=False))
    if failed:
        parts.append(f"<h2>Failed jobs ({len(failed)})</h2><p class='note'>Recorded with their error. A method "
                     "whose every job on a dataset failed is listed in that table as <i>failed</i>; one that failed on "
                     "some videos is scored on the rest (see the notes below its table). The run exited with status "
                     "1.</p><table class='issues'><thead><tr><th>method</th>"
                     "<th>protocol</th><th>split</th><th>video</th><th>error</th></tr></thead><tbody>")
        for j in failed:
            cells = (j.key.label, protocol_display(j.key.protocol_key, results), j.key.split, j.key.video,
                     j.error or "")
            parts.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
        parts.append("</tbody></table>")
    return parts


def page(results: Results, boards: list[dict], figures: dict[tuple[str, str], list[Path]], mosaic: Path | None) -> str:
    meta = results.meta
    n_skipped, n_failed = len(meta.skipped), sum(1 for _ in results.jobs_of(ok=False))
    issues = (f" {n_skipped} skip(s) and {n_failed} failed job(s), with their reasons at the end of the page."
              if n_skipped or n_failed else " Nothing was skipped and no job failed.")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>bgbench leaderboard</title><style>{_STYLE}</style>"
             "</head><body><h1>bgbench leaderboard</h1>",
             f"<p class='note'>run {html.escape(str(meta.created))} · git {html.escape(str(meta.git))} · "
             f"device {html.escape(str(meta.device))} · threshold {meta.threshold} · "
             f"seed {html.escape(str(meta.seed))} · "
             f"{len(meta.videos)} videos scored.{html.escape(issues)}</p>", _RANKS]
    for b in boards:
        title = b.get("protocol_display") or b["protocol"]
        parts.append(f"<h2>{html.escape(b['dataset'])} · protocol {html.escape(title)}</h2>")
        if title != b["protocol"]:
            parts.append(f"<p class='note'>protocol key <code>{html.escape(b['protocol'])}</code></p>")
        parts.append("<table class='lb'>" + _header(("RC", "asc")) + "<tbody>")
        for r in b["rows"]:
            parts.append(_row(r))
        parts.append("</tbody></table>")
        for note in failure_text(b):
            what = "Flagged" if note in b.get("flags", ()) else "Failed"  # truncated training, degenerate output
            parts.append(f"<p class='note'><b>{what}</b>: {html.escape(note)}</p>")
        for note in b.get("coverage", []):  # what the means leave out (bgbench.scoring.coverage)
            parts.append(f"<p class='note'>{html.escape(note)}</p>")
        for note in statistics_text(b):
            parts.append(f"<p class='note'>{html.escape(note)}</p>")
        pub = [r for r in b["rows"] if r.get("published_f") is not None]
        if pub:
            parts.append("<p class='note'>Ours minus published F: " + "; ".join(
                f"{html.escape(r['method'])} {html.escape(published_gap(r))}" for r in pub) + ".</p>")
        for note in b.get("footnotes", []):  # published numbers (reports/published.py)
            parts.append(f"<p class='note'>{html.escape(note)}</p>")
        for sk in b.get("skipped", []):  # what the protocol could not serve (benchmark/protocols.py)
            parts.append(f"<p class='note'>Skipped by the protocol: {html.escape(str(sk['where']))} "
                         f"({html.escape(', '.join(sk.get('methods', [])))}): {html.escape(sk.get('reason', ''))}</p>")
        for f in figures.get((b["protocol"], b["dataset"]), []):
            if Path(f).suffix == ".png":
                parts.append(_img(f))
    if mosaic is not None:
        parts.append("<h2>Qualitative results</h2><p class='note'>Per method: true positives green, false positives "
                     "red, false negatives pink, true negatives black, pixels not scored (outside the ROI, unknown) "
                     "grey.</p>")
        parts.append(_img(mosaic, "wide"))
    parts += _issues(results)
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)
