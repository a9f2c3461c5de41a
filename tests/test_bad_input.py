"""Every bad input is refused the same way, before any job is computed: exit 2 and one line
on stderr that names the file or option (and says the fix). One case per bad input found
by probing every command and option; the cases run in process through ``main``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bgbench.cli import main

# id: (argv, what the line must name). {one} a small CDnet-layout scene's dataset folder,
# {scene} that scene, {nogt} a scene without groundtruth/, {data} six scenes, {masks} its
# 0/255 masks, {cut} the same with one truncated, {run} a finished run, {file} a plain file,
# {out} a fresh run folder, {tmp} a fresh folder.
RUN = ["run", "--data", "{one}", "--methods", "temporal_median", "--no-report", "--no-tracking", "--out", "{out}"]
DEEP = ["run", "--data", "{one}", "--methods", "cdn_medal", "--config", "smoke", "--protocol", "scene-specific",
        "--rule", "first-half", "--no-report", "--no-tracking", "--out", "{out}"]
CASES = {
    # run: options out of range or of the wrong type
    "run --folds 0": (RUN + ["--protocol", "cross-scene", "--folds", "0"], "--folds"),
    "run --folds 0 under protocol full": (RUN + ["--folds", "0"], "--folds"),
    "run --folds abc": (RUN + ["--folds", "abc"], "--folds"),
    "run --fraction 1.5": (RUN + ["--protocol", "sampled", "--fraction", "1.5"], "--fraction"),
    "run --fraction nan": (RUN + ["--protocol", "sampled", "--fraction", "nan"], "--fraction"),
    "run --seed -1": (RUN + ["--protocol", "sampled", "--seed", "-1"], "--seed"),
    "run --seed 2**40": (RUN + ["--seed", str(2**40)], "--seed"),
    "run --jobs 0": (RUN + ["--jobs", "0"], "--jobs"),
    "run --threshold 1.5": (RUN + ["--threshold", "1.5"], "--threshold"),
    "run --threshold -0.1": (RUN + ["--threshold", "-0.1"], "--threshold"),
    "run --threshold nan": (RUN + ["--threshold", "nan"], "--threshold"),
    "run --methods ,": (RUN[:3] + ["--methods", ",", "--out", "{out}"], "--methods"),
    "run --methods knn,knn": (RUN[:3] + ["--methods", "knn,knn", "--out", "{out}"], "--methods"),
    "run --protocol full twice": (RUN + ["--protocol", "full", "--protocol", "full"], "--protocol"),
    "run --protocol bogus": (RUN + ["--protocol", "bogus"], "bogus"),
    "run --rule bogus": (RUN + ["--protocol", "scene-specific", "--rule", "bogus"], "--rule"),
    "run --suite bogus": (["run", "--suite", "bogus"], "--suite"),
    "run --roi-policy bogus": (RUN + ["--roi-policy", "bogus"], "--roi-policy"),
    "run unknown option": (RUN + ["--bogus"], "--bogus"),
    "run --exclude every category": (RUN + ["--protocol", "cross-scene", "--exclude", "cat"], "--exclude"),
    "run --source and --target the same": (RUN + ["--protocol", "transfer", "--source", "ds", "--target", "ds"],
                                           "--target"),
    # run: method parameters
    "run --set twice": (RUN + ["--set", "temporal_median.window=5", "--set", "temporal_median.window=6"], "--set"),
    "run --set bad value": (RUN + ["--set", "temporal_median.window=abc"], "temporal_median.window"),
    "run --set unknown parameter": (RUN + ["--set", "temporal_median.bogus=1"], "--set"),
    "run two_stage_cnn weights missing": (DEEP[:3] + ["--methods", "two_stage_cnn", "--set",
                                                      "two_stage_cnn.vgg_weights={tmp}/vgg16.pt", "--out", "{out}"],
                                          "vgg16.pt"),
    "run siamese_fcn weights missing": (DEEP[:3] + ["--methods", "siamese_fcn", "--set",
                                                    "siamese_fcn.vgg_weights={tmp}/vgg16.pt", "--out", "{out}"], "vgg16.pt"),
    "run --config bogus": (RUN + ["--config", "bogus"], "--config"),
    # run: devices
    "run --device tpu": (RUN + ["--device", "tpu"], "--device"),
    "run --device cuda:x": (DEEP + ["--device", "cuda:x"], "--device"),
    "run deep --device cuda without a GPU": (DEEP + ["--device", "cuda"], "--device"),
    "run gmm_sg --device cuda without a GPU": (RUN[:3] + ["--methods", "gmm_sg", "--device", "cuda", "--out", "{out}"],
                                               "--device"),
    # run: files and folders
    "run --out under a file": (RUN[:-1] + ["{file}/run"], "--out"),
    "run --out is a file": (RUN[:-1] + ["{file}"], "--out"),
    "run --data missing": (["run", "--data", "{tmp}/nope", "--methods", "knn", "--out", "{out}"], "nope"),
    "run --data a file": (["run", "--data", "{file}", "--methods", "knn", "--out", "{out}"], "afile.txt"),
    "run --data empty folder": (["run", "--data", "{tmp}", "--methods", "knn", "--out", "{out}"], "no scene"),
    "run --data scene without groundtruth/": (["run", "--data", "{nogt}", "--methods", "knn", "--out", "{out}"],
                                              "groundtruth/"),
    "run --data dataset with a scene without groundtruth/": (
        ["run", "--data", "{nogt_parent}", "--methods", "knn", "--out", "{out}"], "groundtruth/"),
    "run --data synthetic --format ucsd": (["run", "--data", "synthetic", "--format", "ucsd", "--methods", "knn",
                                            "--out", "{out}"], "--format"),
    "run --format bogus": (RUN + ["--format", "bogus"], "bogus"),
    "run truncated checkpoint": (DEEP + ["--device", "cpu"], ".pt"),
    "run $BGBENCH_CACHE under a file": (RUN, "$BGBENCH_CACHE"),
    # splits
    "splits --folds 0": (["splits", "--protocol", "cross-scene", "--folds", "0", "--data", "{one}"], "--folds"),
    "splits --seed -1": (["splits", "--protocol", "sampled", "--seed", "-1", "--data", "{one}"], "--seed"),
    "splits without --protocol": (["splits", "--data", "{one}"], "--protocol"),
    # score
    "score --threshold 1.5": (["score", "{masks}", "--video", "{scene}", "--threshold", "1.5"], "--threshold"),
    "score --threshold -0.5": (["score", "{masks}", "--video", "{scene}", "--threshold", "-0.5"], "--threshold"),
    "score --video without groundtruth/": (["score", "{masks}", "--video", "{nogt}"], "groundtruth/"),
    "score --video a dataset folder": (["score", "{masks}", "--video", "{data}"], "--video"),
    "score truncated mask": (["score", "{cut}", "--video", "{scene}"], "bin000010.png"),
    "score masks folder missing": (["score", "{tmp}/nope", "--video", "{scene}"], "nope"),
    # report, check
    "report RUN_DIR missing": (["report", "{tmp}/nope"], "nope"),
    "report --out under a file": (["report", "{run}", "--out", "{file}/report"], "--out"),
    "check --reference missing": (["check", "{run}", "--reference", "{tmp}/ref.json", "--no-speed"], "ref.json"),
    "check --reference a folder": (["check", "{run}", "--reference", "{tmp}", "--no-speed"], "is a folder"),
    "check --f-tol -1": (["check", "{run}", "--reference", "{tmp}/ref.json", "--f-tol", "-1"], "--f-tol"),
    "check --update --reference under a file": (["check", "{run}", "--reference", "{file}/ref.json", "--update",
                                                 "--no-speed"], "--reference"),
    # speed, synth, info, list, cache
    "speed --size 0x0": (["speed", "--methods", "frame_difference", "--size", "0x0"], "--size"),
    "speed --frames 0": (["speed", "--methods", "frame_difference", "--frames", "0"], "--frames"),
    "speed --repeats 0": (["speed", "--methods", "frame_difference", "--repeats", "0"], "--repeats"),
    "speed --batch 0": (["speed", "--methods", "gmm_sg", "--batch", "0"], "--batch"),
    "speed --device tpu": (["speed", "--methods", "frame_difference", "--device", "tpu"], "--device"),
    "speed --scoring --video a dataset folder": (["speed", "--scoring", "--video", "{data}"], "--video"),
    "speed --train --steps 0": (["speed", "--train", "--steps", "0"], "--steps"),
    "synth --frames 0": (["synth", "{tmp}/s", "--frames", "0"], "--frames"),
    "synth --seed -1": (["synth", "{tmp}/s", "--seed", "-1"], "--seed"),
    "synth OUT under a file": (["synth", "{file}/s"], "OUT"),
    "info bogus method": (["info", "bogus"], "bogus"),
    "list unknown option": (["list", "--bogus"], "--bogus"),
    "cache bogus action": (["cache", "bogus"], "bogus"),
}
NEEDS_NO_GPU = {"run deep --device cuda without a GPU", "run gmm_sg --device cuda without a GPU"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    import cv2

    from bgbench.data.formats import discover
    from bgbench.data.formats.synthetic import write_scenes

    root = tmp_path_factory.mktemp("bad-input")
    data = write_scenes(root / "data", n_frames=24, first_scored=8)
    scene = root / "one" / "ds" / "cat" / "moving"
    shutil.copytree(data / "baseline" / "moving", scene)
    nogt = root / "nogt" / "ds" / "cat" / "moving"
    shutil.copytree(scene, nogt)
    shutil.rmtree(nogt / "groundtruth")
    (video,) = discover(scene)
    masks, cut = root / "masks", root / "cut"
    masks.mkdir()
    for i in video.eval_frames:
        cv2.imwrite(str(masks / f"bin{i:06d}.png"), np.zeros(video.shape, np.uint8))
    shutil.copytree(masks, cut)
    whole = (cut / "bin000010.png").read_bytes()
    (cut / "bin000010.png").write_bytes(whole[: len(whole) // 2])
    (root / "afile.txt").write_text("not a folder\n")
    run = root / "run"
    assert main(["run", "--data", str(root / "one"), "--methods", "temporal_median", "--no-report", "--no-tracking",
                 "--out", str(run)]) == 0
    return {"one": root / "one", "scene": scene, "nogt": nogt, "nogt_parent": root / "nogt", "data": data,
            "masks": masks, "cut": cut, "run": run, "file": root / "afile.txt"}


def _truncated_checkpoint(argv: list[str], out: Path) -> None:
    """Write the checkpoint this deep run would load, cut short (as a full disk leaves it)."""
    from bgbench.api import prepare
    from bgbench.cli import _parser, _run_config
    from bgbench.data.formats import discover
    from bgbench.execution.runner import RunOptions, checkpoint_path, plan

    args = _parser().parse_args(argv)
    cfg = _run_config(args, ["cdn_medal"], protocols=tuple(args.protocol), out=out, device=args.device,
                      threshold=args.threshold)
    p = prepare(cfg)
    opts = RunOptions(out=out, device=args.device, seed=args.seed, threshold=args.threshold)
    (task,) = plan(p.specs, p.protocols, discover(args.data[0]), opts)
    path = checkpoint_path(task, opts)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 cut short")


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line_naming_it(case, env, tmp_path, capsys, monkeypatch):
    if case in NEEDS_NO_GPU:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is visible: --device cuda is good input here")
    argv_t, named = CASES[case]
    values = {**{k: str(v) for k, v in env.items()}, "out": str(tmp_path / "out"), "tmp": str(tmp_path / "t")}
    (tmp_path / "t").mkdir()
    argv = [a.format(**values) for a in argv_t]
    if case == "run truncated checkpoint":
        _truncated_checkpoint(argv, tmp_path / "out")
    if case == "run $BGBENCH_CACHE under a file":
        monkeypatch.setenv("BGBENCH_CACHE", str(env["file"] / "cache"))
    capsys.readouterr()
    assert main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert named in lines[0], lines[0]
    assert "fix:" in lines[0], lines[0]
    assert not (tmp_path / "out" / "jobs").exists()  # refused before any job was computed


def test_classical_method_on_cuda_runs_on_the_cpu_with_one_note(env, tmp_path, capsys):
    code = main(["run", "--data", str(env["one"]), "--methods", "temporal_median", "--device", "cuda", "--no-report",
                 "--no-tracking", "--out", str(tmp_path / "out")])
    assert code == 0
    err = capsys.readouterr().err
    assert err.count("runs on the CPU") == 1 and "temporal_median" in err


def test_a_scene_without_roi_bmp_says_so_in_its_notes(env, tmp_path, capsys):
    from bgbench.data.formats import discover

    scene = shutil.copytree(env["scene"], tmp_path / "ds" / "cat" / "moving")
    (scene / "ROI.bmp").unlink()
    (video,) = discover(scene)
    assert any("no ROI.bmp" in n for n in video.notes)
    assert video.roi.all()
    assert main(["splits", "--protocol", "full", "--data", str(scene)]) == 0  # and the commands say it
    assert f"bgbench: note: {video.id}: no ROI.bmp: every pixel is in the spatial ROI" in capsys.readouterr().err
    (with_roi,) = discover(env["scene"])
    assert not any("ROI.bmp" in n for n in with_roi.notes)
