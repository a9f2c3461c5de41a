"""What a run resolves before it runs: deep methods' default config by device (cpu on a CPU,
paper on CUDA, smoke only when asked) and ``bgbench run --dry-run`` (jobs, splits, training steps,
FLOPs and GPU-hours; nothing run, nothing written)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bgbench import api
from bgbench.cli import main
from conftest import CDNET, needs_data


def _prepared(tmp_path, methods, **kw):
    return {s.name: s.config for s in api.prepare(api.RunConfig.of(methods, data=["synthetic"], out=tmp_path / "r",
                                                                   tracking=False, **kw)).specs}


def test_deep_methods_default_to_cpu_on_a_cpu(tmp_path):
    assert _prepared(tmp_path, ["crossnet", "knn"], device="cpu") == {"crossnet": "cpu", "knn": "default"}
    assert _prepared(tmp_path, ["crossnet", "knn"], device="cpu", config="smoke") == {"crossnet": "smoke",
                                                                                       "knn": "default"}
    assert _prepared(tmp_path, ["cdn_medal"], device="cpu", suite="paper") == {"cdn_medal": "paper"}  # the suite's


def test_deep_methods_default_to_paper_where_the_device_is_cuda(tmp_path, monkeypatch):
    from bgbench.execution import device

    seen = []
    monkeypatch.setattr(device, "resolve", lambda d: seen.append(d) or "cuda:0")
    assert _prepared(tmp_path, ["crossnet", "two_stage_cnn"], device="auto") == {"crossnet": "paper",
                                                                                  "two_stage_cnn": "paper"}
    assert seen == ["auto"]
    assert _prepared(tmp_path, ["crossnet"], device="auto", config="smoke") == {"crossnet": "smoke"}
    seen.clear()
    assert _prepared(tmp_path, ["knn"], device="auto") == {"knn": "default"} and seen == []  # no deep method: no probe


def test_the_printed_plan_shows_the_resolved_config(tmp_path, capsys):
    assert main(["run", "--methods", "crossnet", "--device", "cpu", "--data", "synthetic", "--dry-run", "--json",
                 "--out", str(tmp_path / "r")]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["methods"] == {"crossnet": "cpu"} and plan["trainings"][0]["config"] == "cpu"
    # the cpu config's own steps (methods/crossnet.py configs["cpu"]), not smoke's 3
    from bgbench.method import method_class

    steps = method_class("crossnet").resolve("cpu")[1]["steps"]
    assert [s["steps"] for s in plan["trainings"][0]["stages"]] == [steps] and steps > 3


# --- --dry-run ---------------------------------------------------------------------------------
CLIPS = [str(CDNET / "baseline" / s) for s in ("office", "pedestrians")]  # 51 frames each, real
RUN = ["run", "--methods", "temporal_median,frame_difference", "--protocol", "full", "--protocol", "scene-specific",
       "--rule", "first-half", "--data", *CLIPS, "--no-report", "--no-tracking"]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@needs_data
def test_dry_run_plans_the_jobs_the_run_runs_and_writes_nothing(tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("BGBENCH_CACHE", str(tmp_path / "cache"))  # a cache that does not exist yet
    assert main(RUN + ["--out", str(work / "r"), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert _files(work) == [] and not (tmp_path / "cache").exists()  # no run folder, no cache, nothing
    # 2 methods x (full: 2 videos, one job each + scene-specific: 2 videos) = 8 jobs
    assert plan["jobs"] == 8 and plan["videos"] == 2 and plan["trainings"] == [] and plan["training_flops"] == 0
    assert [(r["split"], r["train_frames"], r["test_frames"]) for r in plan["splits"] if r["protocol"] != "full"][:2] == [
        ("CDnet2014:baseline:office", 25, 26), ("CDnet2014:baseline:pedestrians", 25, 26)]  # first-half of 600-650
    assert main(RUN + ["--out", str(work / "r"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "8 jobs" in out and "nothing is trained, decoded or written" in out and _files(work) == []
    # the real run plans (and runs) the same jobs
    assert main(RUN + ["--out", str(work / "r")]) == 0
    err = capsys.readouterr().err
    assert ": 8 jobs -> " in err
    assert len(json.loads((work / "r" / "results.json").read_text())["jobs"]) == 8


@needs_data
def test_dry_run_refuses_what_the_run_refuses(tmp_path, capsys):
    assert main(RUN + ["--out", str(tmp_path / "r"), "--dry-run", "--folds", "3"]) == 2  # no protocol takes --folds
    assert main(RUN + ["--out", str(tmp_path / "r"), "--json"]) == 2  # --json is the dry run's
    assert "--json" in capsys.readouterr().err
    assert main(RUN + ["--out", str(tmp_path / "r"), "--dry-run", "--sustained-tflops", "0"]) == 2
    assert not (tmp_path / "r").exists()


def test_cdn_gm_training_flops_worked_by_hand(tmp_path, capsys):
    """cdn_medal smoke (T 49, K 3, 256 pixel histories a step, 3 steps, MEDAL-net batch 2, 3 steps).
    CDN-GM's forward FLOPs per history (2 per multiply-add, as torch counts; biases not counted):
    depthwise 1x7 stride 7 on 3 x 49 -> 3 x 7: 3*7*7 = 147 MACs; 1x1 3->7 on 7 positions: 7*7*3 = 147;
    depthwise 1x7 stride 7 on 7 x 7 -> 7 x 1: 7*7 = 49; 1x1 7->7: 49; heads on 7 features: mu 7*9 = 63,
    sigma 7*3 = 21, pi 7*3 = 21. 497 MACs = 994 FLOPs; x 256 histories = 254,464 a step; training
    = 3 steps x 3 (forward + backward) x 254,464 = 2,290,176."""
    data = tmp_path / "d"
    main(["synth", str(data), "--frames", "40"])
    capsys.readouterr()
    scene = data / "synthetic" / "baseline" / "moving"
    assert main(["run", "--methods", "cdn_medal", "--config", "smoke", "--device", "cpu", "--protocol", "scene-specific",
                 "--rule", "first-half", "--data", str(scene), "--out", str(tmp_path / "r"), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    (tr,) = plan["trainings"]
    cdn, medal = tr["stages"]
    assert (cdn["stage"], cdn["steps"], cdn["trained_flops"]) == ("CDN-GM", 3, 994 * 256)
    assert cdn["flops"] == 2_290_176
    # MEDAL-net: 3 steps of a batch of 2 frames at the scene's size; one frame's forward by the counter
    import torch

    from bgbench.methods.cdn_medal import MEDALNet
    from bgbench.methods.common import flops

    (v,) = __import__("bgbench.data.formats", fromlist=["discover"]).discover(scene)
    torch.manual_seed(0)
    per_frame = flops(MEDALNet(), torch.zeros(1, 6, v.height, v.width))
    assert medal["steps"] == 3 and medal["trained_flops"] == 2 * per_frame and medal["flops"] == 3 * 3 * 2 * per_frame
    assert tr["flops"] == plan["training_flops"] == 2_290_176 + 18 * per_frame
    assert plan["gpu_hours"] == pytest.approx(plan["training_flops"] / 400e12 / 3600)
    assert plan["sustained_tflops"] == 400.0


@needs_data
def test_dry_run_counts_the_published_frames_as_training_frames(tmp_path, capsys):
    assert main(["run", "--methods", "cdn_medal", "--config", "smoke", "--device", "cpu", "--data",
                 str(CDNET / "baseline" / "highway"), "--out", str(tmp_path / "r"), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    (split,) = plan["splits"]
    assert split["protocol"].startswith("scene-specific[seed=0,rule=fgsegnet:200,frames=")
    assert split["train_frames"] == 200 and split["test_frames"] == 1031 and plan["jobs"] == 1
    assert not (tmp_path / "r").exists()
