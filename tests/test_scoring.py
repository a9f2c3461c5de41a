"""Scoring: counts worked out by hand, metrics from known counts, histograms against a plain
np.bincount in every shape the fast path distinguishes, PR curves against a brute-force
reference, and agreement with a straightforward comparator on real frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bgbench.scoring import metrics as scoring
from bgbench.scoring.metrics import (
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


@pytest.mark.slow
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
    from bgbench.timing.perf import comparator_counts

    rng = np.random.default_rng(11)
    gt = rng.choice(np.array([0, 0, 0, 50, 85, 170, 255], np.uint8), (6, 24, 32))
    roi = rng.random((24, 32)) < 0.8
    probs = rng.random(gt.shape, dtype=np.float32)
    for maps in (probs, np.where(probs >= 0.5, 255, 0).astype(np.uint8)):
        s = VideoScore(0.5)
        s.update(quantize(maps), gt, roi)
        assert s.counts() == comparator_counts(maps, gt, roi, threshold_bin(0.5))


# --- quantize: the fast path (a bitwise OR + cv2.convertScaleAbs) against the plain rule ---
def _quantize_reference(p) -> np.ndarray:
    """The rule written out: float32, NaN refused, clipped to [0, 1], 255 p in float32,
    rounded half to even (np.rint)."""
    p = np.asarray(p).astype(np.float32)
    if np.isnan(p).any():
        raise ValueError("NaN")
    return np.rint(np.clip(p, 0, 1) * np.float32(255)).astype(np.uint8)


def _convert_scale_abs(p: np.ndarray) -> np.ndarray:
    """What quantize's fast path computes on values in [+0, 2)."""
    import cv2

    return cv2.convertScaleAbs(p.reshape(1, -1), alpha=255.0).reshape(p.shape)


def _adversarial_probabilities() -> np.ndarray:
    """Every level boundary (k + 0.5) / 255 and k / 255 as float32 with the floats around
    them, 0 and 1 with theirs, -0.0, subnormals, values outside [0, 1] and infinities."""
    f32 = np.float32
    k = np.arange(257, dtype=np.float64)
    centres = np.concatenate([(k - 0.5) / 255, k / 255, [0.0, 1.0]]).astype(f32)
    bits = centres.view(np.int32)[:, None] + np.arange(-40, 41, dtype=np.int32)  # 40 floats each side
    near = bits.reshape(-1).view(f32)
    tiny = np.finfo(f32).smallest_subnormal
    special = np.array([0.0, -0.0, tiny, -tiny, tiny * 1000, np.finfo(f32).smallest_normal,
                        np.nextafter(f32(1), f32(2)), np.nextafter(f32(0), f32(-1)), -1.0, -0.5 / 255, 1.7,
                        np.nextafter(f32(2), f32(0)), 2.0, np.nextafter(f32(2), f32(3)), -2.0,
                        3e38, -3e38, np.inf, -np.inf], f32)
    near = near[~np.isnan(near)]  # bit patterns below +0.0 are NaNs
    return np.concatenate([near, special])


def test_quantize_equals_the_rule_on_every_boundary():
    p = _adversarial_probabilities()
    assert np.array_equal(quantize(p), _quantize_reference(p))
    inside = p[(p >= 0) & (p < 2) & ~np.signbit(p)]  # the fast path alone, not the clipping fallback
    assert inside.size > 40_000
    assert np.array_equal(_convert_scale_abs(inside), _quantize_reference(inside))
    assert np.array_equal(quantize(inside), _quantize_reference(inside))
    # half-way values round to even: 0.5 -> 0, 2.5 -> 2, 127.5 -> 128, 254.5 -> 254
    halves = np.array([0.5, 2.5, 127.5, 254.5], np.float32)
    h = halves / np.float32(255)
    exact = h * np.float32(255) == halves  # only these products are exactly half-way in float32
    assert np.array_equal(quantize(h[exact]), np.rint(halves[exact]).astype(np.uint8))


def test_quantize_clips_special_values_to_literal_levels():
    """The values the fast path leaves to the clipping fallback, against levels written out
    (not against the reference formula, which is the fallback's own expression)."""
    f32 = np.float32
    tiny = np.finfo(f32).smallest_subnormal
    p = np.array([-0.0, -tiny, tiny, -1.0, -0.5 / 255, 0.5 / 255, 1.7, 2.0, 3e38, -3e38, np.inf, -np.inf,
                  np.nextafter(f32(1), f32(2)), 0.5], f32)
    expect = [0, 0, 0, 0, 0, 0, 255, 255, 255, 0, 255, 0, 255, 128]
    assert quantize(p).tolist() == expect
    assert [int(quantize(x[None])[0]) for x in p] == expect  # each alone: the fast path where it can


