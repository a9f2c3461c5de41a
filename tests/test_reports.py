"""Reports read results only: tables (Markdown, CSV, LaTeX with best/second marks),
leaderboard ranks and statistics, the published comparison, plots, and the HTML page in a
real headless Chromium."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from records_helpers import job, results_of

from bgbench.cli import main
from bgbench.protocols import build_protocol
from bgbench.records.types import JobRecord
from bgbench.records.results import load_results
from bgbench.reports import leaderboard, tables
from bgbench.reports.published import PUBLISHED, comparison


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "run"
    assert main(["run", "--data", "synthetic", "--methods", "gmm_zivkovic,frame_difference,temporal_median",
                 "--save-masks", "--out", str(out)]) == 0
    return out, load_results(out)


def test_report_files(run):
    out, _ = run
    names = {p.name for p in (out / "report").iterdir()}
    for n in ("f_measure_full_synthetic.md", "f_measure_full_synthetic.csv", "f_measure_full_synthetic.tex",
              "metrics_full_synthetic.tex", "leaderboard_full_synthetic.md", "leaderboard_full_synthetic.tex",
              "categories_full.csv", "leaderboard.html", "leaderboard.json"):
        assert n in names, n
    from PIL import Image

    for fig in ("pr_full_synthetic", "speed_accuracy_full_synthetic", "mosaic"):  # vector and 300-dpi raster
        png, pdf = out / "report" / f"{fig}.png", out / "report" / f"{fig}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert pdf.read_bytes()[:5] == b"%PDF-"
        if fig == "mosaic":  # text as outlines: no font, so none unembedded
            assert b"/Font" not in pdf.read_bytes()
        else:
            assert b"/FontFile2" in pdf.read_bytes()  # TrueType, not Type 3
        with Image.open(png) as im:
            assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
            width_in = im.size[0] / 300
        assert width_in == pytest.approx(7.16 if fig == "mosaic" else 3.5, abs=0.02)  # a page, a column


def test_latex_structure_escaping_and_marks():
    """(Compiled with a real engine in test_latex.py.)"""
    header = ["method", "F_1 & co", "PWC", "FPR", "FPS", "RC"]
    rows = [["gmm_sg", 0.8, 2.0, 0.0123, 53.08, 1.0], ["a%b", 0.9, 1.0, 0.0456, 367.73, 2.4285714],
            ["c->d", 0.7, 3.0, None, 0.3119, 2.5714286]]
    tex = tables.latex(header, rows, [None, True, False, False, True, False], caption="50% of #1",
                       label="tab:f-full_CDnet2014")
    assert tex.count("{") == tex.count("}")
    assert r"\begin{tabular}{lrrrrr}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"F\_1 \& co" in tex and r"a\%b" in tex and r"gmm\_sg" in tex and r"50\% of \#1" in tex
    assert r"c-\textgreater{}d" in tex  # OT1 would print > as an inverted question mark
    assert r"\label{tab:f-full-CDnet2014}" in tex  # \_ in a label: "Missing \endcsname" on every pass
    assert r"\textbf{0.900}" in tex and r"\underline{0.800}" in tex  # higher is better, 3 decimals
    assert r"\textbf{1.000}" in tex and r"\underline{2.000}" in tex  # lower is better
    assert r"\textbf{0.0123}" in tex and " -- " in tex  # FPR keeps 4 decimals; undefined is a dash
    assert r"\textbf{368}" in tex and r"\underline{53.1}" in tex and "& 0.312 &" in tex  # FPS: 3 significant figures
    assert r"\textbf{1.0} \\" in tex and r"\underline{2.4} \\" in tex and "& 2.6 \\" in tex  # ranks: 1 decimal
    assert r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}" in tex  # shrinks only if too wide
    body = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert all(line.count("&") - line.count(r"\&") == 5 for line in body)


def test_number_formats():
    assert [tables.significant(v) for v in (0.3119, 53.08, 99.96, 367.7, 4865.3)] == \
        ["0.312", "53.1", "100", "368", "4865"]
    assert tables.fmt(2.4285714, "rank") == "2.4" and tables.fmt(0.84937) == "0.8494" and tables.fmt(None) == "-"
    md = tables.markdown(["method", "overall F", "FPS", "avg rank (metrics)"], [["a", 0.84937, 990.4163, 2.4285714]])
    assert md.splitlines()[2] == "| a      |    0.8494 | 990 |                2.4 |"


def _check_figure(fig, min_pt: float = 8.0) -> None:
    """Readable at the figure's own size: no text under ``min_pt``, none past the edges, no
    legend over an axes, no two tick labels of an axis touching."""
    from matplotlib.text import Text

    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    page = fig.bbox.expanded(1.001, 1.001)
    undrawn = set()  # labels of ticks outside an axis's limits keep stale positions and are not drawn
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - 1e-9 * abs(hi - lo) <= tick.get_loc() <= hi + 1e-9 * abs(hi - lo):
                    undrawn |= {id(tick.label1), id(tick.label2)}
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in undrawn]
    assert texts
    for t in texts:
        assert t.get_fontsize() >= min_pt, (t.get_text(), t.get_fontsize())
        box = t.get_window_extent(r)
        assert page.contains(box.x0, box.y0) and page.contains(box.x1, box.y1), f"clipped: {t.get_text()!r}"
    for leg in fig.legends + [a.get_legend() for a in fig.axes if a.get_legend()]:
        lb = leg.get_window_extent(r)
        for ax in fig.axes:
            assert not lb.overlaps(ax.get_window_extent(r)), "a legend covers the data"
    for ax in fig.axes:
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            boxes = [t.get_window_extent(r) for t in labels
                     if t.get_visible() and t.get_text() and id(t) not in undrawn]
            assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), "tick labels collide"


def test_figures_are_readable_at_paper_size(run):
    from matplotlib import pyplot as plt

    from bgbench.reports import mosaic, plots

    out, res = run
    figs = [plots.pr_figure(res, "full", "synthetic"), plots.speed_accuracy_figure(res, "full", "synthetic")]
    try:
        for fig in figs:
            _check_figure(fig)
        assert figs[0].get_figwidth() == figs[1].get_figwidth() == plots.COLUMN_WIDTH
    finally:
        for fig in figs:
            plt.close(fig)
    rows, methods = mosaic._mosaic_rows(res, out, 1, 4)
    assert rows and methods == res.labels()
    sk = mosaic.mosaic_figure(rows, methods)
    assert sk.width == pytest.approx(mosaic.PAGE_WIDTH)
    boxes = sk.text_boxes()
    texts = [t.replace("\n", "") for t, _, _ in boxes]
    assert texts[:2 + len(methods)] == ["input", "ground truth", *methods]  # column headers (long names wrap)
    assert texts[2 + len(methods)] == f"{rows[0][0].rsplit('/', 1)[-1]} #{rows[0][1]}"  # the first row's label
    assert texts[-5:] == ["true positive", "false positive", "false negative", "true negative", "not scored"]
    assert mosaic._wrap("frame_difference", 12) == "frame_\ndifference"
    (ix, iy, iw, ih, _), = sk.images
    for i, (text, size, (x0, y0, x1, y1)) in enumerate(boxes):
        assert size >= 8.0, text
        assert 0 <= x0 < x1 <= sk.width and 0 <= y0 < y1 <= sk.height, f"clipped: {text!r}"
        assert x1 <= ix or x0 >= ix + iw or y1 <= iy or y0 >= iy + ih, f"over the tiles: {text!r}"
        for other, _, (a0, b0, a1, b1) in boxes[i + 1:]:
            assert x1 <= a0 or a1 <= x0 or y1 <= b0 or b1 <= y0, f"{text!r} touches {other!r}"
    for x, y, w, h, *_ in sk.rects:  # the colour key's swatches: under the tiles, inside the page
        assert 0 <= x and x + w <= sk.width and 0 <= y and y + h <= iy



def test_log_axis_ticks_stay_apart():
    from bgbench.reports.plots import log_ticks

    for lo, hi in ((35, 550), (137, 323), (0.2, 7000), (0.01, 1e6), (900, 1100)):
        t = log_ticks(lo, hi)
        assert 3 <= len(t) <= 7 and all(lo <= x <= hi for x in t), (lo, hi, t)


def test_tables_agree_with_the_record(run):
    _, res = run
    h, rows = tables.category_table(res, "full", "synthetic", abbreviate=True)
    assert h[:3] == ["method", "BSL", "CJT"] and "overall F" in h
    for r in rows:
        d = res.summary(r[0], "full").datasets["synthetic"]
        assert r[h.index("overall F")] == d.overall["f_measure"]
        assert r[1] == d.categories["baseline"]["f_measure"]
    fs = [r[h.index("overall F")] for r in rows]
    assert fs == sorted(fs, reverse=True)


def test_rank_and_statistics_by_hand():
    assert leaderboard._rank([0.9, 0.5, 0.9, None], higher_better=True) == [1, 3, 1, 4]
    assert leaderboard._rank([1.0, 3.0, 2.0], higher_better=False) == [1, 3, 2]
    # sign-flip test, 3 videos all +0.1: exact p = 2/8 (all + or all -); more in test_report_rules.py
    p = leaderboard.paired_test({"d/c/a": 0.6, "d/c/b": 0.7, "d/c/c": 0.8}, {"d/c/a": 0.5, "d/c/b": 0.6, "d/c/c": 0.7})
    assert p["videos"] == 3 and p["difference"] == pytest.approx(0.1) and p["p_value"] == pytest.approx(0.25)
    assert leaderboard.bootstrap_ci({"d/c/a": 0.5, "d/c/b": 0.5}) is None  # two videos: no interval
    lo, hi = leaderboard.bootstrap_ci({f"d/c/v{i}": x for i, x in enumerate(np.linspace(0.2, 0.9, 20))})
    assert 0.2 < lo < 0.55 < hi < 0.9


def test_leaderboard_ranks(run):
    _, res = run
    b = leaderboard.leaderboard(res, "full", "synthetic")
    rows = {r["method"]: r for r in b["rows"]}
    assert set(rows) == {"gmm_zivkovic", "frame_difference", "temporal_median"}
    assert all(1 <= r["RM"] <= 3 and 1 <= r["RC"] <= 3 for r in rows.values())
    assert all(r["ci_low"] <= r["f_measure"] <= r["ci_high"] for r in rows.values())  # 6 videos: CIs given
    best = max(rows, key=lambda m: rows[m]["f_measure"])
    assert b["paired_tests"]["reference"] == best and {t["b"] for t in b["paired_tests"]["tests"]} == set(rows) - {best}
    assert b["seed"] == res.meta.seed == 0
    assert {r["family"] for r in rows.values()} == {"classical"}  # as the jobs recorded it


def test_published_comparison_gap():
    full = build_protocol("full")
    res = results_of([job("subsense", full, "CDnet2014/baseline/highway", 0.9),
                      job("subsense", full, "CDnet2014/cameraJitter/traffic", 0.7)], (full,))
    h, rows = comparison(res, "full")
    assert h[:4] == ["method", "baseline ours", "baseline published", "baseline gap"]
    (row,) = rows
    assert row[2] == PUBLISHED["subsense"]["baseline"] == pytest.approx(0.9503)
    assert row[3] == pytest.approx(0.9 - 0.9503)
    assert row[h.index("mean published (same categories)")] == pytest.approx((0.9503 + 0.8152) / 2)


def _with_issues(res):
    """The run's record plus one skipped video, one protocol skip and one failed job."""
    skipped = (
        {"where": "data/cameraJitter/traffic/ROI.bmp",
         "error": "data/cameraJitter/traffic/ROI.bmp: ROI is 352x240 but the frames are 320x240 -- fix: pass "
                  "--roi-policy ignore"},
        {"where": "UCSD/-/birds", "reason": "has 14 labelled frames, fewer than n:200 asks", "fix": "use --rule n:10",
         "error": "UCSD/-/birds: has 14 labelled frames -- fix: use --rule n:10", "protocol": "scene-specific[n:200]",
         "methods": ["cdn_medal"]})
    first = res.jobs[0].to_json()
    failed = JobRecord.from_json({k: v for k, v in first.items() if k not in ("counts", "metrics", "histograms")}
                                 | {"status": "failed", "error": "RuntimeError: out of memory", "video": "synthetic/x/y"})
    return dataclasses.replace(res, meta=dataclasses.replace(res.meta, skipped=skipped), jobs=res.jobs + (failed,))


