"""The regression gate: passes on an unchanged run, fails on a seeded accuracy or speed
regression, judges speed only beyond the measured spread, exit 2 on bad input (a malformed
reference is never a regression)."""

from __future__ import annotations

import json

import pytest

from bgbench.cli import main
from conftest import HIGHWAY, needs_data


def _run(out, *extra):
    assert main(["run", "--data", str(HIGHWAY), "--methods", "gmm_zivkovic,frame_difference", "--out", str(out),
                 "--no-report", "--no-tracking", *extra]) == 0


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    """A run and a reference made from it (speed measured: 3 interleaved repeats)."""
    root = tmp_path_factory.mktemp("gate")
    _run(root / "a")
    ref = root / "reference.json"
    assert main(["check", str(root / "a"), "--reference", str(ref), "--update", "--repeats", "3"]) == 0
    return root, ref


@pytest.mark.slow
@needs_data
def test_reference_records_accuracy_speed_and_parameters(gate):
    root, ref = gate
    stored = json.loads(ref.read_text())
    assert stored["accuracy"]["gmm_zivkovic"]["full"]["CDnet2014"]["baseline"] > 0.6
    sp = stored["speed"]
    assert sp["repeats"] == 3 and sp["jobs"] == 1 and sp["threads"] == 1 and len(sp["reference_seconds"]) == 3
    for label in ("gmm_zivkovic", "frame_difference"):
        m = sp["methods"][label]
        assert len(m["normalized"]) == 3 and m["median"] > 0 and m["spread"] >= 0
    assert stored["params"]["gmm_zivkovic"]["var_threshold"] == 16.0
    assert (root / "a" / "speed_gate.json").exists()


@needs_data
@pytest.mark.slow
def test_gate_passes_unchanged_and_fails_seeded_regressions(gate, tmp_path, capsys):
    root, ref = gate
    capsys.readouterr()
    assert main(["check", str(root / "a"), "--reference", str(ref), "--speed-tol", "0.5", "--repeats", "3"]) == 0
    assert "0 regression(s)" in capsys.readouterr().out

    _run(tmp_path / "c", "--set", "gmm_zivkovic.var_threshold=400")  # seeded accuracy regression
    assert main(["check", str(tmp_path / "c"), "--reference", str(ref), "--no-speed"]) == 1
    out = capsys.readouterr().out
    assert "gmm_zivkovic full CDnet2014" in out and "F baseline" in out and "REGRESSION" in out
    assert "var_threshold: 16.0 -> 400.0" in out  # the changed parameter is named

    fast = json.loads(ref.read_text())  # seeded speed regression: the reference 3x faster, spread small
    fast["speed"]["methods"]["frame_difference"].update(median=3 * fast["speed"]["methods"]["frame_difference"]["median"],
                                                        spread=0.05)
    (tmp_path / "fast.json").write_text(json.dumps(fast))
    assert main(["check", str(root / "a"), "--reference", str(tmp_path / "fast.json"), "--speed-tol", "0.5",
                 "--repeats", "3"]) == 1
    out = capsys.readouterr().out
    assert "frame_difference" in out and "REGRESSION (beyond the" in out


def test_speed_is_judged_only_beyond_the_measured_spread():
    from bgbench.check import compare_speed

    ref = {"speed": {"methods": {"m": {"median": 100.0, "spread": 0.6}}}}
    now = {"methods": {"m": {"median": 55.0, "spread": 0.1}}}  # -45%: beyond the 25% tolerance, inside the spread
    (row,) = compare_speed(now, ref, 0.25)
    assert row["status"] == "ok (within the measured spread 60%)"
    now["methods"]["m"]["median"] = 35.0  # -65%: beyond both
    (row,) = compare_speed(now, ref, 0.25)
    assert row["status"].startswith("REGRESSION (beyond the measured spread 60%)")
    ref["speed"]["methods"]["m"]["spread"] = 0.1
    now["methods"]["m"]["median"] = 80.0  # -20%: inside the tolerance
    (row,) = compare_speed(now, ref, 0.25)
    assert row["status"] == "ok (within the tolerance 25%)"


