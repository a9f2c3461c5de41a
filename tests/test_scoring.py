"""Scoring: counts worked out by hand, metrics from known counts, PR curves against a
brute-force reference, and agreement with a straightforward comparator on real frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