def test_quantize_equals_the_rule_across_zero_to_two():
    # every 61st float32 in [0, 2) (17.6 million values, every exponent), and all of them just
    # below and above 1 (the fast path takes [+0, 2); above 1 it must saturate to 255)
    bits = np.arange(0, 0x40000000, 61, dtype=np.uint32)
    around_one = np.arange(0x3F7FF000, 0x3F801000, dtype=np.uint32)
    for part in np.array_split(np.concatenate([bits, around_one, np.arange(0x3FFFF000, 0x40000000, dtype=np.uint32)]), 8):
        p = part.view(np.float32)
        expect = _quantize_reference(p)
        assert np.array_equal(_convert_scale_abs(p), expect)  # the fast path's own claim
        assert np.array_equal(quantize(p), expect)


@pytest.mark.slow
def test_quantize_equals_the_rule_on_every_float32_from_zero_to_two():
    for start in range(0, 0x40000000, 1 << 24):  # every float32 in [+0, 2): 2**30 values
        p = np.arange(start, start + (1 << 24), dtype=np.uint32).view(np.float32)
        expect = _quantize_reference(p)
        assert np.array_equal(_convert_scale_abs(p), expect), hex(start)
        assert np.array_equal(quantize(p), expect), hex(start)


def test_quantize_any_dtype_layout_and_shape():
    rng = np.random.default_rng(5)
    base = np.concatenate([_adversarial_probabilities(), rng.random(4000, dtype=np.float32)])
    stack = rng.permutation(base)[:32 * 24 * 30].reshape(32, 24, 30)
    expect = _quantize_reference(stack)
    q = quantize(stack)
    assert q.dtype == np.uint8 and q.shape == stack.shape and np.array_equal(q, expect)
    # a stack in one call = frame by frame
    assert np.array_equal(np.stack([quantize(f) for f in stack]), q)
    # non-contiguous views: strided, transposed, reversed, a column
    for view in (stack[:, ::2, ::3], stack.transpose(0, 2, 1), stack[::-1, :, ::-1], stack[3, :, 7], stack[5, 4]):
        assert not view.flags.c_contiguous or view.ndim == 1
        assert np.array_equal(quantize(view), _quantize_reference(view))
    # float64: rounded to float32 first, then the same rule (also for values that only reach
    # a boundary once rounded to float32)
    p64 = np.concatenate([stack.reshape(-1).astype(np.float64), (np.arange(512) + 0.5) / 255 + 1e-12,
                          rng.random(3000) * 1.4 - 0.2])
    assert np.array_equal(quantize(p64), _quantize_reference(p64))
    v64 = p64[:7000:2].reshape(-1, 5)[:, 1:4]
    assert np.array_equal(quantize(v64), _quantize_reference(v64))
    # other shapes and dtypes
    assert quantize(np.array([0.5], np.float32)).tolist() == [128]
    assert np.array_equal(quantize(stack[None]), expect[None])
    for other in (np.clip(stack, -2, 2).astype(np.float16), np.array([[True, False]]), np.array([[0, 1, 2, -1]], np.int16)):
        assert np.array_equal(quantize(other), _quantize_reference(other))
    # the same layouts with every value in [+0, 1]: the fast path (cv2.convertScaleAbs) itself
    fast = np.abs(np.clip(stack, 0, 1))
    assert not (fast.view(np.uint32) & 0xC0000000).any()
    for view in (fast, fast[:, ::2, ::3], fast.transpose(0, 2, 1), fast[::-1, :, ::-1], fast[3, :, 7], fast[5, 4]):
        assert np.array_equal(quantize(view), _quantize_reference(view))
    # uint8 maps are levels already: the very same array back
    u8 = rng.integers(0, 256, (3, 4, 5), dtype=np.uint8)
    assert quantize(u8) is u8 and quantize(u8[:, ::2]) is not None and np.array_equal(quantize(u8[:, ::2]), u8[:, ::2])
    # into a row of a batch buffer: the same levels, written in place, the buffer returned
    buf = np.full((4, 24, 30), 7, np.uint8)
    for j, src in enumerate((stack[0], stack[1, :, ::-1], np.clip(stack[2], -1, 3), u8[0].repeat(6, 0)[:24].repeat(6, 1))):
        row = buf[j]
        assert quantize(src, out=row) is row
        assert np.array_equal(row, _quantize_reference(src) if src.dtype != np.uint8 else src)
    for bad in (np.empty((24, 31), np.uint8), np.empty((24, 30), np.int16), np.empty((30, 24), np.uint8).T):
        with pytest.raises(ValueError, match="out must be"):
            quantize(stack[0], out=bad)


