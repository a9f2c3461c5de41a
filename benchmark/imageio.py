"""Reading images with errors that name the file. OpenCV is imported on first use."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import BadInput


def _cv2():
    import cv2

    cv2.setNumThreads(1)  # frames are decoded in parallel threads already
    return cv2


def _read(path: Path, colour: bool) -> np.ndarray:
    cv2 = _cv2()
    img = cv2.imread(str(path), cv2.IMREAD_COLOR if colour else cv2.IMREAD_GRAYSCALE)
    if img is None:
        what = "is missing" if not Path(path).exists() else "cannot be decoded as an image"
        raise BadInput(what, path, "restore the file from the dataset's archive, or remove the video from --data")
    return img


def read_bgr(path: Path) -> np.ndarray:
    """A colour image in OpenCV's channel order (BGR), the order bgbench keeps frames in."""
    return _read(path, True)


def read_gray(path: Path) -> np.ndarray:
    return _read(path, False)


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image file."""
    return read_gray(path).shape[:2]


def write_mask(path: Path, mask: np.ndarray) -> None:
    cv2 = _cv2()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), mask):
        raise BadInput("could not be written", path, "check the output folder is writable")
