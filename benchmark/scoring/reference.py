"""The one reference comparator: the strongest plain loop one would write to count what
CDnet's comparator counts, with no histogram, no gathering and no cache.

Every benchmark that compares bgbench's scoring with "a plain loop" uses this code
(``bgbench speed --scoring`` and ``python -m bgbench.timing.perf``, the comparator script
of ``bgbench score``'s whole-process figure, ``tests/perf/*``), and the tests count with it
(``tests/conftest.py``). It is plain but not weak: per frame, three class masks and six
``np.count_nonzero`` calls (``np.sum`` over booleans is ~2.6x slower), the complements
by subtraction. It is independent of ``bgbench.scoring.metrics`` (no code shared).

Rules (the official comparator's): pixels outside the ROI and ground truth 85 (outside
ROI) and 170 (unknown) are ignored; 0 and 50 (shadow) are negatives, 255 is positive; a
shadow pixel predicted positive is a false positive and a shadow error.
"""

from __future__ import annotations

from typing import Iterable, cast

import numpy as np

KEYS = ("tp", "fp", "tn", "fn", "shadow_errors", "shadow_pixels")


def frame_counts(pred: np.ndarray, g: np.ndarray, roi: np.ndarray) -> tuple[np.intp, ...]:
    """(tp, fp, tn, fn, shadow_errors, shadow_pixels) of one frame: ``pred`` H x W bool
    (foreground), ``g`` H x W uint8 ground truth, ``roi`` H x W bool."""
    pos = (g == 255) & roi
    shadow = (g == 50) & roi
    neg = ((g == 0) & roi) | shadow
    tp = np.count_nonzero(pred & pos)
    fp = np.count_nonzero(pred & neg)
    shadow_errors = np.count_nonzero(pred & shadow)
    return (tp, fp, np.count_nonzero(neg) - fp, np.count_nonzero(pos) - tp, shadow_errors,
            np.count_nonzero(shadow))


def reference_counts(preds: Iterable[np.ndarray], gt: Iterable[np.ndarray], roi: np.ndarray) -> dict[str, int]:
    """Counts summed over frames: ``preds`` bool masks (foreground), ``gt`` uint8 ground truth."""
    total = [0] * 6
    roi = np.asarray(roi, bool)
    for p, g in zip(preds, gt):
        for k, c in enumerate(frame_counts(np.asarray(p, bool), g, roi)):
            total[k] += int(c)
    return dict(zip(KEYS, total))


def foreground(m: np.ndarray, tbin: int) -> np.ndarray:
    """A map as a plain loop thresholds it at level ``tbin``: uint8 values ``m >= tbin``;
    probabilities ``round(255 m) >= tbin`` (float32 product, ties to even), so that NaN-free
    maps in [0, 1] give the same pixels as bgbench's 8-bit levels."""
    if m.dtype == np.uint8:
        return cast(np.ndarray, m >= tbin)  # numpy's stubs type comparisons of untyped arrays as Any
    return cast(np.ndarray, np.rint(m * np.float32(255.0)) >= tbin)


def map_counts(maps: Iterable[np.ndarray], gt: Iterable[np.ndarray], roi: np.ndarray, tbin: int) -> dict[str, int]:
    """``reference_counts`` of maps (uint8 levels or float probabilities) at level ``tbin``."""
    return reference_counts((foreground(m, tbin) for m in maps), gt, roi)
