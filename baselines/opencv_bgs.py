"""Background subtractors from OpenCV and its contrib module (bgsegm).

Each wrapper feeds the video's frames, in order from its first frame, to one OpenCV
subtractor built with the given parameters, and yields the requested frames' masks. Frames
are kept in OpenCV's BGR order, so the subtractor sees exactly what a plain ``cv2.imread``
loop gives it and the masks are identical (a test checks). Masks are binary: 255 is
foreground; MOG2's and KNN's shadow value (127) is mapped to background. They are yielded
as uint8 (value / 255 is the probability), without a copy.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import numpy as np

from bgbench.method import Method, frames_through, register_method
from bgbench.execution.scoped import opencv_threads
from bgbench.data.video import VideoView


class OpenCVSubtractor(Method):
    """Base for OpenCV subtractors: ``make()`` returns a fresh cv2 subtractor."""

    binary_output = True

    has_shadow_value = False  # MOG2, KNN: 127 marks shadows
    # GSOC, LSBP draw random numbers from OpenCV's global generator, one stream per worker
    # thread: with more than one OpenCV thread their masks change from run to run (8,700
    # pixels of 60 highway frames differed between two 2-thread runs). They run at one.
    seeded = False

    def make(self) -> Any:
        raise NotImplementedError

    def learning_rate(self) -> float:
        return float(self.p.get("learning_rate", -1.0))

    def fresh(self) -> Any:
        """A new subtractor, with OpenCV's random generator seeded where it matters."""
        import cv2

        if self.seeded:
            cv2.setRNGSeed(int(self.seed))
        return self.make()

    def deterministic(self):
        """The thread setting under which the masks are reproducible (one thread if seeded)."""
        return opencv_threads(1) if self.seeded else contextlib.nullcontext()

    def raw_loop(self, frames: np.ndarray) -> None:
        """The library called directly on in-memory frames (the speed baseline)."""
        with self.deterministic():
            sub, lr = self.fresh(), self.learning_rate()
            for f in frames:
                sub.apply(f, learningRate=lr)

    def segment(self, video: VideoView, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        import cv2

        with self.deterministic():
            sub = self.fresh()
            lr = self.learning_rate()
            for _, fid, img, wanted in frames_through(video, frames):
                mask = sub.apply(img, learningRate=lr)
                if wanted:
                    if self.has_shadow_value:
                        mask = cv2.threshold(mask, 254, 255, cv2.THRESH_BINARY)[1]
                    yield fid, mask


@register_method("gmm_zivkovic")
class GMMZivkovic(OpenCVSubtractor):
    """Zivkovic's improved GMM (OpenCV MOG2), shadows mapped to background"""

    has_shadow_value = True
    params = {
        "history": (500, "frames that shape the model", "[1, inf)"),
        "var_threshold": (16.0, "squared Mahalanobis distance that counts as a match", "(0, inf)"),
        "detect_shadows": (True, "detect shadows (then mapped to background, 127 -> 0)"),
        "learning_rate": (-1.0, "-1: automatic (1/history)", "[-1, 1]"),
    }

    def make(self) -> Any:
        import cv2

        return cv2.createBackgroundSubtractorMOG2(
            history=int(self.p["history"]), varThreshold=float(self.p["var_threshold"]),
            detectShadows=bool(self.p["detect_shadows"]))


@register_method("mog_kb")
class MOGKaewTraKulPong(OpenCVSubtractor):
    """KaewTraKulPong & Bowden's GMM (OpenCV bgsegm MOG)"""

    params = {
        "history": (200, "frames that shape the model", "[1, inf)"),
        "nmixtures": (5, "Gaussians per pixel", "[1, inf)"),
        "background_ratio": (0.7, "weight share of the background components", "(0, 1]"),
        "noise_sigma": (0.0, "noise level; 0: OpenCV's default (15)", "[0, inf)"),
        "learning_rate": (-1.0, "-1: automatic (1/history)", "[-1, 1]"),
    }

    def make(self) -> Any:
        import cv2

        return cv2.bgsegm.createBackgroundSubtractorMOG(
            history=int(self.p["history"]), nmixtures=int(self.p["nmixtures"]),
            backgroundRatio=float(self.p["background_ratio"]), noiseSigma=float(self.p["noise_sigma"]))


@register_method("knn")
class KNN(OpenCVSubtractor):
    """K-nearest-neighbours background model (OpenCV KNN), shadows mapped to background"""

    has_shadow_value = True
    seeded = True
    params = {
        "history": (500, "frames that shape the model", "[1, inf)"),
        "dist2_threshold": (400.0, "squared distance that counts as a neighbour", "(0, inf)"),
        "detect_shadows": (True, "detect shadows (then mapped to background, 127 -> 0)"),
        "learning_rate": (-1.0, "-1: automatic", "[-1, 1]"),
    }

    def make(self) -> Any:
        import cv2

        return cv2.createBackgroundSubtractorKNN(
            history=int(self.p["history"]), dist2Threshold=float(self.p["dist2_threshold"]),
            detectShadows=bool(self.p["detect_shadows"]))


@register_method("gsoc")
class GSOC(OpenCVSubtractor):
    """GSoC 2017 background subtractor with LSBP-style features (OpenCV bgsegm GSOC)"""

    seeded = True
    params = {
        "n_samples": (20, "samples per pixel", "[1, inf)"),
        "replace_rate": (0.003, "probability of replacing a sample", "[0, 1]"),
        "propagation_rate": (0.01, "probability of propagating to neighbours", "[0, 1]"),
        "hits_threshold": (32, "hits before a sample is trusted", "[1, inf)"),
        "learning_rate": (-1.0, "-1: automatic", "[-1, 1]"),
    }

    def make(self) -> Any:
        import cv2

        return cv2.bgsegm.createBackgroundSubtractorGSOC(
            nSamples=int(self.p["n_samples"]), replaceRate=float(self.p["replace_rate"]),
            propagationRate=float(self.p["propagation_rate"]), hitsThreshold=int(self.p["hits_threshold"]))


@register_method("lsbp")
class LSBP(OpenCVSubtractor):
    """Local SVD binary pattern background subtractor (OpenCV bgsegm LSBP)"""

    seeded = True
    params = {
        "n_samples": (20, "samples per pixel", "[1, inf)"),
        "lsbp_radius": (16, "LSBP descriptor radius", "[1, inf)"),
        "learning_rate": (-1.0, "-1: automatic", "[-1, 1]"),
    }

    def make(self) -> Any:
        import cv2

        return cv2.bgsegm.createBackgroundSubtractorLSBP(
            nSamples=int(self.p["n_samples"]), LSBPRadius=int(self.p["lsbp_radius"]))


@register_method("cnt")
class CNT(OpenCVSubtractor):
    """Counting-based background subtractor (OpenCV bgsegm CNT)"""

    params = {
        "min_pixel_stability": (15, "frames a colour must hold to become background", "[1, inf)"),
        "use_history": (True, "reward pixels that were stable for long"),
        "max_pixel_stability": (15 * 60, "cap on the stability count", "[1, inf)"),
        "is_parallel": (False, "OpenCV's internal threads (off: jobs already run in parallel)"),
        "learning_rate": (-1.0, "-1: automatic", "[-1, 1]"),
    }

    def make(self) -> Any:
        import cv2

        return cv2.bgsegm.createBackgroundSubtractorCNT(
            minPixelStability=int(self.p["min_pixel_stability"]), useHistory=bool(self.p["use_history"]),
            maxPixelStability=int(self.p["max_pixel_stability"]), isParallel=bool(self.p["is_parallel"]))
