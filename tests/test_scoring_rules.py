"""The scoring rules of docs/scoring.md on real data: frames decoded with EXIF orientation
ignored, bad-data videos (nothing to score) refused or skipped and named in every table, the
official F rule (undefined without foreground, left out of the means and named), FPS over
every frame a method processed, Wallflower's 24-bit colour ground truth binarised by luma,
and the four 51-frame CDnet2014 clips read with their own numbering."""

from __future__ import annotations

import json
import math
import shutil
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from bgbench.cli import main
from conftest import CDNET, DATA, HIGHWAY, cli_error, copy_scene, needs_data, reference_counts

WALLFLOWER = DATA / "Wallflower" / "Camouflage"
CLIPS = {  # scene -> (first id, resolution (w, h))
    "baseline/PETS2006": (600, (720, 576)),
    "baseline/office": (600, (360, 240)),
    "baseline/pedestrians": (600, (360, 240)),
    "intermittentObjectMotion/abandonedBox": (2500, (432, 288)),
}


# --- EXIF orientation ------------------------------------------------------------------------
def exif_orientation_segment(value: int) -> bytes:
    """An APP1 Exif segment with one IFD entry: Orientation (0x0112), SHORT, = ``value``."""
    tiff = b"II*\x00" + struct.pack("<I", 8)  # little-endian TIFF header, IFD0 at offset 8
    tiff += struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, value, 0) + struct.pack("<I", 0)
    body = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def with_orientation(jpeg: bytes, value: int = 6) -> bytes:
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + exif_orientation_segment(value) + jpeg[2:]


def test_exif_orientation_is_ignored_when_frames_are_decoded(tmp_path):
    """A JPEG tagged orientation 6 (rotate 90 degrees) decodes to its stored pixels, as its
    mask does: not rotated. The tag is real: plain cv2.imdecode does rotate it."""
    from bgbench.data.imageio import read_bgr, read_gray

    rng = np.random.default_rng(0)
    img = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (64, 48), interpolation=cv2.INTER_NEAREST)
    plain = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    tagged = with_orientation(plain)
    f = tmp_path / "in000001.jpg"
    f.write_bytes(tagged)
    stored = cv2.imdecode(np.frombuffer(plain, np.uint8), cv2.IMREAD_COLOR)
    assert cv2.imdecode(np.frombuffer(tagged, np.uint8), cv2.IMREAD_COLOR).shape == (64, 48, 3)  # rotated by default
    got = read_bgr(f)
    assert got.shape == (48, 64, 3)
    assert np.array_equal(got, stored)
    assert np.array_equal(read_gray(f), cv2.imdecode(np.frombuffer(plain, np.uint8), cv2.IMREAD_GRAYSCALE))


@needs_data
def test_a_scene_whose_frames_carry_an_orientation_tag_scores_like_the_untagged_one(tmp_path):
    """Real highway frames with the tag added: the video's frames are the untagged frames'
    pixels (320x240, not a 240x320 frame refused for its size), and gmm_zivkovic's counts
    are the same with and without the tag."""
    from bgbench.data.formats import discover

    frames = range(470, 490)
    plain = copy_scene(HIGHWAY, tmp_path / "plain" / "baseline" / "plain", frames)
    tagged = copy_scene(HIGHWAY, tmp_path / "tagged" / "baseline" / "tagged", frames)
    for f in (tagged / "input").glob("*.jpg"):
        f.write_bytes(with_orientation(f.read_bytes()))
    (v,) = discover(tagged)
    assert v.shape == (240, 320)
    for i in (470, 489):
        want = cv2.imdecode(np.fromfile(plain / "input" / f"in{i:06d}.jpg", np.uint8), cv2.IMREAD_COLOR)
        assert np.array_equal(v.frame(i), want)
    counts = []
    for data in (plain, tagged):
        out = tmp_path / f"run-{data.name}"
        assert main(["run", "--data", str(data), "--methods", "gmm_zivkovic", "--out", str(out), "--no-report",
                     "--no-tracking"]) == 0
        (job,) = json.loads((out / "results.json").read_text())["jobs"]
        counts.append(job["counts"])
    assert counts[0] == counts[1] and counts[0]["tp"] > 0


