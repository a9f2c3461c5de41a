"""Scoring exactly like the official CDnet2014 comparator, plus PR curves.

Rules (ARCHITECTURE.md, "Scoring"):
- only frames inside the temporal ROI that have ground truth are scored;
- pixels outside the spatial ROI and ground-truth 85 (outside ROI) / 170 (unknown) are
  ignored; 0 (static) and 50 (shadow) are negatives, 255 is positive; a shadow pixel
  predicted positive is a false positive and also a shadow error;
- int64 counts are summed over a video's frames, metrics are computed from the sums.

Probabilities are quantised to 8 bits as a saved grayscale PNG would hold them,
``q = round(255 p)``, and a pixel is foreground iff ``q >= floor(255 t + 0.5)`` for
threshold ``t``. Each frame yields a 256-bin histogram of ``q`` for each pixel class: the
counts at the threshold are its tail sums, and the PR curve and average precision come
from the same histograms in constant memory.
A strict 0/255 mask scored with the default rule (foreground iff 255) is threshold 1.0.

How the histograms are made fast (``frame_histograms``; ``bgbench speed --scoring`` times
it): most pixels of a video are static background inside the ROI. Ground truth is read 8
pixels at a time as one uint64, and only the 8-pixel blocks that hold anything else (motion,
shadow, unknown, outside the ROI) are gathered and histogrammed by class; every other pixel
is a negative, so the negatives' histogram is the frame's whole histogram of ``q`` minus the
gathered pixels'. A frame of 0/255 values needs no histogram at all, only a count of its
255s. Work goes in batches of about a megapixel, so every pass after the first reads from
the cache. What is left is one 8-bit histogram per frame of probabilities: cv2.calcHist
costs about twice as much on real maps (few distinct values) as on uniform noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from . import codes

NBINS = 256
NEG, SHADOW, POS, IGNORED = 0, 1, 2, 3  # pixel classes
COUNT_KEYS = ("tp", "fp", "tn", "fn", "shadow_errors", "shadow_pixels")
METRIC_KEYS = ("recall", "specificity", "fpr", "fnr", "pwc", "precision", "f_measure")
EXTRA_KEYS = ("fpr_shadow", "mcc", "mean_dice")

_CLASS_LUT = np.full(256, IGNORED, np.uint8)
_CLASS_LUT[codes.STATIC] = NEG
_CLASS_LUT[codes.SHADOW] = SHADOW
_CLASS_LUT[codes.MOTION] = POS


def threshold_bin(threshold: float) -> int:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    return int(math.floor(255 * threshold + 0.5))


_ONE_BITS = 0x3F800000  # float32 1.0 as an unsigned integer


def quantize(prob: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] -> uint8 ``round(255 p)`` (ties to even, as OpenCV rounds);
    values outside [0, 1] are clipped, NaN is refused. uint8 maps (0..255) pass unchanged."""
    import cv2

    if prob.dtype == np.uint8:
        return prob
    p = np.ascontiguousarray(prob, np.float32)
    if p.size == 0:
        return np.zeros(p.shape, np.uint8)
    flat = p.reshape(-1, p.shape[-1]) if p.ndim > 1 else p.reshape(1, -1)
    # One pass decides the common case: read as unsigned integers, the float32 values in
    # [+0, 1] are exactly 0 .. 0x3F800000, and -0.0, negatives, +inf and NaN all lie above.
    if int(flat.view(np.uint32).max()) <= _ONE_BITS:
        return cv2.convertScaleAbs(flat, alpha=255.0).reshape(p.shape)
    if np.isnan(p).any():
        raise ValueError("probability map holds NaN")
    return np.rint(np.clip(p, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)


_BATCH_PIXELS = 1 << 20  # frames histogrammed together: q and gt of a batch stay in a core's L2 cache
_EXACT = 1 << 24  # cv2.calcHist returns float32 bins: exact up to 2**24 pixels per call
_BLOCKS = ((8, np.uint64), (4, np.uint32), (2, np.uint16), (1, np.uint8))  # pixels read as one integer
# Outside the ROI ground truth is rewritten as (g | 1) & 0xFD: odd with bit 1 clear, so never
# 0, 50 or 255 whatever g was: an ignored value that also marks its block for gathering.
_OUTSIDE_OR, _OUTSIDE_AND = 0x01, 0xFD


def frame_histograms(q: np.ndarray, gt: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """N x 3 x 256 int64: per frame, histogram of ``q`` over negative, shadow and positive
    pixels (ignored pixels dropped). ``q``, ``gt``: N x H x W uint8; ``roi``: H x W bool.

    Exact for any uint8 ``gt``: values other than 0, 50 and 255 are ignored, like pixels
    outside ``roi``. See the module notes for how it is made fast."""
    q, gt, roi = np.asarray(q), np.asarray(gt), np.asarray(roi, bool)
    if q.dtype != np.uint8 or gt.dtype != np.uint8:
        raise TypeError(f"q and gt must be uint8 (see quantize), got {q.dtype} and {gt.dtype}")
    if q.ndim != 3 or q.shape != gt.shape or roi.shape != q.shape[1:]:
        raise ValueError(f"q {q.shape} and gt {gt.shape} must be N x H x W and roi {roi.shape} H x W")
    n, h, w = q.shape
    out = np.empty((n, 3, NBINS), np.int64)
    hw = h * w
    if n == 0 or hw == 0:
        out[:] = 0
        return out
    q, gt = np.ascontiguousarray(q), np.ascontiguousarray(gt)
    outside = None
    if not roi.all():
        outside = (np.where(roi, 0, _OUTSIDE_OR).astype(np.uint8), np.where(roi, 0xFF, _OUTSIDE_AND).astype(np.uint8))
    step = max(1, _BATCH_PIXELS // hw)
    for k in range(0, n, step):
        _batch_histograms(q[k:k + step], gt[k:k + step], outside, out[k:k + step])
    return out


def _calc_hist(images: list[np.ndarray], sizes: list[int], ranges: list[int]) -> np.ndarray:
    """cv2.calcHist over 2-D uint8 images (one per dimension) as int64, exact at any size."""
    import cv2

    rows, cols = images[0].shape
    channels = list(range(len(images)))
    if rows * cols <= _EXACT:
        return cv2.calcHist(images, channels, None, sizes, ranges).astype(np.int64)
    if cols > _EXACT:  # one long row (gathered pixels): cut it into pieces
        cuts = [(slice(None), slice(c, c + _EXACT)) for c in range(0, cols, _EXACT)]
    else:
        band = _EXACT // cols
        cuts = [(slice(r, r + band), slice(None)) for r in range(0, rows, band)]
    return sum(cv2.calcHist([im[c] for im in images], channels, None, sizes, ranges).astype(np.int64) for c in cuts)


def _batch_histograms(q: np.ndarray, g: np.ndarray, outside, out: np.ndarray) -> None:
    """``frame_histograms`` of a few frames, written into ``out`` (F x 3 x 256)."""
    import cv2

    f, h, w = q.shape
    hw = h * w
    if outside is not None:  # fold the ROI into the ground truth: outside it, an ignored value
        g = np.bitwise_or(g, outside[0])
        np.bitwise_and(g, outside[1], out=g)
    b, block = next((b, t) for b, t in _BLOCKS if hw % b == 0)  # blocks never straddle two frames
    gb = g.reshape(-1).view(block)
    idx = np.flatnonzero(gb != 0)  # the blocks that hold anything but static background in the ROI
    cut = np.searchsorted(idx, np.arange(f + 1) * (hw // b)) * b  # each frame's share of the gathered pixels
    exact = hw <= _EXACT  # float32 bins hold every count of a frame: calcHist writes straight into them
    m = np.zeros((f, 4, NBINS), np.float32 if exact else np.int64)  # gathered pixels, by class
    t = np.zeros((f, NBINS, 1), np.float32 if exact else np.int64)  # all pixels
    if idx.size:
        cls = cv2.LUT(gb.take(idx).view(np.uint8).reshape(1, -1), _CLASS_LUT)
        qm = q.reshape(-1).view(block).take(idx).view(np.uint8).reshape(1, -1)
        for i in np.flatnonzero(cut[1:] > cut[:-1]):
            images = [cls[:, cut[i]:cut[i + 1]], qm[:, cut[i]:cut[i + 1]]]
            if exact:
                cv2.calcHist(images, [0, 1], None, [4, NBINS], [0, 4, 0, NBINS], hist=m[i])
            else:
                m[i] = _calc_hist(images, [4, NBINS], [0, 4, 0, NBINS])
    # Every frame's whole histogram: a 0/255 frame needs only its count of 255s, and its sum
    # is 255 times its count of non-zeros exactly when it holds nothing else.
    binary = np.zeros(f, bool)
    if hw * 255 < 2**31 and not cv2.countNonZero(cv2.inRange(q[0, :1], 1, 254)):  # first row: masks?
        sums = cv2.reduce(q.reshape(f, hw), 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
        nonzero = np.array([cv2.countNonZero(q[i]) for i in range(f)], np.int64)
        binary = sums == 255 * nonzero
        t[binary, 0, 0] = hw - nonzero[binary]
        t[binary, 255, 0] = nonzero[binary]
    for i in np.flatnonzero(~binary):
        if exact:
            cv2.calcHist([q[i]], [0], None, [NBINS], [0, NBINS], hist=t[i])
        else:
            t[i] = _calc_hist([q[i]], [NBINS], [0, NBINS])
    m = m.astype(np.int64)
    out[:, NEG] = t[:, :, 0].astype(np.int64) - m[:, SHADOW] - m[:, POS] - m[:, IGNORED]  # negatives: the rest
    out[:, SHADOW] = m[:, SHADOW]
    out[:, POS] = m[:, POS]


def counts_at(hist: np.ndarray, tbin: int) -> dict[str, np.ndarray]:
    """Counts at threshold bin ``tbin`` from histograms (..., 3, 256)."""
    above = hist[..., tbin:].sum(-1)
    total = hist.sum(-1)
    neg_fp, sh_fp, tp = above[..., NEG], above[..., SHADOW], above[..., POS]
    return {
        "tp": tp,
        "fp": neg_fp + sh_fp,
        "tn": total[..., NEG] - neg_fp + total[..., SHADOW] - sh_fp,
        "fn": total[..., POS] - tp,
        "shadow_errors": sh_fp,
        "shadow_pixels": total[..., SHADOW],
    }


@dataclass
class VideoScore:
    """A video's accumulated scoring state: everything later tables and curves need."""

    threshold: float = 0.5
    hist: np.ndarray = field(default_factory=lambda: np.zeros((3, NBINS), np.int64))
    frames: int = 0
    dice_sum: float = 0.0
    dice_frames: int = 0

    def update(self, q: np.ndarray, gt: np.ndarray, roi: np.ndarray) -> None:
        """Add a batch: ``q`` N x H x W uint8 (see ``quantize``), ``gt`` N x H x W codes."""
        h = frame_histograms(q, gt, roi)
        self.hist += h.sum(0)
        self.frames += q.shape[0]
        c = counts_at(h, threshold_bin(self.threshold))
        has_fg = (c["tp"] + c["fn"]) > 0
        dice = 2 * c["tp"] / np.maximum(2 * c["tp"] + c["fp"] + c["fn"], 1)
        self.dice_sum += float(dice[has_fg].sum())
        self.dice_frames += int(has_fg.sum())

    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in counts_at(self.hist, threshold_bin(self.threshold)).items()}

    def to_dict(self) -> dict:
        return {
            "frames": self.frames,
            "counts": self.counts(),
            "dice": {"sum": self.dice_sum, "frames": self.dice_frames},
            "histograms": {"negative": self.hist[NEG].tolist(), "shadow": self.hist[SHADOW].tolist(),
                           "positive": self.hist[POS].tolist()},
        }


def _div(a: float, b: float) -> float:
    return a / b if b else float("nan")


def metrics(c: Mapping[str, int], dice: Mapping[str, float] | None = None) -> dict[str, float]:
    """The CDnet metrics (and FPR on shadows, MCC, Mean Dice) from summed counts.
    An undefined ratio (0/0) is NaN, never a silent 0."""
    tp, fp, tn, fn = (float(c[k]) for k in ("tp", "fp", "tn", "fn"))
    recall, precision = _div(tp, tp + fn), _div(tp, tp + fp)
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    out = {
        "recall": recall,
        "specificity": _div(tn, tn + fp),
        "fpr": _div(fp, fp + tn),
        "fnr": _div(fn, tp + fn),
        "pwc": _div(100.0 * (fn + fp), tp + fn + fp + tn),
        "precision": precision,
        # = 2PR/(P+R) wherever both are defined; 0 when nothing is found, NaN only when
        # the video has no positive and nothing was predicted
        "f_measure": _div(2 * tp, 2 * tp + fp + fn),
        "fpr_shadow": _div(float(c["shadow_errors"]), float(c["shadow_pixels"])),
        "mcc": _div(tp * tn - fp * fn, denom),
    }
    if dice is not None:
        out["mean_dice"] = _div(dice["sum"], dice["frames"])
    return out


MIN_PR_LEVELS = 3  # fewer distinct output levels than this: one operating point, no curve, no AP


def pr_curve(hist: Mapping[str, Iterable[int]] | np.ndarray) -> dict:
    """Precision/recall at every threshold bin, average precision and the best-F threshold.

    ``hist``: 3 x 256 (negative, shadow, positive) or the ``histograms`` dict of a record.
    Threshold bin T counts q >= T as foreground; where nothing is predicted, precision is 1.
    AP is the step-wise sum over decreasing thresholds, sum_k (R_k - R_{k+1}) P_k with
    R_256 = 0 (no interpolation). The best-F threshold is the lowest bin of highest F.

    ``levels`` is the number of distinct output values used (non-empty bins). With fewer
    than ``MIN_PR_LEVELS`` (a 0/255 mask, a constant map) there is no curve to sum: the
    other thresholds only add the trivial point (1, prevalence) at T = 0, which would make
    the AP of a binary method mean something else than a scored method's. ``binary`` is
    then true, ``average_precision`` None and ``point`` the method's one operating point:
    recall and precision at its highest output level.
    """
    if isinstance(hist, Mapping):
        hist = np.array([hist["negative"], hist["shadow"], hist["positive"]], np.int64)
    hist = np.asarray(hist, np.int64)
    pos = hist[POS][::-1].cumsum()[::-1]  # predicted positive at q >= T, T = 0..255
    neg = (hist[NEG] + hist[SHADOW])[::-1].cumsum()[::-1]
    n_pos = pos[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(n_pos > 0, pos / max(n_pos, 1), np.nan)
        precision = np.where(pos + neg > 0, pos / np.maximum(pos + neg, 1), 1.0)
        f = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    used = np.flatnonzero(hist.sum(0))
    levels = int(used.size)
    binary = levels < MIN_PR_LEVELS
    r_next = np.append(recall[1:], 0.0)
    ap = float(np.nansum((recall - r_next) * precision)) if n_pos > 0 else float("nan")
    best = int(np.nanargmax(f)) if n_pos > 0 else 0  # argmax: the first, i.e. lowest, of tied bins
    point = None
    if binary and levels:
        top = int(used[-1])
        point = {"threshold": top / 255.0, "recall": float(recall[top]), "precision": float(precision[top])}
    return {
        "thresholds": (np.arange(NBINS) / 255.0).tolist(),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "levels": levels,
        "binary": binary,
        "point": point,
        "average_precision": None if binary else ap,
        "best_f": float(f[best]) if n_pos > 0 else float("nan"),
        "best_threshold": best / 255.0,
    }


def sum_counts(records: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total = dict.fromkeys(COUNT_KEYS, 0)
    for r in records:
        for k in COUNT_KEYS:
            total[k] += int(r[k])
    return total


def score_video(video, preds: Mapping[int, np.ndarray], threshold: float = 0.5, batch: int = 64) -> VideoScore:
    """Score predictions {frame id: probability or uint8 map} on a Video's eval frames."""
    score = VideoScore(threshold)
    ids = [i for i in video.eval_frames if i in preds]
    roi = video.roi
    for k in range(0, len(ids), batch):
        chunk = ids[k:k + batch]
        q = np.stack([quantize(preds[i]) for i in chunk])
        score.update(q, video.gts(chunk), roi)
    return score
