"""Near copies of a scene are refused across a split (issue 23, item 6): a lossy re-encode
(JPEG quality 90), a copy with one frame dropped, and a 51-frame excerpt under another
dataset name, built here from a real scene, pass the exact-copy guard but share footage with
the original; cross-scene and transfer splits that train on one and test on the other are
refused naming both paths and the frame ranges. Real videos of ../shared/data, which share
no footage, raise no alarm."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from bgbench.cli import main
from bgbench.data import nearcopy
from bgbench.data.formats import discover
from conftest import CDNET, DATA, HIGHWAY, needs_data

FIRST, LAST = 470, 569  # 100 frames of highway


def _write_scene(dst: Path, frames: list[int], first_id: int = 1, quality: int | None = None) -> Path:
    """Highway frames ``frames`` renumbered from ``first_id`` (contiguous, as CDnet needs),
    copied byte for byte or re-encoded as JPEG ``quality``; masks copied."""
    (dst / "input").mkdir(parents=True)
    (dst / "groundtruth").mkdir()
    for k, i in enumerate(frames):
        src = HIGHWAY / "input" / f"in{i:06d}.jpg"
        out = dst / "input" / f"in{first_id + k:06d}.jpg"
        if quality is None:
            shutil.copy(src, out)
        else:
            cv2.imwrite(str(out), cv2.imread(str(src)), [cv2.IMWRITE_JPEG_QUALITY, quality])
        shutil.copy(HIGHWAY / "groundtruth" / f"gt{i:06d}.png", dst / "groundtruth" / f"gt{first_id + k:06d}.png")
    shutil.copy(HIGHWAY / "ROI.bmp", dst)
    (dst / "temporalROI.txt").write_text(f"{first_id} {first_id + len(frames) - 1}\n")
    return dst


def _original(root: Path) -> Path:
    return _write_scene(root / "CDnet2014" / "baseline" / "highway", list(range(FIRST, LAST + 1)), first_id=FIRST)


KINDS = {
    # name: (dataset folder, frames of highway, first id, JPEG quality, frames shared in the original)
    "jpeg-q90": ("Reencoded", list(range(FIRST, LAST + 1)), FIRST, 90, (FIRST, LAST)),
    "one-dropped": ("Dropped", [i for i in range(FIRST, LAST + 1) if i != 520], 1, None, (FIRST, LAST)),
    "excerpt": ("BSUV", list(range(500, 551)), 600, None, (500, 550)),
}


def _copy(root: Path, kind: str) -> Path:
    dataset, frames, first, quality, _ = KINDS[kind]
    return _write_scene(root / dataset / "baseline" / "motorway", frames, first_id=first, quality=quality)


@needs_data
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("protocol", ["cross-scene", "transfer"])
def test_a_near_copy_across_a_split_is_refused(tmp_path, capsys, kind, protocol):
    a, b = _original(tmp_path / "a"), _copy(tmp_path / "b", kind)
    dataset, frames, first, _, (lo, hi) = KINDS[kind]
    args = ["splits", "--data", str(tmp_path / "a"), str(tmp_path / "b"), "--protocol", protocol]
    args += ["--folds", "2"] if protocol == "cross-scene" else ["--source", "CDnet2014", "--target", dataset]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    line = err[0]
    assert str(a) in line and str(b) in line and "share footage" in line
    if kind == "excerpt":  # the copy's 51 frames, and where they are in the original
        assert f"frames {first}-{first + 50}" in line and f"frames {lo}-{hi}" in line
    assert "frames" in line and f"within {nearcopy.THRESHOLD}" in line


@needs_data
def test_a_run_is_refused_before_any_job(tmp_path, capsys):
    _original(tmp_path / "a")
    _copy(tmp_path / "b", "excerpt")
    out = tmp_path / "run"
    assert main(["run", "--data", str(tmp_path / "a"), str(tmp_path / "b"), "--protocol", "transfer", "--source",
                 "CDnet2014", "--target", "BSUV", "--methods", "frame_difference", "--out", str(out), "--no-report",
                 "--no-tracking"]) == 2
    assert "share footage" in capsys.readouterr().err
    assert not (out / "jobs").exists()


@needs_data
def test_the_match_is_measured_not_assumed(tmp_path):
    """The signature's distances, from the files: a q90 re-encode is within 0.001 of its
    original frame by frame, neighbouring frames of one video are not all that close, and
    the same frames under other ids are found at their true positions."""
    (orig,) = discover(_original(tmp_path / "a"))
    (q90,) = discover(_copy(tmp_path / "b", "jpeg-q90"))
    (cut,) = discover(_copy(tmp_path / "c", "excerpt"))
    so, sq, sc = (nearcopy.signature(v) for v in (orig, q90, cut))
    d = 1 - np.sum(so.vectors * sq.vectors, axis=1)
    assert d.max() < 0.001 < nearcopy.THRESHOLD
    pos, dist, best = nearcopy.nearest(sc, so)
    assert len(pos) == 51 and dist.max() < 1e-4
    assert [so.ids[i] for i in best] == list(range(500, 551))  # frame 600 of the excerpt is 500 of the original
    found = nearcopy.shared_frames(so, sc)
    assert (found.matched, found.queried, min(found.a_frames), max(found.a_frames)) == (51, 51, 500, 550)
    # an independent thumbnail: the first excerpt frame, resized by hand, equals the cached one
    img = cv2.cvtColor(cv2.imread(str(HIGHWAY / "input" / "in000500.jpg")), cv2.COLOR_BGR2GRAY)
    assert np.array_equal(nearcopy.thumbnails(cut)[0], cv2.resize(img, nearcopy.THUMB, interpolation=cv2.INTER_AREA))


@needs_data
def test_splits_of_different_scenes_pass(tmp_path, capsys):
    """Different real scenes (the four 51-frame CDnet clips) under cross-scene: no alarm."""
    args = ["splits", "--protocol", "cross-scene", "--folds", "2", "--data"]
    args += [str(CDNET / "baseline" / s) for s in ("PETS2006", "office", "pedestrians")]
    args += [str(CDNET / "intermittentObjectMotion" / "abandonedBox")]
    assert main(args) == 0


def _pairs_flagged(videos) -> tuple[int, list[str], float]:
    sigs = [nearcopy.signature(v) for v in videos]
    flagged, closest, n = [], 2.0, 0
    with nearcopy.one_blas_thread():
        for a, b in itertools.combinations(sigs, 2):
            n += 1
            found = nearcopy.shared_frames(a, b)
            if found is not None:
                flagged.append(found.describe())
            closest = min(closest, nearcopy.closest(a, b))
    return n, flagged, closest


@needs_data
def test_real_short_videos_raise_no_alarm():
    videos = []
    for folder in ("CDnet2014/baseline/office", "CDnet2014/baseline/pedestrians",
                   "CDnet2014/intermittentObjectMotion/abandonedBox", "UCSD"):
        videos += discover(DATA / folder, roi_policy="ignore", on_error=lambda e: None)
    n, flagged, closest = _pairs_flagged(videos)
    assert n == len(videos) * (len(videos) - 1) // 2 >= 150 and flagged == []
    assert closest > 2 * nearcopy.THRESHOLD


@needs_data
@pytest.mark.slow
def test_every_pair_of_real_videos_raises_no_alarm():
    videos = discover(DATA, roi_policy="ignore", on_error=lambda e: None)
    n, flagged, closest = _pairs_flagged(videos)
    assert len(videos) >= 30 and flagged == [] and closest > 2 * nearcopy.THRESHOLD
