"""Issue 27: the fast scoring paths count what the one reference comparator counts, on real
frames and on edge values; device scoring equals the CPU scoring bit for bit; the
benchmarks' comparators are the reference."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import HIGHWAY, copy_scene, needs_data

from bgbench.scoring import metrics as S
from bgbench.scoring.reference import frame_counts, map_counts, reference_counts

F32 = np.float32
EDGES = np.array([0.0, 1.0, 0.5, np.nextafter(F32(0.5), F32(0)), np.nextafter(F32(0.5), F32(1)),
                  np.nextafter(F32(0), F32(1)), np.nextafter(F32(1), F32(0)), 0.5 / 255, 127.5 / 255,
                  np.nextafter(F32(127.5 / 255), F32(0)), np.nextafter(F32(127.5 / 255), F32(1)), 254.5 / 255],
                 F32)


def test_reference_counts_hand_worked():
    # ground truth:  0  50  255  85 | 170 255  0  50 ; ROI drops the last column
    g = np.array([[0, 50, 255, 85], [170, 255, 0, 50]], np.uint8)
    pred = np.array([[1, 1, 1, 1], [1, 0, 0, 1]], bool)
    roi = np.array([[1, 1, 1, 0], [1, 1, 1, 0]], bool)
    # in the ROI: (0,pred) fp, (50,pred) fp+shadow error, (255,pred) tp, 170 ignored,
    # (255,no) fn, (0,no) tn; shadow pixels: 1 (the other 50 is outside the ROI)
    assert frame_counts(pred, g, roi) == (1, 2, 1, 1, 1, 1)
    assert reference_counts([pred, ~pred], [g, g], roi) == {
        "tp": 2, "fp": 3, "tn": 3, "fn": 2, "shadow_errors": 1, "shadow_pixels": 2}


def _maps(video, ids, rng) -> dict[str, np.ndarray]:
    from bgbench.timing.perf import detector_maps

    det = detector_maps(video, ids)
    uni = rng.random(det.shape, dtype=F32)
    edge = det.copy()
    hit = rng.random(det.shape) < 0.3  # a third of the pixels take edge values
    edge[hit] = rng.choice(EDGES, int(hit.sum()))
    return {"detector": det, "uniform": uni, "edges": edge, "masks": np.where(det >= 0.5, 255, 0).astype(np.uint8)}


def _run_loop(maps, video, ids, index, tbin, batch=32):
    """As bgbench.execution.runner.run_video scores: quantise into a batch buffer, add with the
    video's TruthIndex."""
    s = S.VideoScore(tbin / 255)
    buf = np.empty((batch, *video.shape), np.uint8)
    for k in range(0, len(ids), batch):
        n = len(ids[k:k + batch])
        for j in range(n):
            S.quantize(maps[k + j], out=buf[j])
        s.add(buf[:n], index.batch(range(k, k + n)))
    return s


@needs_data
@pytest.mark.parametrize("kind", ["detector", "uniform", "edges", "masks"])
def test_scoring_equals_reference_on_highway(highway, kind):
    """64 real highway frames (motion, shadow, outside-ROI pixels), detector, uniform-noise
    and edge-valued maps: counts, per-frame Dice counts and the histograms by class of the
    run loop's path (a video's first method, then its later ones) equal the reference's."""
    ids = list(highway.eval_frames)[300:364]
    gt, roi = highway.gts(ids), highway.roi
    maps = _maps(highway, ids, np.random.default_rng(27))[kind]
    levels = np.stack([S.quantize(m) for m in maps])
    index = S.TruthIndex(gt, roi)
    for tbin in (128, 1, 255, 0):
        ref = map_counts(maps, gt, roi, tbin)
        first = _run_loop(maps, highway, ids, index, tbin)
        again = _run_loop(maps, highway, ids, index, tbin)  # gathered ground truth from the index
        assert first.counts() == again.counts() == ref, tbin
        assert np.array_equal(first.hist, again.hist)
        # per-frame tp/fp/fn (Dice) against the reference frame by frame
        hist, tp, fp, fn = S.score_batch(levels, gt, roi, tbin)
        per = [frame_counts(S.quantize(m) >= tbin, g, roi) for m, g in zip(maps, gt)]
        assert tp.tolist() == [c[0] for c in per] and fp.tolist() == [c[1] for c in per]
        assert fn.tolist() == [c[3] for c in per]
        assert np.array_equal(hist, first.hist)
    # the histograms by class, against np.bincount of the levels over each class's pixels
    cls = np.where(roi, S._CLASS_LUT[gt], S.IGNORED)
    for c in (S.NEG, S.SHADOW, S.POS):
        assert np.array_equal(first.hist[c], np.bincount(levels[cls == c], minlength=256)), c
    assert ref["tp"] > 10_000 and ref["shadow_pixels"] > 1_000  # every class is exercised


