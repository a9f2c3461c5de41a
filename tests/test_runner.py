"""The run loop end to end: results record, resume after a kill, failures recorded,
saved masks re-scored by ``bgbench score`` and by an independent comparator, and a golden
table on real data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bgbench.cli import main
from bgbench.method import METHODS, Method, register_method
from conftest import DATA, HIGHWAY, ROOT, copy_scene, needs_data, reference_counts

if "test_flaky" not in METHODS:

    @register_method("test_flaky")
    class Flaky(Method):
        """Fails on the shadow scene, predicts nothing elsewhere"""

        def segment(self, video, frames):
            if video.name == "shadow":
                raise RuntimeError("boom on purpose")
            for f in frames:
                yield f, np.zeros(video.shape, np.float32)


def _jobs(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in (out / "jobs").rglob("*.json")}


def test_run_on_synthetic_writes_the_record(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--data", "synthetic", "--methods", "gmm_zivkovic,temporal_median", "--out", str(out)])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert res["schema_version"] == 3
    assert {"git", "versions", "machine", "seed", "protocols", "videos", "families", "threads"} <= set(res["meta"])
    assert len(res["jobs"]) == 12
    job = res["jobs"][0]
    assert {"method", "config", "protocol", "split", "video", "status", "error", "frames", "counts", "metrics",
            "timing"} <= set(job)
    assert set(job["counts"]) == {"tp", "fp", "tn", "fn", "shadow_errors", "shadow_pixels"}
    assert {"recall", "specificity", "fpr", "fnr", "pwc", "precision", "f_measure", "mcc", "mean_dice"} <= set(job["metrics"])
    assert job["frames"] == 70 and job["timing"]["fps"] > 0 and job["timing"]["device"] == "cpu"
    assert sum(job["histograms"]["positive"]) == job["counts"]["tp"] + job["counts"]["fn"]
    s = res["summary"]["gmm_zivkovic"]["full"]["datasets"]["synthetic"]
    assert len(s["categories"]) == 6 and s["overall"]["f_measure"] > 0.5
    printed = capsys.readouterr().out
    assert "synthetic · protocol full" in printed and "gmm_zivkovic" in printed


def test_failed_job_is_recorded_and_the_rest_go_on(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--data", "synthetic", "--methods", "test_flaky", "--out", str(out)])
    assert code == 1
    res = json.loads((out / "results.json").read_text())
    status = {j["video"]: (j["status"], j["error"]) for j in res["jobs"]}
    assert status["synthetic/shadow/shadow"] == ("failed", "RuntimeError: boom on purpose")
    assert sum(s == "ok" for s, _ in status.values()) == 5
    assert "FAILED test_flaky" in capsys.readouterr().err
    assert res["summary"]["test_flaky"]["full"]["jobs_failed"] == 1


@pytest.mark.slow
def test_resume_after_kill_recomputes_nothing_finished(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "bgbench.cli", "run", "--data", "synthetic", "--methods",
           "temporal_median,gmm_zivkovic", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / "jobs").exists() and len(list((out / "jobs").rglob("*.json"))) >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    before = _jobs(out)
    assert before, "the killed run wrote no job"
    assert main(["run", "--data", "synthetic", "--methods", "temporal_median,gmm_zivkovic", "--out", str(out)]) == 0
    after = _jobs(out)
    assert len(after) == 12
    assert all(after[k] == v for k, v in before.items())  # nothing finished was recomputed
    # a lost job file is recomputed alone
    victim = next(iter(after))
    (out / victim).unlink()
    assert main(["run", "--data", "synthetic", "--methods", "temporal_median,gmm_zivkovic", "--out", str(out)]) == 0
    again = _jobs(out)
    assert [k for k in again if again[k] != after[k]] == [victim]


def _independent_counts(scene: Path, masks: Path, gt_name, first_id: int) -> dict[str, int]:
    """Counts straight from the files: temporalROI.txt, ROI.bmp, gt PNGs, bin PNGs."""
    import cv2

    a, b = (int(x) for x in (scene / "temporalROI.txt").read_text().split()[:2])
    gt_files = sorted((scene / "groundtruth").glob("gt*.png"))
    last = first_id + len(gt_files) - 1
    ids = range(max(a, first_id), min(b, last) + 1)  # SBI2015 ends one past its last frame
    roi = cv2.imread(str(scene / "ROI.bmp"), cv2.IMREAD_GRAYSCALE) > 0
    gt = np.stack([cv2.imread(str(scene / "groundtruth" / gt_name(i)), cv2.IMREAD_GRAYSCALE) for i in ids])
    pred = np.stack([cv2.imread(str(masks / f"bin{i:06d}.png"), cv2.IMREAD_GRAYSCALE) == 255 for i in ids])
    return reference_counts(pred, gt, roi)


@needs_data
@pytest.mark.slow
def test_saved_masks_rescore_to_the_same_counts(tmp_path, capsys):
    """Masks from --save-masks, scored by `bgbench score` and by an independent comparator,
    give exactly the counts in results.json, on CDnet, SBI2015 and UCSD layouts."""
    scenes = {
        "CDnet2014/baseline/highway": (HIGHWAY, lambda i: f"gt{i:06d}.png", 1),
        "SBI2015/-/HighwayI": (DATA / "SBI2015" / "HighwayI", lambda i: f"gt{i:06d}.png", 0),
        "UCSD/-/boats": (DATA / "UCSD" / "boats", lambda i: f"gt{i:04d}.png", 1),
    }
    out = tmp_path / "run"
    code = main(["run", "--data", *[str(s[0]) for s in scenes.values()], "--methods", "gmm_zivkovic",
                 "--save-masks", "--out", str(out)])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    capsys.readouterr()
    for job in res["jobs"]:
        scene, gt_name, first_id = scenes[job["video"]]
        masks = out / job["masks"]  # the record says where its masks are
        assert len(list(masks.glob("bin*.png"))) == job["frames"]
        assert main(["score", str(masks), "--video", str(scene), "--json"]) == 0
        scored = json.loads(capsys.readouterr().out)
        assert scored["frames"] == job["frames"]
        assert scored["counts"] == job["counts"], job["video"]
        assert _independent_counts(scene, masks, gt_name, first_id) == job["counts"], job["video"]
    highway = next(j for j in res["jobs"] if j["video"].endswith("highway"))
    assert highway["frames"] == 1231


@needs_data
def test_score_refuses_missing_masks(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    import cv2

    cv2.imwrite(str(tmp_path / "m" / "bin000470.png"), np.zeros((240, 320), np.uint8))
    assert main(["score", str(tmp_path / "m"), "--video", str(HIGHWAY)]) == 2
    err = capsys.readouterr().err
    assert "bin000471.png" in err and "--partial" in err
    assert main(["score", str(tmp_path / "m"), "--video", str(HIGHWAY), "--partial", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == 1


GOLDEN = Path(__file__).parent / "golden" / "cdnet_full.json"


@pytest.mark.slow
@needs_data
def test_golden_table_on_real_cdnet(tmp_path, capsys):
    """The quick suite's CDnet table (traffic under --roi-policy ignore) against stored
    numbers: F-measure per video within 0.005. The four 51-frame clips' numbers were made
    apart from the runner: each method's segment() output thresholded by hand and counted by
    conftest.reference_counts on ground truth and ROI.bmp read with cv2 (F = 2TP/(2TP+FP+FN))."""
    out = tmp_path / "run"
    code = main(["run", "--data", str(DATA / "CDnet2014"), "--roi-policy", "ignore", "--methods",
                 "gmm_zivkovic,temporal_median", "--jobs", "2", "--out", str(out)])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    golden = json.loads(GOLDEN.read_text())
    got = {f"{j['method']} {j['video']}": j["metrics"]["f_measure"] for j in res["jobs"]}
    assert set(got) == set(golden)
    for key, f in golden.items():
        assert got[key] == pytest.approx(f, abs=0.005), key
    table = capsys.readouterr().out
    assert "baseline" in table and "cameraJitter" in table and "intermittentObjectMotion" in table


def _bgbench(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "bgbench.cli", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_two_runs_into_one_folder_never_collide(tmp_path):
    """A second run into a busy OUT exits 2 naming the holder's pid with --no-wait, or waits
    and then reuses every job the first wrote; a dead run's lock is taken over."""
    out = tmp_path / "run"
    run = ["run", "--data", "synthetic", "--methods", "gmm_zivkovic,temporal_median,knn,frame_difference",
           "--no-report", "--no-tracking", "--out", str(out)]
    first = _bgbench(*run)
    deadline = time.time() + 60
    while time.time() < deadline and not ((out / ".lock").exists() and (out / ".lock").read_text().strip()):
        time.sleep(0.02)
    assert (out / ".lock").read_text().strip() == str(first.pid)
    refused = subprocess.run([sys.executable, "-m", "bgbench.cli", *run, "--no-wait"], cwd=ROOT, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert f"pid {first.pid}" in lines[0] and str(out) in lines[0] and "--no-wait" in lines[0]
    second = _bgbench(*run)
    _, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, err1
    done = _jobs(out)
    assert len(done) == 24
    _, err2 = second.communicate(timeout=300)
    assert second.returncode == 0, err2
    assert f"in use by another bgbench run (pid {first.pid}); waiting" in err2
    assert _jobs(out) == done  # the second run waited, then reused every job: none was written twice
    # a lock left by a dead process is taken over at once
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".lock").write_text(f"{dead.pid}\n")
    assert main([*run, "--no-wait"]) == 0
    assert _jobs(out) == done


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_kill_9_of_a_parallel_run_stops_its_workers(tmp_path):
    """kill -9 of a --jobs 2 run: its joblib workers end with it and write no further job
    (each worker trains a fold and then writes one job per test video)."""
    out = tmp_path / "run"
    run = _bgbench("run", "--data", "synthetic", "--methods", "cdn_medal", "--config", "smoke", "--protocol",
                   "cross-scene", "--folds", "2", "--jobs", "2", "--no-report", "--no-tracking", "--out", str(out))
    deadline = time.time() + 240
    while time.time() < deadline and run.poll() is None and not list((out / "jobs").rglob("*.json")):
        time.sleep(0.02)
    assert run.poll() is None, "the run ended before it could be killed"
    workers = _children(run.pid)
    assert workers, "no worker process"
    run.send_signal(signal.SIGKILL)
    run.wait()
    time.sleep(1.0)  # a write begun before the kill lands within this
    at_kill = _jobs(out)
    assert 1 <= len(at_kill) < 6
    time.sleep(5.0)
    assert _jobs(out) == at_kill, "a worker wrote a job after its run was killed"
    assert not [w for w in workers if _alive(w)], "workers outlived their run"


