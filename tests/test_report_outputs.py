"""Results.frame(), per-video tables, the PR figure's tabled points, named column access."""

from __future__ import annotations

import math
import re

import pytest

from bgbench.protocols import build_protocol
from bgbench.reports import per_video, plots, tables
from conftest import HIGHWAY, needs_data
from records_helpers import METRIC_NAMES, hist, job, results_of, through_json

FULL = build_protocol("full")
BINARY = hist({255: (8, 2), 0: (2, 88)})  # a 0/255 mask: pooled recall 0.8, precision 0.8


def _small():
    """a: F 0.9 / 0.7 on two CDnet-like videos of one category and 0.5 in another; b: 0.6 /
    0.4 / 0.7 and a failed job on a fourth video; broken: every job failed."""
    jobs = [job("a", FULL, "D/c1/v1", 0.9, fps=20.0), job("a", FULL, "D/c1/v2", 0.7, fps=30.0),
            job("a", FULL, "D/c2/v3", 0.5, fps=40.0),
            job("b", FULL, "D/c1/v1", 0.6, config="cpu", family="deep"), job("b", FULL, "D/c1/v2", 0.4, config="cpu",
                                                                              family="deep"),
            job("b", FULL, "D/c2/v3", 0.7, config="cpu", family="deep"),
            job("b", FULL, "D/c2/v4", None, status="failed", error="boom", config="cpu", family="deep"),
            job("broken", FULL, "D/c1/v1", None, status="failed", error="bad")]
    return results_of(jobs, (FULL,))


# --- Results.frame ------------------------------------------------------------------------------
def test_frame_has_one_row_per_job_with_named_columns():
    res = through_json(_small())
    df = res.frame()
    assert list(df.columns) == ["label", "method", "config", "family", "protocol", "protocol_key", "dataset",
                                "category", "video", "split", "status", "error", "frames", *METRIC_NAMES, "fps"]
    assert len(df) == len(res.jobs) == 8
    b1 = df[(df.label == "b[cpu]") & (df.video == "D/c1/v1")].iloc[0]
    assert (b1.method, b1.config, b1.family, b1.protocol, b1.protocol_key, b1.dataset, b1.category, b1.split,
            b1.status) == ("b", "cpu", "deep", "full", FULL.key, "D", "c1", "s", "ok")
    assert b1.f_measure == pytest.approx(0.6) and b1.recall == pytest.approx(0.6) and b1.fps == 10.0
    failed = df[df.status == "failed"]
    assert sorted(failed.label) == ["b[cpu]", "broken"] and failed.f_measure.isna().all() and failed.fps.isna().all()
    assert set(failed.error) == {"boom", "bad"}
    # grouped by name, the per-video numbers give the tables' category means and overall
    a = df[(df.label == "a") & (df.status == "ok")]
    cats = a.groupby("category").f_measure.mean()
    assert cats.to_dict() == {"c1": pytest.approx(0.8), "c2": pytest.approx(0.5)}
    assert cats.mean() == pytest.approx(res.summary("a", FULL.key).datasets["D"].overall["f_measure"])
    assert a.fps.median() == res.summary("a", FULL.key).fps_median == 30.0


