"""Images that would give silently wrong numbers: truncated or cut-short frames and
ground truth (OpenCV's imread decodes a truncated JPEG as grey without a word), and
prediction masks that are not 0/255 (0/1, 0/127, colour), which score F = 0 silently.
Each is refused with BadInput naming the file; the CLI exits 2 with one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bgbench.cli import main
from bgbench.data.formats import discover
from bgbench.errors import BadInput
from bgbench.data.imageio import completeness_problem, read_bgr, read_gray, read_label, read_mask
from conftest import cli_error as _cli_error, DATA, HIGHWAY, copy_scene, needs_data

BOARD = DATA / "SBI2015" / "Board"




def _truncate(path, keep: float = 0.6) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# --- truncated frames and ground truth ----------------------------------------------------
@needs_data
def test_every_real_file_is_complete():
    """No false alarm on the real data: every JPEG, PNG and BMP of ../shared/data is whole."""
    n = 0
    for f in sorted(DATA.rglob("*")):
        if f.suffix.lower() in (".jpg", ".png", ".bmp"):
            assert completeness_problem(f.read_bytes()) is None, f
            n += 1
    assert n > 10000


@needs_data
@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_truncated_jpeg_png_bmp_are_refused(keep, tmp_path):
    import cv2

    jpg, png, gt, bmp = (tmp_path / n for n in ("f.jpg", "f.png", "gt.png", "roi.bmp"))
    shutil.copy(HIGHWAY / "input" / "in000470.jpg", jpg)
    shutil.copy(BOARD / "input" / "in000010.png", png)
    shutil.copy(HIGHWAY / "groundtruth" / "gt000600.png", gt)
    shutil.copy(HIGHWAY / "ROI.bmp", bmp)
    assert cv2.imread(str(jpg)) is not None
    for f in (jpg, png, gt, bmp):
        _truncate(f, keep)
    # what the issue reports: OpenCV's imread still "decodes" the cut JPEG, greying the rest
    assert cv2.imread(str(jpg)) is not None
    for f, read in ((jpg, read_bgr), (png, read_bgr), (gt, read_label), (bmp, read_gray)):
        with pytest.raises(BadInput) as e:
            read(f)
        assert e.value.where == f and "truncated" in str(e.value) and "fix:" in str(e.value)


def test_whole_files_with_trailing_bytes_are_accepted(tmp_path):
    import cv2

    img = np.random.default_rng(0).integers(0, 255, (40, 60, 3), np.uint8)
    for ext in (".jpg", ".png", ".bmp"):
        f = tmp_path / f"x{ext}"
        cv2.imwrite(str(f), img)
        f.write_bytes(f.read_bytes() + b"\x00" * 7)  # padding after the end marker: still whole
        out = read_bgr(f)
        assert out.shape == img.shape
        if ext != ".jpg":
            assert np.array_equal(out, img)


@needs_data
@pytest.mark.parametrize("case", ["jpeg_frame", "png_gt", "png_frame_sbi", "jpeg_no_end_marker"])
def test_truncated_data_is_refused_through_the_cli(case, tmp_path, capsys):
    if case == "png_frame_sbi":
        scene = tmp_path / "SBI2015" / "Board"
        (scene / "input").mkdir(parents=True)
        (scene / "groundtruth").mkdir()
        for i in range(6):
            shutil.copy(BOARD / "input" / f"in{i:06d}.png", scene / "input" / f"Board_{i:06d}.png")
            shutil.copy(BOARD / "groundtruth" / f"gt{i:06d}.png", scene / "groundtruth")
        bad = scene / "input" / "Board_000003.png"
        _truncate(bad, 0.95)
    else:
        scene = copy_scene(HIGHWAY, tmp_path / "DS" / "baseline" / "hw", range(470, 478))
        if case == "jpeg_frame":
            bad = scene / "input" / "in000475.jpg"
            _truncate(bad, 0.7)
        elif case == "jpeg_no_end_marker":
            bad = scene / "input" / "in000474.jpg"
            bad.write_bytes(bad.read_bytes()[:-2])  # only the end-of-image marker is gone
        else:
            bad = scene / "groundtruth" / "gt000476.png"
            _truncate(bad, 0.8)
    err = _cli_error(capsys, "run", "--data", str(scene), "--methods", "gmm_zivkovic", "--out", str(tmp_path / "out"))
    assert bad.name in err and "truncated" in err and "fix:" in err
    if case == "png_gt":  # and through `bgbench score`, which reads the ground truth too
        import cv2

        pred = tmp_path / "pred"
        pred.mkdir()
        for i in range(470, 478):
            g = cv2.imread(str(HIGHWAY / "groundtruth" / f"gt{i:06d}.png"), cv2.IMREAD_GRAYSCALE)
            cv2.imwrite(str(pred / f"bin{i:06d}.png"), np.where(g == 255, 255, 0).astype(np.uint8))
        err = _cli_error(capsys, "score", str(pred), "--video", str(scene))
        assert bad.name in err and "truncated" in err


@needs_data
def test_colour_ground_truth_with_different_channels_is_refused(tmp_path):
    import cv2

    scene = copy_scene(HIGHWAY, tmp_path / "DS" / "baseline" / "hw", range(470, 474))
    f = scene / "groundtruth" / "gt000472.png"
    g = cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2BGR)
    g[10, 20] = (0, 0, 255)  # grey conversion would read 76: a silent new label
    cv2.imwrite(str(f), g)
    (v,) = discover(scene)
    with pytest.raises(BadInput) as e:
        v.check()
    assert e.value.where == f and "channels differ" in str(e.value) and "x=20 y=10" in str(e.value)


# --- prediction masks for `bgbench score` ---------------------------------------------------
@pytest.fixture()
def scored(tmp_path):
    """A highway copy (frames 600-605) and its real ground truth as 0/255 masks."""
    import cv2

    if not DATA.is_dir():
        pytest.skip("../shared/data is not present")
    scene = copy_scene(HIGHWAY, tmp_path / "DS" / "baseline" / "hw", range(600, 606))
    gts = {i: cv2.imread(str(scene / "groundtruth" / f"gt{i:06d}.png"), cv2.IMREAD_GRAYSCALE) for i in range(600, 606)}
    masks = {i: np.where(g == 255, 255, 0).astype(np.uint8) for i, g in gts.items()}
    return scene, masks


def _write(folder, masks, transform=lambda m: m):
    import cv2

    folder.mkdir(exist_ok=True)
    for i, m in masks.items():
        cv2.imwrite(str(folder / f"bin{i:06d}.png"), transform(m))
    return folder


def _score(capsys, pred, scene, *extra) -> dict:
    assert main(["score", str(pred), "--video", str(scene), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_score_refuses_masks_that_are_not_0_255(scored, tmp_path, capsys):
    import cv2

    scene, masks = scored
    good = _score(capsys, _write(tmp_path / "good", masks), scene)
    assert good["counts"]["fp"] == good["counts"]["fn"] == 0 and good["counts"]["tp"] > 1000
    cases = {
        "zero_one": (lambda m: m // 255, "0/1 mask"),
        "zero_127": (lambda m: m // 2, "0/127 mask"),
        "colour": (lambda m: cv2.merge([m * 0, m * 0, m]), "channels differ"),  # red on black
    }
    for name, (transform, says) in cases.items():
        pred = _write(tmp_path / name, masks, transform)
        err = _cli_error(capsys, "score", str(pred), "--video", str(scene))
        assert "bin000600.png" in err and says in err and "fix:" in err, err
        if name != "colour":
            assert "values 0 (" in err and "--probabilities" in err
    # a colour file whose three channels agree is a grey mask: scored as one
    same = _score(capsys, _write(tmp_path / "grey3", masks, lambda m: cv2.merge([m, m, m])), scene)
    assert same["counts"] == good["counts"]


def test_score_probabilities_flag(scored, tmp_path, capsys):
    scene, masks = scored
    rng = np.random.default_rng(1)
    # grey levels: a probability map, foreground 150..255, background 0..120
    probs = {i: np.where(m == 255, rng.integers(150, 256, m.shape), rng.integers(0, 121, m.shape)).astype(np.uint8)
             for i, m in masks.items()}
    pred = _write(tmp_path / "probs", probs)
    err = _cli_error(capsys, "score", str(pred), "--video", str(scene))
    assert "bin000600.png" in err and "--probabilities" in err and "distinct values" in err
    out = _score(capsys, pred, scene, "--probabilities")  # default threshold 0.5: value >= 128
    good = _score(capsys, _write(tmp_path / "good", masks), scene)
    assert out["counts"] == good["counts"]
    strict = _score(capsys, pred, scene, "--probabilities", "--threshold", "0.7")  # value >= 179
    assert strict["counts"]["tp"] < good["counts"]["tp"] and strict["counts"]["fp"] == 0


def test_read_mask_unit(tmp_path):
    import cv2

    f = tmp_path / "m.png"
    m = np.zeros((8, 8), np.uint8)
    m[2:4, 2:4] = 255
    cv2.imwrite(str(f), m)
    assert np.array_equal(read_mask(f), m)
    cv2.imwrite(str(f), (m // 255).astype(np.uint16) * 257 * 255)  # 16-bit 0/65535
    assert np.array_equal(read_mask(f), m)
    cv2.imwrite(str(f), m.astype(np.uint16) * 3)  # 16-bit values that are no 8-bit values
    with pytest.raises(BadInput, match="16-bit"):
        read_mask(f)
    bgra = cv2.merge([m, m, m, np.full_like(m, 255)])
    cv2.imwrite(str(f), bgra)
    assert np.array_equal(read_mask(f), m)
    bgra[..., 3] = 0
    cv2.imwrite(str(f), bgra)
    with pytest.raises(BadInput, match="alpha"):
        read_mask(f)
