"""Scoring exactly like the official CDnet2014 comparator, plus PR curves.

Rules (ARCHITECTURE.md, "Scoring"):
- only frames inside the temporal ROI that have ground truth are scored;
- pixels outside the spatial ROI and ground-truth 85 (outside ROI) / 170 (unknown) are
  ignored; 0 (static) and 50 (shadow) are negatives, 255 is positive; a shadow pixel
  predicted positive is a false positive and also a shadow error;
- int64 counts are summed over a video's frames, metrics are computed from the sums.

Probabilities are quantised to 8 bits as a saved grayscale PNG would hold them,
``q = round(255 p)``, and a pixel is foreground iff ``q >= floor(255 t + 0.5)`` for
threshold ``t``. One 2-D histogram per frame then yields a 256-bin histogram of ``q`` for
each pixel class: the counts at the threshold are its tail sums, and
the PR curve and average precision come from the same histograms in constant memory.
A strict 0/255 mask scored with the default rule (foreground iff 255) is threshold 1.0.
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


def quantize(prob: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] -> uint8 ``round(255 p)`` (ties to even, as OpenCV rounds);
    values outside [0, 1] are clipped, NaN is refused. uint8 maps (0..255) pass unchanged."""
    import cv2

    if prob.dtype == np.uint8:
        return prob
    p = np.ascontiguousarray(prob, np.float32)
    flat = p.reshape(-1, p.shape[-1]) if p.ndim > 1 else p.reshape(1, -1)
    if flat.min() >= 0.0 and flat.max() <= 1.0:  # the common case (NaN fails both tests)
        return cv2.convertScaleAbs(flat, alpha=255.0).reshape(p.shape)
    if np.isnan(p).any():
        raise ValueError("probability map holds NaN")
    return np.rint(np.clip(p, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)


def frame_histograms(q: np.ndarray, gt: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """N x 3 x 256 int64: per frame, histogram of ``q`` over negative, shadow and positive
    pixels (ignored pixels dropped). ``q``, ``gt``: N x H x W uint8; ``roi``: H x W bool.

    One 2-D ``cv2.calcHist`` per frame over (q, pixel class): an order of magnitude faster
    than ``np.bincount``, and exact (float32 bins hold counts up to 2**24 per frame)."""
    import cv2

    n, h, w = q.shape
    cls = cv2.LUT(np.ascontiguousarray(gt).reshape(n * h, w), _CLASS_LUT).reshape(n, h, w)
    if not roi.all():
        cls |= np.where(roi, 0, IGNORED).astype(np.uint8)  # class | 3 = ignored
    q = np.ascontiguousarray(q)
    out = np.empty((n, 3, NBINS), np.int64)
    for i in range(n):
        hist = cv2.calcHist([q[i], cls[i]], [0, 1], None, [NBINS, 4], [0, 256, 0, 4])
        out[i] = hist[:, :3].T
    return out


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


def pr_curve(hist: Mapping[str, Iterable[int]] | np.ndarray) -> dict:
    """Precision/recall at every threshold bin, average precision and the best-F threshold.

    ``hist``: 3 x 256 (negative, shadow, positive) or the ``histograms`` dict of a record.
    AP is the step-wise sum over decreasing thresholds, sum_k (R_k - R_{k+1}) P_k.
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
    r_next = np.append(recall[1:], 0.0)
    ap = float(np.nansum((recall - r_next) * precision)) if n_pos > 0 else float("nan")
    best = int(np.nanargmax(f)) if n_pos > 0 else 0
    return {
        "thresholds": (np.arange(NBINS) / 255.0).tolist(),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "average_precision": ap,
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