def _bad_references():
    good = {"schema": "bgbench-reference/2", "accuracy": {"m": {"full": {"D": {"overall": 0.5}}}}, "params": {},
            "speed": None}
    yield "no accuracy", {k: v for k, v in good.items() if k != "accuracy"}
    yield "accuracy a list", {**good, "accuracy": []}
    yield "string F", {**good, "accuracy": {"m": {"full": {"D": {"overall": "0.5"}}}}}
    yield "string speed", {**good, "speed": {"methods": {"m": {"median": "fast"}}}}
    yield "speed a list", {**good, "speed": {"methods": []}}
    yield "old schema", {**good, "schema": "bgbench-reference/1"}
    yield "not an object", [1, 2]


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("case", [c for c, _ in _bad_references()])
def test_malformed_reference_is_bad_input_not_a_regression(case, gate, tmp_path, capsys):
    root, _ = gate
    ref = dict(_bad_references())[case]
    (tmp_path / "ref.json").write_text(json.dumps(ref))
    assert main(["check", str(root / "a"), "--reference", str(tmp_path / "ref.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ref.json" in err[0]


def _meta(**extra) -> dict:
    return {"created": "2024-05-01T12:00:00+0000", "run_id": "0" * 32, "device": "cpu", "seed": 0, "threshold": 0.5,
            "methods": {}, "families": {}, "configs": {}, "code": {}, "protocols": {"full": {"name": "full"}},
            "data": [], "videos": [], **extra}


def _dataset(categories: dict) -> dict:
    return {"videos": {}, "categories": categories, "overall": {"f_measure": 0.5}, "pooled": {}, "counts": {},
            "average_precision": None, "best_threshold": None, "best_f": None, "output_levels": 2}


def _summary(datasets: dict) -> dict:
    return {"label": "m", "method": "m", "config": "default", "family": "classical", "protocol": "full",
            "protocol_key": "full", "datasets": datasets, "failures": {}, "fps_median": None, "jobs_ok": 1,
            "jobs_failed": 0}


def _malformed_results():
    """(case, record, what the error says, the commands that refuse it)."""
    yield "old schema", {"schema_version": 1, "summary": {}}, "schema 1", ("check", "report")
    yield "no summary", {"schema_version": 2, "meta": _meta(), "jobs": []}, "has no 'summary'", ("check", "report")
    yield "summary entry a list", {"schema_version": 2, "meta": _meta(), "jobs": [], "summary": {"m": []}}, \
        "summary.m is not an object", ("check", "report")
    yield "dataset a string", {"schema_version": 2, "meta": _meta(), "jobs": [],
                               "summary": {"m": {"full": _summary({"D": "x"})}}}, \
        "datasets.D is a str", ("check", "report")
    yield "no F-measure", {"schema_version": 2, "meta": _meta(), "jobs": [],
                           "summary": {"m": {"full": _summary({"D": _dataset({"c": {"recall": 0.5}})})}}}, \
        "F-measures", ("check",)  # the gate's own check: reports show what there is


@pytest.mark.parametrize("case,command", [(case, c) for case, *_, commands in _malformed_results() for c in commands])
def test_malformed_results_are_bad_input(case, command, tmp_path, capsys):
    _, results, says, _ = next(m for m in _malformed_results() if m[0] == case)
    (tmp_path / "results.json").write_text(json.dumps(results))
    (tmp_path / "ref.json").write_text(json.dumps({"schema": "bgbench-reference/2", "accuracy": {}}))
    args = (["check", str(tmp_path), "--reference", str(tmp_path / "ref.json")] if command == "check"
            else ["report", str(tmp_path)])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert says in err and "results.json" in err


def _typed(jobs_of: dict[str, float], family: dict[str, str] | None = None):
    """A typed record (``Results.from_json`` of a plain dict): one job per label on highway
    and one on UCSD peds, F (every metric) as given, summarised as a run does."""
    from bgbench.scoring.aggregate import summarize
    from bgbench.records.types import JobRecord, Results, label_of

    jobs, methods = [], {}
    for (method, config), f in jobs_of.items():
        methods[method] = {"threshold": f}
        for video, df in (("CDnet2014/baseline/highway", 0.0), ("UCSD/-/peds", -0.2)):
            jobs.append({"method": method, "config": config, "family": (family or {}).get(method, "classical"),
                         "protocol": "full", "protocol_key": "full", "split": "all", "video": video,
                         "fingerprint": "f", "status": "ok", "error": None, "frames": 1,
                         "counts": {"tp": 1, "fp": 1, "tn": 1, "fn": 1, "shadow_errors": 0, "shadow_pixels": 0},
                         "dice": {"sum": 0.5, "frames": 1},
                         "histograms": {"negative": [1, 0], "shadow": [0, 0], "positive": [0, 1]},
                         "timing": {"fps": 10.0}, "metrics": {k: f + df for k in ("f_measure", "recall", "precision")}})
    nested: dict = {}
    for (label, key), s in summarize([JobRecord.from_json(j) for j in jobs]).items():
        nested.setdefault(label, {})[key] = s.to_json()
    assert set(nested) == {label_of(m, c) for m, c in jobs_of}
    return Results.from_json({"schema_version": 2, "jobs": jobs, "summary": nested,
                              "meta": _meta(methods=methods, git="abc",
                                            families={m: (family or {}).get(m, "classical") for m, _ in jobs_of})})


def test_reference_and_comparison_read_the_typed_record():
    """The reference keeps its format (label -> protocol key -> dataset -> category or
    "overall" -> F), each F the summary's; params by label from meta.methods; a label with a
    config (crossnet[paper]) is its own entry; a drop beyond f_tol is a regression."""
    from bgbench.check import REF_SCHEMA, compare_accuracy, reference_from

    res = _typed({("frame_difference", "default"): 0.6, ("crossnet", "paper"): 0.8})
    ref = reference_from(res, None)
    assert ref["schema"] == REF_SCHEMA and ref["git"] == "abc" and ref["speed"] is None
    assert ref["accuracy"] == {
        "crossnet[paper]": {"full": {"CDnet2014": {"baseline": 0.8, "overall": 0.8},
                                     "UCSD": {"-": pytest.approx(0.6), "overall": pytest.approx(0.6)}}},
        "frame_difference": {"full": {"CDnet2014": {"baseline": 0.6, "overall": 0.6},
                                      "UCSD": {"-": pytest.approx(0.4), "overall": pytest.approx(0.4)}}}}
    assert ref["params"] == {"crossnet[paper]": {"threshold": 0.8}, "frame_difference": {"threshold": 0.6}}
    assert all(r["status"] == "ok" for r in compare_accuracy(res, ref, 0.01))

    worse = _typed({("frame_difference", "default"): 0.5, ("crossnet", "paper"): 0.8})
    bad = [r for r in compare_accuracy(worse, ref, 0.01) if r["status"] != "ok"]
    # one category per dataset: its F is the overall, checked once, as the category's; no "F -"
    assert {(r["what"], r["metric"]) for r in bad} == {("frame_difference full CDnet2014", "F baseline"),
                                                       ("frame_difference full UCSD", "F overall")}
    assert all(r["status"] == "REGRESSION" and r["changed"] == "threshold: 0.6 -> 0.5" for r in bad)
    gone = _typed({("frame_difference", "default"): 0.6})
    missing = [r for r in compare_accuracy(gone, ref, 0.01) if r["status"] != "ok"]
    assert {r["what"] for r in missing} == {"crossnet[paper] full CDnet2014", "crossnet[paper] full UCSD"}
    assert all(r["status"] == "REGRESSION (missing from the run)" for r in missing)


def test_speed_gate_times_the_records_classical_methods():
    """Which methods the gate times comes from the record's families, labels and methods
    (never a label taken apart); a method not installed here is left out."""
    from bgbench.timing.gate import methods_of

    res = _typed({("frame_difference", "fast"): 0.6, ("crossnet", "paper"): 0.8, ("not_installed", "default"): 0.5},
                 family={"crossnet": "deep"})
    assert methods_of(res) == [("frame_difference[fast]", "frame_difference", {"threshold": 0.6})]


@pytest.mark.parametrize("opt,value", [("--f-tol", "-1"), ("--speed-tol", "-0.1"), ("--speed-tol", "nan"), ("--repeats", "1")])
def test_bad_tolerances_are_refused(opt, value, tmp_path, capsys):
    assert main(["check", str(tmp_path), "--reference", str(tmp_path / "r.json"), opt, value]) == 2
    assert opt in capsys.readouterr().err


def test_gate_bad_input(tmp_path, capsys):
    assert main(["check", str(tmp_path), "--reference", str(tmp_path / "ref.json")]) == 2
    assert "results.json" in capsys.readouterr().err


def test_check_writes_json_and_junit_with_each_item_once(tmp_path, capsys):
    """A reference of two labels on CDnet2014 (one category) and UCSD (none): two checked
    F-measures per label; frame_difference drops 0.1 on both: two failures, never four."""
    import xml.etree.ElementTree as ET

    from bgbench.records.results import write_json

    for name, f in (("a", 0.6), ("b", 0.5)):
        (tmp_path / name).mkdir()
        write_json(tmp_path / name / "results.json",
                   _typed({("frame_difference", "default"): f, ("crossnet", "paper"): 0.8}).to_json())
    ref = tmp_path / "ref.json"
    assert main(["check", str(tmp_path / "a"), "--reference", str(ref), "--update", "--no-speed"]) == 0
    out_json, out_xml = tmp_path / "out" / "check.json", tmp_path / "out" / "check.xml"
    assert main(["check", str(tmp_path / "b"), "--reference", str(ref), "--no-speed", "--json", str(out_json),
                 "--junit", str(out_xml)]) == 1
    printed = capsys.readouterr().out
    assert "F baseline" in printed and "F overall (baseline)" not in printed and "F -" not in printed
    doc = json.loads(out_json.read_text())
    assert doc["schema"] == "bgbench-check/1" and doc["checked"] == 4 and doc["regressions"] == 2
    assert not doc["passed"] and doc["speed"] == []
    bad = [r for r in doc["accuracy"] if r["status"] == "REGRESSION"]
    assert sorted((r["dataset"], r["category"], r["metric"]) for r in bad) == [
        ("CDnet2014", "baseline", "F baseline"), ("UCSD", "-", "F overall")]
    assert all(r["delta"] == pytest.approx(-0.1) for r in bad)
    root = ET.parse(out_xml).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "4" and root.get("failures") == "2"
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 4 and len({(c.get("classname"), c.get("name")) for c in cases}) == 4
    failed = [c for c in cases if c.find("failure") is not None]
    assert sorted(c.get("classname") for c in failed) == ["accuracy.frame_difference.full.CDnet2014",
                                                          "accuracy.frame_difference.full.UCSD"]
    assert "reference 0.6000, current 0.5000, delta -0.1000" in failed[0].find("failure").get("message")
    assert "changed: threshold: 0.6 -> 0.5" in failed[0].find("failure").text
    # an unchanged run passes: 4 testcases, no failure
    assert main(["check", str(tmp_path / "a"), "--reference", str(ref), "--no-speed", "--junit", str(out_xml)]) == 0
    root = ET.parse(out_xml).getroot()
    assert root.get("failures") == "0" and len(root.findall(".//testcase")) == 4 and not root.findall(".//failure")
    # a folder given as the file: exit 2, one line
    assert main(["check", str(tmp_path / "a"), "--reference", str(ref), "--no-speed", "--json", str(tmp_path)]) == 2
    assert "is a folder (--json)" in capsys.readouterr().err


def test_speed_items_carry_their_unit_in_json_and_junit():
    import xml.etree.ElementTree as ET

    from bgbench import check_output
    from bgbench.check import SPEED_UNIT, compare_speed

    ref = {"speed": {"methods": {"a": {"median": 100.0, "spread": 0.05}, "b": {"median": 100.0, "spread": 0.05},
                                 "c": {"median": 50.0, "spread": 0.0}}}}
    now = {"methods": {"a": {"median": 50.0, "spread": 0.05}, "b": {"median": 110.0, "spread": 0.05}}}
    rows = compare_speed(now, ref, 0.25)
    assert [r["unit"] for r in rows] == [SPEED_UNIT] * 3
    doc = check_output.document("run", "ref.json", 0.01, 0.25, [], rows)
    assert doc["checked"] == 3 and doc["regressions"] == 2 and doc["speed_unit"] == SPEED_UNIT
    root = check_output.junit(doc).getroot()
    (suite,) = [s for s in root.findall("testsuite") if s.get("name") == "speed"]
    assert suite.get("tests") == "3" and suite.get("failures") == "2"
    msgs = {c.get("name"): (c.find("failure").get("message") if c.find("failure") is not None
                            else c.find("system-out").text) for c in suite.findall("testcase")}
    # a: 100 -> 50 is -50%, beyond the tolerance 25%; b: +10%, within; c: not measured
    assert msgs["a"] == (f"a: reference 100 {SPEED_UNIT}, current 50 {SPEED_UNIT}, change -50.0%: "
                         "REGRESSION (beyond the tolerance 25%)")
    assert "ok (within the tolerance 25%)" in msgs["b"] and "REGRESSION (not measured)" in msgs["c"]
    ET.fromstring(ET.tostring(root))  # well-formed


def _videos_record(jobs: dict[str, float | None], threshold: float = 0.5):
    """A typed record of frame_difference jobs: video id -> F (None: the job failed)."""
    from bgbench.scoring.aggregate import summarize
    from bgbench.records.types import JobRecord, Results

    out = []
    for video, f in jobs.items():
        j = {"method": "frame_difference", "config": "default", "family": "classical", "protocol": "full",
             "protocol_key": "full", "split": "all", "video": video, "fingerprint": "f", "frames": 1,
             "timing": {"fps": 10.0}}
        if f is None:
            j |= {"status": "failed", "error": "WorkerDied: killed"}
        else:
            j |= {"status": "ok", "error": None,
                  "counts": {"tp": 1, "fp": 1, "tn": 1, "fn": 1, "shadow_errors": 0, "shadow_pixels": 0},
                  "dice": {"sum": 0.5, "frames": 1}, "histograms": {"negative": [1, 0], "shadow": [0, 0], "positive": [0, 1]},
                  "metrics": {k: f for k in ("f_measure", "recall", "precision")}}
        out.append(j)
    nested: dict = {}
    for (label, key), s in summarize([JobRecord.from_json(j) for j in out]).items():
        nested.setdefault(label, {})[key] = s.to_json()
    return Results.from_json({"schema_version": 2, "jobs": out, "summary": nested,
                              "meta": _meta(methods={"frame_difference": {}}, git="abc", threshold=threshold,
                                            families={"frame_difference": "classical"})})


def test_the_gate_checks_the_categories_and_videos_the_reference_covers():
    """Found by probing: with one category in the reference, the run's overall was compared,
    whatever category it was over (a run of other scenes passed as "better"); a failed job
    passed (the mean over the rest rose); a run on other or fewer videos passed; a run at
    another threshold passed. Each is now a failing row."""
    from bgbench.check import compare_accuracy, reference_from

    hw, office, ped, box = (f"CDnet2014/{c}" for c in ("baseline/highway", "baseline/office", "baseline/pedestrians",
                                                         "intermittentObjectMotion/abandonedBox"))
    ref = reference_from(_videos_record({hw: 0.6, office: 0.4}), None)
    assert ref["videos"] == {"frame_difference": {"full": {"CDnet2014": [hw, office]}}}
    assert ref["run"] == {"threshold": 0.5, "seed": 0}

    def failing(**jobs) -> dict[str, str]:
        rows = compare_accuracy(_videos_record(jobs.pop("jobs"), **jobs), ref, 0.01)
        return {r["metric"]: r["status"] for r in rows if r["status"] != "ok"}

    assert failing(jobs={hw: 0.6, office: 0.4}) == {}
    other = failing(jobs={box: 0.9})  # the run's overall 0.9 is abandonedBox's, not baseline's
    assert other["F baseline"] == "REGRESSION" and other["videos"].startswith("NOT COMPARABLE (1 video(s)")
    lost = failing(jobs={hw: 0.6, office: None})  # baseline's mean rose to 0.6: "better" before
    assert lost == {"jobs": "REGRESSION (1 failed job(s): CDnet2014/baseline/office)", "F baseline": "better"}
    assert failing(jobs={hw: 0.6}) == {"videos": "REGRESSION (1 of the reference's 2 video(s) not in the run: "
                                                 "CDnet2014/baseline/office)", "F baseline": "better"}
    assert failing(jobs={hw: 0.6, office: 0.4, ped: 0.5})["videos"].startswith("NOT COMPARABLE (1 video(s) the "
                                                                                "reference does not cover: " + ped)
    assert failing(jobs={hw: 0.6, office: 0.4}, threshold=0.3) == {"threshold": "NOT COMPARABLE (threshold 0.3, the "
                                                                                "reference's 0.5)"}
    old = {k: v for k, v in ref.items() if k not in ("videos", "run")}  # written before the lists: failures only
    assert {r["metric"] for r in compare_accuracy(_videos_record({hw: 0.6, office: None}), old, 0.01)
            if r["status"].startswith("REGRESSION")} == {"jobs"}


@pytest.mark.parametrize("accuracy", [{}, {"frame_difference": {}}, {"frame_difference": {"full": {}}},
                                      {"frame_difference": {"full": {"CDnet2014": {"baseline": None, "overall": None}}}}])
def test_a_reference_edited_to_check_nothing_is_refused(tmp_path, capsys, accuracy):
    from bgbench.check import REF_SCHEMA

    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"schema": REF_SCHEMA, "accuracy": accuracy}))
    (tmp_path / "run").mkdir()
    from bgbench.records.results import write_json

    write_json(tmp_path / "run" / "results.json", _videos_record({"CDnet2014/baseline/office": 0.4}).to_json())
    assert main(["check", str(tmp_path / "run"), "--reference", str(ref), "--no-speed"]) == 2
    assert "accuracy" in capsys.readouterr().err


def test_a_passing_check_still_names_the_parameters_that_differ(tmp_path, capsys):
    """All rows within tolerance collapse to one line; the parameter change stayed in --json."""
    from bgbench.check import reference_from
    from bgbench.records.results import write_json

    res = _videos_record({"CDnet2014/baseline/office": 0.4})
    ref = reference_from(res, None) | {"params": {"frame_difference": {"gap": 7}}}
    write_json(tmp_path / "ref.json", ref)
    (tmp_path / "run").mkdir()
    write_json(tmp_path / "run" / "results.json", res.to_json())
    assert main(["check", str(tmp_path / "run"), "--reference", str(tmp_path / "ref.json"), "--no-speed"]) == 0
    out = capsys.readouterr().out
    assert "1 F-measures within 0.01" in out and "frame_difference: parameters differ from the reference's: gap: 7 -> None" in out
