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

How the histograms are made fast (``score_batch``, what ``VideoScore.update`` runs;
``bgbench speed --scoring`` times it): most pixels of a video are static background inside
the ROI. Ground truth is read 8 pixels at a time as one uint64, and only the 8-pixel blocks
that hold anything else (motion, shadow, unknown, outside the ROI) are gathered; each
gathered pixel becomes one uint16 key (frame, class, q) and one cv2.calcHist counts them
all. Every other pixel is a negative, so the negatives' histogram is the batch's whole
histogram of ``q`` minus the gathered pixels'. A batch of 0/255 frames needs no histogram
at all, only each frame's count of 255s. Probabilities need the whole histogram of the
batch, made two pixels at a time (one uint16, 65536 bins), and per frame only the count of
pixels at or above the threshold (one threshold and one row sum): Dice is per frame, the
rest is summed. The 16-bit histograms are fast where OpenCV has IPP, as its x86-64 wheels
do; without it, probabilities get one 8-bit histogram per frame. ``frame_histograms``
keeps every frame's histograms apart: one 8-bit calcHist per frame of probabilities.
"""

from __future__ import annotations

import math
import sys
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


def quantize(prob: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] -> uint8 ``round(255 p)`` (ties to even, as OpenCV rounds);
    values outside [0, 1] are clipped, NaN is refused. uint8 maps (0..255) pass unchanged;
    any other dtype is read as float32 first. Any shape: a stack of frames in one call gives
    the levels of each frame alone."""
    import cv2

    if prob.dtype == np.uint8:
        return prob
    p = np.ascontiguousarray(prob, np.float32)
    if p.size == 0:
        return np.zeros(p.shape, np.uint8)
    # One pass decides the common case: OR-ed together (two at a time as one uint64, which
    # reads memory faster), the float32s have bits 31 and 30 clear iff each lies in [+0, 2):
    # -0.0, negatives, values >= 2, infinities and NaNs all set one. There cv2.convertScaleAbs
    # gives the clipped rule exactly: it rounds the float32 product 255 p ties to even as
    # np.rint does, its abs never acts, and 255 p > 255 saturates to 255 (checked on every
    # float32 in [0, 2): tests/test_scoring.py).
    bits = p.reshape(-1).view(np.uint32)
    if bits.size & 1:
        high = int(np.bitwise_or.reduce(bits))
    else:
        high = int(np.bitwise_or.reduce(bits.view(np.uint64)))
        high |= high >> 32
    if not high & 0xC0000000:
        flat = p if p.ndim == 2 else p.reshape(-1, p.shape[-1]) if p.ndim > 2 else p.reshape(1, -1)
        q = cv2.convertScaleAbs(flat, alpha=255.0)
        return q if flat is p else q.reshape(p.shape)
    if np.isnan(p).any():
        raise ValueError("probability map holds NaN")
    return np.rint(np.clip(p, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)


_BATCH_PIXELS = 1 << 21  # frames gathered together (at most _KEY_FRAMES)
_EXACT = 1 << 24  # cv2.calcHist returns float32 bins: exact up to 2**24 pixels per call
_BLOCKS = ((8, np.uint64), (4, np.uint32), (2, np.uint16), (1, np.uint8))  # pixels read as one integer
# Outside the ROI ground truth is rewritten as (g | 1) & 0xFD: odd with bit 1 clear, so never
# 0, 50 or 255 whatever g was: an ignored value that also marks its block for gathering.
_OUTSIDE_OR, _OUTSIDE_AND = 0x01, 0xFD
_KEY_FRAMES = 64  # gathered pixels' keys hold 4 * frame + class in one byte
_LITTLE = sys.byteorder == "little"


def _checked(q: np.ndarray, gt: np.ndarray, roi: np.ndarray):
    """``q`` and ``gt`` as contiguous N x H x W uint8, and the ROI as the two masks that fold
    it into the ground truth (None when every pixel is in it)."""
    q, gt, roi = np.asarray(q), np.asarray(gt), np.asarray(roi, bool)
    if q.dtype != np.uint8 or gt.dtype != np.uint8:
        raise TypeError(f"q and gt must be uint8 (see quantize), got {q.dtype} and {gt.dtype}")
    if q.ndim != 3 or q.shape != gt.shape or roi.shape != q.shape[1:]:
        raise ValueError(f"q {q.shape} and gt {gt.shape} must be N x H x W and roi {roi.shape} H x W")
    outside = None
    if q.size and not roi.all():
        outside = (np.where(roi, 0, _OUTSIDE_OR).astype(np.uint8), np.where(roi, 0xFF, _OUTSIDE_AND).astype(np.uint8))
    return np.ascontiguousarray(q), np.ascontiguousarray(gt), outside


def frame_histograms(q: np.ndarray, gt: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """N x 3 x 256 int64: per frame, histogram of ``q`` over negative, shadow and positive
    pixels (ignored pixels dropped). ``q``, ``gt``: N x H x W uint8; ``roi``: H x W bool.

    Exact for any uint8 ``gt``: values other than 0, 50 and 255 are ignored, like pixels
    outside ``roi``. See the module notes for how it is made fast."""
    q, gt, outside = _checked(q, gt, roi)
    n, h, w = q.shape
    hw = h * w
    out = np.zeros((n, 3, NBINS), np.int64)
    if n == 0 or hw == 0:
        return out
    step = min(_KEY_FRAMES, max(1, _BATCH_PIXELS // hw))
    for k in range(0, n, step):
        qb = q[k:k + step]
        m = _gathered_histograms(qb, gt[k:k + step], outside)
        total = np.zeros((len(qb), NBINS), np.int64)
        binary, nonzero = _binary_frames(qb)
        total[binary, 0] = hw - nonzero[binary]
        total[binary, 255] = nonzero[binary]
        for i in np.flatnonzero(~binary):
            total[i] = _calc_hist([qb[i]], [NBINS], [0, NBINS])[:, 0]
        out[k:k + step, NEG] = total - m[:, SHADOW] - m[:, POS] - m[:, IGNORED]  # negatives: the rest
        out[k:k + step, SHADOW] = m[:, SHADOW]
        out[k:k + step, POS] = m[:, POS]
    return out


def _calc_hist(images: list[np.ndarray], sizes: list[int], ranges: list[int]) -> np.ndarray:
    """cv2.calcHist over 2-D images (one per dimension) as int64, exact at any size."""
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


def _gathered_histograms(q: np.ndarray, g: np.ndarray, outside) -> np.ndarray:
    """F x 4 x 256 int64 (F <= 64): per frame, the histogram of ``q`` by class over the
    pixel blocks of ground truth ``g`` that hold anything but static background in the ROI.
    Every other pixel is a negative."""
    import cv2

    f, h, w = q.shape
    hw = h * w
    if outside is not None:  # fold the ROI into the ground truth: outside it, an ignored value
        g = np.bitwise_or(g, outside[0])
        np.bitwise_and(g, outside[1], out=g)
    b, block = next((b, t) for b, t in _BLOCKS if hw % b == 0)  # blocks never straddle two frames
    gb = g.reshape(-1).view(block)
    idx = np.flatnonzero(gb != 0)
    if not idx.size:
        return np.zeros((f, 4, NBINS), np.int64)
    blocks = np.diff(np.searchsorted(idx, np.arange(f + 1) * (hw // b)))  # each frame's gathered blocks
    # Each gathered pixel becomes one uint16 key, (4 * frame + class) * 256 + q, and one 1-D
    # histogram of F * 1024 bins counts them all (cv2.calcHist's fast path for 16-bit data).
    hi = cv2.LUT(gb.take(idx, mode="clip").view(np.uint8).reshape(1, -1), _CLASS_LUT)
    if f > 1:  # + 4 * frame, to all the bytes of a block at once
        per_block = (np.arange(f, dtype=block) * block(4 * (256**b - 1) // 255)).repeat(blocks)
        hb = hi.reshape(-1).view(block)
        np.add(hb, per_block, out=hb)
    qm = q.reshape(-1).view(block).take(idx, mode="clip").view(np.uint8).reshape(1, -1)
    key = cv2.merge([qm, hi] if _LITTLE else [hi, qm]).reshape(1, -1).view(np.uint16)
    return _calc_hist([key], [f * 4 * NBINS], [0, f * 4 * NBINS]).reshape(f, 4, NBINS)


def _binary_frames(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which frames of ``q`` (F x H x W uint8) hold nothing but 0 and 255, and their counts of
    non-zeros. None of them, at once, when the first row of the first frame holds another
    value (probability maps)."""
    import cv2

    f, h, w = q.shape
    hw = h * w
    if hw * 255 >= 2**31 or cv2.countNonZero(cv2.inRange(q[0, :1], 1, 254)):
        return np.zeros(f, bool), np.zeros(f, np.int64)
    # a frame's sum is 255 times its count of non-zeros exactly when it holds nothing else
    sums = cv2.reduce(q.reshape(f, hw), 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    nonzero = np.array([cv2.countNonZero(q[i]) for i in range(f)], np.int64)
    return sums == 255 * nonzero, nonzero


def _pair_histogram(q: np.ndarray) -> np.ndarray:
    """256 int64: the histogram of every pixel of ``q`` (contiguous uint8), read two pixels at
    a time as one uint16 and histogrammed over 65536 bins, then summed over either pixel."""
    import cv2

    flat = q.reshape(-1)
    out = np.zeros(NBINS, np.int64)
    even = flat.size & ~1
    for c in range(0, even, 2 * _EXACT):  # float32 bins: at most 2**24 pairs per call
        pairs = flat[c:min(c + 2 * _EXACT, even)].view(np.uint16).reshape(1, -1)
        hist = cv2.calcHist([pairs], [0], None, [NBINS * NBINS], [0, NBINS * NBINS]).reshape(NBINS, NBINS)
        for axis in (0, 1):  # summed in float64: exact
            out += cv2.reduce(hist, axis, cv2.REDUCE_SUM, dtype=cv2.CV_64F).ravel().astype(np.int64)
    if flat.size & 1:
        out[flat[-1]] += 1
    return out


def _totals(q: np.ndarray, tbin: int) -> tuple[np.ndarray, np.ndarray]:
    """The histogram of every pixel of ``q`` (N x H x W uint8, contiguous) summed over its
    frames (256 int64), and per frame the count of pixels at or above ``tbin`` (N int64)."""
    import cv2

    n, h, w = q.shape
    hw = h * w
    binary, nonzero = _binary_frames(q)
    if binary.all():  # 0/255 masks: their counts of 255s are all there is
        total = np.zeros(NBINS, np.int64)
        total[255] = nonzero.sum()
        total[0] = n * hw - total[255]
        return total, (nonzero if tbin else np.full(n, hw, np.int64))
    if not cv2.ipp.useIPP():  # no fast 16-bit histogram: one 8-bit histogram per frame
        frames = np.stack([_calc_hist([q[i]], [NBINS], [0, NBINS])[:, 0] for i in range(n)])
        return frames.sum(0), frames[:, tbin:].sum(1)
    # Two passes of the batch instead of a histogram per frame: one histogram of it two pixels
    # at a time, and one threshold + row sum for each frame's count at the threshold.
    if tbin == 0:
        above = np.full(n, hw, np.int64)
    elif hw < 2**31:
        hit = cv2.threshold(q.reshape(-1, w), tbin - 1, 1, cv2.THRESH_BINARY)[1]
        above = cv2.reduce(hit.reshape(n, hw), 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel().astype(np.int64)
    else:
        above = np.array([np.count_nonzero(q[i] >= tbin) for i in range(n)], np.int64)
    return _pair_histogram(q), above


def score_batch(q: np.ndarray, gt: np.ndarray, roi: np.ndarray, tbin: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What ``VideoScore.update`` keeps of a batch (arguments as ``frame_histograms``): the
    histograms by class summed over its frames (3 x 256 int64), and per frame tp, fp and fn
    at threshold bin ``tbin`` (N int64 each). The same numbers as ``frame_histograms``
    summed and ``counts_at`` per frame, but only the gathered pixels are histogrammed frame
    by frame: every pixel's histogram is wanted for the batch only, and each frame's count
    at the threshold (see ``_totals``)."""
    q, gt, outside = _checked(q, gt, roi)
    n, h, w = q.shape
    hist = np.zeros((3, NBINS), np.int64)
    if n == 0 or h * w == 0:
        return hist, *(np.zeros(n, np.int64) for _ in range(3))
    step = min(_KEY_FRAMES, max(1, _BATCH_PIXELS // (h * w)))
    m = np.concatenate([_gathered_histograms(q[k:k + step], gt[k:k + step], outside) for k in range(0, n, step)])
    total, above = _totals(q, tbin)
    m_above = m[:, :, tbin:].sum(-1)
    tp = m_above[:, POS]
    fp = above - tp - m_above[:, IGNORED]  # the negatives and shadows at or above the threshold
    fn = m[:, POS].sum(-1) - tp
    msum = m.sum(0)
    hist[NEG] = total - msum[SHADOW] - msum[POS] - msum[IGNORED]  # negatives: the rest
    hist[SHADOW] = msum[SHADOW]
    hist[POS] = msum[POS]
    return hist, tp, fp, fn


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
        hist, tp, fp, fn = score_batch(q, gt, roi, threshold_bin(self.threshold))
        self.hist += hist
        self.frames += q.shape[0]
        has_fg = (tp + fn) > 0
        dice = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
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
