"""Scoring: counts worked out by hand, metrics from known counts, histograms against a plain
np.bincount in every shape the fast path distinguishes, PR curves against a brute-force
reference, and agreement with a straightforward comparator on real frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark import scoring
from benchmark.scoring import (
    VideoScore, counts_at, frame_histograms, metrics, pr_curve, quantize, threshold_bin,
)
from conftest import needs_data, reference_counts

# 3 x 4 frame. Codes: 0 static, 50 shadow, 85 outside ROI, 170 unknown, 255 motion.
GT = np.array([[0, 0, 50, 50],
               [255, 255, 255, 170],
               [0, 85, 255, 0]], np.uint8)
ROI = np.array([[1, 1, 1, 1],
                [1, 1, 1, 1],
                [1, 1, 1, 0]], bool)  # bottom-right pixel outside the ROI
PROB = np.array([[0.9, 0.1, 0.8, 0.2],
                 [0.7, 0.3, 0.5, 1.0],
                 [0.0, 1.0, 1.0, 1.0]], np.float32)


def test_counts_by_hand():
    # Scored pixels: not 85, not 170, inside ROI -> 9 pixels.
    # positives (255): (1,0)=0.7 TP, (1,1)=0.3 FN, (1,2)=0.5 TP (q=128 >= 128), (2,2)=1.0 TP
    # negatives (0): (0,0)=0.9 FP, (0,1)=0.1 TN, (2,0)=0.0 TN; (2,3) is outside the ROI
    # shadows (50): (0,2)=0.8 FP + shadow error, (0,3)=0.2 TN
    s = VideoScore(0.5)
    s.update(quantize(PROB)[None], GT[None], ROI)
    assert s.counts() == {"tp": 3, "fp": 2, "tn": 3, "fn": 1, "shadow_errors": 1, "shadow_pixels": 2}
    assert s.frames == 1


def test_threshold_rule_and_quantisation():
    assert threshold_bin(0.5) == 128 and threshold_bin(1.0) == 255 and threshold_bin(0.0) == 0
    assert quantize(np.array([0.0, 0.4999, 0.5, 1.0, 1.7, -0.2], np.float32)).tolist() == [0, 127, 128, 255, 255, 0]
    with pytest.raises(ValueError):
        quantize(np.array([np.nan], np.float32))
    # a strict 0/255 mask at threshold 1.0: foreground iff 255; other values are background
    mask = np.array([[255, 254, 0, 1]], np.uint8)
    gt = np.array([[255, 255, 0, 0]], np.uint8)
    s = VideoScore(1.0)
    s.update(mask[None], gt[None], np.ones((1, 4), bool))
    assert s.counts() == {"tp": 1, "fp": 0, "tn": 2, "fn": 1, "shadow_errors": 0, "shadow_pixels": 0}


def test_metrics_from_known_counts():
    c = {"tp": 8, "fp": 2, "tn": 85, "fn": 5, "shadow_errors": 1, "shadow_pixels": 4}
    m = metrics(c, {"sum": 1.5, "frames": 2})
    assert m["recall"] == pytest.approx(8 / 13)
    assert m["specificity"] == pytest.approx(85 / 87)
    assert m["fpr"] == pytest.approx(2 / 87)
    assert m["fnr"] == pytest.approx(5 / 13)
    assert m["pwc"] == pytest.approx(100 * 7 / 100)
    assert m["precision"] == pytest.approx(0.8)
    p, r = 0.8, 8 / 13
    assert m["f_measure"] == pytest.approx(2 * p * r / (p + r))
    assert m["fpr_shadow"] == pytest.approx(0.25)
    assert m["mcc"] == pytest.approx((8 * 85 - 2 * 5) / math.sqrt(10 * 13 * 87 * 90))
    assert m["mean_dice"] == pytest.approx(0.75)


def test_undefined_metrics_are_nan_not_zero():
    m = metrics({"tp": 0, "fp": 0, "tn": 10, "fn": 0, "shadow_errors": 0, "shadow_pixels": 0})
    assert math.isnan(m["recall"]) and math.isnan(m["precision"]) and math.isnan(m["f_measure"])
    # nothing detected on a video with foreground: recall 0, F 0 (its limit), precision undefined
    m = metrics({"tp": 0, "fp": 0, "tn": 10, "fn": 4, "shadow_errors": 0, "shadow_pixels": 0})
    assert m["recall"] == 0 and m["f_measure"] == 0 and math.isnan(m["precision"])


def test_mean_dice_over_frames_with_foreground():
    gt = np.zeros((3, 2, 2), np.uint8)
    gt[0, 0, :] = 255  # frame 0: 2 positives
    gt[1, :, :] = 255  # frame 1: 4 positives
    # frame 2: no foreground -> not counted even though it has a false positive
    q = np.zeros((3, 2, 2), np.uint8)
    q[0, 0, 0] = 255  # tp 1, fn 1 -> dice 2/3
    q[1, :, :] = 255  # dice 1
    q[2, 0, 0] = 255
    s = VideoScore(0.5)
    s.update(q, gt, np.ones((2, 2), bool))
    assert s.dice_frames == 2
    assert s.dice_sum == pytest.approx(2 / 3 + 1)


def test_histograms_are_per_frame_and_class():
    h = frame_histograms(quantize(PROB)[None], GT[None], ROI)
    assert h.shape == (1, 3, 256)
    assert h[0, 0].sum() == 3 and h[0, 1].sum() == 2 and h[0, 2].sum() == 4
    c = counts_at(h[0], 128)
    assert int(c["tp"]) == 3 and int(c["fn"]) == 1


def _reference_histograms(q: np.ndarray, gt: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """Per frame and class, np.bincount of q over the pixels of that class: the plainest way."""
    cls = np.full(gt.shape, 3)  # ignored, unless:
    cls[(gt == 0) & roi] = 0
    cls[(gt == 50) & roi] = 1
    cls[(gt == 255) & roi] = 2
    out = np.zeros((len(q), 3, 256), np.int64)
    for i in range(len(q)):
        for c in range(3):
            out[i, c] = np.bincount(q[i][cls[i] == c], minlength=256)
    return out


# every way a batch can look to the fast path: frame sizes that are multiples of 8, 4, 2 and
# 1 pixels (the block width), 0/255 frames beside grey ones, ground-truth values that are not
# CDnet codes, no ROI, a partial ROI, an empty ROI, nothing but static background
_SHAPES = [(1, 1, 1), (3, 5, 7), (2, 2, 3), (4, 2, 2), (3, 4, 6), (5, 3, 3), (2, 1, 9), (6, 8, 16), (3, 24, 32)]


@pytest.mark.parametrize("shape", _SHAPES)
def test_histograms_equal_a_plain_bincount(shape):
    rng = np.random.default_rng(sum(shape))
    values = np.array([0, 50, 85, 170, 255, 1, 7, 49, 51, 254], np.uint8)
    for trial in range(12):
        q = rng.integers(0, 256, shape, dtype=np.uint8)
        if trial % 3 == 1:
            q = np.where(q > 200, 255, 0).astype(np.uint8)  # masks: no histogram, counts of 255
        if trial % 3 == 2:
            q[::2] = np.where(q[::2] > 128, 255, 0)  # masks and grey maps in one batch
        if trial == 5:
            q[:, :1] = 0  # a first row that looks like a mask, in grey maps
        gt = rng.choice(values if trial % 2 else values[:5], shape)
        if trial % 4 == 0:
            gt[:, :, ::2] = 0
        if trial == 8:
            gt[:] = 0
        for roi in (np.ones(shape[1:], bool), rng.random(shape[1:]) < 0.6, np.zeros(shape[1:], bool)):
            assert np.array_equal(frame_histograms(q, gt, roi), _reference_histograms(q, gt, roi)), (trial, roi)


def test_histograms_stay_exact_across_batches_and_calchist_limits(monkeypatch):
    # cv2.calcHist counts in float32 (exact to 2**24 per call): the kernel splits larger
    # calls; shrink both limits so that every split and batch boundary is exercised
    monkeypatch.setattr(scoring, "_EXACT", 37)
    monkeypatch.setattr(scoring, "_BATCH_PIXELS", 50)
    rng = np.random.default_rng(7)
    for shape in [(5, 5, 7), (4, 16, 16), (3, 1, 200), (3, 40, 3)]:
        q = rng.integers(0, 256, shape, dtype=np.uint8)
        q[1] = np.where(q[1] > 128, 255, 0)
        gt = rng.choice(np.array([0, 0, 0, 50, 85, 170, 255, 9], np.uint8), shape)
        roi = rng.random(shape[1:]) < 0.7
        assert np.array_equal(frame_histograms(q, gt, roi), _reference_histograms(q, gt, roi))


def test_histograms_refuse_what_they_cannot_count():
    q = np.zeros((2, 3, 4), np.uint8)
    with pytest.raises(TypeError):
        frame_histograms(q.astype(np.float32), q, np.ones((3, 4), bool))
    with pytest.raises(ValueError):
        frame_histograms(q, q[:1], np.ones((3, 4), bool))
    with pytest.raises(ValueError):
        frame_histograms(q, q, np.ones((4, 3), bool))
    assert frame_histograms(q[:0], q[:0], np.ones((3, 4), bool)).shape == (0, 3, 256)


def test_quantize_edges_match_round_and_clip():
    p = np.array([-0.0, 0.0, 1e-9, 0.5 / 255, 1.5 / 255, 0.5, 1 - 1e-7, 1.0, 1.0000001, 3e9, np.inf, -np.inf, -1e-30],
                 np.float32)
    assert quantize(p).tolist() == np.rint(np.clip(p, 0, 1) * np.float32(255)).astype(np.uint8).tolist()
    rng = np.random.default_rng(0)
    for x in (rng.random((3, 7, 5), dtype=np.float32), rng.random((3, 7, 5)) * 1.4 - 0.2):
        expect = np.rint(np.clip(x.astype(np.float32), 0, 1) * np.float32(255)).astype(np.uint8)
        assert np.array_equal(quantize(x), expect)
    with pytest.raises(ValueError):
        quantize(np.array([[0.2, np.nan]], np.float32))
    assert quantize(np.zeros((0, 4), np.float32)).shape == (0, 4)


def _brute_force_ap(scores: np.ndarray, labels: np.ndarray) -> float:
    """AP as the step sum over every distinct score threshold (sklearn's definition)."""
    ap, r_prev = 0.0, 0.0
    for t in sorted(np.unique(scores), reverse=True):
        pred = scores >= t
        tp = (pred & labels).sum()
        r, p = tp / labels.sum(), tp / pred.sum()
        ap += (r - r_prev) * p
        r_prev = r
    return ap


def test_pr_curve_average_precision_matches_brute_force():
    rng = np.random.default_rng(3)
    labels = rng.random(5000) < 0.2
    q = np.clip(rng.normal(90 + 80 * labels, 40), 0, 255).astype(np.uint8)
    gt = np.where(labels, 255, 0).astype(np.uint8)
    s = VideoScore(0.5)
    s.update(q[None, None, :], gt[None, None, :], np.ones((1, 5000), bool))
    pr = pr_curve(s.hist)
    assert pr["average_precision"] == pytest.approx(_brute_force_ap(q, labels), abs=1e-12)
    # best-F threshold: the F at that bin is the maximum over all bins
    fs = []
    for t in range(256):
        pred = q >= t
        tp = (pred & labels).sum()
        fs.append(2 * tp / (pred.sum() + labels.sum()))
    assert pr["best_f"] == pytest.approx(max(fs))
    assert pr["best_threshold"] == pytest.approx(int(np.argmax(fs)) / 255)


@needs_data
def test_agrees_with_reference_on_real_highway(highway):
    """Every scored highway frame: a frame-difference detector's counts from the histogram
    scorer equal the straightforward comparator's, count for count."""
    ids = list(highway.eval_frames)
    assert len(ids) == 1231
    frames = highway.frames(ids).astype(np.int16)
    first = highway.frame(highway.frame_ids[0]).astype(np.int16)
    prob = np.abs(frames - first).max(axis=3).astype(np.float32) / 80.0  # continuous score
    gt = highway.gts(ids)
    s = VideoScore(0.5)
    for k in range(0, len(ids), 100):
        s.update(quantize(prob[k:k + 100]), gt[k:k + 100], highway.roi)
    pred = quantize(prob) >= 128
    ref = reference_counts(pred, gt, highway.roi)
    assert s.counts() == ref
    assert ref["tp"] > 100_000 and ref["shadow_pixels"] > 10_000  # the test exercises every class
    assert s.frames == 1231


def test_speed_figures_compare_like_with_like():
    """`bgbench speed --scoring` times scoring against perf.comparator_counts: both must
    count the same pixels, for uint8 maps and float probabilities."""
    from benchmark.perf import comparator_counts

    rng = np.random.default_rng(11)
    gt = rng.choice(np.array([0, 0, 0, 50, 85, 170, 255], np.uint8), (6, 24, 32))
    roi = rng.random((24, 32)) < 0.8
    probs = rng.random(gt.shape, dtype=np.float32)
    for maps in (probs, np.where(probs >= 0.5, 255, 0).astype(np.uint8)):
        s = VideoScore(0.5)
        s.update(quantize(maps), gt, roi)
        assert s.counts() == comparator_counts(maps, gt, roi, threshold_bin(0.5))
