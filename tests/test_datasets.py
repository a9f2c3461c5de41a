"""Adapters on the real layouts, their quirks, the frame cache, and every bad-input case."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from bgbench.data import codes
from bgbench.cli import main
from bgbench.data.formats import discover
from bgbench.errors import BadInput
from conftest import cli_error as _cli_error, DATA, HIGHWAY, TRAFFIC, copy_scene, needs_data


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
    import bgbench.data.imageio as imageio
    import bgbench.data.video as video_mod

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
    from bgbench.data.formats.synthetic import render_scene

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


# --- real dataset variants ----------------------------------------------------------------
SBI = DATA / "SBI2015"
UCSD_BIRDS = DATA / "UCSD" / "birds"


def _sbi_copy(root, seq: str = "Board", name: str | None = None, n: int = 8, naming: str = "sequence",
              gt_ids=None):
    """A copy of an SBI2015 sequence as some real copies ship it: frames <Sequence>_%06d.png
    in input/, no temporalROI.txt, no ROI.bmp (``naming="in"``: in%06d.png)."""
    scene = root / (name or seq)
    (scene / "input").mkdir(parents=True)
    (scene / "groundtruth").mkdir()
    for i in range(n):
        target = f"{scene.name}_{i:06d}.png" if naming == "sequence" else f"in{i:06d}.png"
        shutil.copy(SBI / seq / "input" / f"in{i:06d}.png", scene / "input" / target)
    for i in (range(n) if gt_ids is None else gt_ids):
        shutil.copy(SBI / seq / "groundtruth" / f"gt{i:06d}.png", scene / "groundtruth")
    return scene


@needs_data
def test_sbi2015_sequence_named_frames(tmp_path, capsys):
    import cv2

    _sbi_copy(tmp_path / "SBI2015")
    # a sequence name with a dot (Candela_m1.10), ground truth from frame 1 (as Toscana's)
    _sbi_copy(tmp_path / "SBI2015", name="Candela_m1.10", n=6, gt_ids=range(1, 6))
    vids = {v.name: v for v in discover(tmp_path / "SBI2015")}
    board, candela = vids["Board"], vids["Candela_m1.10"]
    assert board.format == candela.format == "sbi2015" and board.id == "SBI2015/-/Board"
    assert board.frame_ids == tuple(range(8)) and board.frame_files[3].name == "Board_000003.png"
    assert board.temporal_roi == (0, 7) and board.eval_frames == tuple(range(8)) and board.unlabelled_frames == ()
    assert board.roi_file is None and board.roi.all() and board.shape == (164, 200)
    assert any("no temporalROI.txt" in n for n in board.notes)
    assert any("<Sequence>_%06d" in n for n in board.notes)
    # the pixels are the dataset's, and 170 stays "unknown"
    orig = cv2.imread(str(SBI / "Board" / "input" / "in000005.png"))
    assert np.array_equal(board.frame(5), orig)
    g = board.gt(4)
    assert set(np.unique(g).tolist()) == {0, 170, 255} and int((g == 170).sum()) == 1256
    assert candela.frame_ids == tuple(range(6)) and candela.temporal_roi == (1, 5)
    assert candela.eval_frames == (1, 2, 3, 4, 5) and candela.unlabelled_frames == (0,)
    # through the CLI, and under the format named explicitly
    assert main(["splits", "--protocol", "full", "--data", str(tmp_path / "SBI2015")]) == 0
    assert "2 video(s)" in capsys.readouterr().out
    (v,) = discover(tmp_path / "SBI2015" / "Board", fmt="sbi2015")
    assert v.frame_ids == tuple(range(8))


@needs_data
def test_sbi2015_in_named_copy_without_extras_still_sbi(tmp_path):
    _sbi_copy(tmp_path / "SBI2015", naming="in", n=5)
    (v,) = discover(tmp_path / "SBI2015")
    assert v.format == "sbi2015" and v.frame_ids == tuple(range(5)) and v.frame_files[0].name == "in000000.png"
    assert not any("<Sequence>" in n for n in v.notes)


@needs_data
def test_sbi2015_two_namings_or_two_files_for_one_id_are_refused(tmp_path):
    scene = _sbi_copy(tmp_path / "SBI2015", n=4)
    shutil.copy(scene / "input" / "Board_000000.png", scene / "input" / "in000000.png")
    with pytest.raises(BadInput) as e:
        discover(scene)
    assert "two namings" in str(e.value) and e.value.where == scene / "input"
    (scene / "input" / "in000000.png").unlink()
    shutil.copy(SBI / "CAVIAR2" / "input" / "in000000.jpg", scene / "input" / "Board_000002.jpg")
    with pytest.raises(BadInput) as e:
        discover(scene)
    assert "Board_000002.jpg" in str(e.value) and "Board_000002.png" in str(e.value)


@needs_data
@pytest.mark.parametrize("fmt", ["auto", "sbi2015", "cdnet2014", "ucsd", "wallflower"])
def test_no_frames_names_the_format_and_its_patterns(fmt, tmp_path, capsys):
    import cv2

    if fmt == "ucsd":
        scene = tmp_path / "UCSD" / "birds"
        (scene / "in").mkdir(parents=True)
        (scene / "groundtruth").mkdir()
        shutil.copy(UCSD_BIRDS / "in" / "frame_1.jpg", scene / "in" / "img_1.jpg")
        shutil.copy(UCSD_BIRDS / "groundtruth" / "gt0001.png", scene / "groundtruth")
        expected = "no frames in in/ matching frame_<N>.(jpg|jpeg|png) (format ucsd)"
    elif fmt == "wallflower":
        scene = tmp_path / "Wallflower" / "Bootstrap"
        scene.mkdir(parents=True)
        cv2.imwrite(str(scene / "hand_segmented_00001.BMP"), np.zeros((240, 320), np.uint8))
        shutil.copy(HIGHWAY / "input" / "in000470.jpg", scene / "b00001.jpg")
        expected = "no frames in Bootstrap/ matching b%05d.bmp (format wallflower)"
    else:
        scene = _sbi_copy(tmp_path / "SBI2015", n=3)
        for f in (scene / "input").iterdir():
            f.rename(f.with_name(f.name.replace("Board_", "frame")))
        expected = {
            "auto": "no frames in input/ matching in%06d.(jpg|jpeg|png) (format cdnet2014)",
            "cdnet2014": "no frames in input/ matching in%06d.(jpg|jpeg|png) (format cdnet2014)",
            "sbi2015": "no frames in input/ matching in%06d.(jpg|jpeg|png) or <Sequence>_%06d.(jpg|png) with "
                       "<Sequence> = Board (format sbi2015)",
        }[fmt]
    err = _cli_error(capsys, "splits", "--protocol", "full", "--data", str(scene), "--format", fmt)
    assert expected in err and "--format" in err


@needs_data
@pytest.mark.parametrize("value", [50, 85, 128])
def test_sbi2015_and_ucsd_ground_truth_is_not_read_as_cdnet_codes(value, tmp_path, capsys):
    """SBI2015 (0/255, 170 unknown) and UCSD (0/255) have no shadow or outside-ROI label:
    a 50 or 85 in their masks is refused, never read as CDnet's shadow / outside-ROI."""
    import cv2

    sbi = _sbi_copy(tmp_path / "SBI2015", n=4)
    ucsd = tmp_path / "UCSD" / "birds"
    (ucsd / "in").mkdir(parents=True)
    (ucsd / "groundtruth").mkdir()
    for i in range(1, 5):
        shutil.copy(UCSD_BIRDS / "in" / f"frame_{i}.jpg", ucsd / "in")
        shutil.copy(UCSD_BIRDS / "groundtruth" / f"gt{i:04d}.png", ucsd / "groundtruth")
    (ucsd / "temporalROI.txt").write_text("1 4\n")
    for bad in (sbi / "groundtruth" / "gt000002.png", ucsd / "groundtruth" / "gt0003.png"):
        g = cv2.imread(str(bad), cv2.IMREAD_GRAYSCALE)
        g[5:7, 5:9] = value
        cv2.imwrite(str(bad), g)
        (v,) = discover(bad.parent.parent)
        with pytest.raises(BadInput) as e:
            v.check()
        assert e.value.where == bad and f"[{value}]" in str(e.value) and v.format in str(e.value)
        err = _cli_error(capsys, "run", "--data", str(bad.parent.parent), "--methods", "gmm_zivkovic",
                         "--out", str(tmp_path / "out"))
        assert bad.name in err and "does not use" in err


