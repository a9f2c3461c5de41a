"""The regression gate: passes on an unchanged run, fails on a seeded accuracy or speed
regression, judges speed only beyond the measured spread, exit 2 on bad input (a malformed
reference is never a regression)."""

from __future__ import annotations

import json

import pytest

from benchmark.cli import main
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
    from benchmark.check import compare_speed

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


@needs_data
@pytest.mark.parametrize("case", [c for c, _ in _bad_references()])
def test_malformed_reference_is_bad_input_not_a_regression(case, gate, tmp_path, capsys):
    root, _ = gate
    ref = dict(_bad_references())[case]
    (tmp_path / "ref.json").write_text(json.dumps(ref))
    assert main(["check", str(root / "a"), "--reference", str(tmp_path / "ref.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ref.json" in err[0]


@pytest.mark.parametrize("results,says", [
    ({"schema_version": 1}, "summary"),
    ({"schema_version": 1, "summary": {"m": {"full": {"datasets": {"D": {"categories": {}, "overall": {}}}}}}}, "F-measures"),
    ({"schema_version": 1, "summary": {"m": []}}, "not an object"),
])
@pytest.mark.parametrize("command", ["check", "report"])
def test_malformed_results_are_bad_input(results, says, command, tmp_path, capsys):
    (tmp_path / "results.json").write_text(json.dumps(results))
    (tmp_path / "ref.json").write_text(json.dumps({"schema": "bgbench-reference/2", "accuracy": {}}))
    args = ["check", str(tmp_path), "--reference", str(tmp_path / "ref.json")] if command == "check" else ["report", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert says in err and "results.json" in err


@pytest.mark.parametrize("opt,value", [("--f-tol", "-1"), ("--speed-tol", "-0.1"), ("--speed-tol", "nan"), ("--repeats", "1")])
def test_bad_tolerances_are_refused(opt, value, tmp_path, capsys):
    assert main(["check", str(tmp_path), "--reference", str(tmp_path / "r.json"), opt, value]) == 2
    assert opt in capsys.readouterr().err


def test_gate_bad_input(tmp_path, capsys):
    assert main(["check", str(tmp_path), "--reference", str(tmp_path / "ref.json")]) == 2
    assert "results.json" in capsys.readouterr().err
