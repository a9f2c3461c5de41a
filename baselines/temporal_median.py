"""Temporal median background with a continuous distance score."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from bgbench.method import Method, frames_through, register_method
from bgbench.data.video import VideoView


@register_method("temporal_median")
class TemporalMedian(Method):
    """Per-pixel temporal median of sampled past frames, distance scored

    The background is the per-pixel, per-channel median of the last ``window`` frames taken
    every ``step`` frames (of what is available at the start). The score is the largest
    channel difference d to it, mapped to ``min(1, d / (2 threshold))``: probability 0.5
    at d = threshold, so PR curves sweep the distance threshold.
    """

    params = {
        "window": (25, "sampled frames in the median", "[1, inf)"),
        "step": (5, "take every step-th frame into the buffer", "[1, inf)"),
        "threshold": (30.0, "channel difference (0-255) that gives probability 0.5", "(0, 255]"),
    }

    def segment(self, video: VideoView, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        window, step = int(self.p["window"]), int(self.p["step"])
        scale = 1.0 / (2.0 * float(self.p["threshold"]))
        buf: list[np.ndarray] = []
        bg = None
        for k, fid, img, wanted in frames_through(video, frames):
            img = np.asarray(img)
            if k % step == 0:
                buf.append(img)
                if len(buf) > window:
                    buf.pop(0)
                bg = np.median(np.stack(buf), axis=0).astype(np.float32)
            if wanted:
                d = np.abs(img.astype(np.float32) - bg).max(axis=2)  # type: ignore[operator]  # frame 0 sets bg
                yield fid, np.minimum(d * scale, 1.0)
