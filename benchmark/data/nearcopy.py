"""Near copies: videos that share footage without sharing bytes or pixels.

The exact-copy guard (``records.provenance.check_unique_content``) catches a scene given
twice byte for byte, or re-encoded losslessly, or renumbered. A lossy re-encode (JPEG
quality 90), a copy with a frame dropped, or a sub-clip (a 51-frame excerpt of a scene
under another dataset name) passes it. This module compares videos by a perceptual
signature, frame by frame, whatever the numbering:

- Signature: every frame as a grey 32x24 thumbnail (``THUMB``; OpenCV's area
  interpolation of the decoded frame), cached beside the decoded frames (a ``derived``
  stack of the frame cache, 768 bytes a frame), made zero-mean and unit-norm when compared,
  so brightness and contrast shifts of a re-encode do not matter and a flat frame matches
  nothing.
- Frame distance: 1 - the correlation of two thumbnails (0 identical, 1 unrelated).
- Match: each *query* frame of one video (every k-th frame, k = ceil(frames / ``QUERIES``);
  all frames of a video of up to ``QUERIES`` frames) is compared with every frame of the
  other video; it matches if its nearest frame there is within ``THRESHOLD``. Both
  directions are queried, so a short excerpt is found inside a long scene and a long scene
  inside its excerpt.
- Rule: two videos are near copies if at least ``MIN_FRAMES`` query frames (or all of them,
  for a video with fewer) match in one direction. A split whose training (or validation)
  videos and test videos include a near-copy pair is refused (BadInput) naming both paths
  and the matching frame ranges. The same video on both sides (scene-specific, sampled) is
  no pair: its frames are kept apart by the protocol.

``THRESHOLD`` and the false-alarm figure on every pair of real videos in ../shared/data:
docs/data.md (``python -m tests.perf.near_copies``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

THUMB = (32, 24)  # (width, height)
QUERIES = 64
THRESHOLD = 0.05  # 1 - correlation of two thumbnails; see docs/data.md for the measured margins
MIN_FRAMES = 3
_VERSION = "nearcopy-v1"


def thumbnails(video) -> np.ndarray:
    """N x 24 x 32 uint8 grey thumbnails of every frame of ``video``, in frame order
    (cached with the decoded frames where the video has files)."""
    import cv2

    w, h = THUMB

    def small(frame: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(np.asarray(frame), cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else np.asarray(frame)
        return cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA)

    source = video.source
    if hasattr(source, "files"):  # the decoded frames are opened only if the thumbnails are not cached yet
        return source.derived(f"thumb{w}x{h}", lambda k: small(source.all_frames()[k]), (h, w), _VERSION)
    return np.stack([small(f) for f in source.all_frames()])


def one_blas_thread():
    """BLAS on one thread inside the block (threadpoolctl, where installed): the products
    here are small, and BLAS threads only contend (on two busy cores, 465 pairs took 15 s
    with BLAS's threads and 1.4 s with one)."""
    import contextlib

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, "blas")


def _unit(th: np.ndarray) -> np.ndarray:
    x = th.reshape(len(th), -1).astype(np.float32)
    x -= x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 1e-3)  # a flat frame: the zero vector


@dataclass(frozen=True)
class Signature:
    vid: str
    path: str
    ids: tuple[int, ...]
    vectors: np.ndarray  # N x 768, zero-mean unit-norm (zero for flat frames)

    @property
    def query_positions(self) -> np.ndarray:
        n = len(self.ids)
        k = max(1, math.ceil(n / QUERIES))
        return np.arange(0, n, k)


def signature(video) -> Signature:
    return Signature(video.id, str(getattr(video, "path", video.id)), tuple(video.frame_ids), _unit(thumbnails(video)))


@dataclass(frozen=True)
class Shared:
    """Frames of ``b`` found in ``a``: query frames of b (ids ``b_frames``) whose nearest
    frames in a (``a_frames``) are within THRESHOLD."""

    a: Signature
    b: Signature
    matched: int
    queried: int
    a_frames: tuple[int, ...]
    b_frames: tuple[int, ...]
    worst: float  # the largest distance among the matched frames

    def describe(self) -> str:
        return (f"{self.b.path} frames {_span(self.b_frames)} and {self.a.path} frames {_span(self.a_frames)} "
                f"({self.matched} of {self.queried} sampled frames within {THRESHOLD} of a frame of the other, "
                f"distance 1 - correlation of {THUMB[0]}x{THUMB[1]} grey thumbnails, the farthest {self.worst:.4f})")


def _span(ids: Sequence[int]) -> str:
    lo, hi = min(ids), max(ids)
    return f"{lo}-{hi}" if lo != hi else str(lo)


def nearest(query: Signature, ref: Signature) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query positions, distance to the nearest frame of ``ref``, that frame's position)."""
    q = query.query_positions
    if len(ref.vectors) == 0 or len(q) == 0:
        return q, np.ones(len(q)), np.zeros(len(q), int)
    sims = query.vectors[q] @ ref.vectors.T
    best = sims.argmax(axis=1)
    dist = 1.0 - sims[np.arange(len(q)), best]
    flat = ~query.vectors[q].any(axis=1)
    dist[flat] = 1.0  # a flat frame is no evidence
    return q, dist, best


def _one_way(b: Signature, a: Signature) -> Shared | None:
    q, dist, best = nearest(b, a)
    hit = dist <= THRESHOLD
    need = min(MIN_FRAMES, len(q))
    if need == 0 or int(hit.sum()) < need:
        return None
    return Shared(a, b, int(hit.sum()), len(q), tuple(a.ids[i] for i in best[hit]), tuple(b.ids[i] for i in q[hit]),
                  float(dist[hit].max()))


def shared_frames(a: Signature, b: Signature) -> Shared | None:
    """Whether ``a`` and ``b`` share footage (the rule in the module docstring): the
    stronger direction's finding, or None."""
    found = [s for s in (_one_way(b, a), _one_way(a, b)) if s is not None]
    return max(found, key=lambda s: s.matched / s.queried) if found else None


def closest(a: Signature, b: Signature) -> float:
    """The smallest frame distance between the two videos' query frames and the other's frames."""
    return float(min(nearest(b, a)[1].min(initial=1.0), nearest(a, b)[1].min(initial=1.0)))


def check_splits(splits: Iterable, videos: dict) -> None:
    """BadInput for the first split whose training or validation videos and test videos
    include two different videos sharing footage; names both paths and the frame ranges."""
    sigs: dict[str, Signature] = {}
    checked: set[tuple[str, str]] = set()

    def sig(vid: str) -> Signature:
        if vid not in sigs:
            sigs[vid] = signature(videos[vid])
        return sigs[vid]

    with one_blas_thread():
        _check(splits, videos, sig, checked)


def _check(splits, videos, sig, checked) -> None:
    from bgbench.errors import BadInput

    for split in splits:
        train = sorted({v for v, _ in tuple(split.train) + tuple(split.val)})
        test = sorted({v for v, _ in split.test})
        for t in test:
            for r in train:
                pair = (min(r, t), max(r, t))  # both directions are compared: one pair, once
                if r == t or pair in checked:
                    continue
                checked.add(pair)
                found = shared_frames(sig(r), sig(t))
                if found is not None:
                    raise BadInput(
                        f"split {split.name} trains on {videos[r].path} and tests on {videos[t].path}, which share "
                        f"footage: {found.describe()}: a near copy (re-encode, dropped frames or an excerpt) trains "
                        "on what it tests", videos[t].path,
                        "give the scene once (drop the copy or excerpt), or use a protocol that does not train across "
                        "videos (full, scene-specific)")
