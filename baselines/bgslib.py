"""Methods from BGSLibrary's Python module (``pip install bgslibrary``, imported as ``pybgs``).

The module reads and writes ``./config/<Algorithm>.xml`` in the working directory and
prints to stdout when an algorithm is made or destroyed. The wrapper keeps all of that out
of the user's folder and output: it writes the parameters (the authors' defaults unless
``--set`` changes them; ``showOutput`` always 0) into a private temporary folder, makes the
algorithm there with stdout silenced, and removes the folder afterwards. Parameter names
are the authors' XML names; ``bgbench info subsense`` lists them with their defaults.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from bgbench.errors import MethodUnavailable
from bgbench.method import Method, frames_through, register_method
from bgbench.data.video import VideoView


@contextmanager
def private_workdir(folder: Path) -> Iterator[None]:
    """Run inside ``folder`` with the native stdout (file descriptor 1) silenced."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    cwd = os.getcwd()
    try:
        os.dup2(devnull, 1)
        os.chdir(folder)
        yield
    finally:
        os.chdir(cwd)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def seed_c_rand(seed: int) -> None:
    """The LBSP family (SuBSENSE, PAWCS, LOBSTER) and ViBe draw from C's rand(): seed it,
    so a method's masks do not depend on what ran before it in the process."""
    import ctypes
    import ctypes.util

    ctypes.CDLL(ctypes.util.find_library("c")).srand(ctypes.c_uint(seed))


def write_config(folder: Path, algorithm: str, values: dict[str, Any]) -> Path:
    """The XML BGSLibrary reads at start-up, written with OpenCV's FileStorage."""
    import cv2

    (folder / "config").mkdir(parents=True, exist_ok=True)
    path = folder / "config" / f"{algorithm}.xml"
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    for k, v in {**values, "showOutput": 0}.items():
        fs.write(k, int(v) if isinstance(v, (bool, int)) else float(v))
    fs.release()
    return path