# --- device scoring (torch tensors; on the CPU here) ------------------------------------------
torch = pytest.importorskip("torch")


def _roi_cut(roi):
    r = roi.copy()
    r[:, :40] = False  # an ROI that drops a band, whatever the scene's
    return r


@needs_data
def test_device_scoring_equals_cpu_scoring(highway):
    from bgbench.scoring.device import score_device

    ids = list(highway.eval_frames)[500:510]
    gt = highway.gts(ids)
    maps = _maps(highway, ids, np.random.default_rng(3))
    maps["float64"] = maps["edges"].astype(np.float64)
    maps["outside"] = maps["uniform"] * F32(3) - F32(1)  # clipped values: -1..2, with -0.0, inf
    maps["outside"].reshape(-1)[:4] = [-0.0, np.inf, -np.inf, 3e38]
    for roi in (_roi_cut(highway.roi), np.ones(highway.shape, bool)):
        for kind, m in maps.items():
            for tbin in ((128, 0, 255) if kind == "edges" else (128,)):
                want = S.score_batch(np.stack([S.quantize(x) for x in m]), gt, roi, tbin)
                got = score_device([torch.from_numpy(np.ascontiguousarray(x)) for x in m], gt, roi, tbin)
                for a, b in zip(want, got):
                    assert a.dtype == b.dtype == np.int64 and np.array_equal(a, b), (kind, tbin)
    bad = torch.from_numpy(maps["uniform"][:2].copy())
    bad[1, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        score_device(bad, gt[:2], highway.roi, 128)


@needs_data
@pytest.mark.parametrize("device_scoring", [True, False])
def test_run_loop_scores_tensor_maps_on_their_device(tmp_path, monkeypatch, device_scoring):
    """A method that yields torch tensors when the run loop allows it (``device_maps``) gets
    the record a NumPy-yielding run gets (CPU tensors: scored as NumPy arrays, or, as on a
    GPU, by bgbench.scoring.device)."""
    from bgbench.execution import videorun as runner
    from bgbench.scoring import device

    monkeypatch.setattr(runner, "DEVICE_SCORING_ON_CPU", device_scoring)
    calls = []
    real = device.score_device
    monkeypatch.setattr(device, "score_device", lambda *a: calls.append(1) or real(*a))
    from bgbench.data.formats import discover
    from bgbench.execution.runner import RunOptions, run_video
    from bgbench.method import Method
    from bgbench.timing.perf import detector_maps

    (video,) = discover(copy_scene(HIGHWAY, tmp_path / "scene", range(800, 840)))
    frames = list(video.eval_frames)
    maps = detector_maps(video, frames)
    maps[3, :2, :3] = [[0.5, 1.0, 0.0], [np.nextafter(F32(0.5), F32(0)), -0.0, 2.0]]

    kinds = []

    class Maps(Method):
        name = "maps"
        tensors = True  # False: NumPy maps whatever the run loop allows

        def segment(self, view, ids):
            on = self.device_maps and self.tensors
            for i in ids:
                kinds.append(on)
                m = maps[frames.index(i)]
                yield i, (torch.from_numpy(m.copy()) if on else m)

    recs = []
    for tensors in (True, False):
        m = Maps()
        m.tensors = tensors
        recs.append(run_video(m, video, frames, RunOptions(out=tmp_path / f"run{tensors}")))
        assert set(kinds) == {tensors} and len(kinds) == len(frames)
        assert m.device_maps is False  # set only while the run loop segments
        kinds.clear()
    for key in ("counts", "histograms", "dice", "frames"):
        assert recs[0][key] == recs[1][key], key
    assert bool(calls) == device_scoring
    assert recs[0]["counts"]["tp"] > 0


@pytest.mark.slow
@needs_data
def test_run_loop_scores_torch_maps_like_numpy_maps(tmp_path, monkeypatch):
    """gmm_sg on torch (CPU) yields tensors to the run loop, which scores them with
    bgbench.scoring.device: the record equals CPU scoring of the NumPy maps that segment
    yields to any other caller."""
    from bgbench.data.formats import discover
    from bgbench.execution import videorun as runner
    from bgbench.execution.runner import SCORE_BATCH, RunOptions, run_video
    from bgbench.method import build_method

    (video,) = discover(copy_scene(HIGHWAY, tmp_path / "scene", range(800, 816)))
    monkeypatch.setattr(runner, "DEVICE_SCORING_ON_CPU", True)  # as on a GPU
    m = build_method("gmm_sg", device="cpu", backend="torch")
    frames = list(video.eval_frames)
    seen = []
    orig = m.run

    def spy(*a, **k):
        for x in orig(*a, **k):
            seen.append(type(x).__module__)
            yield x
    m.run = spy
    rec = run_video(m, video, frames, RunOptions(out=tmp_path / "run"))
    assert set(seen) == {"torch"}  # the maps stayed tensors
    assert m.device_maps is False  # reset after the run loop
    m2 = build_method("gmm_sg", device="cpu", backend="torch")
    preds = dict(m2.segment(video.view(), frames))
    assert all(isinstance(p, np.ndarray) for p in preds.values())
    want = S.score_video(video, preds, 0.5, batch=SCORE_BATCH)  # the run loop's batches: Dice summed alike
    assert rec["counts"] == want.counts() and rec["counts"]["tp"] > 0
    assert rec["histograms"]["positive"] == want.hist[S.POS].tolist()
    assert rec["dice"] == {"sum": want.dice_sum, "frames": want.dice_frames}


# --- the benchmarks' comparators are the reference -------------------------------------------
@needs_data
def test_comparator_script_counts_with_the_reference(tmp_path):
    import cv2

    from bgbench.data.formats import discover
    from bgbench.timing.perf import comparator_counts, comparator_script, write_detector_masks

    scene = copy_scene(HIGHWAY, tmp_path / "highway", range(800, 812))
    (video,) = discover(scene)
    masks = write_detector_masks(video, tmp_path / "masks")
    out = subprocess.run([sys.executable, "-c", comparator_script(), str(masks), str(scene)],
                         capture_output=True, text=True, check=True)
    ids = list(video.eval_frames)
    preds = [cv2.imread(str(masks / f"bin{i:06d}.png"), cv2.IMREAD_GRAYSCALE) for i in ids]
    want = reference_counts([p == 255 for p in preds], video.gts(ids), video.roi)
    assert json.loads(out.stdout) == want
    assert comparator_counts(np.stack(preds), video.gts(ids), video.roi, 255) == want
    assert want["tp"] > 0 and want["fp"] + want["tn"] > 0


# --- the frame cache: no upscaled copies, one entry per file whatever its spelling -------------
@needs_data
def test_larger_sizes_are_resized_per_call_not_cached(tmp_path, monkeypatch):
    import cv2

    from bgbench.data.formats import discover

    monkeypatch.setenv("BGBENCH_CACHE", str(tmp_path / "cache"))
    (video,) = discover(copy_scene(HIGHWAY, tmp_path / "scene", range(800, 806)))
    view = video.view()
    ids = list(video.frame_ids)
    native = view.frames(ids)
    for size in ((961, 961), (321, 240), (160, 120), (320, 240)):
        got = view.frames(ids[1:4], size)
        want = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in native[1:4]])
        assert got.shape == (3, size[1], size[0], 3) and np.array_equal(got, want), size
    names = sorted(p.name for p in (tmp_path / "cache").glob("*.npy"))
    assert not any("961x961" in n or "321x240" in n for n in names), names  # larger than 320x240: not cached
    assert sum("bgr160x120" in n for n in names) == 1  # smaller: one cached copy
    assert video.source.caches_resized((320, 240)) and not video.source.caches_resized((321, 240))