@needs_data
def test_cdnet_ground_truth_decodes_as_stored_and_refuses_values_outside_its_codes(tmp_path):
    """CDnet ground truth is kept exactly as stored (compared with a plain imread), and a
    value outside 0/50/85/170/255 anywhere in a mask is refused, with the values named;
    SBI2015's table keeps its 0/170/255 as CDnet's static/unknown/motion pixel for pixel."""
    import cv2

    scene = copy_scene(HIGHWAY, tmp_path / "CDnet2014" / "baseline" / "highway", range(700, 704))
    (v,) = discover(scene)
    want = np.stack([cv2.imread(str(scene / "groundtruth" / f"gt{i:06d}.png"), cv2.IMREAD_GRAYSCALE)
                     for i in range(700, 704)])
    assert np.array_equal(v.gts(range(700, 704)), want) and set(np.unique(want)) <= set(codes.VALID)
    bad = scene / "groundtruth" / "gt000702.png"
    g = want[2].copy()
    g[0, 0], g[239, 319] = 3, 128  # one pixel each, in two corners
    cv2.imwrite(str(bad), g)
    (v,) = discover(scene)
    with pytest.raises(BadInput) as e:
        v.check()
    assert e.value.where == bad and "[3, 128]" in str(e.value) and "outside the CDnet codes" in str(e.value)

    sbi = _sbi_copy(tmp_path / "SBI2015", n=3)
    (v,) = discover(sbi)
    raw = np.stack([cv2.imread(str(sbi / "groundtruth" / f"gt{i:06d}.png"), cv2.IMREAD_GRAYSCALE) for i in range(3)])
    assert set(np.unique(raw)) <= {0, 170, 255} and (raw == 255).any()
    mapped = np.select([raw == 170, raw == 255], [codes.UNKNOWN, codes.MOTION], codes.STATIC)
    assert np.array_equal(v.gts(range(3)), mapped)