@needs_data
def test_score_walks_a_results_tree_like_the_official_comparator(tmp_path, capsys):
    """Masks saved by a run, laid out as CATEGORY/SCENE/bin%06d.png under one root, scored
    with --data: per-video counts equal the run's, category and overall are their means."""
    import shutil

    data = tmp_path / "data"
    for cat, scene in (("baseline", "highway"), ("cameraJitter", "traffic")):
        copy_scene(DATA / "CDnet2014" / cat / scene, data / cat / scene, range(900, 960))
    out = tmp_path / "run"
    assert main(["run", "--data", str(data), "--methods", "frame_difference", "--save-masks", "--out", str(out),
                 "--roi-policy", "ignore", "--no-report", "--no-tracking"]) == 0
    res = json.loads((out / "results.json").read_text())
    tree = tmp_path / "results"
    for job in res["jobs"]:
        _, cat, scene = job["video"].split("/")
        shutil.copytree(out / job["masks"], tree / cat / scene)
    capsys.readouterr()
    assert main(["score", str(tree), "--data", str(data), "--roi-policy", "ignore", "--json"]) == 0
    t = json.loads(capsys.readouterr().out)["datasets"]
    (ds,) = t.values()
    for job in res["jobs"]:
        assert ds["videos"][job["video"]]["counts"] == job["counts"]
    fs = [ds["categories"][c]["f_measure"] for c in ("baseline", "cameraJitter")]
    assert ds["overall"]["f_measure"] == pytest.approx(sum(fs) / 2)
    shutil.rmtree(tree / "cameraJitter")
    assert main(["score", str(tree), "--data", str(data), "--roi-policy", "ignore"]) == 2
    assert "--partial" in capsys.readouterr().err
    assert main(["score", str(tree), "--data", str(data), "--roi-policy", "ignore", "--partial"]) == 0
    assert "overall" in capsys.readouterr().out