# --- bad data: nothing to score ----------------------------------------------------------------
def _zero_roi(scene: Path) -> Path:
    cv2.imwrite(str(scene / "ROI.bmp"), np.zeros((240, 320), np.uint8))
    return scene / "ROI.bmp"


def _unknown_gt(scene: Path, frames: range) -> Path:
    for k, i in enumerate(frames):  # half 85 (outside ROI), half 170 (unknown): nothing scored
        g = np.full((240, 320), 85 if k % 2 else 170, np.uint8)
        g[:, :160] = 170
        cv2.imwrite(str(scene / "groundtruth" / f"gt{i:06d}.png"), g)
    return scene / "temporalROI.txt"


def _sbi_gt_after_the_frames(dst: Path) -> Path:
    """SBI2015 Board's frames 0-9 with ground truth only for frames 10-14 (no temporalROI.txt)."""
    src = DATA / "SBI2015" / "Board"
    (dst / "input").mkdir(parents=True)
    (dst / "groundtruth").mkdir()
    for i in range(10):
        f = next((src / "input").glob(f"*{i:06d}.*"))
        shutil.copy(f, dst / "input" / f.name)
    for i in range(10, 15):
        shutil.copy(src / "groundtruth" / f"gt{i:06d}.png", dst / "groundtruth")
    return dst


@needs_data
@pytest.mark.parametrize("case", ["zero ROI", "all 85 or 170", "SBI ground truth after the frames"])
def test_a_video_with_nothing_to_score_is_bad_data(case, tmp_path, capsys):
    """Exit 2 naming the file and the video; under --on-bad-data skip the run goes on
    without it, records why, and every table and page names it."""
    frames = range(470, 480)
    if case == "SBI ground truth after the frames":
        bad = _sbi_gt_after_the_frames(tmp_path / "data" / "SBI2015" / "Bad")
        blamed, vid, why = bad, "SBI2015/-/Bad", "no frame has ground truth (ground truth for frames 10-14; frames 0-9)"
    else:
        bad = copy_scene(HIGHWAY, tmp_path / "data" / "CDnet2014" / "baseline" / "bad", frames)
        blamed = _zero_roi(bad) if case == "zero ROI" else _unknown_gt(bad, frames)
        vid = "CDnet2014/baseline/bad"
        why = ("the spatial ROI (ROI.bmp) marks no pixel" if case == "zero ROI" else
               "every pixel of its 10 scored frame(s) (470-479) is ground truth 85 (outside ROI) or 170 (unknown)")
    good = copy_scene(HIGHWAY, tmp_path / "data" / "CDnet2014" / "baseline" / "good", frames)
    err = cli_error(capsys, "run", "--data", str(bad), "--methods", "frame_difference", "--out", str(tmp_path / "a"),
                    "--no-tracking")
    assert str(blamed) in err and f"{vid} has nothing to score" in err and why in err, err
    assert "--on-bad-data skip" in err
    # `bgbench score` refuses it too (no F of 0 or NaN in silence)
    (tmp_path / "masks").mkdir()
    err = cli_error(capsys, "score", str(tmp_path / "masks"), "--video", str(bad))
    assert "nothing to score" in err

    out = tmp_path / "b"
    assert main(["run", "--data", str(good), str(bad), "--methods", "frame_difference,temporal_median",
                 "--on-bad-data", "skip", "--out", str(out), "--no-tracking"]) == 0
    printed = capsys.readouterr()
    assert f"bgbench: skipped: {blamed}" in printed.err
    res = json.loads((out / "results.json").read_text())
    assert res["meta"]["videos"] == ["CDnet2014/baseline/good"]
    (skip,) = res["meta"]["skipped"]
    assert skip["video"] == vid and skip["where"] == str(blamed) and why in skip["error"]
    note = f"Skipped as bad data (1, in no table or mean): {vid}: {vid} has nothing to score"
    assert note in printed.out  # the terminal table
    report = out / "report"
    tables = {p.name: p.read_text().replace(r"\allowbreak{}", "").replace(r"\_", "_") for p in report.iterdir()
              if p.suffix in (".md", ".tex")}  # LaTeX notes may break after / and _
    assert len(tables) == 8 and all(  # category, metrics, per-video, leaderboard: .md and .tex
        f"{vid}: {vid} has nothing to score" in t for t in tables.values()), tables
    assert vid in (report / "leaderboard.html").read_text()

    # `bgbench splits --on-bad-data skip` skips the same video through the same gate
    assert main(["splits", "--protocol", "full", "--data", str(good), str(bad), "--on-bad-data", "skip", "--json"]) == 0
    printed = capsys.readouterr()
    (split,) = json.loads(printed.out)
    assert f"bgbench: skipped: {blamed}" in printed.err
    assert vid not in json.dumps(split) and "CDnet2014/baseline/good" in json.dumps(split)


