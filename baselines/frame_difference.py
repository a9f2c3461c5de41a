"""Frame differencing with a continuous score."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from bgbench.method import Method, register_method
from bgbench.data.video import VideoView


@register_method("frame_difference")
class FrameDifference(Method):
    """Absolute difference to the frame `gap` frames earlier, distance scored

    The score is the largest channel difference d, mapped to ``min(1, d / (2 threshold))``:
    probability 0.5 at d = threshold. The first ``gap`` frames of a video are compared
    with its first frame.
    """

    temporal_context = 1
    params = {
        "gap": (1, "compare with the frame this many frames earlier", "[1, inf)"),
        "threshold": (15.0, "channel difference (0-255) that gives probability 0.5", "(0, 255]"),
    }

    def segment(self, video: VideoView, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        import cv2

        gap = int(self.p["gap"])
        scale = 1.0 / (2.0 * float(self.p["threshold"]))
        stack = video.all_frames()
        pos = {fid: k for k, fid in enumerate(video.frame_ids)}
        for fid in sorted(frames):
            k = pos[fid]
            d = cv2.absdiff(stack[k], stack[max(k - gap, 0)]).max(axis=2)
            yield fid, np.minimum(d.astype(np.float32) * scale, 1.0)