@needs_data
def test_a_symlinked_scene_shares_the_cache_entry(tmp_path, monkeypatch):
    from bgbench.data.formats import discover

    monkeypatch.setenv("BGBENCH_CACHE", str(tmp_path / "cache"))
    scene = copy_scene(HIGHWAY, tmp_path / "scene", range(800, 806))
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "elsewhere" / "other_name"
    link.symlink_to(scene, target_is_directory=True)
    (a,), (b,) = discover(scene), discover(link)
    assert np.array_equal(a.view().all_frames(), b.view().all_frames())
    assert len([p for p in (tmp_path / "cache").glob("*.npy") if "-bgr" in p.name]) == 1


# --- the report: no figure that has nothing to show ---------------------------------------------
@needs_data
def test_one_method_report_draws_only_figures_with_something_to_show(tmp_path):
    from bgbench.cli import main

    scene = copy_scene(HIGHWAY, tmp_path / "scene", range(800, 830))
    for method, pr in (("gmm_zivkovic", False), ("frame_difference", True)):
        out = tmp_path / method
        assert main(["run", "--data", str(scene), "--methods", method, "--no-tracking", "--out", str(out)]) == 0
        names = {p.name for p in (out / "report").iterdir()}
        assert any(n.startswith("metrics_") for n in names) and "leaderboard.html" in names
        assert not any(n.startswith("speed_accuracy_") for n in names), names  # one point: the table's row
        # a 0/255 method has one operating point (in the table); probabilities have a curve
        assert any(n.startswith("pr_") and n.endswith(".pdf") for n in names) == pr, names