def test_quantize_refuses_nan_wherever_it_is():
    nan_neg = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001], np.uint32).view(np.float32)  # +-NaN, signalling
    for bad in nan_neg:
        for arr in (np.array([0.2, bad, 0.3], np.float32), np.array([[0.2, 1.5], [bad, -0.1]], np.float32),
                    np.full((2, 3, 4), bad, np.float32)):
            with pytest.raises(ValueError, match="NaN"):
                quantize(arr)
    with pytest.raises(ValueError, match="NaN"):
        quantize(np.array([0.5, -np.nan, 2.0]))  # float64


# --- VideoScore.update (score_batch) against the per-frame histograms -----------------------
def _update_reference(q, gt, roi, threshold):
    """hist, frames and Dice from frame_histograms and counts_at frame by frame."""
    h = frame_histograms(q, gt, roi)
    c = counts_at(h, threshold_bin(threshold))
    has_fg = (c["tp"] + c["fn"]) > 0
    dice = 2 * c["tp"] / np.maximum(2 * c["tp"] + c["fp"] + c["fn"], 1)
    return h.sum(0), float(dice[has_fg].sum()), int(has_fg.sum())


@pytest.mark.parametrize("ipp", [True, False])
def test_update_equals_per_frame_histograms(monkeypatch, ipp):
    """Every way a batch can look to score_batch (masks, grey maps, both, frame widths of 8, 4,
    2, 1 pixel blocks, ROIs, thresholds 0..1), with OpenCV's IPP (16-bit histograms of the
    whole batch) and without it (8-bit per frame), and with the limits shrunk so that every
    split of a batch is taken."""
    import cv2

    monkeypatch.setattr(cv2.ipp, "useIPP", lambda: ipp)  # score_batch's choice only
    rng = np.random.default_rng(23)
    values = np.array([0, 0, 0, 50, 85, 170, 255, 1, 254], np.uint8)
    for limits in ((1 << 24, 1 << 21), (37, 50)):
        monkeypatch.setattr(scoring, "_EXACT", limits[0])
        monkeypatch.setattr(scoring, "_BATCH_PIXELS", limits[1])
        for shape in [(1, 1, 1), (3, 5, 7), (4, 2, 3), (5, 4, 6), (70, 2, 4), (3, 24, 32)]:
            for trial in range(4):
                q = rng.integers(0, 256, shape, dtype=np.uint8)
                if trial == 1:
                    q = np.where(q > 180, 255, 0).astype(np.uint8)
                if trial == 2:
                    q[::2] = np.where(q[::2] > 128, 255, 0)
                gt = rng.choice(values, shape)
                if trial == 3:
                    gt[:, :, ::2] = 0
                for roi in (np.ones(shape[1:], bool), rng.random(shape[1:]) < 0.6):
                    for t in (0.0, 1 / 255, 0.5, 1.0):
                        s = VideoScore(t)
                        s.update(q, gt, roi)
                        hist, dice_sum, dice_frames = _update_reference(q, gt, roi, t)
                        assert np.array_equal(s.hist, hist), (shape, trial, t)
                        assert (s.dice_sum, s.dice_frames, s.frames) == (dice_sum, dice_frames, shape[0])


@needs_data
def test_fast_quantize_and_update_on_real_maps(highway):
    """Real probability maps (a frame-difference detector's, clipped to [0, 1] so that the
    fast path takes them): quantize equals the rule, in one call and frame by frame, and the
    batch scoring equals the per-frame histograms."""
    ids = list(highway.eval_frames)[:200]
    first = highway.frame(highway.frame_ids[0]).astype(np.int16)
    d = np.abs(highway.frames(ids).astype(np.int16) - first).max(axis=3)
    prob = np.minimum(d.astype(np.float32) / np.float32(80.0), np.float32(1.0))
    q = quantize(prob)
    assert np.array_equal(q, _quantize_reference(prob))
    assert np.array_equal(np.stack([quantize(p) for p in prob]), q)
    gt = highway.gts(ids)
    s = VideoScore(0.5)
    for k in range(0, len(ids), 32):
        s.update(np.stack([quantize(p) for p in prob[k:k + 32]]), gt[k:k + 32], highway.roi)
    hist, dice_sum, dice_frames = _update_reference(q, gt, highway.roi, 0.5)
    assert np.array_equal(s.hist, hist) and s.dice_frames == dice_frames
    assert s.dice_sum == pytest.approx(dice_sum, rel=1e-12)  # batches of 32 vs one sum of 200


# --- the ground truth gathered once per video (TruthIndex) ----------------------------------
def _same_gathered(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        (x.frames, x.hw, x.b) == (y.frames, y.hw, y.b) and np.array_equal(x.idx, y.idx)
        and np.array_equal(x.blocks, y.blocks) and np.array_equal(x.cls, y.cls) for x, y in zip(a, b))