@needs_data
def test_splits_skip_what_run_skips_a_frame_that_does_not_decode(tmp_path, capsys):
    """A video whose frame is cut short fails when decoded, not when discovered: `splits
    --on-bad-data skip` leaves it out as `run --on-bad-data skip` does."""
    frames = range(470, 476)
    good = copy_scene(HIGHWAY, tmp_path / "CDnet2014" / "baseline" / "good", frames)
    bad = copy_scene(HIGHWAY, tmp_path / "CDnet2014" / "baseline" / "cut", frames)
    f = bad / "input" / "in000473.jpg"
    f.write_bytes(f.read_bytes()[:-200])
    assert main(["splits", "--protocol", "full", "--data", str(good), str(bad), "--on-bad-data", "skip", "--json"]) == 0
    printed = capsys.readouterr()
    assert f"bgbench: skipped: {f}" in printed.err and "cut" not in printed.out
    assert main(["run", "--data", str(good), str(bad), "--methods", "frame_difference", "--on-bad-data", "skip",
                 "--out", str(tmp_path / "r"), "--no-tracking", "--no-report"]) == 0
    res = json.loads((tmp_path / "r" / "results.json").read_text())
    assert [s["where"] for s in res["meta"]["skipped"]] == [str(f)]


# --- F without foreground ------------------------------------------------------------------------
def test_metrics_follow_the_official_comparator_where_a_ratio_is_0_over_0():
    from bgbench.scoring.metrics import metrics

    no_fg = metrics({"tp": 0, "fp": 39, "tn": 19161, "fn": 0, "shadow_errors": 0, "shadow_pixels": 0})
    assert math.isnan(no_fg["f_measure"]) and math.isnan(no_fg["recall"]) and math.isnan(no_fg["fnr"])
    assert no_fg["precision"] == 0.0 and no_fg["fpr"] == 39 / 19200
    silent = metrics({"tp": 0, "fp": 0, "tn": 100, "fn": 7, "shadow_errors": 0, "shadow_pixels": 0})
    assert math.isnan(silent["precision"])  # nothing predicted: Pr = 0/0, as the comparator
    assert silent["f_measure"] == 0.0 and silent["recall"] == 0.0  # foreground missed: F = 0, never left out
    some = metrics({"tp": 30, "fp": 10, "tn": 100, "fn": 20, "shadow_errors": 0, "shadow_pixels": 0})
    p, r = 30 / 40, 30 / 50
    assert some["f_measure"] == pytest.approx(2 * p * r / (p + r), rel=1e-12)


def _wallflower_pair(root: Path, frames: range) -> tuple[Path, Path]:
    """Two Wallflower scenes from Camouflage's frames: the real mask, and one all background."""
    out = []
    for name in ("Camouflage", "Quiet"):
        d = root / "Wallflower" / name
        d.mkdir(parents=True)
        for i in frames:
            shutil.copy(WALLFLOWER / f"b{i:05d}.bmp", d)
        if name == "Camouflage":
            shutil.copy(WALLFLOWER / "hand_segmented_00251.BMP", d)
        else:
            cv2.imwrite(str(d / "hand_segmented_00251.BMP"), np.zeros((120, 160, 3), np.uint8))
        out.append(d)
    return out[0], out[1]


