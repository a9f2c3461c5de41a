"""Adapters on the real layouts, their quirks, the frame cache, and every bad-input case."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from benchmark import codes
from benchmark.cli import main
from benchmark.datasets import discover
from benchmark.errors import BadInput
from conftest import DATA, HIGHWAY, TRAFFIC, copy_scene, needs_data


@needs_data
def test_highway_as_cdnet(highway):
    assert highway.id == "CDnet2014/baseline/highway"
    assert highway.shape == (240, 320)
    assert highway.frame_ids[0] == 1 and highway.frame_ids[-1] == 1700
    assert highway.temporal_roi == (470, 1700)
    assert len(highway.eval_frames) == 1231 and highway.eval_frames[0] == 470
    assert highway.unlabelled_frames == tuple(range(1, 470))
    assert highway.roi.all()
    f = highway.frame(470)
    assert f.shape == (240, 320, 3) and f.dtype == np.uint8
    # CDnet marks every frame before the temporal ROI as outside-ROI
    assert set(np.unique(highway.gts([1, 200, 469])).tolist()) == {codes.OUTSIDE_ROI}
    assert set(np.unique(highway.gts(highway.eval_frames[::50])).tolist()) <= set(codes.VALID)


@needs_data
def test_sbi2015_quirks():
    vids = {v.name: v for v in discover(DATA / "SBI2015")}
    assert sorted(vids) == ["Board", "CAVIAR2", "Foliage", "HighwayI", "IBMtest2", "Snellen"]
    hw = vids["HighwayI"]
    assert hw.id == "SBI2015/-/HighwayI" and hw.frame_ids[0] == 0 and hw.frame_ids[-1] == 439
    assert hw.temporal_roi == (0, 439) and len(hw.eval_frames) == 440
    assert any("one past the last frame" in n for n in hw.notes)
    assert vids["Board"].temporal_roi == (1, 227) and len(vids["Board"].eval_frames) == 227
    foliage = vids["Foliage"]
    assert foliage.roi_file is None and foliage.roi.all() and len(foliage.eval_frames) == 389
    assert vids["Snellen"].shape == (144, 144)


@needs_data
def test_ucsd_layout():
    vids = {v.name: v for v in discover(DATA / "UCSD")}
    assert len(vids) == 18
    birds = vids["birds"]
    assert birds.frame_ids == tuple(range(1, 72)) and birds.temporal_roi == (1, 71)
    assert birds.shape == (156, 240)
    assert vids["rain"].frame_ids == tuple(range(75, 89))
    assert set(np.unique(birds.gts(birds.eval_frames)).tolist()) == {0, 255}


@needs_data
def test_traffic_roi_refused_by_default_and_policies():
    with pytest.raises(BadInput) as e:
        discover(TRAFFIC)
    msg = str(e.value)
    assert "ROI.bmp" in msg and "352x240" in msg and "320x240" in msg and "--roi-policy" in msg
    (ign,) = discover(TRAFFIC, roi_policy="ignore")
    assert ign.roi.all() and ign.roi.shape == (240, 320)
    (fgt,) = discover(TRAFFIC, roi_policy="from-groundtruth")
    g = fgt.gts(fgt.eval_frames)
    expected = (g != codes.OUTSIDE_ROI).any(axis=0)
    assert np.array_equal(fgt.roi, expected)
    # traffic's ground truth marks no pixel 85 on every scored frame: the whole frame is in
    assert fgt.roi.all()
    assert any("roi-policy from-groundtruth" in n for n in fgt.notes)


@needs_data
def test_frame_cache_decodes_once_and_invalidates(tmp_path, monkeypatch):
    scene = copy_scene(HIGHWAY, tmp_path / "DS" / "baseline" / "hw", range(470, 480))
    import benchmark.imageio as imageio
    import benchmark.video as video_mod

    calls = []
    real = imageio.read_bgr
    monkeypatch.setattr(video_mod, "read_bgr", lambda p: calls.append(p) or real(p))
    (v,) = discover(scene)
    a = v.frames([470, 479]).copy()
    assert len(calls) == 10
    (v2,) = discover(scene)
    b = v2.frames([470, 479])
    assert len(calls) == 10 and np.array_equal(a, b)  # second load: from the cache
    f = scene / "input" / "in000479.jpg"
    shutil.copy(scene / "input" / "in000470.jpg", f)
    os.utime(f, ns=(1, 1))
    (v3,) = discover(scene)
    c = v3.frames([479])
    assert len(calls) == 20  # the changed source rebuilt the cache
    assert np.array_equal(c[0], a[0])


@needs_data
def test_wallflower_layout(tmp_path):
    import cv2

    scene = tmp_path / "Wallflower" / "MovedObject"
    scene.mkdir(parents=True)
    for i in range(6):
        cv2.imwrite(str(scene / f"b{i:05d}.bmp"), cv2.imread(str(HIGHWAY / "input" / f"in{470 + i:06d}.jpg")))
    mask = np.zeros((240, 320), np.uint8)
    mask[10:20, 10:30] = 255
    cv2.imwrite(str(scene / "hand_segmented_00004.BMP"), mask)
    (v,) = discover(tmp_path / "Wallflower")
    assert v.format == "wallflower" and v.id == "Wallflower/-/MovedObject"
    assert v.eval_frames == (4,) and v.frame_ids == tuple(range(6))
    assert int((v.gt(4) == 255).sum()) == 200


# --- bad input: a clear error naming the file, exit code 2 through the CLI ------------
def _cli_error(capsys, *argv) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("bgbench: error: ")
    return err


@needs_data
@pytest.mark.parametrize("case", ["gap", "unreadable", "gt_size", "gt_values", "troi", "roi_size"])
def test_bad_input_is_refused_with_the_file_named(case, tmp_path, capsys):
    import cv2

    scene = copy_scene(HIGHWAY, tmp_path / "DS" / "baseline" / "hw", range(470, 482))
    if case == "gap":
        (scene / "input" / "in000475.jpg").unlink()
        named = "in000475.jpg"
    elif case == "unreadable":
        (scene / "input" / "in000477.jpg").write_bytes(b"not a jpeg")
        named = "in000477.jpg"
    elif case == "gt_size":
        cv2.imwrite(str(scene / "groundtruth" / "gt000478.png"), np.zeros((120, 160), np.uint8))
        named = "gt000478.png"
    elif case == "gt_values":
        g = cv2.imread(str(scene / "groundtruth" / "gt000480.png"), cv2.IMREAD_GRAYSCALE)
        g[0, 0] = 128
        cv2.imwrite(str(scene / "groundtruth" / "gt000480.png"), g)
        named = "gt000480.png"
    elif case == "troi":
        (scene / "temporalROI.txt").write_text("470 2000\n")
        named = "temporalROI.txt"
    else:
        cv2.imwrite(str(scene / "ROI.bmp"), np.full((240, 352), 255, np.uint8))
        named = "ROI.bmp"
    err = _cli_error(capsys, "run", "--data", str(scene), "--methods", "gmm_zivkovic", "--out", str(tmp_path / "out"))
    assert named in err and "fix:" in err
    if case == "gt_values":
        assert "[128]" in err


def test_not_a_dataset_folder(tmp_path, capsys):
    err = _cli_error(capsys, "splits", "--protocol", "full", "--data", str(tmp_path))
    assert str(tmp_path) in err and "no scene" in err
    err = _cli_error(capsys, "splits", "--protocol", "full", "--data", str(tmp_path / "nope"))
    assert "is not a folder" in err


def test_synthetic_scenes_have_known_ground_truth():
    from benchmark.datasets.synthetic import render_scene

    vids = {v.name: v for v in discover("synthetic")}
    assert sorted(vids) == ["dynamic", "illumination", "intermittent", "jitter", "moving", "shadow"]
    shadow = vids["shadow"]
    assert shadow.temporal_roi == (31, 100) and len(shadow.eval_frames) == 70
    g = shadow.gts(shadow.eval_frames)
    assert {0, 50, 85, 170, 255} <= set(np.unique(g).tolist())
    # the same seed renders the same scene; another seed does not
    a = [f for _, f, _ in render_scene("moving", 0, n_frames=5)]
    b = [f for _, f, _ in render_scene("moving", 0, n_frames=5)]
    c = [f for _, f, _ in render_scene("moving", 1, n_frames=5)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and not np.array_equal(a[0], c[0])
    # the intermittent object stands still from frame 45 to 75 and stays foreground
    inter = vids["intermittent"]
    assert ((inter.gt(50) == 255) & (inter.gt(70) == 255)).sum() > 150
    # camera jitter moves the static background between frames
    jit = [f for _, f, _ in render_scene("jitter", 0, n_frames=3)]
    assert np.abs(jit[0].astype(int) - jit[1]).mean() > 5
