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
Gathering (``gather``: the scan of the ground truth and the ROI, the class of each gathered
pixel) depends on the video alone: ``TruthIndex`` keeps it for a video's later methods.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence, cast

import numpy as np

from bgbench.data import codes

if TYPE_CHECKING:
    from bgbench.data.video import Video

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


def quantize(prob: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Probabilities in [0, 1] -> uint8 ``round(255 p)`` (ties to even, as OpenCV rounds);
    values outside [0, 1] are clipped, NaN is refused. uint8 maps (0..255) pass unchanged;
    any other dtype is read as float32 first. Any shape: a stack of frames in one call gives
    the levels of each frame alone. ``out``: a contiguous uint8 array of the same shape to
    write into (a row of a batch buffer: no stacking afterwards); it is returned."""
    import cv2

    if prob.dtype == np.float32 and prob.ndim == 2 and prob.flags.c_contiguous and prob.size \
            and (out is None or (out.dtype == np.uint8 and out.shape == prob.shape and out.flags.c_contiguous)):
        # The run loop's case, one frame of float32, in few Python steps (a 320x240 frame takes
        # ~15 us): the check below, then the conversion while the map is still in the cache.
        bits = prob.reshape(-1).view(np.uint32)
        high = int(np.bitwise_or.reduce(bits if bits.size & 1 else bits.view(np.uint64)))
        if not (high | high >> 32) & 0xC0000000:
            return cv2.convertScaleAbs(prob, dst=out, alpha=255.0)
    if out is not None and (out.dtype != np.uint8 or out.shape != np.shape(prob) or not out.flags.c_contiguous):
        raise ValueError(f"out must be contiguous uint8 of shape {np.shape(prob)}, got {out.dtype} {out.shape}")
    if prob.dtype == np.uint8:
        if out is None:
            return prob
        np.copyto(out, prob)
        return out
    p = np.ascontiguousarray(prob, np.float32)
    if p.size == 0:
        return np.zeros(p.shape, np.uint8) if out is None else out
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
        rows = p.shape[-1] if p.ndim >= 2 else p.size
        flat = p.reshape(-1, rows)
        if out is None:
            return cv2.convertScaleAbs(flat, alpha=255.0).reshape(p.shape)
        cv2.convertScaleAbs(flat, dst=out.reshape(-1, rows), alpha=255.0)
        return out
    if np.isnan(p).any():
        raise ValueError("probability map holds NaN")
    q: np.ndarray = np.rint(np.clip(p, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
    if out is None:
        return q
    np.copyto(out, q)
    return out


_BATCH_PIXELS = 1 << 21  # frames gathered together (at most _KEY_FRAMES)
_EXACT = 1 << 24  # cv2.calcHist returns float32 bins: exact up to 2**24 pixels per call
_BLOCKS = ((8, np.uint64), (4, np.uint32), (2, np.uint16), (1, np.uint8))  # pixels read as one integer
# Outside the ROI ground truth is rewritten as (g | 1) & 0xFD: odd with bit 1 clear, so never
# 0, 50 or 255 whatever g was: an ignored value that also marks its block for gathering.
_OUTSIDE_OR, _OUTSIDE_AND = 0x01, 0xFD
_KEY_FRAMES = 64  # gathered pixels' keys hold 4 * frame + class in one byte
_LITTLE = sys.byteorder == "little"
_INDEX_BYTES = 1 << 28  # a video's TruthIndex keeps at most this much; beyond it, batches gather as they come


def _block(hw: int) -> tuple[int, type]:
    """The most pixels read as one integer such that blocks never straddle two frames."""
    return next((b, t) for b, t in _BLOCKS if hw % b == 0)


def _chunk_frames(hw: int) -> int:
    """Frames gathered together: at most _KEY_FRAMES, about _BATCH_PIXELS pixels."""
    return min(_KEY_FRAMES, max(1, _BATCH_PIXELS // max(hw, 1)))


def _outside_masks(roi: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The two masks that fold the ROI into the ground truth, None when every pixel is in it."""
    roi = np.asarray(roi, bool)
    if roi.all():
        return None
    return np.where(roi, 0, _OUTSIDE_OR).astype(np.uint8), np.where(roi, 0xFF, _OUTSIDE_AND).astype(np.uint8)


@dataclass(frozen=True)
class Gathered:
    """The ground truth of a few frames (at most _KEY_FRAMES) as scoring reads it: the blocks
    of ``b`` pixels that hold anything but static background inside the ROI (``idx``, flat
    block indices over the frames, ascending), how many each frame has (``blocks``), and the
    class of each of their pixels (``cls``, uint8, ``b`` per block). Every other pixel is a
    negative. ``gather`` makes one from ground truth; ``TruthIndex`` keeps a video's."""

    frames: int
    hw: int
    b: int
    idx: np.ndarray
    blocks: np.ndarray
    cls: np.ndarray


def gather(g: np.ndarray, outside: tuple[np.ndarray, np.ndarray] | None) -> Gathered:
    """``g``: F x H x W uint8 ground truth (F <= _KEY_FRAMES); ``outside``: ``_outside_masks``."""
    import cv2

    f, h, w = g.shape
    hw = h * w
    if outside is not None:  # fold the ROI into the ground truth: outside it, an ignored value
        g = np.bitwise_or(g, outside[0])
        np.bitwise_and(g, outside[1], out=g)
    else:
        g = np.ascontiguousarray(g)
    b, block = _block(hw)
    gb: np.ndarray = g.reshape(-1).view(block)
    idx = np.flatnonzero(gb != 0)
    blocks = np.diff(np.searchsorted(idx, np.arange(f + 1) * (hw // b)))  # each frame's gathered blocks
    cls = cv2.LUT(gb.take(idx, mode="clip").view(np.uint8).reshape(1, -1), _CLASS_LUT).reshape(-1) if idx.size \
        else np.zeros(0, np.uint8)
    return Gathered(f, hw, b, idx, blocks, cls)


def gather_batch(gt: np.ndarray, roi: np.ndarray) -> list[Gathered]:
    """A batch's ground truth (N x H x W uint8) gathered in chunks of ``_chunk_frames``."""
    outside = _outside_masks(roi)
    n, h, w = gt.shape
    step = _chunk_frames(h * w)
    return [gather(gt[k:k + step], outside) for k in range(0, n, step)]


class TruthIndex:
    """A video's ground truth gathered once for scoring, for the methods scored after the
    first: their batches then cost slices of the index instead of a scan of the ground truth
    and the ROI (most of what gathering costs). It is kept in chunks of ``_chunk_frames``
    frames, each from the time its frames are asked for again (the first method's batches
    are gathered as they come: keeping costs fresh memory, which pays only from the second
    use on). It holds the class of each gathered pixel and an 8-byte index per block (at
    most 2 bytes per pixel of ground truth); past ``max_bytes`` it stops growing."""

    def __init__(self, gt: np.ndarray, roi: np.ndarray, max_bytes: int = _INDEX_BYTES):
        n, h, w = gt.shape
        if roi.shape != (h, w):
            raise ValueError(f"roi {roi.shape} must be H x W of gt {gt.shape}")
        self._gt, self._outside, self.max_bytes = gt, _outside_masks(roi), max_bytes
        self.hw = h * w
        self.b = _block(self.hw)[0]
        self.step = _chunk_frames(self.hw)
        self._parts: dict[int, Gathered] = {}
        self._asked: dict[int, int] = {}  # chunk -> frames asked for so far
        self.nbytes = 0
        self._full = False  # a chunk did not fit the budget

    def batch(self, positions: Sequence[int]) -> list[Gathered]:
        """Gathered chunks for the frames at ``positions`` (indices into the ground truth)."""
        pos = [int(p) for p in positions]
        if pos and not 0 <= min(pos) <= max(pos) < len(self._gt):
            raise IndexError(f"positions {min(pos)}..{max(pos)} outside the {len(self._gt)} ground-truth frames")
        return [self._chunk(pos[k:k + self.step]) for k in range(0, len(pos), self.step)]

    def _keep(self, c: int) -> bool:
        """Whether chunk ``c`` is kept now: gathered and within the budget (once a chunk did
        not fit, no other is gathered to be measured: the batches gather as they come)."""
        if c not in self._parts:
            if self._full:
                return False
            part = gather(self._gt[c * self.step:(c + 1) * self.step], self._outside)
            size = part.idx.nbytes + part.cls.nbytes
            if self.nbytes + size > self.max_bytes:
                self._full = True
                return False
            self._parts[c] = part
            self.nbytes += size
        return True

    def _chunk(self, pos: list[int]) -> Gathered:
        runs: list[list[int]] = []  # [chunk, first, end) of consecutive frames within one chunk
        for p in pos:
            c, j = divmod(p, self.step)
            if runs and runs[-1][0] == c and runs[-1][2] == j:
                runs[-1][2] = j + 1
            else:
                runs.append([c, j, j + 1])
        for c, j0, j1 in runs:
            self._asked[c] = self._asked.get(c, 0) + j1 - j0
        again = all(self._asked[c] > len(self._gt[c * self.step:(c + 1) * self.step]) for c, _, _ in runs)
        if not (all(c in self._parts for c, _, _ in runs) or (again and all(self._keep(c) for c, _, _ in runs))):
            consecutive = pos == list(range(pos[0], pos[0] + len(pos)))
            return gather(self._gt[pos[0]:pos[-1] + 1] if consecutive else self._gt[pos], self._outside)
        b, nb = self.b, self.hw // self.b
        idx, cls, blocks, k = [], [], [], 0
        for c, j0, j1 in runs:  # a part's block indices count from its first frame: shift them to k
            part = self._parts[c]
            s0, s1 = part.blocks[:j0].sum(), part.blocks[:j1].sum()
            idx.append(part.idx[s0:s1] + (k - j0) * nb if k != j0 else part.idx[s0:s1])
            cls.append(part.cls[b * s0:b * s1])
            blocks.append(part.blocks[j0:j1])
            k += j1 - j0
        one = len(runs) == 1
        return Gathered(len(pos), self.hw, b, idx[0] if one else np.concatenate(idx),
                        blocks[0] if one else np.concatenate(blocks), cls[0] if one else np.concatenate(cls))


def _checked(q: np.ndarray, gt: np.ndarray, roi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``q`` and ``gt`` as contiguous N x H x W uint8, and the ROI as bool."""
    q, gt, roi = np.asarray(q), np.asarray(gt), np.asarray(roi, bool)
    if q.dtype != np.uint8 or gt.dtype != np.uint8:
        raise TypeError(f"q and gt must be uint8 (see quantize), got {q.dtype} and {gt.dtype}")
    if q.ndim != 3 or q.shape != gt.shape or roi.shape != q.shape[1:]:
        raise ValueError(f"q {q.shape} and gt {gt.shape} must be N x H x W and roi {roi.shape} H x W")
    return np.ascontiguousarray(q), gt, roi


def _checked_truth(q: np.ndarray, truth: Sequence[Gathered]) -> np.ndarray:
    q = np.asarray(q)
    if q.dtype != np.uint8 or q.ndim != 3:
        raise TypeError(f"q must be N x H x W uint8 (see quantize), got {q.dtype} {q.shape}")
    n, h, w = q.shape
    if sum(t.frames for t in truth) != n or any(t.hw != h * w for t in truth):
        raise ValueError(f"the ground truth given covers {sum(t.frames for t in truth)} frames of "
                         f"{truth[0].hw if truth else '?'} pixels; q is {q.shape}")
    return np.ascontiguousarray(q)


def frame_histograms(q: np.ndarray, gt: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """N x 3 x 256 int64: per frame, histogram of ``q`` over negative, shadow and positive
    pixels (ignored pixels dropped). ``q``, ``gt``: N x H x W uint8; ``roi``: H x W bool.

    Exact for any uint8 ``gt``: values other than 0, 50 and 255 are ignored, like pixels
    outside ``roi``. See the module notes for how it is made fast."""
    q, gt, roi = _checked(q, gt, roi)
    n, h, w = q.shape
    hw = h * w
    out = np.zeros((n, 3, NBINS), np.int64)
    if n == 0 or hw == 0:
        return out
    k = 0
    for t in gather_batch(gt, roi):
        qb = q[k:k + t.frames]
        m = _gathered_histograms(qb, t)
        total = np.zeros((len(qb), NBINS), np.int64)
        binary, nonzero = _binary_frames(qb)
        total[binary, 0] = hw - nonzero[binary]
        total[binary, 255] = nonzero[binary]
        for i in np.flatnonzero(~binary):
            total[i] = _calc_hist([qb[i]], [NBINS], [0, NBINS])[:, 0]
        out[k:k + t.frames, NEG] = total - m[:, SHADOW] - m[:, POS] - m[:, IGNORED]  # negatives: the rest
        out[k:k + t.frames, SHADOW] = m[:, SHADOW]
        out[k:k + t.frames, POS] = m[:, POS]
        k += t.frames
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
    # cuts is never empty, so the sum is an array (sum's start, 0, only types as int)
    return cast(np.ndarray, sum(cv2.calcHist([im[c] for im in images], channels, None, sizes, ranges).astype(np.int64)
                                for c in cuts))


def _gathered_histograms(q: np.ndarray, t: Gathered) -> np.ndarray:
    """F x 4 x 256 int64: per frame of ``q`` (F x H x W), the histogram of ``q`` by class over
    the gathered blocks of ``t``. Every other pixel is a negative."""
    import cv2

    f = t.frames
    if not t.idx.size:
        return np.zeros((f, 4, NBINS), np.int64)
    block = dict(_BLOCKS)[t.b]
    # Each gathered pixel becomes one uint16 key, (4 * frame + class) * 256 + q, and one 1-D
    # histogram of F * 1024 bins counts them all (cv2.calcHist's fast path for 16-bit data).
    if f > 1:  # + 4 * frame, to all the bytes of a block at once
        per_block = (np.arange(f, dtype=block) * block(4 * (256**t.b - 1) // 255)).repeat(t.blocks)
        hi = np.add(t.cls.view(block), per_block).view(np.uint8).reshape(1, -1)
    else:
        hi = t.cls.reshape(1, -1)
    qm = q.reshape(-1).view(block).take(t.idx, mode="clip").view(np.uint8).reshape(1, -1)
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
    q, gt, roi = _checked(q, gt, roi)
    return score_gathered(q, gather_batch(gt, roi), tbin)


def score_gathered(q: np.ndarray, truth: Sequence[Gathered], tbin: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``score_batch`` with the ground truth already gathered (``gather_batch``, ``TruthIndex``)."""
    q = _checked_truth(q, truth)
    n, h, w = q.shape
    hist = np.zeros((3, NBINS), np.int64)
    if n == 0 or h * w == 0:
        return hist, np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    ks = np.cumsum([0] + [t.frames for t in truth])
    m = np.concatenate([_gathered_histograms(q[k:k + t.frames], t) for k, t in zip(ks, truth)])
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
        self._add(*score_batch(q, gt, roi, threshold_bin(self.threshold)))

    def add(self, q: np.ndarray, truth: Sequence[Gathered]) -> None:
        """``update`` with the batch's ground truth gathered (``Video.truth``, ``TruthIndex``)."""
        self._add(*score_gathered(q, truth, threshold_bin(self.threshold)))

    def add_scored(self, hist: np.ndarray, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> None:
        """Add a batch scored elsewhere (``score_batch``'s tuple; ``bgbench.scoring.device``)."""
        self._add(hist, tp, fp, fn)

    def _add(self, hist: np.ndarray, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> None:
        self.hist += hist
        self.frames += len(tp)
        has_fg = (tp + fn) > 0
        dice = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        self.dice_sum += float(dice[has_fg].sum())
        self.dice_frames += int(has_fg.sum())

    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in counts_at(self.hist, threshold_bin(self.threshold)).items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "counts": self.counts(),
            "dice": {"sum": self.dice_sum, "frames": self.dice_frames},
            "histograms": {"negative": self.hist[NEG].tolist(), "shadow": self.hist[SHADOW].tolist(),
                           "positive": self.hist[POS].tolist()},
        }


def degenerate(hist: np.ndarray, counts: Mapping[str, int]) -> str | None:
    """Why a video's output is degenerate, from what scoring already holds (no pass over the
    maps): "constant map" when every scored pixel fell in one of the 256 levels (one
    non-empty histogram bin over the negative, shadow and positive rows), "no positive pixel"
    when nothing reached the threshold although the frames hold foreground (tp + fp = 0 <
    tp + fn); None otherwise. A collapsed model thus reads as such, never just "F 0".
    (A NaN in a map never gets here: ``quantize`` refuses it and the job fails.)"""
    per_level = np.asarray(hist).sum(axis=0)
    if per_level.sum() > 0 and np.count_nonzero(per_level) == 1:
        return "constant map"
    if counts["tp"] + counts["fp"] == 0 and counts["tp"] + counts["fn"] > 0:
        return "no positive pixel"
    return None


def _div(a: float, b: float) -> float:
    return a / b if b else float("nan")


def f_measure(tp: float, fp: float, fn: float) -> float:
    """The official comparator's F = 2PR/(P+R) (CDnet's Stats.py), from counts.

    Undefined (NaN) where the scored pixels hold no foreground (TP + FN = 0: R = 0/0), as
    the comparator's is: such a video cannot measure detection, so it is left out of the
    means and named in the tables, never counted as 0. Where foreground exists and nothing
    of it is found (TP = 0), F = 0: the limit of 2PR/(P+R) as R -> 0, also where nothing is
    predicted (P = 0/0), where the comparator's arithmetic gives 0/0; 0 keeps a method that
    predicts nothing from leaving the means. Elsewhere 2PR/(P+R) = 2TP/(2TP+FP+FN)."""
    if tp + fn == 0:
        return float("nan")
    return 2 * tp / (2 * tp + fp + fn)


def metrics(c: Mapping[str, int], dice: Mapping[str, float] | None = None) -> dict[str, float]:
    """The CDnet metrics (and FPR on shadows, MCC, Mean Dice) from summed counts.
    An undefined ratio (0/0) is NaN, never a silent 0: recall and FNR without foreground
    (TP + FN = 0), precision with nothing predicted (TP + FP = 0), as the official
    comparator's ratios; F by ``f_measure``. NaN is written as null and left out of means."""
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
        "f_measure": f_measure(tp, fp, fn),
        "fpr_shadow": _div(float(c["shadow_errors"]), float(c["shadow_pixels"])),
        "mcc": _div(tp * tn - fp * fn, denom),
    }
    if dice is not None:
        out["mean_dice"] = _div(dice["sum"], dice["frames"])
    return out


MIN_PR_LEVELS = 3  # fewer distinct output levels than this: one operating point, no curve, no AP


def pr_curve(hist: Mapping[str, Iterable[int]] | np.ndarray) -> dict[str, Any]:
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


def score_video(video: Video, preds: Mapping[int, np.ndarray], threshold: float = 0.5, batch: int = 64) -> VideoScore:
    """Score predictions {frame id: probability or uint8 map} on a Video's eval frames."""
    score = VideoScore(threshold)
    ids = [i for i in video.eval_frames if i in preds]
    roi = video.roi
    for k in range(0, len(ids), batch):
        chunk = ids[k:k + batch]
        q = np.stack([quantize(preds[i]) for i in chunk])
        score.update(q, video.gts(chunk), roi)
    return score