@needs_data
def test_a_ground_truth_frame_all_background_does_not_pull_the_dataset_f_down(tmp_path, capsys):
    """Wallflower-like: one scene's evaluated frame is all background and gmm_zivkovic puts
    stray pixels there. Its F is undefined (null), the dataset F is the other scene's F
    (not halved), and the tables name the video."""
    cam, quiet = _wallflower_pair(tmp_path / "data", range(200, 252))
    out = tmp_path / "run"
    assert main(["run", "--data", str(tmp_path / "data" / "Wallflower"), "--methods", "gmm_zivkovic", "--out", str(out),
                 "--no-tracking"]) == 0
    printed = capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    jobs = {j["video"]: j for j in res["jobs"]}
    q, c = jobs["Wallflower/-/Quiet"], jobs["Wallflower/-/Camouflage"]
    assert q["counts"]["tp"] == q["counts"]["fn"] == 0 and q["counts"]["fp"] > 0  # stray pixels, no foreground
    assert q["metrics"]["f_measure"] is None and q["metrics"]["recall"] is None and q["metrics"]["precision"] == 0.0
    # the independent count of the real scene: its mask binarised by luma, the masks from segment()
    from bgbench.data.formats import discover
    from bgbench.method import build_method

    (v,) = discover(cam)
    ((fid, pred),) = list(build_method("gmm_zivkovic").segment(v.view(), [251]))
    ref = reference_counts(np.asarray(pred)[None] == 255, _luma_mask(WALLFLOWER / "hand_segmented_00251.BMP")[None],
                           np.ones((120, 160), bool))
    assert c["counts"] == ref
    f_cam = 2 * ref["tp"] / (2 * ref["tp"] + ref["fp"] + ref["fn"])
    overall = res["summary"]["gmm_zivkovic"]["full"]["datasets"]["Wallflower"]["overall"]["f_measure"]
    assert overall == pytest.approx(f_cam, abs=1e-12) and overall > 0.9
    assert "F undefined" in printed and "Wallflower/-/Quiet (every method)" in printed
    md = next((out / "report").glob("f_measure_*Wallflower.md")).read_text()
    assert "Wallflower/-/Quiet (every method)" in md


# --- FPS ---------------------------------------------------------------------------------------------
@needs_data
def test_fps_counts_every_frame_the_method_processed(tmp_path):
    """Camouflage: 1 scored frame (251) of 252. gmm_zivkovic walks all 252 frames: FPS is
    252 frames over its time, not 1. frame_difference computes only the scored frame: 1."""
    out = tmp_path / "run"
    assert main(["run", "--data", str(WALLFLOWER), "--methods", "gmm_zivkovic,frame_difference", "--out", str(out),
                 "--no-tracking", "--no-report"]) == 0
    jobs = {j["method"]: j for j in json.loads((out / "results.json").read_text())["jobs"]}
    g = jobs["gmm_zivkovic"]
    assert g["frames"] == 1 and g["timing"]["frames"] == 252 and g["timing"]["yields"] == 1
    assert g["timing"]["fps"] == pytest.approx(252 / g["timing"]["seconds"])
    assert jobs["frame_difference"]["timing"]["frames"] == 1


@needs_data
@pytest.mark.parametrize("method", ["gmm_zivkovic", "gmm_sg", "frame_difference"])
def test_fps_under_a_sampled_test_set_counts_the_frames_processed_not_the_scored(method, tmp_path):
    """run_video on highway 470-529 testing every third frame from 480 (as a scene-specific
    or sampled split does): a method that walks the video (gmm_zivkovic; gmm_sg, which fetches
    its whole walk before the first map) is timed after its first yield over frames 481-528,
    48 frames, whatever it fetched ahead; frame_difference computes only the 17 test frames,
    16 after the first (the first yield is the warm-up, off the clock)."""
    from bgbench.data.formats import discover
    from bgbench.execution.runner import RunOptions, run_video
    from bgbench.method import build_method

    (v,) = discover(copy_scene(HIGHWAY, tmp_path / "baseline" / "h", range(470, 530)))
    test = list(range(480, 530, 3))  # 480, 483, ..., 528: 17 frames
    rec = run_video(build_method(method), v, test, RunOptions(out=tmp_path / "out"))
    walks = method != "frame_difference"
    assert rec["frames"] == 17 and rec["timing"]["yields"] == 16
    assert rec["timing"]["frames"] == (528 - 480 if walks else 16)
    assert rec["timing"]["fps"] == pytest.approx(rec["timing"]["frames"] / rec["timing"]["seconds"])


