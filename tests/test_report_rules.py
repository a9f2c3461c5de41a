"""The report's rules, on records made by hand with numbers worked out by hand: runs grouped
by protocol key (not name), statistics that refuse to speak on too few videos and weight
videos as overall F does, binary methods without a PR curve or AP, failed methods listed
rather than dropped, and the published gap that carries its footnote mark."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from records_helpers import SCORED, job, results_of
from records_helpers import hist as _hist

from bgbench.scoring.aggregate import protocol_display, resolve_protocol
from bgbench.protocols import build_protocol
from bgbench.scoring.metrics import pr_curve
from bgbench.reports import leaderboard, tables
from bgbench.reports.published import compare, csv_columns, marked_rows

HALF = build_protocol("scene-specific", rule="first-half")
N200 = build_protocol("scene-specific", rule="n:200")
FG200 = build_protocol("scene-specific", rule="fgsegnet:200")  # papers/002's protocol: FgSegNet's frames
FULL = build_protocol("full")

BINARY = _hist({255: (8, 2), 0: (2, 88)})  # a 0/255 mask


def _job(method, proto, video, f, *, hist=SCORED, status="ok", error=None, config="default"):
    """A job record as the runner writes it, every metric equal to ``f``."""
    return job(method, proto, video, f, histograms=hist, status=status, error=error, config=config)


def _results(jobs, protocols=(FULL,), seed=0):
    return results_of(jobs, protocols, seed)


# --- 0: grouped by the protocol's key ------------------------------------------------------
def test_two_variants_of_one_protocol_are_summarised_ranked_and_reported_apart(tmp_path):
    jobs = [_job("a", HALF, "CDnet2014/baseline/highway", 0.9), _job("b", HALF, "CDnet2014/baseline/highway", 0.5),
            _job("a", N200, "CDnet2014/baseline/highway", 0.2), _job("b", N200, "CDnet2014/baseline/highway", 0.6),
            _job("a", N200, "CDnet2014/baseline/office", 0.4)]
    res = _results(jobs, (HALF, N200))
    assert {k for label, k in res.summaries if label == "a"} == {HALF.key, N200.key}  # not one entry of three videos
    a_half = res.summary("a", HALF.key)
    assert a_half.protocol == "scene-specific" and a_half.protocol_key == HALF.key
    assert a_half.datasets["CDnet2014"].overall["f_measure"] == pytest.approx(0.9)
    assert res.summary("a", N200.key).datasets["CDnet2014"].overall["f_measure"] == pytest.approx(0.3)
    assert protocol_display(HALF.key, res) == "scene-specific (rule=first-half)"
    seed3 = dataclasses.replace(res, meta=dataclasses.replace(res.meta, seed=3))
    assert protocol_display(N200.key, seed3) == "scene-specific (seed=0, rule=n:200)"
    assert protocol_display("full", res) == "full"
    assert tables.protocols_and_datasets(res) == [(HALF.key, "CDnet2014"), (N200.key, "CDnet2014")]
    # the first-half board ranks a first on its one video; the n:200 board ranks b first
    half = leaderboard.leaderboard(res, HALF.key, "CDnet2014")
    n200 = leaderboard.leaderboard(res, N200.key, "CDnet2014")
    assert [r["method"] for r in half["rows"]] == ["a", "b"] and half["protocol_display"] == protocol_display(HALF.key, res)
    assert [r["method"] for r in n200["rows"]] == ["b", "a"]
    assert {r["method"]: r["videos"] for r in n200["rows"]} == {"a": 2, "b": 1}
    # a bare name stands for a key only where it is unambiguous
    with pytest.raises(ValueError, match="2 sets of options"):
        resolve_protocol(res, "scene-specific")
    only = _results(jobs[:2], (HALF, N200))
    assert resolve_protocol(only, "scene-specific") == HALF.key
    # one set of files per key, named by the options that tell them apart
    from bgbench.reports.build import build_report, protocol_slugs

    assert protocol_slugs(res) == {HALF.key: "scene-specific_rule-first-half", N200.key: "scene-specific_rule-n-200"}
    build_report(res, tmp_path, tmp_path / "report")
    names = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"leaderboard_scene-specific_rule-first-half_CDnet2014.md",
            "leaderboard_scene-specific_rule-n-200_CDnet2014.md"} <= names
    md = (tmp_path / "report" / "leaderboard_scene-specific_rule-n-200_CDnet2014.md").read_text()
    assert md.startswith("CDnet2014 · protocol scene-specific (rule=n:200) · leaderboard")
    page = (tmp_path / "report" / "leaderboard.html").read_text()
    assert "protocol scene-specific (rule=first-half)</h2>" in page and "protocol scene-specific (rule=n:200)</h2>" in page


def test_published_numbers_and_the_gate_read_the_key():
    from bgbench.check import accuracy_from, compare_accuracy

    jobs = [_job("cdn_medal", FG200, "CDnet2014/baseline/highway", 0.5, config="smoke"),
            _job("cdn_medal", HALF, "CDnet2014/baseline/highway", 0.7, config="smoke")]
    res = _results(jobs, (HALF, FG200))
    assert compare(res, HALF.key)["rows"] == []  # papers/002 used fgsegnet:200: not beside first-half
    c = compare(res, FG200.key)
    h = c["header"]
    (f_row,) = [r for r in c["rows"] if r[h.index("metric")] == "f_measure"]
    assert f_row[1:3] == [0.5, 0.9615]
    acc = accuracy_from(res)
    assert acc["cdn_medal[smoke]"][FG200.key]["CDnet2014"]["baseline"] == 0.5
    assert acc["cdn_medal[smoke]"][HALF.key]["CDnet2014"]["baseline"] == 0.7
    # a reference written when the summary was keyed by name still finds the one key of that name
    ref = {"accuracy": {"m": {"scene-specific": {"CDnet2014": {"baseline": 0.5}}}}}
    (row,) = compare_accuracy(_results([_job("m", HALF, "CDnet2014/baseline/highway", 0.5)], (HALF,)), ref, 0.01)
    assert row["status"] == "ok" and row["current"] == 0.5
    # where the name stands for two keys, the gate cannot choose: the entry is missing
    (row,) = compare_accuracy(res, {"accuracy": {"cdn_medal[smoke]": ref["accuracy"]["m"]}}, 0.01)
    assert row["status"] == "REGRESSION (missing from the run)"


# --- 5: statistics --------------------------------------------------------------------------
def test_sign_flip_exact_p_by_hand():
    # 3 videos in one category, all +0.1: only all-plus and all-minus reach |0.1|: p = 2/8
    t = leaderboard.paired_test({"d/c/a": 0.6, "d/c/b": 0.7, "d/c/c": 0.8}, {"d/c/a": 0.5, "d/c/b": 0.6, "d/c/c": 0.7})
    assert t["videos"] == 3 and t["test"] == "exact" and t["flips"] == 8
    assert t["difference"] == pytest.approx(0.1) and t["p_value"] == pytest.approx(0.25)
    assert t["min_p"] == pytest.approx(0.25)  # 2/2^3: nothing lower is possible with 3 videos


def test_sign_flip_weights_videos_as_overall_f_does():
    # d = +0.1 (c1/a), -0.2 and -0.2 (c2/b, c2/c). Overall F weighs a by 1/2 and b, c by 1/4:
    # statistic 0.05 s_a - 0.05 s_b - 0.05 s_c = 0.05 (s_a - s_b - s_c), observed -0.05; s_a - s_b - s_c
    # is odd, so every flip reaches |0.05|: p = 8/8. (The mean over videos, -0.1, gives 4/8: only
    # s_b = s_c reaches |0.3| in the sum.)
    a = {"d/c1/a": 0.6, "d/c2/b": 0.3, "d/c2/c": 0.4}
    b = {"d/c1/a": 0.5, "d/c2/b": 0.5, "d/c2/c": 0.6}
    t = leaderboard.paired_test(a, b)
    assert t["categories"] == 2 and t["difference"] == pytest.approx(-0.05) and t["p_value"] == pytest.approx(1.0)
    # the statistic is the difference of the two overall F the table prints
    proto = FULL
    res = _results([_job("A", proto, v, f) for v, f in a.items()] + [_job("B", proto, v, f) for v, f in b.items()])
    fa = res.summary("A", "full").datasets["d"].overall["f_measure"]
    fb = res.summary("B", "full").datasets["d"].overall["f_measure"]
    assert t["difference"] == pytest.approx(fa - fb)


def test_sign_flip_refuses_fewer_than_three_videos():
    for n in (1, 2):
        a = {f"d/c/v{i}": 0.9 for i in range(n)}
        b = {f"d/c/v{i}": 0.1 for i in range(n)}
        t = leaderboard.paired_test(a, b)
        assert t["p_value"] is None and t["test"] is None and t["note"].startswith("n too small")
        assert t["difference"] == pytest.approx(0.8)


def test_random_flips_p_has_the_plus_one_correction():
    # 17 videos (> 16: random flips), all +0.1: a flip reaches 0.1 only if all 17 signs agree
    # (chance 2/2^17 per flip), so none of 99 flips does: p = (0 + 1) / (99 + 1), never 0
    a = {f"d/c/v{i:02d}": 0.6 for i in range(17)}
    b = {f"d/c/v{i:02d}": 0.5 for i in range(17)}
    t = leaderboard.paired_test(a, b, n=99, seed=0)
    assert t["test"] == "random" and t["flips"] == 99
    assert t["p_value"] == pytest.approx(1 / 100) and t["min_p"] == pytest.approx(1 / 100)
    # no difference at all: every flip reaches 0: p = (99 + 1) / (99 + 1)
    assert leaderboard.paired_test(b, b, n=99)["p_value"] == pytest.approx(1.0)


def test_holm_adjustment_by_hand():
    # sorted p 0.01, 0.02, 0.04 (m = 3): 3 x 0.01 = 0.03, max(0.03, 2 x 0.02) = 0.04, max(0.04, 0.04) = 0.04
    assert leaderboard.holm([0.04, 0.01, None, 0.02]) == [pytest.approx(0.04), pytest.approx(0.03), None,
                                                         pytest.approx(0.04)]


def test_bootstrap_ci_needs_three_videos_and_follows_the_run_seed():
    assert leaderboard.bootstrap_ci({"d/c/a": 0.5}) is None
    assert leaderboard.bootstrap_ci({"d/c/a": 0.5, "d/c/b": 0.7}) is None  # n = 2: refused
    assert leaderboard.bootstrap_ci({"d/c/a": 0.5, "d/c/b": 0.7, "d/c/c": float("nan")}) is None  # NaN is no unit
    lo, hi = leaderboard.bootstrap_ci({"d/c/a": 0.5, "d/c/b": 0.7, "d/c/c": 0.6})
    assert 0.5 <= lo < hi <= 0.7
    lo, hi = leaderboard.bootstrap_ci({f"d/c/v{i}": x for i, x in enumerate(np.linspace(0.2, 0.9, 20))})
    assert 0.2 < lo < 0.55 < hi < 0.9
    # in the leaderboard: "n too small" at two videos; the seed is the run's
    two = [_job(m, FULL, f"d/c/v{i}", f + 0.1 * i) for m, f in (("a", 0.5), ("b", 0.3)) for i in range(2)]
    board = leaderboard.leaderboard(_results(two), "full", "d")
    assert all(r["ci_low"] is None and r["ci_note"] == "n too small (2 videos)" for r in board["rows"])
    assert all(t["p_value"] is None for t in board["paired_tests"]["tests"])
    h, rows, _ = tables.leaderboard_table(board)
    assert rows[0][h.index("95% CI")] == "n too small (2 videos)"
    assert "n too small (2 videos)" in tables.markdown(h, rows)
    five = [_job("a", FULL, f"d/c{i % 3}/v{i}", float(f))
            for i, f in enumerate(np.random.default_rng(1).uniform(0.2, 0.9, 12))]
    vf = {j["video"]: j["metrics"]["f_measure"] for j in five}  # the job records (dicts) as written
    for seed in (0, 7):
        (row,) = leaderboard.leaderboard(_results(five, seed=seed), "full", "d")["rows"]
        assert (row["ci_low"], row["ci_high"]) == leaderboard.bootstrap_ci(vf, seed=seed)
    assert leaderboard.bootstrap_ci(vf, seed=0) != leaderboard.bootstrap_ci(vf, seed=7)


def test_the_page_says_which_methods_were_compared_and_why():
    from bgbench.reports import html

    jobs = [_job(m, FULL, f"d/c/v{i}", f + 0.01 * i) for m, f in (("a", 0.8), ("b", 0.6), ("c", 0.4)) for i in range(4)]
    res = _results(jobs)
    board = leaderboard.leaderboard(res, "full", "d")
    pt = board["paired_tests"]
    assert pt["reference"] == "a" and not pt["declared"] and [t["b"] for t in pt["tests"]] == ["b", "c"]
    # 4 videos all +0.2: exact p = 2/16 for both; Holm: 2 x 0.125 = 0.25 for both
    assert [t["p_value"] for t in pt["tests"]] == [pytest.approx(0.125)] * 2
    assert [t["p_holm"] for t in pt["tests"]] == [pytest.approx(0.25)] * 2
    doc = html.page(res, [board], {}, None)
    assert "a against each other method (2 comparisons)" in doc
    assert "a selection, so the p-values are optimistic" in doc and "smallest possible 0.125" in doc
    declared = leaderboard.leaderboard(res, "full", "d", reference="b")["paired_tests"]
    assert declared["reference"] == "b" and declared["declared"] and "pre-declared" in declared["why"]
    assert [t["b"] for t in declared["tests"]] == ["a", "c"]


# --- 6: binary methods ----------------------------------------------------------------------
def test_pr_curve_of_a_binary_method_is_one_point_without_ap():
    pr = pr_curve(BINARY)
    assert pr["levels"] == 2 and pr["binary"] and pr["average_precision"] is None
    # at q = 255: TP 8, FP 2: recall 8/10, precision 8/10 (the line to (1, 0.1) is not a curve)
    assert pr["point"] == {"threshold": 1.0, "recall": pytest.approx(0.8), "precision": pytest.approx(0.8)}
    # three levels: AP = 0.4 x 0.8 (q = 255) + 0.4 x 8/12 (q = 128) + 0.2 x 10/100 (q = 0)
    pr = pr_curve(SCORED)
    assert pr["levels"] == 3 and not pr["binary"] and pr["point"] is None
    assert pr["average_precision"] == pytest.approx(0.32 + 0.4 * 8 / 12 + 0.02)
    assert pr_curve(_hist({0: (5, 95)}))["average_precision"] is None  # a constant map


def test_best_threshold_ties_go_to_the_lowest_bin():
    # positives at q = 200 and 100, negatives 2 at 100 and 10 at 0. T in 101..200: TP 1, FP 0, FN 1:
    # F = 2/3; T in 1..100: TP 2, FP 2, FN 0: F = 4/6 = 2/3 too; T = 0: F = 4/16. Lowest of the tied bins: 1
    pr = pr_curve(_hist({200: (1, 0), 100: (1, 2), 0: (0, 10)}))
    assert pr["best_f"] == pytest.approx(2 / 3) and pr["best_threshold"] == pytest.approx(1 / 255)


def test_binary_method_in_tables_and_plot():
    from matplotlib import pyplot as plt

    from bgbench.reports import plots

    jobs = [_job("mask", FULL, f"d/c/v{i}", 0.5, hist=BINARY) for i in range(3)]
    jobs += [_job("prob", FULL, f"d/c/v{i}", 0.6, hist=SCORED) for i in range(3)]
    res = _results(jobs)
    d = res.summary("mask", "full").datasets["d"]
    assert d.average_precision is None and d.output_levels == 2
    assert res.summary("prob", "full").datasets["d"].average_precision == pytest.approx(0.32 + 0.4 * 8 / 12 + 0.02)
    h, rows, better = tables.metrics_table(res, "full", "d")
    ap = {r[0]: r[h.index("AP")] for r in rows}
    assert ap["mask"] == "n/a (binary)" and ap["prob"] == pytest.approx(0.6066667)
    tex = tables.latex(h, rows, better)
    assert "n/a (binary)" in tex and r"\textbf{0.607}" in tex  # the only AP is the best: text is not ranked
    board = leaderboard.leaderboard(res, "full", "d")
    lh, lrows, _ = tables.leaderboard_table(board)
    assert {r[0]: r[lh.index("AP")] for r in lrows}["mask"] == "n/a (binary)"
    fig = plots.pr_figure(res, "full", "d")
    try:
        lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert legend == ["mask (binary, no AP)", "prob (AP 0.607)"]
        point, curve, marker = fig.axes[0].get_lines()
        # the tabled point (every metric of these jobs is 0.5 and 0.6), not the pooled one (0.8, 0.8)
        assert list(point.get_xdata()) == [pytest.approx(0.5)] and list(point.get_ydata()) == [pytest.approx(0.5)]
        assert point.get_linestyle() == "None" and point.get_marker() == "o"
        assert len(curve.get_xdata()) == 256 and lines
        assert list(marker.get_xdata()) == [pytest.approx(0.6)] and marker.get_markerfacecolor() == "white"
        assert fig.legends[0].get_title().get_text().startswith("markers: overall Re, Pr as tabled")
    finally:
        plt.close(fig)


# --- 7: failed methods ------------------------------------------------------------------------
def _with_failures():
    jobs = [_job("good", FULL, f"d/c/v{i}", 0.7 + 0.01 * i) for i in range(3)]
    jobs += [_job("broken", FULL, f"d/c/v{i}", None, status="failed", error="RuntimeError: CUDA out | of memory")
             for i in range(3)]
    jobs += [_job("flaky", FULL, "d/c/v0", None, status="failed", error="ValueError: bad frame")]
    jobs += [_job("flaky", FULL, f"d/c/v{i}", 0.5) for i in (1, 2)]
    return _results(jobs)


def test_failed_methods_are_listed_with_their_error():
    res = _with_failures()
    broken = res.summary("broken", "full")
    assert broken.datasets == {} and broken.jobs_failed == 3 and broken.jobs_ok == 0
    assert [f["video"] for f in broken.failures["d"]] == ["d/c/v0", "d/c/v1", "d/c/v2"]
    (fail,) = [f for f in tables.failures(res, "full", "d") if f["method"] == "broken"]
    assert fail["all_failed"] and fail["message"] == "all 3 of 3 jobs failed: RuntimeError: CUDA out | of memory"
    (flaky,) = [f for f in tables.failures(res, "full", "d") if f["method"] == "flaky"]
    assert not flaky["all_failed"] and flaky["message"] == ("1 of 3 jobs failed: ValueError: bad frame; its numbers "
                                                            "cover the other 2 videos")
    board = leaderboard.leaderboard(res, "full", "d")
    rows = {r["method"]: r for r in board["rows"]}
    assert [r["method"] for r in board["rows"]][-1] == "broken"  # listed last, not dropped
    assert rows["broken"]["status"] == "failed" and "out | of memory" in rows["broken"]["error"]
    assert rows["flaky"]["status"] == "partial" and rows["flaky"]["videos"] == 2
    assert rows["good"]["RC"] == 1.0 and rows["broken"]["RC"] is None  # failed methods are not ranked
    h, lrows, _ = tables.leaderboard_table(board)
    md = tables.markdown(h, lrows) + leaderboard.notes_markdown(board)
    assert re.search(r"^\| broken +\| +classical \| +failed \|", md, re.M)  # its family, from its jobs
    assert "- broken: failed: all 3 of 3 jobs failed: RuntimeError: CUDA out | of memory" in md
    assert "- flaky: partly failed: 1 of 3 jobs failed: ValueError: bad frame" in md
    tex = tables.latex_leaderboard(board)
    assert r"broken & failed &" in tex and "RuntimeError" in tex and r"\footnotesize" in tex
    # the per-category and metrics tables, Markdown and LaTeX
    ch, crows = tables.category_table(res, "full", "d")
    assert crows[-1][:2] == ["broken", "failed"] and all(c is None for c in crows[-1][2:])
    assert "RuntimeError" in tables.latex_category_table(res, "full", "d")
    mh, mrows, _ = tables.metrics_table(res, "full", "d")
    assert mrows[-1][:2] == ["broken", "failed"]
    _, long_rows = tables.long_table(res, "full")
    assert ["broken", "d", "failed"] in [r[:3] for r in long_rows]
    term = tables.terminal_summary(res)
    assert "broken: failed: all 3 of 3 jobs failed" in term
    # and the HTML page: a row reading "failed" with the error as its tooltip
    from bgbench.reports import html

    doc = html.page(res, [board], {}, None)
    assert "<tr title='all 3 of 3 jobs failed: RuntimeError: CUDA out | of memory'>" in doc
    assert '<td data-v="">failed</td>' in doc and "Failed jobs (4)" in doc


def test_markdown_cells_keep_pipes_and_newlines_inside():
    md = tables.markdown(["method", "note"], [["a", "x | y\nz"]], ["text", "text"])
    assert md.splitlines()[2] == "| a      | x \\| y z |"


@pytest.mark.skipif(not __import__("shutil").which("pdflatex"), reason="no pdflatex")
def test_failure_notes_compile(tmp_path):
    import subprocess

    res = _with_failures()
    board = leaderboard.leaderboard(res, "full", "d")
    body = tables.latex_leaderboard(board) + tables.latex_category_table(res, "full", "d")
    (tmp_path / "doc.tex").write_text("\\documentclass[twocolumn]{article}\\usepackage{booktabs}\\usepackage{graphicx}"
                                      "\\begin{document}" + body + "\\end{document}")
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert r.returncode == 0, log[-2000:]
    assert "Overfull \\hbox" not in log


# --- 8: the published gap carries its mark ----------------------------------------------------
def test_published_gap_carries_the_fewer_videos_mark():
    res = _results([_job("cdn_medal", FG200, "CDnet2014/baseline/highway", 0.5, config="smoke")], (FG200,))
    c = compare(res, FG200.key)
    h = c["header"]
    i = next(i for i, r in enumerate(c["rows"]) if r[h.index("metric")] == "f_measure")
    mark = c["cell_marks"][f"{i}:baseline gap"]
    assert mark == "[1]" and c["footnotes"][0].startswith("[1] cdn_medal[smoke] (papers/002 Table III): ours averages "
                                                          "fewer videos") and "baseline 1 of 4" in c["footnotes"][0]
    assert c["rows"][i][h.index("baseline gap")] == pytest.approx(0.5 - 0.9615)  # still a number in the record
    printed = marked_rows(c)[i]
    assert printed[h.index("baseline gap")] == "-0.4615 [1]" and printed[h.index("gap")] == "-0.4615 [1]"
    ch, crows = csv_columns(c)
    j = ch.index("baseline gap")
    assert ch[j + 1] == "baseline gap note" and crows[i][j] == pytest.approx(-0.4615) and crows[i][j + 1] == "[1]"
    # the leaderboard's published F carries it too
    board = leaderboard.leaderboard(res, FG200.key, "CDnet2014")
    (row,) = board["rows"]
    assert row["published_f"] == 0.9615 and row["published_marks"] == "[1]"
    assert leaderboard.published_gap(row) == "-0.4615 [1]"
    assert "-0.4615 [1]" in leaderboard.notes_markdown(board)
    # a whole-category comparison has no mark: four baseline videos against the paper's four
    four = _results([_job("cdn_medal", FG200, f"CDnet2014/baseline/{v}", 0.5, config="smoke")
                     for v in ("highway", "office", "pedestrians", "PETS2006")], (FG200,))
    c4 = compare(four, FG200.key)
    i4 = next(i for i, r in enumerate(c4["rows"]) if r[c4["header"].index("metric")] == "f_measure")
    assert f"{i4}:baseline gap" not in c4["cell_marks"]


def test_an_older_record_is_refused_naming_the_file(tmp_path):
    """A results.json of schema 1 (untyped, summaries perhaps keyed by protocol name) is
    BadInput naming the file and the schema, not re-summarised behind the reader's back."""
    import json

    from bgbench.errors import BadInput
    from bgbench.records.results import load_results

    res = _results([_job("a", HALF, "CDnet2014/baseline/highway", 0.9)], (HALF,))
    old = {**res.to_json(), "schema_version": 1}
    (tmp_path / "results.json").write_text(json.dumps(old))
    with pytest.raises(BadInput) as e:
        load_results(tmp_path)
    assert str(tmp_path / "results.json") in str(e.value) and "schema 1" in str(e.value)


