"""The regression gate: passes on an unchanged run, fails on a seeded accuracy or speed
regression, exit 2 on bad input."""

from __future__ import annotations

import json

from benchmark.cli import main
from conftest import HIGHWAY, needs_data


def _run(out, *extra):
    assert main(["run", "--data", str(HIGHWAY), "--methods", "gmm_zivkovic,frame_difference", "--out", str(out),
                 "--no-report", *extra]) == 0


@needs_data
def test_gate_passes_unchanged_and_fails_seeded_regressions(tmp_path, capsys):
    ref = tmp_path / "reference.json"
    _run(tmp_path / "a")
    assert main(["check", str(tmp_path / "a"), "--reference", str(ref), "--update"]) == 0
    stored = json.loads(ref.read_text())
    entry = stored["entries"]["gmm_zivkovic"]["full"]["CDnet2014"]
    assert entry["f_measure"]["baseline"] > 0.6 and entry["speed_normalized"] > 0

    _run(tmp_path / "b")  # an unchanged run, computed again
    capsys.readouterr()
    assert main(["check", str(tmp_path / "b"), "--reference", str(ref), "--speed-tol", "0.5"]) == 0
    assert "0 regression(s)" in capsys.readouterr().out

    _run(tmp_path / "c", "--set", "gmm_zivkovic.var_threshold=400")  # seeded accuracy regression
    assert main(["check", str(tmp_path / "c"), "--reference", str(ref), "--speed-tol", "0.5"]) == 1
    out = capsys.readouterr().out
    assert "gmm_zivkovic full CDnet2014" in out and "F baseline" in out and "REGRESSION" in out

    slow = json.loads((tmp_path / "b" / "results.json").read_text())  # seeded speed regression: 3x slower
    for per in slow["summary"]["frame_difference"].values():
        for d in per["datasets"].values():
            d["fps_median"] /= 3
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "results.json").write_text(json.dumps(slow))
    assert main(["check", str(tmp_path / "slow"), "--reference", str(ref), "--speed-tol", "0.5"]) == 1
    assert "speed" in capsys.readouterr().out


def test_gate_bad_input(tmp_path, capsys):
    assert main(["check", str(tmp_path), "--reference", str(tmp_path / "ref.json")]) == 2
    assert "results.json" in capsys.readouterr().err