def test_frame_keeps_undefined_metrics_as_nan_and_imports_pandas_lazily():
    import subprocess
    import sys

    res = results_of([job("a", FULL, "D/c/v", float("nan"))], (FULL,))
    assert math.isnan(res.frame().f_measure.iloc[0])
    code = ("import sys; from bgbench.records.types import Results; import bgbench.reports.build; "
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


# --- named columns and the import circle -------------------------------------------------------------
def test_tables_sort_by_the_named_column_and_leaderboard_tables_by_key():
    res = _small()
    h, rows = tables.category_table(res, FULL.key, "D")
    assert [r[0] for r in rows] == ["a", "b[cpu]", "broken"]  # overall F 0.65 > 0.6 (0.5, 0.7), then failed
    assert tables.column(h, rows, "overall F")[:2] == [pytest.approx(0.65), pytest.approx(0.6)]
    h, rows, _ = tables.metrics_table(res, FULL.key, "D")
    assert tables.column(h, rows, "F")[:2] == [pytest.approx(0.65), pytest.approx(0.6)]
    sh, srows = tables.select(h, rows, ["F", "method"])
    assert sh == ["F", "method"] and srows[0] == [pytest.approx(0.65), "a"]


def test_tables_do_not_import_the_leaderboard():
    import ast
    from pathlib import Path

    import bgbench.reports.tables as t

    tree = ast.parse(Path(t.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m and "leaderboard" in m for m in imported), imported


# --- per-video tables ----------------------------------------------------------------------------
def test_video_table_holds_the_job_records_values():
    res = _small()
    h, rows, better = per_video.video_table(res, FULL.key, "D")
    assert h == ["method", "v1", "v2", "v3", "v4", "overall"]
    by = {r[0]: dict(zip(h, r)) for r in rows}
    assert [r[0] for r in rows] == ["a", "b[cpu]", "broken"]
    jobs = {(j.key.label, j.key.video): j for j in res.jobs}
    for label in ("a", "b[cpu]"):
        for v in ("v1", "v2", "v3"):
            assert by[label][v] == jobs[(label, f"D/{'c2' if v == 'v3' else 'c1'}/{v}")].metrics["f_measure"]
    assert by["a"]["v4"] is None and by["b[cpu]"]["v4"] == "failed"
    assert by["a"]["overall"] == pytest.approx((0.8 + 0.5) / 2) and by["b[cpu]"]["overall"] == pytest.approx(0.6)
    assert by["broken"]["v1"] == "failed" and by["broken"]["overall"] == "failed"
    assert better == [None, True, True, True, True, True]
    md = per_video.markdown_video_table(res, FULL.key, "D")
    assert re.search(r"^\| a +\| +0\.9000 \| +0\.7000 \| +0\.5000 \| +- \| +0\.6500 \|$", md, re.M)
    csv = per_video.csv_video_table(res, FULL.key, "D").splitlines()
    assert csv[0] == "method,v1,v2,v3,v4,overall" and csv[2].startswith("b[cpu],0.6,0.4,0.7,failed,0.6")
    tex = per_video.latex_video_table(res, FULL.key, "D")
    assert r"a & \textbf{0.900} & \textbf{0.700} & \underline{0.500} & -- & \textbf{0.650} \\" in tex
    assert r"b[cpu] & \underline{0.600} & \underline{0.400} & \textbf{0.700} & failed & \underline{0.600} \\" in tex
    # a metric other than F
    h, rows, _ = per_video.video_table(res, FULL.key, "D", "pwc")
    assert rows[0][0] == "b[cpu]"  # PWC: lower is better, so 0.6 ranks before 0.65


def test_video_table_turns_when_there_are_many_videos_and_names_repeated_scenes():
    jobs = [job("a", FULL, f"D/c{i % 2}/s{i // 2}", i / 20) for i in range(14)]
    jobs += [job("b", FULL, f"D/c{i % 2}/s{i // 2}", 0.5) for i in range(14)]
    res = results_of(jobs, (FULL,))
    h, rows, better = per_video.video_table(res, FULL.key, "D")
    assert h == ["video", "b", "a"] and better == [None, None, None]  # b's overall 0.5 > a's 0.325 / 0.35
    assert rows[0][0] == "c0/s0" and rows[0][1:] == [0.5, 0.0]  # scene names repeat: category/scene
    assert rows[-1][0] == "overall" and rows[-1][2] == pytest.approx((0.30 + 0.35) / 2)
    assert len(rows) == 15


def test_video_metrics_csv_has_every_metric_per_job():
    h, rows = per_video.video_metrics_table(_small(), FULL.key)
    assert h[:6] == ["method", "dataset", "category", "video", "split", "status"] and h[-1] == "fps"
    assert len(rows) == 8 and rows[0][:4] == ["a", "D", "c1", "D/c1/v1"] and rows[0][h.index("mcc")] == 0.9


def test_report_writes_per_video_tables(tmp_path):
    from bgbench.reports.build import build_report

    written = build_report(_small(), tmp_path)
    names = {p.name for p in written["tables"]}
    assert {"per_video_full_D.md", "per_video_full_D.csv", "per_video_full_D.tex", "videos_full.csv"} <= names
    assert (tmp_path / "report" / "per_video_full_D.csv").read_text() == per_video.csv_video_table(
        _small(), FULL.key, "D")


# --- the PR figure plots what the tables give ---------------------------------------------------------
def test_pr_figure_marks_the_tables_recall_and_precision():
    jobs = [job("mask", FULL, f"D/c{i}/v", 0.3 + 0.2 * i, histograms=BINARY) for i in range(3)]
    jobs += [job("prob", FULL, f"D/c{i}/v", 0.2 + 0.1 * i) for i in range(3)]
    res = results_of(jobs, (FULL,))
    h, rows, _ = tables.metrics_table(res, FULL.key, "D")
    tabled = {r[0]: (r[h.index("Re")], r[h.index("Pr")]) for r in rows}
    assert tabled["mask"] == (pytest.approx(0.5), pytest.approx(0.5))  # not the pooled (0.8, 0.8)
    assert plots.pr_points(res, FULL.key, "D") == tabled
    fig = plots.pr_figure(res, FULL.key, "D")
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    for m in ("mask", "prob"):
        pt = lines[f"{m}: tabled point"]
        assert (pt.get_xdata()[0], pt.get_ydata()[0]) == tabled[m]
    assert "mask: pooled curve" not in lines and len(lines["prob: pooled curve"].get_xdata()) == 256
    assert fig.legends[0].get_title().get_text().replace("\n", " ") == plots.TABLE_POINT


# --- bgbench compare -------------------------------------------------------------------------------
def _write(res, folder):
    from bgbench.records.results import write_json

    write_json(folder / "results.json", res.to_json())
    return folder


def _two_runs(tmp_path):
    a = [job("m", FULL, f"D/c/v{i}", 0.5 + 0.1 * i) for i in range(4)] + [job("m", FULL, "D/c/v9", 0.9)]
    a += [job("old", FULL, "D/c/v0", 0.3)]
    b = [job("m", FULL, f"D/c/v{i}", 0.6 + 0.1 * i) for i in range(4)] + [job("new", FULL, "D/c/v0", 0.4)]
    return (_write(results_of(a, (FULL,)), tmp_path / "A"), _write(results_of(b, (FULL,)), tmp_path / "B"))


def test_compare_gives_deltas_and_the_paired_test_on_shared_videos(tmp_path, capsys):
    import json

    from bgbench.cli import main

    ra, rb = _two_runs(tmp_path)
    assert main(["compare", str(ra), str(rb), "--format", "json"]) == 0
    comp = json.loads(capsys.readouterr().out)
    rows = {r["method"]: r for r in comp["rows"]}
    assert comp["shared_videos"] == 4 and comp["notes"] == [
        "m full D: A and B are over different videos (only in A: 1, only in B: 0): the metric deltas compare means over "
        "different sets; the paired test uses the videos both scored alike."]
    m = rows["m"]
    # A: 0.5 0.6 0.7 0.8 and 0.9 (v9, only in A): mean 0.7; B: 0.6 .. 0.9: mean 0.75
    assert m["metrics"]["f_measure"] == {"a": pytest.approx(0.7), "b": pytest.approx(0.75),
                                         "delta": pytest.approx(0.05)}
    assert m["videos_a"] == 5 and m["videos_b"] == 4
    # four shared videos, each +0.1: difference 0.1; exact: only the all-plus and all-minus flips reach it, 2/16
    t = m["paired"]
    assert t["videos"] == 4 and t["difference"] == pytest.approx(0.1) and t["test"] == "exact"
    assert t["p_value"] == pytest.approx(0.125) and t["p_holm"] == pytest.approx(0.125)
    assert rows["old"]["status"] == "only in A" and rows["new"]["status"] == "only in B"
    assert rows["old"]["paired"] is None and rows["new"]["metrics"]["f_measure"]["a"] is None
    # Markdown and CSV carry the same numbers
    out = tmp_path / "cmp.md"
    assert main(["compare", str(ra), str(rb), "--out", str(out)]) == 0
    md = out.read_text()
    assert re.search(r"^\| m +\| +full \| +D \| +5 \| +4 \| 0\.7000 \| 0\.7500 \| \+0\.0500 \|", md, re.M)
    assert re.search(r"\| +\+0\.1000 \| 4 \| 0\.125 \| +0\.125 \| +exact \|$", md, re.M)
    capsys.readouterr()
    assert main(["compare", str(ra), str(rb), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    h = lines[0].split(",")
    row = dict(zip(h, next(r for r in lines if r.startswith("m,")).split(",")))
    assert float(row["F delta"]) == pytest.approx(0.05) and row["n"] == "4" and float(row["p"]) == 0.125


def test_compare_pairs_a_video_only_where_both_runs_scored_the_same_bytes_and_frames(tmp_path):
    """Found by probing: runs whose temporalROI.txt differed were paired video by video as if
    they tested the same frames. A video with other bytes (``meta.digests``) or frames in B is
    left out of the paired test, and the note says so."""
    from bgbench.reports.compare import compare_runs

    a = results_of([job("m", FULL, f"D/c/v{i}", 0.5 + 0.1 * i) for i in range(4)], (FULL,),
                   digests={f"D/c/v{i}": f"d{i}" for i in range(4)})
    b = results_of([job("m", FULL, f"D/c/v{i}", 0.6 + 0.1 * i, frames=15 if i == 1 else 1) for i in range(4)], (FULL,),
                   digests={f"D/c/v{i}": "other" if i == 2 else f"d{i}" for i in range(4)})
    comp = compare_runs(a, b)
    (row,) = comp["rows"]
    assert row["paired"]["videos"] == 2 and row["paired"]["difference"] == pytest.approx(0.1)
    assert comp["notes"][0] == ("m full D: 2 video(s) were scored on different data or frames in A and B (D/c/v1, "
                                "D/c/v2): left out of the paired test.")
    assert "unlike: 2" in comp["notes"][1]
    assert compare_runs(a, a)["notes"] == [] and compare_runs(a, a)["rows"][0]["paired"]["videos"] == 4


def test_compare_says_when_runs_share_no_videos(tmp_path, capsys):
    import json

    from bgbench.cli import main

    a = _write(results_of([job("m", FULL, f"D/c/v{i}", 0.5) for i in range(3)], (FULL,)), tmp_path / "A")
    b = _write(results_of([job("m", FULL, f"D/c/w{i}", 0.6) for i in range(3)], (FULL,)), tmp_path / "B")
    assert main(["compare", str(a), str(b), "--format", "json"]) == 0
    comp = json.loads(capsys.readouterr().out)
    assert comp["shared_videos"] == 0 and "share no video" in comp["notes"][-1]
    (row,) = comp["rows"]
    assert row["paired"]["videos"] == 0 and row["paired"]["p_value"] is None and row["paired"]["note"] == \
        "no shared videos"
    assert main(["compare", str(a), str(b)]) == 0
    assert "The runs share no video (A scored 3, B 3)" in capsys.readouterr().out
    # two shared videos: too few for a test
    c = _write(results_of([job("m", FULL, f"D/c/v{i}", 0.7) for i in range(2)], (FULL,)), tmp_path / "C")
    assert main(["compare", str(a), str(c), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["paired"]["videos"] == 2 and row["paired"]["p_value"] is None
    assert row["paired"]["note"].startswith("n too small (2 shared videos")


def test_compare_refuses_a_missing_run(tmp_path, capsys):
    from bgbench.cli import main

    ra, _ = _two_runs(tmp_path)
    assert main(["compare", str(ra), str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0] and "fix" in err[0]
    assert main(["compare", str(ra), str(ra), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


# --- citable outputs -------------------------------------------------------------------------------
def _parse_bib(text: str) -> dict[str, dict[str, str]]:
    """A small BibTeX reader: @type{key, field = {value}, ...}; balanced braces or fails."""
    entries: dict[str, dict[str, str]] = {}
    i = 0
    keys: list[str] = []
    while (at := text.find("@", i)) >= 0:
        m = re.match(r"@(\w+)\{([^,\s]+),", text[at:])
        assert m, text[at:at + 80]
        depth, j = 0, at + text[at:].index("{")
        for j in range(j, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                break
        assert depth == 0, f"unbalanced braces in {m.group(2)}"
        body = text[at + m.end():j]
        fields = {}
        for fm in re.finditer(r"(\w+)\s*=\s*\{", body):
            d, k = 1, fm.end()
            while d:
                d += {"{": 1, "}": -1}.get(body[k], 0)
                k += 1
            fields[fm.group(1).lower()] = body[fm.end():k - 1]
        fields["ENTRYTYPE"] = m.group(1).lower()
        keys.append(m.group(2))
        entries[m.group(2)] = fields
        i = j + 1
    assert len(keys) == len(set(keys)), "duplicate BibTeX keys"
    return entries


def test_bibtex_parses_and_every_method_and_published_source_has_a_full_reference():
    import tomllib
    from pathlib import Path

    from bgbench.reports import citations, published

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    builtin = pyproject["project"]["entry-points"]["bgbench.methods"]  # every built-in method

    bib = _parse_bib(citations.bibtex())
    assert set(bib) == set(citations.ENTRIES)
    for key, f in bib.items():
        e = citations.ENTRIES[key]
        venue = {"article": "journal", "inproceedings": "booktitle"}.get(f["ENTRYTYPE"], "howpublished")
        if not e.missing:  # a full reference: authors, title, venue, year
            assert f.get("author") and f.get("title") and f.get(venue) and re.fullmatch(r"\d{4}", f.get("year", ""))
        else:  # what the record cannot give is said, not guessed
            assert f["note"] == e.missing and f.get("title")
    # every registered method has a paper or is a named textbook baseline; every key exists
    assert len(builtin) == 20  # 14 classical, 5 deep, the masks reader
    for name in builtin:
        assert (name in citations.METHODS) != (name in citations.NO_PAPER), name
    assert set(citations.METHODS.values()) <= set(bib) and set(citations.PAPERS.values()) <= set(bib)
    for ref in published.REFERENCES:
        assert citations.source_key(ref.source) in bib, ref.source
    # the reference text names the paper in full, and says what no source confirmed
    assert citations.reference_text("liang2023crossnet") == (
        'Dong Liang, Dong Zhang, Qiong Wang, Zongqi Wei and Liyan Zhang, "CrossNet: Cross-scene Background '
        'Subtraction Network via 3D Optical Flow", IEEE Transactions on Multimedia, 2025, doi:10.1109/TMM.2023.3266608. '
        "(volume and pages of the 2025 issue unconfirmed (the DOI is the 2023 accepted version's).)")
    assert citations.reference_text("stcharles2015subsense") == (
        'Pierre-Luc St-Charles, Guillaume-Alexandre Bilodeau and Robert Bergevin, "SuBSENSE: A Universal Change '
        'Detection Method With Local Adaptive Sensitivity", IEEE Transactions on Image Processing, vol. 24, no. 1, '
        'pp. 359-373, 2015, doi:10.1109/TIP.2014.2378053.')
    # BibTeX markup stays out of the text; an entry without venue or year is a misc
    assert "\\_" not in citations.reference_text("zeevi2016cnt")
    for key, e in citations.ENTRIES.items():
        if not (e.venue and e.year):
            assert e.kind == "misc" and e.missing, key


def _cdnet_results():
    jobs = [job(m, FULL, f"CDnet2014/baseline/{v}", f) for m, f in (("gmm_sg", 0.7), ("subsense", 0.8),
                                                                    ("frame_difference", 0.5))
            for v in ("highway", "office")]
    return results_of(jobs, (FULL,))


def test_report_writes_references_bib_that_covers_every_citation(tmp_path):
    from bgbench.reports.build import build_report

    build_report(_cdnet_results(), tmp_path)
    report = tmp_path / "report"
    bib = _parse_bib((report / "references.bib").read_text())
    cited = set()
    for tex in report.glob("*.tex"):
        for group in re.findall(r"\\cite\{([^}]*)\}", tex.read_text()):
            cited |= {k.strip() for k in group.split(",")}
    assert cited == {"stauffer1999adaptive", "stcharles2015subsense"}  # frame_difference: no paper
    assert cited <= set(bib)
    # the dataset, and the paper the published numbers come from (papers/000 Table 2)
    assert set(bib) == cited | {"wang2014cdnet", "mondejar2019bmnbsn"}
    pub = (report / "published_full_CDnet2014.md").read_text()
    assert "- papers/000 [mondejar2019bmnbsn]: Mondéjar-Guerra, \"An End-to-End Deep Learning Approach\". " \
           "(papers/000 prints only its running head" in pub


def test_leaderboard_latex_keeps_ap_and_says_n_too_small_once():
    from bgbench.reports import leaderboard

    board = leaderboard.leaderboard(_cdnet_results(), FULL.key, "CDnet2014")
    h, rows, better = tables.leaderboard_table(board, tex=True)
    assert h == ["method", "RC", "RM", "F", "95% CI", "AP", "FPS"] and better[h.index("AP")] is True
    assert tables.column(h, rows, "95% CI") == [None, None, None]  # two videos each: no CI
    tex = tables.latex_leaderboard(board)
    assert "& AP &" in tex and tex.count("n too small") == 1
    assert "subsense (2), gmm\\_\\allowbreak{}sg (2), frame\\_\\allowbreak{}difference (2)" in tex
    assert "Methods: subsense~\\cite{stcharles2015subsense}, gmm\\_sg~\\cite{stauffer1999adaptive}." in tex


@pytest.mark.skipif(not (__import__("shutil").which("pdflatex") and __import__("shutil").which("bibtex")),
                    reason="no pdflatex/bibtex")
def test_report_tables_compile_with_their_bibliography(tmp_path):
    import subprocess

    from bgbench.reports.build import build_report

    build_report(_cdnet_results(), tmp_path)
    report = tmp_path / "report"
    body = "\n".join(r"\input{" + p.name + "}" for p in sorted(report.glob("*.tex")))
    (report / "doc.tex").write_text("\\documentclass{article}\\usepackage{booktabs}\\usepackage{graphicx}"
                                    "\\begin{document}" + body + "\\bibliographystyle{plain}\\bibliography{references}"
                                    "\\end{document}")
    for cmd in (["pdflatex"], ["bibtex"], ["pdflatex"], ["pdflatex"]):
        arg = "doc" if cmd == ["bibtex"] else "doc.tex"
        r = subprocess.run([*cmd, *(["-interaction=nonstopmode", "-halt-on-error"] if cmd != ["bibtex"] else []),
                            arg], cwd=report, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout[-2000:]
    log = (report / "doc.log").read_text(errors="replace")
    assert not re.search(r"Citation .* undefined", log), re.findall(r".*Citation.*", log)
    assert "There were undefined references" not in log
    assert "Stauffer" in (report / "doc.bbl").read_text()


def test_citation_cff_and_license_match_pyproject():
    import tomllib
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    cff = yaml.safe_load((root / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["title"] and cff["authors"] and cff["message"]
    assert cff["version"] == project["version"] and cff["license"] == "MIT"
    lic = project["license"]
    assert (lic if isinstance(lic, str) else lic["text"]) == "MIT"
    assert (root / "LICENSE").read_text().startswith("MIT License\n")


@pytest.mark.slow
@needs_data
def test_real_run_per_video_tables_frame_and_compare(tmp_path, capsys):
    """A real run (frame_difference on CDnet2014 highway): `bgbench report` writes the
    per-video table with the job's own F, frame() holds the job, and compare of the run with
    itself gives zero deltas and no test (one shared video)."""
    import csv
    import json

    from bgbench.cli import main
    from bgbench.records.results import load_results

    run = tmp_path / "run"
    assert main(["run", "--data", str(HIGHWAY), "--methods", "frame_difference", "--out", str(run), "--no-report",
                 "--no-tracking"]) == 0
    assert main(["report", str(run)]) == 0
    res = load_results(run)
    (job_,) = res.jobs
    f = job_.metrics["f_measure"]
    assert 0.3 < f < 0.9
    rows = list(csv.reader((run / "report" / "per_video_full_CDnet2014.csv").open()))
    assert rows == [["method", "highway", "overall"], ["frame_difference", repr(f), repr(f)]]
    df = res.frame()
    assert len(df) == 1 and df.video[0] == "CDnet2014/baseline/highway" and df.f_measure[0] == f
    assert df.fps[0] == job_.fps and df.category[0] == "baseline"
    capsys.readouterr()
    assert main(["compare", str(run), str(run), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["metrics"]["f_measure"]["delta"] == 0.0 and row["paired"]["videos"] == 1
    assert row["paired"]["p_value"] is None
