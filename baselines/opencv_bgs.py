"""Background subtractors from OpenCV (and its contrib module), behind bgbench's interface.

Each wrapper feeds the video's frames, in order from its first frame, to one OpenCV
subtractor built with the given parameters, and yields the requested frames' masks as
0/1 probabilities. Frames are converted to BGR, the order OpenCV's own readers give, so a
plain ``cv2.imread`` loop over the same files produces the same masks.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from benchmark.method import Method, register_method
from benchmark.video import VideoView


class OpenCVSubtractor(Method):
    """Base for OpenCV subtractors: ``make()`` returns a fresh cv2 subtractor."""

    learning_rate_param = "learning_rate"

    def make(self) -> Any:
        raise NotImplementedError

    def to_prob(self, mask: np.ndarray) -> np.ndarray:
        return (mask == 255).astype(np.float32)

    def segment(self, video: VideoView, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        import cv2

        wanted = set(frames)
        last = max(wanted)
        sub = self.make()
        lr = float(self.p.get(self.learning_rate_param, -1))
        stack = video.all_frames()
        bgr = np.empty(stack.shape[1:], np.uint8)
        for k, fid in enumerate(video.frame_ids):
            if fid > last:
                break
            cv2.cvtColor(stack[k], cv2.COLOR_RGB2BGR, dst=bgr)
            mask = sub.apply(bgr, learningRate=lr)
            if fid in wanted:
                yield fid, self.to_prob(mask)


@register_method("gmm_zivkovic")
class GMMZivkovic(OpenCVSubtractor):
    """Zivkovic's improved GMM (OpenCV MOG2), shadows mapped to background"""

    params = {
        "history": (500, "frames that shape the model"),
        "var_threshold": (16.0, "squared Mahalanobis distance that counts as a match"),
        "detect_shadows": (True, "detect shadows (then mapped to background, value 127 -> 0)"),
        "learning_rate": (-1.0, "-1: automatic (1/history)"),
    }

    def make(self) -> Any:
        import cv2

        return cv2.createBackgroundSubtractorMOG2(
            history=int(self.p["history"]), varThreshold=float(self.p["var_threshold"]),
            detectShadows=bool(self.p["detect_shadows"]))
