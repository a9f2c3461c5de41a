"""bgbench.api: a run from Python equals the same run from the command line; the config
is frozen and checked before anything runs; splits, score and report from Python."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bgbench import api
from bgbench.cli import main
from bgbench.errors import BadInput
from bgbench.records.types import MethodSpec, Results
from conftest import HIGHWAY, copy_scene, needs_data

pytestmark = needs_data


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """80 real highway frames, 50 of them scored, in CDnet layout."""
    root = tmp_path_factory.mktemp("api") / "CDnet2014"
    copy_scene(HIGHWAY, root / "baseline" / "highway", range(450, 530))
    (root / "baseline" / "highway" / "temporalROI.txt").write_text("480 529\n")
    return root / "baseline" / "highway"


@pytest.mark.slow  # several seconds: the fast lane stays under 3 minutes; CI runs it
def test_run_from_python_equals_the_command_line(scene, tmp_path):
    cfg = api.RunConfig.of("frame_difference,temporal_median", data=[scene], out=tmp_path / "py", report=False,
                           tracking=False, overrides={"frame_difference": {"gap": 2}})
    res = api.run(cfg)
    assert isinstance(res, Results)
    assert main(["run", "--data", str(scene), "--methods", "frame_difference,temporal_median", "--set",
                 "frame_difference.gap=2", "--out", str(tmp_path / "cli"), "--no-report", "--no-tracking"]) == 0
    cli = Results.from_json(json.loads((tmp_path / "cli" / "results.json").read_text()))
    assert [j.key for j in res.jobs] == [j.key for j in cli.jobs] and len(res.jobs) == 2
    for a, b in zip(res.jobs, cli.jobs):
        assert a.ok and a.counts == b.counts and a.fingerprint == b.fingerprint
        assert a.counts["tp"] + a.counts["fn"] > 0 and a.frames == 50
    assert res.meta.methods["frame_difference"]["gap"] == 2 and res.meta.families["temporal_median"] == "classical"
    s = res.summary("frame_difference", "full")
    assert s.family == "classical" and s.jobs_ok == 1
    assert s.datasets["CDnet2014"].overall["f_measure"] == pytest.approx(res.jobs[0].metrics["f_measure"])
    # the record on disk is the one returned
    assert Results.from_json(json.loads((tmp_path / "py" / "results.json").read_text())).to_json() == res.to_json()


def test_run_config_is_frozen_and_checked_before_anything_runs(scene, tmp_path):
    cfg = api.RunConfig.of(["frame_difference"], data=[scene], out=tmp_path / "o")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.threshold = 0.7  # type: ignore[misc]
    for bad, where in ((dict(threshold=1.5), "--threshold"), (dict(jobs=0), "--jobs"), (dict(executor="ray"), "--executor"),
                       (dict(protocols=("nope",)), None), (dict(threads=0), "--threads")):
        with pytest.raises(BadInput) as e:
            api.prepare(dataclasses.replace(cfg, **bad))
        if where:
            assert where in str(e.value)
    with pytest.raises(BadInput, match="knn.*not among"):
        api.RunConfig.of(["frame_difference"], overrides={"knn": {"history": 3}})
    with pytest.raises(BadInput, match="no parameter"):
        api.prepare(api.RunConfig.of(["frame_difference"], data=[scene], overrides={"frame_difference": {"nope": 1}}))
    assert not (tmp_path / "o" / "jobs").exists()


def test_splits_score_and_report_from_python(scene, tmp_path):
    splits = api.splits(api.RunConfig(data=(str(scene),), protocol_options={"rule": "first-half"}), "scene-specific")
    (s,) = splits
    (vid, train), = s.train
    (_, test), = s.test
    assert len(train) == 25 and len(test) == 25 and max(train) < min(test)

    res = api.run(api.RunConfig.of(["frame_difference"], data=[scene], out=tmp_path / "r", tracking=False,
                                   save_masks=True, report=False))
    (job,) = res.jobs
    masks = tmp_path / "r" / job.masks
    scored = api.score(masks, video=scene)
    assert scored["counts"] == dict(job.counts)
    written = api.report(tmp_path / "r")
    assert written["html"][0].exists()
    f = api.score(masks, video=scene, options=api.ScoreOptions(threshold=0.5))
    assert f["counts"]["tp"] == job.counts["tp"]
    assert np.isfinite(scored["metrics"]["f_measure"])


def test_a_rerun_with_save_masks_computes_the_masks_a_first_run_did_not_save(scene, tmp_path):
    cfg = api.RunConfig.of(["frame_difference"], data=[scene], out=tmp_path / "r", tracking=False, report=False)
    (first,) = api.run(cfg).jobs
    assert first.masks is None
    (second,) = api.run(dataclasses.replace(cfg, save_masks=True)).jobs
    assert second.masks and len(list((tmp_path / "r" / second.masks).glob("bin*.png"))) == 50
    assert second.counts == first.counts and second.examples["frame"] in range(480, 530)
    (third,) = api.run(dataclasses.replace(cfg, save_masks=True)).jobs  # now reused as it is
    assert third.timing == second.timing


def test_a_suites_run_records_its_suite_though_the_cli_names_its_methods():
    """The command line passes a suite's methods by name (so --set reaches them); the record
    still says which suite ran, and says none for another choice of methods."""
    from bgbench.api import recorded_suite
    from bgbench.suites import suite_methods

    quick = [MethodSpec(m) for m in suite_methods("quick")]
    assert len(quick) >= 3
    assert recorded_suite("quick", quick) == "quick"
    assert recorded_suite("quick", quick[:2]) is None
    assert recorded_suite("quick", quick[::-1]) is None
    assert recorded_suite("baselines", quick) is None


def test_is_suite_probes_only_the_left_out_candidates_until_one_is_installed(monkeypatch):
    """Recording a run's suite must not import every optional library (bgslibrary's import
    is 0.1 s): only candidates the run left out are probed, and the first installed one ends it."""
    from bgbench import suites

    installed = {"gmm_zivkovic", "mog_kb", "knn", "cnt", "frame_difference", "temporal_median"}  # no vibe
    probed = []

    def available(name, say=False):
        probed.append(name)
        return name in installed

    monkeypatch.setattr(suites, "_available", available)
    assert suites.is_suite("quick", ["gmm_zivkovic"]) is False
    assert probed == ["mog_kb"]  # installed and left out: not the suite, nothing more probed
    probed.clear()
    quick_here = [m for m in suites.QUICK_METHODS if m in installed]
    assert suites.is_suite("quick", quick_here) is True  # vibe is not installed: the suite without it
    assert probed == ["vibe"]
    probed.clear()
    assert suites.is_suite("quick", quick_here[::-1]) is False  # another order
    assert suites.is_suite("quick", ["gmm_zivkovic", "crossnet"]) is False  # not the suite's methods
    assert suites.is_suite("quick", []) is False
    assert probed == []
    assert suites.suite_methods("quick") == quick_here
    deep = suites.suite_candidates("paper")
    assert len(deep) == 5 and suites.is_suite("paper", deep) and not suites.is_suite("paper", deep[:4])


def test_the_cpu_only_note_names_the_methods_without_a_gpu_path():
    from bgbench.execution.device import cpu_only_note

    assert cpu_only_note("cuda", ["knn"]) == ("bgbench: note: knn runs on the CPU whatever --device says "
                                              "(no GPU implementation)")
    assert "knn, vibe run on the CPU" in cpu_only_note("cuda:1", ["knn", "vibe"])
    assert cpu_only_note("cpu", ["knn"]) is None and cpu_only_note("cuda", []) is None


@pytest.mark.slow  # a subprocess run of a few seconds
def test_the_readmes_python_example_runs_as_a_script(scene, tmp_path):
    """README's "From Python" block, saved as a script (the data and out folders pointed at a
    short clip and tmp), runs and prints F per method and category: the guard it shows is
    what lets each job's worker process import the script again."""
    import re
    import subprocess
    import sys

    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "bgbench.run(" in b]
    assert "../shared/data/CDnet2014/baseline/highway" in block and '"runs/py"' in block
    script = tmp_path / "example.py"
    script.write_text(block.replace("../shared/data/CDnet2014/baseline/highway", str(scene))
                      .replace('"runs/py"', repr(str(tmp_path / "py"))))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    res = Results.from_json(json.loads((tmp_path / "py" / "results.json").read_text()))
    for job in res.jobs:  # the printed means are the records' F (one video per method and category)
        assert re.search(rf"{job.key.method}\s+baseline\s+{job.metrics['f_measure']:.6f}", r.stdout), r.stdout
    assert len(res.jobs) == 2 and all(j.ok for j in res.jobs)
