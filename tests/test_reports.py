"""Reports read results only: tables (Markdown, CSV, LaTeX with best/second marks),
leaderboard ranks and statistics, the published comparison, plots, and the HTML page in a
real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from benchmark.cli import main
from reports import leaderboard, tables
from reports.published import PUBLISHED, comparison


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "run"
    assert main(["run", "--data", "synthetic", "--methods", "gmm_zivkovic,frame_difference,temporal_median",
                 "--save-masks", "--out", str(out)]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_report_files(run):
    out, _ = run
    names = {p.name for p in (out / "report").iterdir()}
    for n in ("f_measure_full_synthetic.md", "f_measure_full_synthetic.csv", "f_measure_full_synthetic.tex",
              "metrics_full_synthetic.tex", "categories_full.csv", "pr_full_synthetic.png",
              "speed_accuracy_full_synthetic.png", "mosaic.png", "leaderboard.html", "leaderboard.json"):
        assert n in names, n
    for png in (out / "report").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_latex_structure_escaping_and_marks():
    header = ["method", "F_1 & co", "PWC"]
    rows = [["gmm_sg", 0.8, 2.0], ["a%b", 0.9, 1.0], ["c", 0.7, 3.0]]
    tex = tables.latex(header, rows, [None, True, False], caption="50% of #1", label="t:x")
    assert tex.count("{") == tex.count("}")
    assert r"\begin{tabular}{lrr}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"F\_1 \& co" in tex and r"a\%b" in tex and r"gmm\_sg" in tex and r"50\% of \#1" in tex
    assert r"\textbf{0.9000}" in tex and r"\underline{0.8000}" in tex  # higher is better
    assert r"\textbf{1.0000}" in tex and r"\underline{2.0000}" in tex  # lower is better
    body = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert all(line.count("&") - line.count(r"\&") == 2 for line in body)
    if shutil.which("pdflatex"):
        import tempfile
        from pathlib import Path

        d = Path(tempfile.mkdtemp())
        (d / "t.tex").write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}" + tex + "\\end{document}")
        assert subprocess.run(["pdflatex", "-interaction=nonstopmode", "t.tex"], cwd=d, capture_output=True).returncode == 0


def test_tables_agree_with_the_record(run):
    _, res = run
    h, rows = tables.category_table(res, "full", "synthetic", abbreviate=True)
    assert h[:3] == ["method", "BSL", "CJT"] and "overall F" in h
    s = res["summary"]
    for r in rows:
        assert r[h.index("overall F")] == s[r[0]]["full"]["datasets"]["synthetic"]["overall"]["f_measure"]
        assert r[1] == s[r[0]]["full"]["datasets"]["synthetic"]["categories"]["baseline"]["f_measure"]
    fs = [r[h.index("overall F")] for r in rows]
    assert fs == sorted(fs, reverse=True)


def test_rank_and_statistics_by_hand():
    assert leaderboard._rank([0.9, 0.5, 0.9, None], higher_better=True) == [1, 3, 1, 4]
    assert leaderboard._rank([1.0, 3.0, 2.0], higher_better=False) == [1, 3, 2]
    # sign-flip test, 3 videos all +0.1: exact p = 2/8 (all + or all -)
    p = leaderboard.paired_test({"d/c/a": 0.6, "d/c/b": 0.7, "d/c/c": 0.8}, {"d/c/a": 0.5, "d/c/b": 0.6, "d/c/c": 0.7})
    assert p["videos"] == 3 and p["mean_difference"] == pytest.approx(0.1) and p["p_value"] == pytest.approx(0.25)
    lo, hi = leaderboard.bootstrap_ci({"d/c/a": 0.5, "d/c/b": 0.5})
    assert lo == hi == pytest.approx(0.5)
    lo, hi = leaderboard.bootstrap_ci({f"d/c/v{i}": x for i, x in enumerate(np.linspace(0.2, 0.9, 20))})
    assert 0.2 < lo < 0.55 < hi < 0.9


def test_leaderboard_ranks(run):
    _, res = run
    b = leaderboard.leaderboard(res, "full", "synthetic", {})
    rows = {r["method"]: r for r in b["rows"]}
    assert set(rows) == {"gmm_zivkovic", "frame_difference", "temporal_median"}
    assert all(1 <= r["RM"] <= 3 and 1 <= r["RC"] <= 3 for r in rows.values())
    assert all(r["ci_low"] <= r["f_measure"] <= r["ci_high"] for r in rows.values())
    assert b["paired_test"]["a"] == max(rows, key=lambda m: rows[m]["f_measure"])


def test_published_comparison_gap():
    res = {"summary": {"subsense": {"full": {"datasets": {"CDnet2014": {
        "categories": {"baseline": {"f_measure": 0.9}, "cameraJitter": {"f_measure": 0.7}}}}}}}}
    h, rows = comparison(res, "full")
    assert h[:4] == ["method", "baseline ours", "baseline published", "baseline gap"]
    (row,) = rows
    assert row[2] == PUBLISHED["subsense"]["baseline"] == pytest.approx(0.9503)
    assert row[3] == pytest.approx(0.9 - 0.9503)
    assert row[h.index("mean published (same categories)")] == pytest.approx((0.9503 + 0.8152) / 2)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/setup installs it)")
def test_html_leaderboard_in_headless_chromium(run, tmp_path):
    out, res = run
    page = (out / "report" / "leaderboard.html").resolve()
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    for col, direction in (("fps", "asc"), ("f_measure", "desc")):
        dom = subprocess.run(flags + ["--dump-dom", f"{page.as_uri()}?sort={col}&dir={direction}"],
                             capture_output=True, text=True, timeout=120).stdout
        assert f'data-sorted="{col}:{direction}"' in dom  # the page's own script ran and sorted
        table = dom.split("<tbody>")[1].split("</tbody>")[0]
        names = re.findall(r"<tr><td data-v=\"([^\"]+)\">", table)
        assert sorted(names) == sorted(res["summary"])
        ds = {m: res["summary"][m]["full"]["datasets"]["synthetic"] for m in names}
        key = (lambda m: ds[m]["fps_median"]) if col == "fps" else (lambda m: ds[m]["overall"]["f_measure"])
        assert names == sorted(names, key=key, reverse=direction == "desc")
    shot = out / "report" / "leaderboard.png"  # kept beside the page as the CI artifact
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1280,900", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.read_bytes()[:4] == b"\x89PNG"