@pytest.mark.parametrize("shape", [(23, 4, 6), (40, 3, 5), (17, 8, 8), (9, 1, 7)])
def test_truth_index_serves_what_gathering_gives(monkeypatch, shape):
    """Batches from the index (the first asks, the asks again that keep chunks, batches that
    straddle two chunks, frames out of order or repeated, a budget that runs out) equal the
    ground truth gathered as it comes, and score alike."""
    monkeypatch.setattr(scoring, "_BATCH_PIXELS", 5 * shape[1] * shape[2])  # chunks of 5 frames
    rng = np.random.default_rng(shape[0])
    gt = rng.choice(np.array([0, 0, 0, 0, 50, 85, 170, 255, 9], np.uint8), shape)
    gt[::3] = 0  # frames of nothing but static background
    q = rng.integers(0, 256, shape, dtype=np.uint8)
    for roi in (np.ones(shape[1:], bool), rng.random(shape[1:]) < 0.6):
        for budget in (1 << 30, 60):
            index = scoring.TruthIndex(gt, roi, max_bytes=budget)
            asks = [list(range(k, min(k + 7, shape[0]))) for k in range(0, shape[0], 7)]  # batches of 7
            asks += asks  # asked again: chunks are kept from here on (while the budget lasts)
            asks += [list(range(shape[0]))[::-1][:6], [2, 2, shape[0] - 1, 3], list(range(shape[0]))]
            for pos in asks:
                got = index.batch(pos)
                assert _same_gathered(got, scoring.gather_batch(gt[pos], roi)), (roi.all(), budget, pos)
                a, b = VideoScore(0.5), VideoScore(0.5)
                a.add(q[pos], got)
                b.update(q[pos], gt[pos], roi)
                assert np.array_equal(a.hist, b.hist) and (a.dice_sum, a.frames) == (b.dice_sum, b.frames)
            with pytest.raises(IndexError):
                index.batch([0, shape[0]])
            kept = sum(p.idx.nbytes + p.cls.nbytes for p in index._parts.values())
            assert index.nbytes == kept <= budget
            assert (index.nbytes > 0) == (budget > 60)  # a budget of 60 bytes holds no chunk



def test_a_spent_index_budget_gathers_each_batch_once(monkeypatch):
    """Once a chunk did not fit the index's budget, a batch asked again is gathered once, as
    it comes, not a second time to be measured for keeping."""
    monkeypatch.setattr(scoring, "_BATCH_PIXELS", 5 * 4 * 8)  # chunks of 5 frames
    gt = np.zeros((20, 4, 8), np.uint8)
    gt[:, 0, :3] = 255
    index = scoring.TruthIndex(gt, np.ones((4, 8), bool), max_bytes=1)
    calls = []
    real = scoring.gather
    monkeypatch.setattr(scoring, "gather", lambda *a: calls.append(1) or real(*a))
    for _ in range(3):
        for k in range(0, 20, 5):
            index.batch(range(k, k + 5))
    assert index.nbytes == 0 and len(calls) == 4 * 3 + 1  # one gather per batch, one to learn it does not fit

def test_truth_index_keeps_a_chunk_only_once_asked_again():
    gt = np.zeros((30, 4, 8), np.uint8)
    gt[:, 0, :3] = 255
    index = scoring.TruthIndex(gt, np.ones((4, 8), bool))
    step = index.step
    index.batch(range(0, 30))  # a first method: gathered as it comes, nothing kept
    assert index.nbytes == 0 and not index._parts
    index.batch(range(0, 30))  # the second: every chunk kept
    assert sorted(index._parts) == list(range(-(-30 // step)))
    assert index.nbytes == sum(p.idx.nbytes + p.cls.nbytes for p in index._parts.values()) > 0


def test_score_gathered_refuses_ground_truth_of_another_batch():
    gt = np.zeros((4, 2, 4), np.uint8)
    truth = scoring.gather_batch(gt, np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="covers 4 frames"):
        VideoScore(0.5).add(np.zeros((3, 2, 4), np.uint8), truth)
    with pytest.raises(TypeError):
        VideoScore(0.5).add(np.zeros((4, 2, 4), np.float32), truth)


@needs_data
def test_video_truth_equals_its_ground_truth_gathered(highway):
    """Video.truth (the index the run loop scores with) on a real scene, asked twice as a
    second method would, equals gathering the frames' ground truth and ROI directly."""
    ids = list(highway.eval_frames)[100:260]
    for _ in range(2):
        for k in range(0, len(ids), 32):
            chunk = ids[k:k + 32]
            assert _same_gathered(highway.truth(chunk), scoring.gather_batch(highway.gts(chunk), highway.roi))
    assert highway.truth_index.nbytes > 0
    highway.release()
    assert "truth_index" not in highway.__dict__
