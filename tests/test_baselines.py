"""Classical baselines on real frames: identical masks to a plain loop over each wrapped
library, gmm_sg against OpenCV's bgsegm MOG, NumPy and torch giving the same decisions,
and BGSLibrary's absence said clearly."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from bgbench.cli import main
from bgbench.errors import MethodUnavailable
from bgbench.method import build_method
from bgbench.scoring.metrics import metrics, score_video
from conftest import HIGHWAY, TRAFFIC, needs_data

CLIP = list(range(1, 81))  # highway's first 80 frames (the requested ones: 41..80)
try:
    import pybgs  # noqa: F401

    HAVE_BGS = True
except ImportError:
    HAVE_BGS = False


def _plain_frames():
    import cv2

    return [cv2.imread(str(HIGHWAY / "input" / f"in{i:06d}.jpg")) for i in CLIP]


def _opencv_plain(name, frames):
    import cv2

    m = build_method(name)
    old = cv2.getNumThreads()
    if m.seeded:  # GSOC, LSBP: one random stream per OpenCV thread, reproducible at one thread only
        cv2.setRNGSeed(0)
        cv2.setNumThreads(1)
    try:
        sub = m.make()  # the same constructor call and parameters as the wrapper
        out = [sub.apply(f, learningRate=-1.0) for f in frames]
    finally:
        cv2.setNumThreads(old)
    if m.has_shadow_value:
        out = [np.where(x == 255, 255, 0).astype(np.uint8) for x in out]
    return out


def _bgs_plain(name, frames, tmp_path):
    import pybgs

    from bgbench.baselines.bgslib import seed_c_rand, write_config

    m = build_method(name)
    write_config(tmp_path, m.algorithm, m.p)
    seed_c_rand(0)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        algo = getattr(pybgs, m.algorithm)()
        out = [algo.apply(f) for f in frames]
        del algo
    finally:
        os.chdir(cwd)
    return out


@needs_data
@pytest.mark.parametrize("name", ["gmm_zivkovic", "mog_kb", "knn", "gsoc", "lsbp", "cnt", "vibe"] + [
    pytest.param(n, marks=pytest.mark.slow) for n in ("subsense", "pawcs", "lobster", "pbas")])
def test_wrapper_masks_equal_a_plain_library_loop(name, highway, tmp_path, monkeypatch, capfd):
    if name in ("subsense", "pawcs", "vibe", "lobster", "pbas") and not HAVE_BGS:
        pytest.skip("BGSLibrary's pybgs is not installed")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    wanted = CLIP[40:]
    ours = dict(build_method(name).segment(highway.view(), wanted))
    assert sorted(ours) == wanted
    assert capfd.readouterr().out == ""  # the wrapper silenced the native library's prints
    assert list(work.iterdir()) == []  # and wrote nothing into the user's folder
    frames = _plain_frames()
    plain = (_bgs_plain(name, frames, tmp_path) if name in ("subsense", "pawcs", "vibe", "lobster", "pbas")
             else _opencv_plain(name, frames))
    for fid in wanted:
        got = ours[fid]
        assert got.dtype == np.uint8 and got.shape == (240, 320)
        assert np.array_equal(got, plain[fid - 1]), (name, fid, int((got != plain[fid - 1]).sum()), int((got > 0).sum()), int((plain[fid - 1] > 0).sum()))
    assert sum(int((ours[f] == 255).sum()) for f in wanted) > 0  # it does detect the cars


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("scene", ["highway", "traffic"])
def test_gmm_sg_agrees_with_opencv_bgsegm_mog(scene):
    """Same model parameters and update rules as bgsegm MOG (constant rho, its weight
    update, noise sigma 15: variance floor 225 and new components at 900, its match test
    d2 < 6.25 * sum of 3 channel variances = 18.75 variances): F within 0.05."""
    import cv2

    from bgbench.data.formats import discover

    (v,) = discover(HIGHWAY if scene == "highway" else TRAFFIC, roi_policy="ignore")
    ours = build_method("gmm_sg", k=3, alpha=0.01, t_bg=0.7, t_sigma=18.75 ** 0.5, var_init=900.0, w_init=0.05,
                        min_var=225.0, rho_rule="alpha", weight_rule="opencv")
    f_ours = metrics(score_video(v, dict(ours.segment(v.view(), v.eval_frames))).counts())["f_measure"]
    mog = cv2.bgsegm.createBackgroundSubtractorMOG(history=100, nmixtures=3, backgroundRatio=0.7, noiseSigma=15)
    stack, preds, wanted = v.source.all_frames(), {}, set(v.eval_frames)
    for k, fid in enumerate(v.frame_ids):
        mask = mog.apply(stack[k], learningRate=0.01 if k else -1)
        if fid in wanted:
            preds[fid] = mask
    f_cv = metrics(score_video(v, preds).counts())["f_measure"]
    assert abs(f_ours - f_cv) < 0.05, (f_ours, f_cv)
    assert f_cv > 0.4


@needs_data
def test_gmm_sg_numpy_and_torch_take_identical_decisions(highway):
    pytest.importorskip("torch")
    ids = list(range(1, 151))
    a = dict(build_method("gmm_sg", backend="numpy").segment(highway.view(), ids))
    b = dict(build_method("gmm_sg", backend="torch").segment(highway.view(), ids))
    for fid in ids:
        assert np.array_equal(a[fid], b[fid]), fid  # the float maps themselves, bit for bit
    assert sum(int((a[f] >= 0.5).sum()) for f in ids[50:]) > 1000


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("name", ["gmm_sg", "frame_difference", "temporal_median"])
def test_continuous_scores_give_real_pr_curves(name, tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--data", "synthetic", "--methods", name, "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    job = next(j for j in res["jobs"] if j["video"] == "synthetic/baseline/moving")
    used_bins = sum(1 for n in job["histograms"]["positive"] if n)
    assert used_bins > 20  # many distinct probabilities, not a single operating point
    ds = res["summary"][name]["full"]["datasets"]["synthetic"]
    assert 0 < ds["average_precision"] <= 1


def test_bgslibrary_missing_is_said_clearly(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pybgs", None)  # import pybgs now raises ImportError
    with pytest.raises(MethodUnavailable, match="pip install bgslibrary"):
        build_method("subsense")
    assert main(["run", "--data", "synthetic", "--methods", "subsense"]) == 2
    err = capsys.readouterr().err
    assert "subsense is unavailable" in err and "libopencv-dev" in err
    assert main(["info", "subsense"]) == 0
    assert "UNAVAILABLE" in capsys.readouterr().out


def test_gmm_sg_batches_videos_as_one(tmp_path):
    """Two videos through one batched model give each video's own maps."""
    from bgbench.data.formats import discover

    vids = {v.name: v for v in discover("synthetic")}
    a, b = vids["moving"], vids["shadow"]
    ids = list(range(1, 31))
    m = build_method("gmm_sg")
    batched = list(m.run(np.stack([a.frames(ids), b.frames(ids)], axis=1)))
    single_a = list(build_method("gmm_sg").run(a.frames(ids)))
    single_b = list(build_method("gmm_sg").run(b.frames(ids)))
    for k in range(len(ids)):
        assert np.array_equal(batched[k][0], single_a[k]) and np.array_equal(batched[k][1], single_b[k])


@needs_data
def test_speed_command_reports_overhead(capsys):
    assert main(["speed", "--methods", "gmm_zivkovic,frame_difference", "--frames", "40", "--repeats", "1", "--json"]) == 0
    rows = {r["method"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["gmm_zivkovic"]["raw_fps"] > 0 and rows["gmm_zivkovic"]["overhead"] is not None
    assert rows["gmm_zivkovic"]["frames"] == 40 and rows["gmm_zivkovic"]["size"] == "320x240"
    assert rows["frame_difference"]["raw_fps"] is None and rows["frame_difference"]["fps"] > 0