def test_a_video_is_released_after_its_last_task_and_reopens_when_used_again(tmp_path):
    """In-process runs keep a video's decoded memmaps only while tasks still need it; after
    run_tasks no video holds any, and a released video reads the same pixels again."""
    from bgbench.data import framecache
    from bgbench.data.formats import discover
    from bgbench.protocols import build_protocol
    from bgbench.execution.runner import MethodSpec, RunOptions, plan, run_tasks

    videos = discover("synthetic")[:3]
    for v in videos:
        v.check()  # as `bgbench run` does before any job: every video open
    assert all(v.holds_arrays for v in videos)
    pixels = videos[0].frames(videos[0].frame_ids[:3]).copy()
    gts = videos[0].gts(videos[0].eval_frames[:3]).copy()
    entries = {os.path.abspath(videos[0].source.all_frames().filename)}
    opts = RunOptions(out=tmp_path, isolate=False)  # the in-process path this test observes
    methods = ("frame_difference", "temporal_median")
    full = build_protocol("full")
    tasks = plan([MethodSpec(m) for m in methods], {m: [full] for m in methods}, videos, opts)
    assert [(t.method.name, t.tests[0][0].id) for t in tasks] == [(m, v.id) for m in methods for v in videos]
    held = []
    records = run_tasks(tasks, opts, progress=lambda r: held.append([v.holds_arrays for v in videos]))
    assert [r["status"] for r in records] == ["ok"] * 6
    assert held[1][0] and not held[4][0]  # videos[0] stays open until its last task (the 4th), then goes
    assert not any(v.holds_arrays for v in videos)
    assert not entries & {os.path.abspath(p) for p in framecache._open}  # its cache entry may be evicted again
    assert np.array_equal(videos[0].frames(videos[0].frame_ids[:3]), pixels)  # reopened lazily
    assert np.array_equal(videos[0].gts(videos[0].eval_frames[:3]), gts)
    assert videos[0].holds_arrays
    again = run_tasks(tasks, opts)  # everything finished: read back, nothing reopened
    assert sorted(r["counts"]["tp"] for r in again) == sorted(r["counts"]["tp"] for r in records)
    assert not any(v.holds_arrays for v in videos)