@needs_data
def test_wallflower_antialiased_masks_are_binarised_at_128(tmp_path, capsys):
    """Real hand-segmented masks are anti-aliased: every value maps to 0 or 255, at 128,
    including 50, 85 and 170 (no CDnet meaning in Wallflower), and the notes say so."""
    import cv2

    scene = tmp_path / "Wallflower" / "WavingTrees"
    scene.mkdir(parents=True)
    for i in range(6):
        cv2.imwrite(str(scene / f"b{i:05d}.bmp"), cv2.imread(str(HIGHWAY / "input" / f"in{600 + i:06d}.jpg")))
    # an anti-aliased mask: the real highway mask of frame 604 drawn at 4x and averaged down
    gt = (cv2.imread(str(HIGHWAY / "groundtruth" / "gt000604.png"), cv2.IMREAD_GRAYSCALE) == 255).astype(np.uint8) * 255
    big = cv2.resize(gt, (1280, 960), interpolation=cv2.INTER_NEAREST)
    mask = cv2.GaussianBlur(big, (9, 9), 0)[::4, ::4].copy()
    mask[0, :6] = [50, 85, 127, 128, 170, 254]
    assert len(np.unique(mask)) > 10
    cv2.imwrite(str(scene / "hand_segmented_00004.BMP"), cv2.cvtColor(mask, cv2.COLOR_GRAY2BGR))  # 24-bit, as real
    (v,) = discover(tmp_path / "Wallflower")
    assert v.format == "wallflower" and v.eval_frames == (4,)
    assert any("binarised at 128" in n for n in v.notes)
    g = v.gt(4)
    assert set(np.unique(g).tolist()) == {0, 255}
    assert g[0, :6].tolist() == [0, 0, 0, 255, 255, 255]
    assert np.array_equal(g, np.where(mask >= 128, 255, 0))
    # scored through the CLI: a prediction equal to the binarised mask is perfect
    pred = tmp_path / "pred"
    pred.mkdir()
    cv2.imwrite(str(pred / "bin000004.png"), g)
    assert main(["score", str(pred), "--video", str(scene), "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["counts"]["tp"] == int((g == 255).sum()) and out["counts"]["fp"] == out["counts"]["fn"] == 0


@needs_data
def test_splits_on_bad_data_skip(tmp_path, capsys):
    copy_scene(HIGHWAY, tmp_path / "DS" / "baseline" / "good", range(470, 476))
    bad = copy_scene(HIGHWAY, tmp_path / "DS" / "baseline" / "bad", range(470, 476))
    (bad / "input" / "in000472.jpg").unlink()
    err = _cli_error(capsys, "splits", "--protocol", "full", "--data", str(tmp_path / "DS"))
    assert "in000472.jpg" in err
    assert main(["splits", "--protocol", "full", "--data", str(tmp_path / "DS"), "--on-bad-data", "skip"]) == 0
    cap = capsys.readouterr()
    assert "bgbench: skipped:" in cap.err and "in000472.jpg" in cap.err
    assert "1 video(s)" in cap.out
    assert main(["splits", "--protocol", "full", "--data", str(tmp_path / "DS"), "--on-bad-data", "skip", "--json"]) == 0
    assert "good" in capsys.readouterr().out


@needs_data
def test_a_videos_id_comes_from_its_folders_whatever_the_spelling(tmp_path, monkeypatch):
    """``--data .`` and ``baseline/../baseline/office`` gave ids from the spelling (``/-/`` and a
    dataset named ``..``), so one category's videos were averaged apart, with exit 0."""
    from conftest import CDNET

    root = tmp_path / "CDnet2014"
    office = copy_scene(CDNET / "baseline" / "office", root / "baseline" / "office", range(600, 605))
    copy_scene(CDNET / "baseline" / "pedestrians", root / "baseline" / "pedestrians", range(600, 605))
    want = "CDnet2014/baseline/office"
    assert [v.id for v in discover(root / "baseline" / ".." / "baseline" / "office")] == [want]
    monkeypatch.chdir(office)
    assert [v.id for v in discover(".")] == [want]
    monkeypatch.chdir(root / "baseline")
    assert [v.id for v in discover("../baseline")] == [want, "CDnet2014/baseline/pedestrians"]


@needs_data
def test_ground_truth_numbered_off_its_frames_is_said(tmp_path, capsys):
    """Found by probing: SBI2015 masks named one past their frames (gt000001-12 for
    in000000-11) were scored shifted by a frame, and the mask without a frame dropped, without
    a word. The orphan is now named in a note that run, splits and score print."""
    board = DATA / "SBI2015" / "Board"
    scene = tmp_path / "SBI2015" / "Board"
    (scene / "input").mkdir(parents=True)
    (scene / "groundtruth").mkdir()
    for i in range(12):
        shutil.copy(board / "input" / f"in{i:06d}.png", scene / "input")
        shutil.copy(board / "groundtruth" / f"gt{i:06d}.png", scene / "groundtruth" / f"gt{i + 1:06d}.png")
    (video,) = discover(scene)
    assert any(n.startswith("1 ground-truth file(s) have no frame (first: gt000012.png)") for n in video.notes)
    assert main(["splits", "--protocol", "full", "--data", str(scene)]) == 0
    assert "have no frame (first: gt000012.png)" in capsys.readouterr().err
    (fine,) = discover(board)
    assert not any("no frame" in n for n in fine.notes)