def test_html_page_explains_ranks_sorts_best_first_and_lists_skips(run):
    from bgbench.reports import html as page_html

    out, res = run
    res = _with_issues(res)
    board = leaderboard.leaderboard(res, "full", "synthetic")
    doc = page_html.page(res, [board], {}, None)
    heads = dict(re.findall(r"<th data-key='(\w+)' data-better='(\w+)'", doc))
    assert heads["pwc"] == heads["RC"] == heads["RM"] == "low" and heads["fps"] == heads["f_measure"] == "high"
    assert heads["method"] == "text"
    rc = re.search(r"<th data-key='RC'[^>]*>(.*?)</th>", doc).group(1)
    assert "aria-sort='ascending'" in re.search(r"<th data-key='RC'[^>]*>", doc).group(0) and "\u25b2" in rc
    assert "avg rank (categories)</b> (RC)" in doc and "lower is better and 1 is best" in doc
    assert "Skipped (2)" in doc and "ROI is 352x240 but the frames are 320x240" in doc
    assert "scene-specific[n:200] (cdn_medal)" in doc and "fewer than n:200 asks -- fix: use --rule n:10" in doc
    assert "Failed jobs (1)" in doc and "RuntimeError: out of memory" in doc
    assert "2 skip(s) and 1 failed job(s)" in doc


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="no node to run the page's script outside a browser")
def test_html_header_clicks_sort_best_first_then_reverse(run, tmp_path):
    """The page's own script on a minimal DOM in node: first click best first, second reverses."""
    from bgbench.reports import html as page_html

    _, res = run
    board = leaderboard.leaderboard(res, "full", "synthetic")
    doc = page_html.page(res, [board], {}, None)
    script = doc.split("<script>")[1].split("</script>")[0]
    body = doc.split("<tbody>")[1].split("</tbody>")[0]
    cells = [re.findall(r'<td data-v="([^"]*)">', row) for row in body.split("<tr>")[1:]]
    keys = [k for k, *_ in page_html.COLUMNS]
    better = [b for _, _, b, *_ in page_html.COLUMNS]
    shim = f"""
const KEYS = {json.dumps(keys)}, BETTER = {json.dumps(better)}, CELLS = {json.dumps(cells)};
const ths = KEYS.map((k, i) => ({{dataset: {{key: k, better: BETTER[i], dir: k === 'RC' ? 'asc' : ''}}, listeners: [],
  arrow: {{textContent: ''}}, setAttribute() {{}}, querySelector() {{ return this.arrow; }},
  addEventListener(e, f) {{ this.listeners.push(f); }}}}));
const rows = CELLS.map(c => ({{cells: c.map(v => ({{dataset: {{v}}}}))}}));
const body = {{rows: rows.slice(), appendChild(r) {{ this.rows.splice(this.rows.indexOf(r), 1); this.rows.push(r); }}}};
const table = {{tHead: {{rows: [{{cells: ths}}]}}, tBodies: [body], dataset: {{}}}};
global.document = {{querySelectorAll: () => [table], querySelector: () => table}};
global.location = {{search: ''}};
{script}
const out = [];
for (const key of ['pwc', 'pwc', 'fps', 'method', 'RC']) {{
  ths[KEYS.indexOf(key)].listeners[0]();
  out.push([table.dataset.sorted, ths[KEYS.indexOf(key)].arrow.textContent, body.rows.map(r => r.cells[0].dataset.v)]);
}}
console.log(JSON.stringify(out));
"""
    (tmp_path / "t.js").write_text(shim)
    r = subprocess.run([NODE, str(tmp_path / "t.js")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    steps = json.loads(r.stdout)
    ds = {m: res.summary(m, "full").datasets["synthetic"] for m in res.labels()}
    by = lambda key, rev=False: sorted(ds, key=key, reverse=rev)  # noqa: E731
    pwc = lambda m: ds[m].overall["pwc"]  # noqa: E731
    assert steps[0] == ["pwc:asc", "\u25b2", by(pwc)]  # lower is better: best first
    assert steps[1] == ["pwc:desc", "\u25bc", by(pwc, True)]  # then reversed
    assert steps[2] == ["fps:desc", "\u25bc", by(lambda m: ds[m].fps_median, True)]
    assert steps[3] == ["method:asc", "\u25b2", sorted(ds)]
    assert steps[4][:2] == ["RC:asc", "\u25b2"]  # RC's arrow was cleared by the other sorts: best first again


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/setup installs it)")
def test_html_leaderboard_in_headless_chromium(run, tmp_path):
    out, res = run
    page = (out / "report" / "leaderboard.html").resolve()
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    # without dir, best first: ascending for PWC (lower is better), descending for FPS
    for col, asked, direction in (("fps", "asc", "asc"), ("f_measure", "desc", "desc"), ("pwc", None, "asc"),
                                  ("fps", None, "desc")):
        query = f"?sort={col}" + (f"&dir={asked}" if asked else "")
        dom = subprocess.run(flags + ["--dump-dom", page.as_uri() + query], capture_output=True, text=True,
                             timeout=120).stdout
        assert f'data-sorted="{col}:{direction}"' in dom  # the page's own script ran and sorted
        th = re.search(rf'<th[^>]*data-key="{col}"[^>]*>(.*?)</th>', dom).group(1)
        assert ("\u25b2" if direction == "asc" else "\u25bc") in th  # the arrow moved to the sorted column
        table = dom.split("<tbody>")[1].split("</tbody>")[0]
        names = re.findall(r"<tr><td data-v=\"([^\"]+)\">", table)
        assert sorted(names) == res.labels()
        ds = {m: res.summary(m, "full").datasets["synthetic"] for m in names}
        key = {"fps": lambda m: ds[m].fps_median, "f_measure": lambda m: ds[m].overall["f_measure"],
               "pwc": lambda m: ds[m].overall["pwc"]}[col]
        assert names == sorted(names, key=key, reverse=direction == "desc")
    shot = out / "report" / "leaderboard.png"  # kept beside the page as the CI artifact
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1280,900", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.read_bytes()[:4] == b"\x89PNG"


# --- typed records: the round trip, malformed files, the mosaic from the run folder, families ----------
@pytest.fixture(scope="module")
def highway_run(tmp_path_factory):
    """One real run (CDnet2014 highway, frame_difference, masks saved), shared by the tests below."""
    from conftest import DATA, HIGHWAY

    if not DATA.is_dir():
        pytest.skip("../shared/data is not present")
    out = tmp_path_factory.mktemp("highway") / "run"
    assert main(["run", "--data", str(HIGHWAY), "--methods", "frame_difference", "--out", str(out), "--no-tracking",
                 "--save-masks"]) == 0
    return out


@pytest.mark.slow
def test_results_round_trip_unchanged_on_a_real_run(highway_run, highway):
    import cv2

    from bgbench.records.types import Results
    from bgbench.records.results import clean

    raw = json.loads((highway_run / "results.json").read_text())
    res = load_results(highway_run)
    assert json.loads(json.dumps(clean(res.to_json()), allow_nan=False)) == raw  # to_json gives the file back
    assert Results.from_json(res.to_json(), "again") == res  # and from_json the same records
    (j,) = res.jobs
    assert j.family == "classical" and j.key.label == "frame_difference" and j.masks
    s = res.summary("frame_difference", j.key.protocol_key)
    assert s.family == "classical" and s.jobs_ok == 1 and s.datasets["CDnet2014"].videos.keys() == {j.key.video}
    # the example frame: the middle test frame, written as the run decoded it (true colour), its
    # ground truth as the CDnet codes, and the coloured mask
    frames = highway.eval_frames
    fid = sorted(frames)[len(frames) // 2]
    assert j.examples["frame"] == fid == 1085
    inp = cv2.imread(str(highway_run / j.examples["input"]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(inp, highway.frame(fid))  # BGR on both sides: the PNG's colours are the frame's
    gt = cv2.imread(str(highway_run / j.examples["groundtruth"]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(gt, highway.gt(fid))
    overlay = cv2.imread(str(highway_run / j.examples["overlay"]), cv2.IMREAD_COLOR)[..., ::-1]
    from bgbench.execution.examples import colour_mask

    mask = cv2.imread(str(highway_run / j.masks / f"bin{fid:06d}.png"), cv2.IMREAD_GRAYSCALE) == 255
    assert np.array_equal(overlay, colour_mask(mask, highway.gt(fid), highway.roi))
    # the examples live apart from the masks tree (which holds only bin%06d.png, the CDnet results layout)
    assert all(p.startswith("examples/") for k, p in j.examples.items() if k != "frame")
    assert {f.name for f in (highway_run / j.masks).iterdir()} == {f"bin{i:06d}.png" for i in frames}


def _malformed(raw: dict, how: str) -> dict:
    d = json.loads(json.dumps(raw))
    if how == "missing field":
        del d["jobs"][0]["video"]
    elif how == "wrong type":
        d["jobs"][1]["frames"] = "many"
    elif how == "meta wrong type":
        d["meta"]["seed"] = "0"
    elif how == "summary missing field":
        label = sorted(d["summary"])[0]
        del d["summary"][label]["full"]["jobs_ok"]
    elif how == "schema 1":
        d["schema_version"] = 1
    elif how == "not an object":
        d = [d]
    return d


@pytest.mark.parametrize("how, words", [
    ("missing field", ["jobs[0]", "'video'"]), ("wrong type", ["jobs[1]", "'frames' is a str, not a int"]),
    ("meta wrong type", ["meta", "'seed' is a str"]), ("summary missing field", ["summary.", "'jobs_ok'"]),
    ("schema 1", ["schema 1", "reads schema 3"]), ("not an object", ["schema None"])])
def test_a_malformed_results_json_names_the_file_and_the_field(run, tmp_path, how, words):
    from bgbench.errors import BadInput

    out, _ = run
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_malformed(json.loads((out / "results.json").read_text()), how)))
    with pytest.raises(BadInput) as e:
        load_results(tmp_path)
    msg = str(e.value)
    assert str(path) in msg and "fix:" in msg, msg
    for w in words:
        assert w in msg, msg


def test_the_mosaic_comes_from_the_recorded_examples_when_the_data_is_gone(run, tmp_path, monkeypatch):
    """The run folder copied elsewhere, its data's path made meaningless and every way back to
    the data blocked: the mosaic still shows each method's recorded example frame."""
    import bgbench.data.formats
    import bgbench.data.video
    from bgbench.reports import mosaic
    from bgbench.reports.build import build_report

    out, _ = run
    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(out, moved, ignore=shutil.ignore_patterns("report"))
    res = load_results(moved)
    res = dataclasses.replace(res, meta=dataclasses.replace(res.meta, data=(str(tmp_path / "no-such-data"),)))

    def upstream(*a, **k):
        raise AssertionError("a report reached for the data")

    monkeypatch.setattr(bgbench.data.formats, "discover", upstream)
    monkeypatch.setattr(bgbench.data.video.Video, "gt", upstream)
    monkeypatch.setattr(bgbench.data.video.Video, "frame", upstream)
    examples = [j for j in res.jobs if j.examples]
    assert {j.key.label for j in examples} == set(res.labels())
    rows, methods = mosaic._mosaic_rows(res, moved, 1, 4)
    assert methods == res.labels() and len(rows) == 4  # four scenes, one row each
    for vid, fid, tiles in rows:
        per = {j.key.label: j for j in examples if j.key.video == vid}
        assert {j.examples["frame"] for j in per.values()} == {fid}  # one frame for every method
        first = per[methods[0]].examples
        import cv2

        assert np.array_equal(tiles[0], cv2.imread(str(moved / first["input"]))[..., ::-1])
        assert tiles[1].shape == tiles[0].shape and all(t is not None for t in tiles)
    # a method whose overlay went missing reads "no mask" in its column
    gone = next(j for j in examples if j.key.label == methods[-1] and j.key.video == rows[0][0])
    (moved / gone.examples["overlay"]).unlink()
    rows, _ = mosaic._mosaic_rows(res, moved, 1, 4)
    assert rows[0][2][-1] is None and rows[0][2][2] is not None
    texts = [t for t, _, _ in mosaic.mosaic_figure(rows, methods).text_boxes()]
    assert "no mask" in texts and f"{rows[0][0].rsplit('/', 1)[-1]} #{rows[0][1]}" in texts
    img, lefts, spans, tw, _ = mosaic.mosaic_image(rows)  # the missing tile is grey, the others as recorded
    (y, h), x = spans[0], lefts[-1]
    assert (img[y:y + h, x:x + tw] == mosaic.NO_MASK_GREY).all()
    assert h == rows[0][2][0].shape[0] and np.array_equal(img[y:y + h, :tw], rows[0][2][0])
    written = build_report(res, moved, tmp_path / "report")
    assert tmp_path / "report" / "mosaic.png" in written["figures"]
    assert "Qualitative results" in (tmp_path / "report" / "leaderboard.html").read_text()


def test_families_come_from_the_records_not_the_registry(tmp_path):
    """A plug-in's label the registry does not know keeps the family its jobs recorded, in the
    leaderboard, the page and the speed plot's markers."""
    from matplotlib import pyplot as plt

    from bgbench.method import method_class
    from bgbench.reports import plots
    from bgbench.reports.build import build_report

    with pytest.raises(Exception):
        method_class("my_plugin")  # not registered here: nothing to look a family up in
    full = build_protocol("full")
    jobs = [job("my_plugin", full, f"d/c/v{i}", 0.7 + 0.01 * i, config="fast", family="plugin", fps=50.0)
            for i in range(3)]
    jobs += [job("frame_difference", full, f"d/c/v{i}", 0.5, family="classical", fps=500.0) for i in range(3)]
    res = results_of(jobs, (full,))
    assert res.summary("my_plugin[fast]", "full").family == "plugin" and res.family("my_plugin[fast]") == "plugin"
    board = leaderboard.leaderboard(res, "full", "d")
    assert {r["method"]: r["family"] for r in board["rows"]} == {"my_plugin[fast]": "plugin",
                                                                  "frame_difference": "classical"}
    fig = plots.speed_accuracy_figure(res, "full", "d")
    try:
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert legend[-2:] == ["classical", "plugin"]  # the family key, from the records
        markers = {c.get_label(): c for c in fig.axes[0].collections}
        assert len(markers) == 2
    finally:
        plt.close(fig)
    build_report(res, tmp_path, tmp_path / "report")
    lb = json.loads((tmp_path / "report" / "leaderboard.json").read_text())
    assert {r["method"]: r["family"] for r in lb[0]["rows"]}["my_plugin[fast]"] == "plugin"
    md = (tmp_path / "report" / "leaderboard_full_d.md").read_text()
    assert re.search(r"^\| my_plugin\[fast\] +\| +plugin \|", md, re.M)


@pytest.mark.slow
def test_the_report_worker_writes_the_report_of_the_process_byte_for_byte(run, tmp_path):
    """`bgbench run` has its report built by a worker started before the jobs
    (bgbench.reports.worker): the very files the report command writes in process."""
    from bgbench.reports.build import build_report
    from bgbench.reports.worker import ReportWorker

    out, res = run
    with ReportWorker() as worker:
        files = worker.build(out, tmp_path / "worker")
        again = worker.build(out, tmp_path / "again")  # it serves more than one request
    build_report(res, out, tmp_path / "here")
    from bgbench.safefs import REPORT_MARK

    def listed(d):  # the files of a report folder, less its ownership marker
        return sorted(p.name for p in d.iterdir() if p.name != REPORT_MARK)

    names = listed(tmp_path / "here")
    assert names == listed(tmp_path / "worker") == listed(tmp_path / "again")
    assert len(names) > 15 and sorted(p.name for ps in files.values() for p in ps) == names
    assert sorted(p.name for ps in again.values() for p in ps) == names
    for n in names:
        assert (tmp_path / "worker" / n).read_bytes() == (tmp_path / "here" / n).read_bytes(), n
    assert worker.proc.returncode == 0


def test_the_report_workers_warm_up_loads_what_a_first_report_pays_for():
    """The warm-up (during the jobs) imports and exercises what a one-method report's first
    figure would otherwise pay for after them: OpenCV (the examples are read with it), the
    report modules, a curve saved as PNG and as PDF (the font subsetting), the mosaic's font."""
    code = ("import sys\nfrom bgbench.reports import worker\nworker._warm_up()\n"
            "print(sorted(m for m in ('cv2', 'bgbench.safefs', 'bgbench.reports.build', 'fontTools.subset',"
            " 'matplotlib.backends.backend_pdf', 'bgbench.reports.mosaic') if m not in sys.modules))"
            "\nfrom bgbench.reports.truetype import default_font\nprint(default_font.cache_info().currsize)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split("\n")[:2] == ["[]", "1"]  # the font parsed
    # asked for the report before it began (a busy machine left it no CPU): it takes no step,
    # and the report pays only for what it draws itself
    code = ("import sys, threading\nfrom bgbench.reports import worker\nasked = threading.Event()\nasked.set()\n"
            "worker._warm_up(asked)\nprint('matplotlib' in sys.modules, 'cv2' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_a_failed_or_dead_report_worker_loses_no_report(run, tmp_path):
    from bgbench.api import _build_report
    from bgbench.reports.worker import ReportWorker, WorkerFailed

    out, res = run
    said: list[str] = []
    empty = tmp_path / "no-results"  # the worker cannot read results.json there: it answers why
    empty.mkdir()
    shutil.copytree(out / "examples", empty / "examples")  # the mosaic's examples
    with ReportWorker() as worker:
        with pytest.raises(WorkerFailed, match="results.json"):
            worker.build(empty, empty / "report")
        files = _build_report(res, empty, worker, said.append)  # the run falls back to its own process
    assert len(said) == 1 and "report worker failed" in said[0] and "results.json" in said[0]
    assert (empty / "report" / "leaderboard.html").is_file() and files["figures"]
    slow = ReportWorker()  # asked for an answer sooner than it can give one: stopped, the run builds it
    with pytest.raises(WorkerFailed, match="did not answer within"):
        slow.build(out, tmp_path / "slow", timeout=0.05)
    slow.close()
    assert slow.proc.returncode is not None and not (tmp_path / "slow" / "leaderboard.html").exists()
    dead = ReportWorker()
    dead.proc.kill()
    dead.proc.wait()
    files = _build_report(res, empty, dead, said.append)
    dead.close()
    assert "report worker failed" in said[1] and "exited" in said[1] and files["tables"]


def test_a_pdf_child_that_fails_or_hangs_leaves_the_pdf_to_the_parent(tmp_path, monkeypatch):
    """Inside ``plots.forked_pdfs`` (the report worker's block) a child writes each figure's
    PDF; one that fails or hangs costs nothing but time: the PDF is written by the parent,
    the same bytes, and no child is left."""
    import os
    import time

    from bgbench.reports import plots

    def figure():
        with plots._style() as figures:
            fig, ax = figures.subplots(figsize=(plots.COLUMN_WIDTH, 2.0), layout="constrained")
            ax.plot([0, 1], [1, 0], label="a")
            ax.legend()
        return fig

    plots.save(figure(), tmp_path / "plain.png")
    with plots.forked_pdfs():
        plots.save(figure(), tmp_path / "forked.png")
        assert len(plots._pdf_children) == 1  # a child was forked for it
    assert (tmp_path / "forked.pdf").read_bytes() == (tmp_path / "plain.pdf").read_bytes()
    real = plots._save_pdf
    parent = os.getpid()

    def broken(fig, pdf):
        if os.getpid() != parent:
            raise RuntimeError("the child fails")
        real(fig, pdf)

    monkeypatch.setattr(plots, "_save_pdf", broken)
    with plots.forked_pdfs():
        plots.save(figure(), tmp_path / "failed.png")
        assert len(plots._pdf_children) == 1
    assert (tmp_path / "failed.pdf").read_bytes() == (tmp_path / "plain.pdf").read_bytes()

    def hangs(fig, pdf):
        if os.getpid() != parent:
            time.sleep(60)
        real(fig, pdf)

    monkeypatch.setattr(plots, "_save_pdf", hangs)
    t0 = time.monotonic()
    with plots.forked_pdfs(timeout=0.5):  # one deadline for every child of the block
        plots.save(figure(), tmp_path / "hung.png")
        plots.save(figure(), tmp_path / "hung2.png")
        assert len(plots._pdf_children) == 2
        pids = [c[0] for c in plots._pdf_children]
    assert time.monotonic() - t0 < 10
    for name in ("hung.pdf", "hung2.pdf"):
        assert (tmp_path / name).read_bytes() == (tmp_path / "plain.pdf").read_bytes()
    assert plots._pdf_children == [] and plots.FORK_PDF is False
    for pid in pids:  # killed and reaped
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


@pytest.mark.slow  # several seconds: the fast lane stays under 3 minutes; CI runs it
def test_forked_pdfs_overlap_the_figures_after_them_and_a_failed_report_leaves_none_behind(run, tmp_path,
                                                                                           monkeypatch):
    """Each figure's PDF child runs on while the report draws the next figures; the
    ``forked_pdfs`` block waits for all of them on its way out, also when the report fails
    after its figures: every PDF is whole (the bytes of a report built without children) and
    no child is left."""
    from bgbench.reports import build, html, plots

    out, res = run
    build.build_report(res, out, tmp_path / "plain")
    seen = []
    real_save = plots.save

    def save(fig, out):
        files = real_save(fig, out)
        seen.append(len(plots._pdf_children))  # children still running or not yet waited for
        return files

    monkeypatch.setattr(plots, "save", save)

    def page(*a, **k):
        raise RuntimeError("the page fails")

    monkeypatch.setattr(html, "page", page)
    with pytest.raises(RuntimeError, match="the page fails"), plots.forked_pdfs():
        build.build_report(res, out, tmp_path / "forked")
    assert seen == list(range(1, len(seen) + 1)) and len(seen) >= 2  # none waited for between figures
    assert plots._pdf_children == []
    pdfs = sorted(p.name for p in (tmp_path / "plain").glob("*.pdf"))
    assert len(pdfs) == len(seen) + 1  # the mosaic's PDF is written without matplotlib, in this process
    for name in pdfs:
        assert (tmp_path / "forked" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes(), name


def test_mosaic_image_puts_rows_of_other_sizes_on_one_tile_width():
    """Rows of videos of other sizes: every tile scaled (nearest neighbour) to the widest
    tile's width, its height by its own aspect; white gaps between tiles and rows."""
    from bgbench.reports import mosaic

    rng = np.random.default_rng(1)
    big = [rng.integers(0, 256, (240, 320, 3), np.uint8) for _ in range(3)]
    small = [rng.integers(0, 256, (60, 160, 3), np.uint8), rng.integers(0, 256, (60, 160, 3), np.uint8), None]
    img, lefts, spans, tw, gap = mosaic.mosaic_image([("D/c/a", 1, big), ("D/c/b", 7, small)])
    assert tw == 320 and gap == 5 and lefts == [0, 325, 650] and spans == [(0, 240), (245, 120)]
    assert img.shape == (365, 970, 3)
    assert np.array_equal(img[0:240, 325:645], big[1])
    assert np.array_equal(img[245:365, 0:320], small[0].repeat(2, axis=0).repeat(2, axis=1))  # 2x, nearest
    assert (img[245:365, 650:970] == mosaic.NO_MASK_GREY).all()
    assert (img[240:245] == 255).all() and (img[:, 320:325] == 255).all()


def test_row_labels_wrap_to_stay_beside_their_row():
    """A row shorter than its label (a wide video, a long scene name) gets the frame on a line
    of its own, then the name wrapped: each label stays within its row's height, the labels
    column widens for the extra lines, and the figure keeps a page's width."""
    from bgbench.reports import mosaic

    rng = np.random.default_rng(2)
    wide = [rng.integers(0, 256, (60, 320, 3), np.uint8) for _ in range(3)]
    tall = [rng.integers(0, 256, (240, 320, 3), np.uint8) for _ in range(3)]
    rows = [("D/c/office", 625, tall), ("D/c/pedestrians", 625, wide),
            ("D/c/a_very_long_scene_name_of_a_dataset", 12, wide)]
    sk = mosaic.mosaic_figure(rows, ["m"])
    assert sk.width == pytest.approx(mosaic.PAGE_WIDTH)
    (ix, iy, iw, ih, img), = sk.images
    scale = img.shape[0] / ih  # pixels per inch
    _, _, spans, _, _ = mosaic.mosaic_image(rows)
    labels = [b for b in sk.text_boxes() if b[0].replace("\n", "").endswith(("#625", "#12"))]
    assert [t for t, _, _ in labels][:1] == ["office #625"]  # it fits whole
    assert all("\n" in t for t, _, _ in labels[1:])
    for (text, _, (x0, y0, x1, y1)), (y, h) in zip(labels, spans):
        row_top, row_bottom = iy + ih - y / scale, iy + ih - (y + h) / scale
        assert row_bottom - 1e-6 <= y0 and y1 <= row_top + 1e-6, text
        assert 0 <= x0 and x1 <= ix, text


@pytest.mark.needs_data
def test_a_run_of_one_binary_method_draws_its_report_without_matplotlib(tmp_path):
    """gmm_zivkovic alone on a real CDnet clip: its report has nothing for matplotlib to draw
    (no PR curve for 0/255 masks, no scatter for one method), so the run starts no report
    worker and builds the report itself (the mosaic included) without importing matplotlib.
    With a second method, or one whose output is not binary, the worker is started."""
    from conftest import CDNET

    from bgbench.api import _draws_plots

    code = ("import sys\nimport bgbench.reports.worker as w\n"
            "def refuse(*a, **k):\n    raise AssertionError('a report worker was started')\n"
            "w.ReportWorker = refuse\nfrom bgbench.cli import main\n"
            f"rc = main(['run', '--data', {str(CDNET / 'baseline' / 'office')!r}, '--methods', 'gmm_zivkovic',"
            f" '--out', {str(tmp_path / 'run')!r}, '--no-tracking'])\n"
            "print(rc, 'matplotlib' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[-2:] == ["0", "False"]
    report = tmp_path / "run" / "report"
    assert (report / "mosaic.png").stat().st_size > 5000 and (report / "mosaic.pdf").read_bytes()[:5] == b"%PDF-"
    assert (report / "leaderboard.html").is_file() and not list(report.glob("pr_*"))

    from bgbench.method import method_class

    assert not _draws_plots([method_class("gmm_zivkovic")])
    assert _draws_plots([method_class("frame_difference")])  # probabilities: a PR curve
    assert _draws_plots([method_class("gmm_zivkovic"), method_class("knn")])  # two methods: the scatter, PR points