def test_an_untimed_degenerate_method_reads_na_and_the_tex_note_counts_defined_f_videos():
    """Found by probing: the masks method, once flagged "(degenerate)", showed FPS "-" (its
    shown label was looked up among the untimed ones), and the LaTeX leaderboard's "fewer than
    3 videos with a defined F" printed every scored video, 2 where one had a defined F."""
    from bgbench.reports import leaderboard as lb
    from bgbench.reports import tables

    untimed = {"timing": {"fps": None, "fps_note": "masks read from disk: no speed"}}
    res = results_of([job("masks", "full", "W/-/Camouflage", 0.0, degenerate="no positive pixel", **untimed),
                      job("masks", "full", "W/-/Quiet", None, **untimed),
                      job("gmm", "full", "W/-/Camouflage", 0.8), job("gmm", "full", "W/-/Quiet", None)])
    for table in (tables.category_table(res, "full", "W")[:2], tables.metrics_table(res, "full", "W")[:2]):
        header, rows = table
        row = next(r for r in rows if r[0].startswith("masks"))
        assert "degenerate" in row[0] and row[header.index("FPS")] == "n/a"
    notes = tables.leaderboard_tex_notes(lb.leaderboard(res, "full", "W"))
    assert "gmm (1)" in notes[0] and "(2)" not in notes[0], notes
