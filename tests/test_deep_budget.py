"""Steps are the budget (issue 26, items 1 and 2): a training stage stopped by
``max_train_seconds`` makes its job ``truncated`` (not ok) everywhere it is shown, unless the
run passes ``--accept-truncated``, which the record says; every job records steps configured
and trained per stage; a collapsed output (constant map, no positive pixel) is flagged, and a
NaN map is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bgbench.scoring.metrics import degenerate
from conftest import HIGHWAY, copy_scene, needs_data
from records_helpers import SCORED, hist, job, results_of

torch = pytest.importorskip("torch")


# --- the trainer records what stopped it ---------------------------------------------------
def _trainer(max_seconds=None):
    from bgbench.methods.common import Trainer

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return Trainer(model, opt, seed=0, device="cpu", max_seconds=max_seconds, tag="t")


def _loss(model):
    x = torch.ones(4, 3)
    return lambda step: ((model(x) - 1.0) ** 2).mean()


def test_a_stage_that_trains_its_steps_is_stopped_by_steps():
    tr = _trainer()
    tr.run(7, _loss(tr.model))
    assert (tr.stats["steps_configured"], tr.stats["steps_trained"], tr.stats["stopped_by"]) == (7, 7, "steps")


def test_a_stage_stopped_by_the_clock_says_so(monkeypatch):
    """A fake clock that advances 1 s per reading: a 3.5 s budget stops the stage after a
    few of its 100 steps, whatever the machine."""
    import bgbench.methods.common as common

    clock = iter(range(10_000))
    monkeypatch.setattr(common.time, "perf_counter", lambda: float(next(clock)))
    tr = _trainer(max_seconds=3.5)
    tr.run(100, _loss(tr.model))
    assert tr.stats["stopped_by"] == "max_train_seconds"
    assert tr.stats["steps_configured"] == 100 and 0 < tr.stats["steps_trained"] < 100


def test_training_record_lists_every_stage():
    from bgbench.method import build_method

    m = build_method("crossnet", config="smoke")
    m.train_stats = {"a": {"steps_configured": 5, "steps_trained": 5, "stopped_by": "steps", "seconds": 1.0},
                     "b": {"steps_configured": 9, "steps_trained": 4, "stopped_by": "max_train_seconds"}}
    assert m.training_record() == {"stages": [
        {"name": "a", "steps_configured": 5, "steps_trained": 5, "stopped_by": "steps"},
        {"name": "b", "steps_configured": 9, "steps_trained": 4, "stopped_by": "max_train_seconds"}]}


def test_cpu_configs_have_no_time_cap():
    from bgbench.method import METHODS, method_class

    deep = [e.name for e in METHODS if e.meta.get("family") == "deep"]
    assert len(deep) == 5
    for name in deep:
        for config in method_class(name).configs:
            assert method_class(name).resolve(config)[1]["max_train_seconds"] is None, (name, config)


# --- status from the training record -----------------------------------------------------------
def test_with_training_sets_the_status_from_the_stages():
    from bgbench.execution.runner import with_training

    full = {"stages": [{"name": "a", "steps_configured": 5, "steps_trained": 5, "stopped_by": "steps"}]}
    cut = {"stages": [{"name": "a", "steps_configured": 5, "steps_trained": 5, "stopped_by": "steps"},
                      {"name": "b", "steps_configured": 9, "steps_trained": 4, "stopped_by": "max_train_seconds"}]}
    rec = {"status": "ok"}
    assert with_training(rec, None, False) == rec  # a method that does not train
    r = with_training(rec, full, False)
    assert r["status"] == "ok" and r["training"]["truncated"] is False and r["training"]["truncation_accepted"] is False
    r = with_training(rec, cut, False)
    assert r["status"] == "truncated" and r["training"]["truncated"] is True
    r = with_training(r, r["training"], True)  # a reused record, judged again under --accept-truncated
    assert r["status"] == "ok" and r["training"]["truncation_accepted"] is True
    assert with_training(r, r["training"], False)["status"] == "truncated"


def _truncated_job(video, f):
    rec = job("crossnet", "full", video, f, config="cpu", family="deep")
    rec["status"] = "truncated"
    rec["training"] = {"stages": [{"name": "crossnet", "steps_configured": 1500, "steps_trained": 46,
                                   "stopped_by": "max_train_seconds"}], "truncated": True,
                       "truncation_accepted": False}
    return rec


def test_truncated_jobs_are_counted_apart_and_marked_in_tables_and_leaderboards():
    from bgbench.records.types import Results
    from bgbench.reports import tables
    from bgbench.reports.leaderboard import leaderboard

    res = results_of([_truncated_job("CDnet2014/baseline/highway", 0.5), job("crossnet", "full",
                      "CDnet2014/baseline/office", 0.7, config="cpu", family="deep"),
                      job("gmm_sg", "full", "CDnet2014/baseline/office", 0.6)])
    res = Results.from_json(json.loads(json.dumps(res.to_json())), "results.json")  # through JSON
    s = res.summary("crossnet[cpu]", "full")
    assert (s.jobs_ok, s.jobs_truncated, s.jobs_failed) == (1, 1, 0)
    assert s.datasets["CDnet2014"].videos["CDnet2014/baseline/highway"]["f_measure"] == 0.5  # scored, in the numbers
    j = next(res.jobs_of("crossnet[cpu]"))
    assert j.truncated and not j.ok and j.scored
    assert j.training_note() == "crossnet: 46 of 1500 steps, stopped by max_train_seconds"
    h, rows = tables.category_table(res, "full", "CDnet2014")
    assert [r[0] for r in rows] == ["crossnet[cpu] (truncated)", "gmm_sg"]
    notes = tables.failure_notes(res, "full", "CDnet2014")
    flagged = [n for n in notes if ": truncated: " in n]  # (a coverage note may follow: the fixture's gmm_sg lacks a video)
    assert len(flagged) == 1 and "1 job(s) trained fewer steps" in flagged[0] and "46 of 1500" in flagged[0]
    board = leaderboard(res, "full", "CDnet2014")
    row = next(r for r in board["rows"] if r["method"] == "crossnet[cpu]")
    assert row["status"] == "truncated" and row["marks"] == "truncated"
    assert tables.leaderboard_table(board)[1][[r["method"] for r in board["rows"]].index("crossnet[cpu]")][0] \
        == "crossnet[cpu] (truncated)"


def test_mlflow_tags_and_metrics_say_truncated():
    from bgbench import tracking

    res = results_of([_truncated_job("CDnet2014/baseline/highway", 0.5)])
    s = res.summary("crossnet[cpu]", "full")
    assert tracking.child_tags(s, "deep", "r", "p")["bgbench.status"] == "truncated"
    assert tracking.run_metrics(s)["jobs_truncated"] == 1.0


def test_the_gate_calls_a_truncated_method_not_comparable(tmp_path):
    from bgbench import check
    from bgbench.errors import BadInput

    res = results_of([_truncated_job("CDnet2014/baseline/highway", 0.9)])
    ref = {"schema": check.REF_SCHEMA, "accuracy": {"crossnet[cpu]": {"full": {"CDnet2014": {"overall": 0.5}}}}}
    rows = check.compare_accuracy(res, ref, 0.01)
    assert len(rows) == 1 and rows[0]["status"].startswith("NOT COMPARABLE (1 truncated job(s)")
    with pytest.raises(BadInput, match="truncated jobs"):
        check.update(res, None, tmp_path / "ref.json")
    assert not (tmp_path / "ref.json").exists()


# --- degenerate outputs ----------------------------------------------------------------------------
def test_degenerate_rules_by_hand():
    counts = lambda tp, fp, fn: {"tp": tp, "fp": fp, "tn": 0, "fn": fn}  # noqa: E731
    h = lambda levels: np.array([hist(levels)[k] for k in ("negative", "shadow", "positive")])  # noqa: E731
    # every scored pixel at level 0 (negatives and positives alike): one non-empty bin
    assert degenerate(h({0: (7, 90)}), counts(0, 0, 7)) == "constant map"
    assert degenerate(h({200: (7, 90)}), counts(7, 90, 0)) == "constant map"  # constant above the threshold too
    # two levels, none at or above the threshold, on frames with foreground
    assert degenerate(h({0: (3, 90), 100: (4, 0)}), counts(0, 0, 7)) == "no positive pixel"
    # no foreground in the frames and nothing predicted: not degenerate (nothing to find)
    assert degenerate(h({0: (0, 90), 100: (0, 3)}), counts(0, 0, 0)) is None
    assert degenerate(np.array([SCORED[k] for k in ("negative", "shadow", "positive")]), counts(4, 1, 6)) is None


class _Const:
    """A stand-in method whose maps are what the test asks for."""

    device, input_size, infer_batch, precision, warmup_frames = "cpu", None, 1, "float32", 0

    def __init__(self, fill):
        self.fill = fill

    def segment(self, view, frames):
        for f in frames:
            yield f, self.fill(view.shape, f)


@needs_data
@pytest.mark.parametrize("fill, flag", [
    (lambda shape, f: np.zeros(shape, np.float32), "constant map"),
    (lambda shape, f: np.full(shape, 0.3, np.float32), "constant map"),
    (lambda shape, f: np.where(np.arange(shape[1]) < 100, 0.1, 0.4).astype(np.float32)[None].repeat(shape[0], 0),
     "no positive pixel"),
    (lambda shape, f: np.where(np.arange(shape[1]) < 100, 0.1, 0.9).astype(np.float32)[None].repeat(shape[0], 0),
     None)])
def test_run_video_flags_a_collapsed_output(highway, tmp_path, fill, flag):
    from bgbench.execution.runner import RunOptions, run_video

    frames = [f for f in highway.eval_frames[:400] if (highway.truth([f])[0] is not None)][-4:]
    rec = run_video(_Const(fill), highway, frames, RunOptions(out=tmp_path))
    assert rec["counts"]["tp"] + rec["counts"]["fn"] > 0  # the frames hold foreground
    assert rec.get("degenerate") == flag


@needs_data
def test_a_nan_map_is_refused_naming_the_frame(highway, tmp_path):
    from bgbench.execution.runner import RunOptions, run_video

    frames = list(highway.eval_frames[:2])
    nan = _Const(lambda shape, f: np.full(shape, np.nan, np.float32))
    with pytest.raises(RuntimeError, match=f"frame {frames[0]}: probability map holds NaN"):
        run_video(nan, highway, frames, RunOptions(out=tmp_path))


def test_degenerate_is_marked_in_tables():
    from bgbench.reports import tables

    rec = job("bmn_bsn", "full", "CDnet2014/baseline/highway", 0.0, config="cpu", family="deep",
              degenerate="constant map")
    res = results_of([rec, job("gmm_sg", "full", "CDnet2014/baseline/highway", 0.6)])
    assert res.summary("bmn_bsn[cpu]", "full").degenerate == {"CDnet2014/baseline/highway": "constant map"}
    _, rows = tables.category_table(res, "full", "CDnet2014")
    assert rows[-1][0] == "bmn_bsn[cpu] (degenerate)"
    assert tables.failure_notes(res, "full", "CDnet2014") == [
        "bmn_bsn[cpu]: degenerate output on 1 video(s): CDnet2014/baseline/highway (constant map)"]


# --- end to end: the CLI ----------------------------------------------------------------------------
@needs_data
@pytest.mark.slow
def test_run_with_a_time_cap_is_truncated_unless_accepted(tmp_path, capsys):
    """two_stage_cnn smoke on a 40-frame highway excerpt, its stages capped at 1e-9 s (no
    step can run): the job is truncated, the summary line counts it apart, exit 1; the same
    run folder with --accept-truncated reuses the record as ok and says so."""
    from bgbench.cli import main

    scene = copy_scene(HIGHWAY, tmp_path / "CDnet2014" / "baseline" / "highway", range(800, 840))
    out = tmp_path / "run"
    argv = ["run", "--data", str(scene), "--methods", "two_stage_cnn", "--config", "smoke", "--set",
            "two_stage_cnn.max_train_seconds=1e-9", "--out", str(out), "--no-report"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "0 job(s) ok, 1 truncated, 0 failed" in captured.out
    assert "TRUNCATED two_stage_cnn" in captured.err and "0 of 2 steps" in captured.err
    assert "two_stage_cnn[smoke] (truncated, degenerate)" in captured.out  # untrained: no positive pixel
    doc = json.loads((out / "results.json").read_text())
    (j,) = doc["jobs"]
    assert j["status"] == "truncated"
    assert [(s["name"], s["steps_configured"], s["steps_trained"], s["stopped_by"]) for s in j["training"]["stages"]] \
        == [("stage1", 2, 0, "max_train_seconds"), ("stage2", 2, 0, "max_train_seconds"),
            ("joint", 2, 0, "max_train_seconds")]
    assert j["training"]["truncation_accepted"] is False
    assert main(argv + ["--accept-truncated"]) == 0
    captured = capsys.readouterr()
    assert "1 job(s) ok, 0 truncated, 0 failed" in captured.out
    (j,) = json.loads((out / "results.json").read_text())["jobs"]
    assert j["status"] == "ok" and j["training"]["truncated"] is True and j["training"]["truncation_accepted"] is True