def test_fps_frames_leave_out_the_warm_up_yields_and_their_frames():
    from bgbench.execution.runner import fps_frames

    # a video of 100 frames scored from 41, every other frame (scene-specific test frames):
    # the first yield came after 41 frames, each later one 2 frames further
    processed = [41 + 2 * k for k in range(30)]
    assert fps_frames(processed, 1) == processed[-1] - 41 == 58  # 29 timed yields, 58 frames
    assert fps_frames(processed, 0) == processed[-1]
    assert fps_frames([252], 0) == 252 and fps_frames([], 0) == 0


# --- Wallflower's colour ground truth and the 51-frame clips ------------------------------------------
def _luma_mask(path: Path) -> np.ndarray:
    """Hand rule, apart from bgbench: BT.601 luma in floating point, foreground above 127.5."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float64)
    y = 0.299 * img[..., 2] + 0.587 * img[..., 1] + 0.114 * img[..., 0]
    return np.where(y > 127.5, 255, 0).astype(np.uint8)


@needs_data
def test_camouflage_colour_ground_truth_is_binarised_by_luma():
    """The archive's 24-bit mask (231 pixels with unequal channels) reads as 10,402 foreground
    pixels: the 10,268 pure white ones and 134 anti-aliased edge pixels of luma >= 128."""
    from bgbench.data.formats import discover

    raw = cv2.imread(str(WALLFLOWER / "hand_segmented_00251.BMP"), cv2.IMREAD_UNCHANGED)
    assert raw.shape == (120, 160, 3)
    assert int(((raw[..., 0] != raw[..., 1]) | (raw[..., 1] != raw[..., 2])).sum()) == 231
    assert int((raw.min(axis=2) == 255).sum()) == 10268
    (v,) = discover(WALLFLOWER)
    assert v.eval_frames == (251,) and v.frame_ids == tuple(range(252))
    g = v.gt(251)
    assert set(np.unique(g).tolist()) == {0, 255}
    assert int((g == 255).sum()) == 10402
    assert np.array_equal(g, _luma_mask(WALLFLOWER / "hand_segmented_00251.BMP"))
    assert any("luma" in n for n in v.notes)


@needs_data
@pytest.mark.parametrize("scene", sorted(CLIPS))
def test_the_51_frame_cdnet_clips_are_read_with_their_numbering(scene):
    from bgbench.data.formats import discover

    first, (w, h) = CLIPS[scene]
    (v,) = discover(CDNET / scene)
    ids = tuple(range(first, first + 51))
    assert v.id == f"CDnet2014/{scene}" and v.frame_ids == ids and v.eval_frames == ids
    assert v.temporal_roi == (first, first + 50) and v.unlabelled_frames == () and v.shape == (h, w)
    assert v.nothing_to_score() is None


@needs_data
def test_the_clips_are_in_the_quick_suite():
    """The quick suite reads the CDnet2014 folder whole: the clips are found there (only
    traffic, whose ROI.bmp does not fit its frames, is refused at discovery)."""
    from bgbench.data.formats import discover
    from bgbench.suites import quick_data

    refused = []
    ids = {v.id for d in quick_data() for v in discover(d, on_error=refused.append)}
    assert {f"CDnet2014/{s}" for s in CLIPS} <= ids and "CDnet2014/baseline/highway" in ids
    assert [str(e.where) for e in refused] == [str(CDNET / "cameraJitter" / "traffic" / "ROI.bmp")]


# --- what a mean covers ---------------------------------------------------------------------------
def test_rows_averaging_different_video_sets_are_noted_with_the_missing_videos():
    """Method b failed on one video and has an undefined precision on another: the table
    says b's overall F covers 2 of 3 videos (naming the failed one) and where its Pr is
    undefined; a's row lacks nothing. Hand-made records, read back through JSON (NaN as null)."""
    from records_helpers import job, results_of, through_json

    from bgbench.reports.tables import failure_notes, terminal_summary
    from bgbench.scoring.coverage import coverage_notes

    vids = ["D/c1/v1", "D/c1/v2", "D/c2/v3"]
    jobs = [job("a", "full", v, 0.5) for v in vids]
    jobs += [job("b", "full", vids[0], 0.6), job("b", "full", vids[1], None, status="failed", error="boom"),
             job("b", "full", vids[2], 0.7)]
    jobs[-1]["metrics"]["precision"] = None
    res = through_json(results_of(jobs, skipped=[{"where": "/x/D/c3/bad/ROI.bmp", "video": "D/c3/bad",
                                                  "error": "/x/D/c3/bad/ROI.bmp: D/c3/bad has nothing to score: ..."}]))
    notes = coverage_notes(res, "full", "D")
    assert notes == [
        "b: precision undefined (nothing predicted, TP + FP = 0; left out of the Pr means) on D/c2/v3",
        "Rows average different video sets (overall F over 3 video(s) in all): b lacks D/c1/v2 (failed)",
        "Skipped as bad data (1, in no table or mean): D/c3/bad: D/c3/bad has nothing to score: ...",
    ]
    assert all(n in failure_notes(res, "full", "D") for n in notes)
    assert "b lacks D/c1/v2 (failed)" in terminal_summary(res)
    # b's overall F averages its 2 videos: (0.6 [c1] + 0.7 [c2]) / 2; a's every video
    s = {k[0]: v for k, v in res.summaries.items()}
    assert s["b"].datasets["D"].overall["f_measure"] == pytest.approx(0.65)
    same = through_json(results_of([job("a", "full", v, 0.5) for v in vids] + [job("b", "full", v, 0.4) for v in vids]))
    assert coverage_notes(same, "full", "D") == []