class BGSLibraryMethod(Method):
    """Base for BGSLibrary's algorithms: ``algorithm`` names the pybgs class."""

    requires = ("BGSLibrary's Python module: apt-get install libopencv-dev cmake, then pip install bgslibrary==3.3.1 "
                "(or pip install -e '.[bgslibrary]'); see README, 'BGSLibrary'")
    algorithm: str = ""  # pybgs class name

    @classmethod
    def module(cls):
        try:
            import pybgs
        except ImportError as e:
            raise MethodUnavailable(f"{cls.name} is unavailable here: BGSLibrary's module pybgs is not installed ({e})",
                                    cls.name, cls.requires) from None
        return pybgs

    @classmethod
    def check_available(cls) -> None:
        cls.module()

    def __init__(self, *args: Any, **kwargs: Any):
        self.module()
        super().__init__(*args, **kwargs)

    def make(self, folder: Path) -> Any:
        """A fresh algorithm configured from ``folder`` (made and kept by the caller)."""
        write_config(folder, self.algorithm, self.p)
        seed_c_rand(self.seed)
        with private_workdir(folder):
            return getattr(self.module(), self.algorithm)()

    def raw_loop(self, frames: np.ndarray) -> None:
        """The library called directly on in-memory frames (the speed baseline)."""
        folder = Path(tempfile.mkdtemp(prefix="bgbench-bgslibrary-"))
        try:
            algo = self.make(folder)
            with private_workdir(folder):
                algo.apply(frames[0])
            for f in frames[1:]:
                algo.apply(f)
            with private_workdir(folder):
                del algo
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def segment(self, video: VideoView, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        folder = Path(tempfile.mkdtemp(prefix="bgbench-bgslibrary-"))
        algo = None
        try:
            algo = self.make(folder)
            for k, fid, img, wanted in frames_through(video, frames):
                if k == 0:  # the configuration is read on the first frame
                    with private_workdir(folder):
                        mask = algo.apply(img)
                else:
                    mask = algo.apply(img)
                if wanted:
                    yield fid, mask if mask.ndim == 2 else mask[..., 0]
        finally:
            if algo is not None:
                with private_workdir(folder):
                    del algo
            shutil.rmtree(folder, ignore_errors=True)


@register_method("subsense")
class SuBSENSE(BGSLibraryMethod):
    """SuBSENSE (St-Charles et al. 2015), BGSLibrary"""

    algorithm = "SuBSENSE"
    params = {
        "fRelLBSPThreshold": (0.333, "LBSP relative similarity threshold", "[0, 1]"),
        "nDescDistThresholdOffset": (3, "offset of the descriptor distance threshold", "[0, inf)"),
        "nMinColorDistThreshold": (30, "minimum colour distance threshold", "[0, inf)"),
        "nBGSamples": (50, "background samples per pixel", "[0, inf)"),
        "nRequiredBGSamples": (2, "samples that must match for background", "[0, inf)"),
        "nSamplesForMovingAvgs": (100, "samples in the moving averages", "[0, inf)"),
    }


@register_method("pawcs")
class PAWCS(BGSLibraryMethod):
    """PAWCS (St-Charles et al. 2016), BGSLibrary"""

    algorithm = "PAWCS"
    params = {
        "fRelLBSPThreshold": (0.333, "LBSP relative similarity threshold", "[0, 1]"),
        "nDescDistThresholdOffset": (2, "offset of the descriptor distance threshold", "[0, inf)"),
        "nMinColorDistThreshold": (20, "minimum colour distance threshold", "[0, inf)"),
        "nMaxNbWords": (50, "maximum words per pixel dictionary", "[0, inf)"),
        "nSamplesForMovingAvgs": (100, "samples in the moving averages", "[0, inf)"),
    }


@register_method("vibe")
class ViBe(BGSLibraryMethod):
    """ViBe (Barnich & Van Droogenbroeck 2011), BGSLibrary"""

    algorithm = "ViBe"
    params = {
        "matchingThreshold": (20, "colour distance radius R", "[0, inf)"),
        "matchingNumber": (2, "matches needed (#min)", "[0, inf)"),
        "updateFactor": (16, "subsampling factor phi", "[0, inf)"),
    }


@register_method("lobster")
class LOBSTER(BGSLibraryMethod):
    """LOBSTER (St-Charles & Bilodeau 2014), BGSLibrary"""

    algorithm = "LOBSTER"
    params = {
        "fRelLBSPThreshold": (0.365, "LBSP relative similarity threshold", "[0, 1]"),
        "nLBSPThresholdOffset": (0, "LBSP threshold offset", "[0, inf)"),
        "nDescDistThreshold": (4, "descriptor distance threshold", "[0, inf)"),
        "nColorDistThreshold": (30, "colour distance threshold", "[0, inf)"),
        "nBGSamples": (35, "background samples per pixel", "[0, inf)"),
        "nRequiredBGSamples": (2, "samples that must match for background", "[0, inf)"),
    }


@register_method("pbas")
class PBAS(BGSLibraryMethod):
    """PBAS pixel-based adaptive segmenter (Hofmann et al. 2012), BGSLibrary"""

    algorithm = "PixelBasedAdaptiveSegmenter"
    params = {
        "enableInputBlur": (True, "blur the input"),
        "enableOutputBlur": (True, "median-blur the output"),
        "alpha": (7.0, "gradient weight alpha", "[0, inf)"),
        "beta": (1.0, "intensity weight beta", "[0, inf)"),
        "N": (20, "samples per pixel", "[0, inf)"),
        "Raute_min": (2, "matches needed", "[0, inf)"),
        "R_incdec": (0.05, "decision threshold adaptation rate", "[0, inf)"),
        "R_lower": (18, "lower bound of the decision threshold", "[0, inf)"),
        "R_scale": (5, "decision threshold scale", "[0, inf)"),
        "T_dec": (0.05, "learning rate decrease", "[0, inf)"),
        "T_inc": (1, "learning rate increase", "[0, inf)"),
        "T_init": (18, "initial learning rate", "[0, inf)"),
        "T_lower": (2, "lower bound of the learning rate", "[0, inf)"),
        "T_upper": (200, "upper bound of the learning rate", "[0, inf)"),
    }
