"""Every .tex file the report writes compiles with a real LaTeX engine, as ``\\input`` in a
plain article (one and two columns) with booktabs and graphicx: no error, no overfull box.
Skipped, saying why, where pdflatex or booktabs is missing (.ci/setup installs them)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bgbench.records.types import DatasetSummary, Results, RunMeta, Summary, label_of
from bgbench.reports.build import build_report
from bgbench.reports.tables import ABBREV, METRICS

PDFLATEX = shutil.which("pdflatex")


def _has_booktabs() -> bool:
    kpse = shutil.which("kpsewhich")
    return bool(kpse) and bool(subprocess.run([kpse, "booktabs.sty"], capture_output=True, text=True).stdout.strip())


needs_latex = pytest.mark.skipif(
    PDFLATEX is None or not _has_booktabs(),
    reason="no LaTeX engine with booktabs (pdflatex, booktabs.sty): as root, .ci/setup installs Debian's "
           "texlive-latex-base and texlive-latex-recommended (BGBENCH_NO_LATEX=1 skips that)")


def _metrics(rng) -> dict:
    m = {key: float(rng.uniform(0.05, 0.98)) for _, key, _ in METRICS}
    m["pwc"] = float(rng.uniform(0.5, 25.0))
    return m


def small_results(seed: int = 0) -> Results:
    """A results record by hand: all eleven CDnet2014 categories (the widest table), methods
    with long names, a config label, an undefined value, and a second dataset."""
    rng = np.random.default_rng(seed)
    methods = [("subsense", "default"), ("temporal_median", "default"), ("frame_difference", "default"),
               ("crossnet", "paper"), ("gmm_zivkovic", "default")]
    fps = [24.97, 105.7, 601.4, 0.312, 4735.7]
    summaries = {}
    for (m, config), f in zip(methods, fps):
        datasets = {}
        for ds, cats in (("CDnet2014", list(ABBREV)), ("UCSD", ["-"])):
            videos = {f"{ds}/{c}/v{i}": _metrics(rng) for c in cats for i in range(2)}
            categories = {c: _metrics(rng) for c in cats}
            overall = _metrics(rng)
            overall["fpr_shadow"] = float("nan") if ds == "UCSD" else overall["fpr_shadow"]
            datasets[ds] = DatasetSummary(
                videos=videos, categories=categories, overall=overall, pooled=overall,
                counts={"tp": 1, "fp": 1, "tn": 1, "fn": 1}, average_precision=float(rng.uniform(0.3, 0.9)),
                best_threshold=0.5, best_f=0.5, output_levels=256, fps_median=f)
        label = label_of(m, config)
        summaries[(label, "full")] = Summary(
            label=label, method=m, config=config, family="deep" if m == "crossnet" else "classical",
            protocol="full", protocol_key="full", datasets=datasets, failures={}, fps_median=f, jobs_ok=44,
            jobs_failed=0)
    meta = RunMeta(created="2025-01-01T00:00:00+0000", run_id="latex", git="0" * 40, device="cpu", seed=0,
                   threshold=0.5, methods={}, families={}, configs={}, code={}, protocols={"full": {"name": "full"}},
                   data=(), videos=(),
                   skipped=({"where": "data/cameraJitter/traffic/ROI.bmp",
                             "error": "data/cameraJitter/traffic/ROI.bmp: ROI is 352x240 but the frames are 320x240 "
                                      "-- fix: pass --roi-policy ignore"},))
    return Results(meta=meta, jobs=(), summaries=summaries)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("latex") / "run"
    run_dir.mkdir()
    build_report(small_results(), run_dir)
    return run_dir / "report"


def _compile(folder: Path, tex_files: list[Path], options: str = "") -> str:
    body = "\n".join(r"\input{" + p.resolve().as_posix() + "}\n\\clearpage" for p in tex_files)
    doc = folder / "doc.tex"
    doc.write_text(f"\\documentclass{options}{{article}}\n\\usepackage{{booktabs}}\n\\usepackage{{graphicx}}\n"
                   f"\\begin{{document}}\n{body}\n\\end{{document}}\n")
    r = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=folder,
                       capture_output=True, text=True, timeout=120)
    log = (folder / "doc.log").read_text(errors="replace")
    assert r.returncode == 0, log[-3000:]
    return log


@needs_latex
@pytest.mark.parametrize("options", ["", "[twocolumn]"])
def test_every_report_table_compiles_without_overfull_boxes(report, tmp_path, options):
    tex = sorted(report.glob("*.tex"))
    kinds = {re.sub(r"_full_.*", "", p.stem) for p in tex}
    assert kinds == {"f_measure", "metrics", "leaderboard", "per_video"}, kinds
    log = _compile(tmp_path, tex, options)
    errors = [line for line in log.splitlines() if line.startswith("!")]
    assert not errors, errors
    assert "Overfull \\hbox" not in log, re.findall(r"Overfull \\hbox.*", log)
    assert "Missing" not in log and "Undefined control sequence" not in log
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def test_report_tables_read_well(report):
    """Without an engine: labels a \\label can hold, precision per kind, marks kept."""
    f = (report / "f_measure_full_CDnet2014.tex").read_text()
    assert r"\label{tab:f-full-CDnet2014}" in f and r"\begin{table*}" in f  # eleven categories: both columns
    assert f.count(r"\textbf{") == 12 and f.count(r"\underline{") == 12  # 11 categories + overall
    assert "BSL" in f and "TBL" in f and r"crossnet[paper]" in f
    m = (report / "metrics_full_CDnet2014.tex").read_text()
    assert m.count(r"\begin{tabular}") == 2  # CDnet's seven, then the rest: each fits
    assert r"\textbf{4736}" in m and r"\underline{601}" in m and "0.312" in m  # FPS: 3 significant figures
    assert not re.search(r"\d\.\d{5,}", m)  # at most 4 decimals
    u = (report / "metrics_full_UCSD.tex").read_text()
    assert " -- " in u  # FPR-S undefined on UCSD
    lb = (report / "leaderboard_full_CDnet2014.tex").read_text()
    mark = r"(?:\\textbf\{|\\underline\{)?"
    ranks = re.findall(rf"& {mark}(\d+\.\d+)\}}? & {mark}(\d+\.\d+)\}}? &", lb)
    assert ranks and all(len(x.split(".")[1]) == 1 for pair in ranks for x in pair)  # ranks: 1 decimal