@needs_data
def test_bgbench_score_reports_f_undefined_for_39_stray_pixels_on_an_all_background_frame(tmp_path, capsys):
    """The issue's case by hand: 39 predicted pixels on a ground-truth frame that is all
    background: FP = 39, TP = FN = 0, F and recall null in JSON ("undefined" in text), Pr 0."""
    _, quiet = _wallflower_pair(tmp_path / "data", range(240, 252))
    m = np.zeros((120, 160), np.uint8)
    m[:3, :13] = 255  # 39 pixels
    (tmp_path / "m").mkdir()
    cv2.imwrite(str(tmp_path / "m" / "bin000251.png"), m)
    assert main(["score", str(tmp_path / "m"), "--video", str(quiet), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["counts"] == {"tp": 0, "fp": 39, "tn": 19161, "fn": 0, "shadow_errors": 0, "shadow_pixels": 0}
    assert out["metrics"]["f_measure"] is None and out["metrics"]["recall"] is None and out["metrics"]["precision"] == 0
    assert main(["score", str(tmp_path / "m"), "--video", str(quiet)]) == 0
    text = capsys.readouterr().out
    assert "f_measure=undefined" in text and "F undefined: the scored frames hold no foreground" in text


# --- the spatial ROI file, the temporal ROI's text, odd masks (found by probing real-world copies) ---
ABANDONED = CDNET / "intermittentObjectMotion" / "abandonedBox"


@pytest.fixture
def roi_scene(tmp_path):
    """20 frames of abandonedBox (its ROI.bmp marks 6 % of the frame) with ground truth 85
    rewritten to 0, so that only the ROI file keeps the outside out of the counts, and
    all-255 masks (every pixel foreground: fp counts every scored negative)."""
    scene = copy_scene(ABANDONED, tmp_path / "CDnet2014" / "intermittentObjectMotion" / "abandonedBox", range(2500, 2520))
    for f in (scene / "groundtruth").iterdir():
        g = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(f), np.where(g == 85, 0, g).astype(np.uint8))
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(2500, 2520):
        cv2.imwrite(str(masks / f"bin{i:06d}.png"), np.full((288, 432), 255, np.uint8))
    return scene, masks


def _score_json(capsys, *argv):
    assert main(["score", *map(str, argv), "--json"]) == 0
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def _expected(scene, roi):
    gts = [cv2.imread(str(scene / "groundtruth" / f"gt{i:06d}.png"), cv2.IMREAD_GRAYSCALE) for i in range(2500, 2520)]
    return reference_counts([np.ones_like(g, bool) for g in gts], gts, roi)


@needs_data
def test_a_roi_file_spelt_in_another_case_is_read_and_said(roi_scene, capsys):
    """A copy made on a case-blind file system may hold roi.bmp: it was ignored, and every
    pixel scored, with exit 0."""
    scene, masks = roi_scene
    roi = cv2.imread(str(scene / "ROI.bmp"), cv2.IMREAD_GRAYSCALE) > 0
    assert 0.03 < roi.mean() < 0.1
    (scene / "ROI.bmp").rename(scene / "roi.bmp")
    got, err = _score_json(capsys, masks, "--video", scene)
    want = _expected(scene, roi)
    assert {k: got["counts"][k] for k in ("tp", "fp", "tn", "fn")} == {k: want[k] for k in ("tp", "fp", "tn", "fn")}
    assert "spatial ROI read from roi.bmp (the dataset names it ROI.bmp)" in err and got["notes"]
    shutil.copy(scene / "roi.bmp", scene / "Roi.bmp")  # two spellings, no ROI.bmp: which one?
    assert "ambiguous" in cli_error(capsys, "score", str(masks), "--video", str(scene))


@needs_data
def test_a_jpeg_roi_is_refused_unless_a_policy_says_what_to_score(roi_scene, capsys):
    """ROI.jpg (lossy; CDnet's own is a picture of the scene) was read as value > 0 when
    ROI.bmp was missing: abandonedBox's marks every pixel, a re-encoded mask a wider region."""
    scene, masks = roi_scene
    roi = cv2.imread(str(scene / "ROI.bmp"), cv2.IMREAD_GRAYSCALE)
    (scene / "ROI.bmp").unlink()
    cv2.imwrite(str(scene / "ROI.jpg"), roi, [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert (cv2.imread(str(scene / "ROI.jpg"), cv2.IMREAD_GRAYSCALE) > 0).sum() > (roi > 0).sum()  # ringing widens it
    err = cli_error(capsys, "score", str(masks), "--video", str(scene))
    assert "ROI.jpg is a JPEG, not a ROI mask" in err and "restore the scene's ROI.bmp" in err
    got, err = _score_json(capsys, masks, "--video", scene, "--roi-policy", "ignore")
    assert got["counts"]["tn"] + got["counts"]["fp"] == _expected(scene, np.ones(roi.shape, bool))["fp"]
    assert "is a JPEG" in err and "--roi-policy ignore" in err


@needs_data
def test_bgbench_score_says_what_loading_assumed(roi_scene, capsys):
    """The note "no ROI.bmp: every pixel is scored" was recorded but never printed by `score`."""
    scene, masks = roi_scene
    (scene / "ROI.bmp").unlink()
    assert main(["score", str(masks), "--video", str(scene)]) == 0
    assert "bgbench: note: CDnet2014/intermittentObjectMotion/abandonedBox: no ROI.bmp" in capsys.readouterr().err


@needs_data
@pytest.mark.parametrize("text, troi", [("\ufeff2502 2510\r\n".encode("utf-8"), (2502, 2510)),
                                        ("2503 2511\r\n".encode("utf-16"), (2503, 2511))])
def test_a_temporal_roi_with_a_byte_order_mark_is_read(roi_scene, text, troi):
    from bgbench.data.formats import discover

    scene, _ = roi_scene
    (scene / "temporalROI.txt").write_bytes(text)
    (video,) = discover(scene)
    assert video.temporal_roi == troi


@needs_data
def test_a_reversed_temporal_roi_is_called_reversed(roi_scene, capsys):
    scene, masks = roi_scene
    (scene / "temporalROI.txt").write_text("2515 2505\n")
    err = cli_error(capsys, "score", str(masks), "--video", str(scene))
    assert "temporal ROI 2515-2505 is reversed" in err and "temporalROI.txt" in err


@needs_data
def test_a_mask_that_is_a_broken_link_is_named_so(roi_scene, capsys):
    scene, masks = roi_scene
    (masks / "bin002505.png").unlink()
    (masks / "bin002505.png").symlink_to(masks / "gone.png")
    err = cli_error(capsys, "score", str(masks), "--video", str(scene))
    assert "bin002505.png: is a broken symbolic link" in err and "gone.png" in err


@needs_data
def test_zero_one_masks_read_as_probabilities_are_refused(roi_scene, capsys):
    """With --probabilities, 0/1 masks are 0 and 1/255: F = 0 with exit 0, before."""
    scene, masks = roi_scene
    for f in masks.iterdir():
        cv2.imwrite(str(f), np.ones((288, 432), np.uint8))
    err = cli_error(capsys, "score", str(masks), "--video", str(scene), "--probabilities")
    assert "every mask holds only 0 and 1" in err and "drop --probabilities" in err
    cv2.imwrite(str(masks / "bin002500.png"), np.full((288, 432), 2, np.uint8))  # a faint map: scored
    assert main(["score", str(masks), "--video", str(scene), "--probabilities"]) == 0


@needs_data
def test_a_cdnet_scene_numbered_from_zero_is_pointed_at_its_format(tmp_path, capsys):
    """Numbered from 0, a CDnet scene looks like SBI2015; the refusal of its label 85 now
    names --format cdnet2014, which scores it."""
    scene = tmp_path / "CDnet2014" / "intermittentObjectMotion" / "abandonedBox"
    for sub, pre, ext in (("input", "in", "jpg"), ("groundtruth", "gt", "png")):
        (scene / sub).mkdir(parents=True)
        for k, i in enumerate(range(2500, 2510)):
            shutil.copy(ABANDONED / sub / f"{pre}{i:06d}.{ext}", scene / sub / f"{pre}{k:06d}.{ext}")
    shutil.copy(ABANDONED / "ROI.bmp", scene)
    (scene / "temporalROI.txt").write_text("0 9\n")
    masks = tmp_path / "masks"
    masks.mkdir()
    for k in range(10):
        cv2.imwrite(str(masks / f"bin{k:06d}.png"), np.zeros((288, 432), np.uint8))
    err = cli_error(capsys, "score", str(masks), "--video", str(scene))
    assert "sbi2015" in err and "--format cdnet2014" in err
    assert main(["score", str(masks), "--video", str(scene), "--format", "cdnet2014"]) == 0


@needs_data
def test_score_data_reads_a_root_whose_dataset_folder_is_a_link(tmp_path, capsys):
    """`score --data ROOT` crashed (ValueError, exit 1) where ROOT held its dataset as a
    symlink, a root `run` accepts; the masks `run --save-masks` wrote score to its counts."""
    real = copy_scene(CDNET / "baseline" / "office", tmp_path / "real" / "CDnet2014" / "baseline" / "office",
                      range(600, 620))
    root = tmp_path / "root"
    root.mkdir()
    (root / "CDnet2014").symlink_to(real.parent.parent, target_is_directory=True)
    assert main(["run", "--methods", "frame_difference", "--data", str(root), "--save-masks", "--out",
                 str(tmp_path / "run"), "--no-tracking", "--no-report"]) == 0
    (job,) = json.loads((tmp_path / "run" / "results.json").read_text())["jobs"]
    capsys.readouterr()
    got, _ = _score_json(capsys, tmp_path / "run" / "masks" / "frame_difference" / "full", "--data", root)
    (video,) = got["datasets"]["CDnet2014"]["videos"].values()
    assert video["counts"] == job["counts"] and video["video"] == "CDnet2014/baseline/office"
