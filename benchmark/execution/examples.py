"""The example frame a report shows of a job, written at run time beside its saved masks.

With ``--save-masks``, each job writes, for its video's example frame (the middle of its
test frames: the same frame for every method of a protocol), three PNGs into its mask
folder: the input frame as decoded (in true colour), the ground truth as displayed (the
CDnet codes as grey levels) and the method's mask coloured against the ground truth (TP
green, FP red, FN pink, TN black, not scored grey). The job record holds their paths
(``examples``), so a report draws its mosaic from the run folder alone, never from the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bgbench.data import codes

COLORS = {"tp": (0, 200, 0), "fp": (230, 0, 0), "fn": (255, 150, 200), "tn": (0, 0, 0), "ignored": (128, 128, 128)}
COLOR_NAMES = {"tp": "true positive", "fp": "false positive", "fn": "false negative", "tn": "true negative",
               "ignored": "not scored"}


def colour_mask(pred: np.ndarray, gt: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """RGB image of a binary prediction against CDnet ground truth."""
    out = np.zeros((*gt.shape, 3), np.uint8)
    ignored = ~roi | (gt == codes.OUTSIDE_ROI) | (gt == codes.UNKNOWN)
    pos = gt == codes.MOTION
    out[pred & pos] = COLORS["tp"]
    out[pred & ~pos] = COLORS["fp"]
    out[~pred & pos] = COLORS["fn"]
    out[ignored] = COLORS["ignored"]
    return out


def example_frame(frames: Sequence[int]) -> int | None:
    """The frame a report shows of a job: the middle of its test frames (None without any)."""
    ids = sorted(frames)
    return ids[len(ids) // 2] if ids else None


def _write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    from bgbench.safefs import write_bytes

    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"{path}: cannot be encoded as PNG")
    write_bytes(path, buf.tobytes(), "example frames")


def write_examples(video: Any, fid: int, pred: np.ndarray, folder: Path, run_dir: Path) -> dict[str, Any]:
    """Write frame ``fid`` of ``video`` (input, ground truth, ``pred`` coloured against it)
    into ``folder``; return ``{"frame", "input", "groundtruth", "overlay"}``, the paths
    relative to ``run_dir`` (the record's ``examples``)."""
    folder, run_dir = Path(folder), Path(run_dir)
    gt = np.asarray(video.gt(fid))
    files = {"input": folder / f"example_input_{fid:06d}.png",
             "groundtruth": folder / f"example_groundtruth_{fid:06d}.png",
             "overlay": folder / f"example_overlay_{fid:06d}.png"}
    _write_png(files["input"], np.asarray(video.frame(fid)))  # BGR, as decoded: a true-colour PNG
    _write_png(files["groundtruth"], gt.astype(np.uint8))
    _write_png(files["overlay"], colour_mask(np.asarray(pred, bool), gt, np.asarray(video.roi, bool))[..., ::-1])
    return {"frame": int(fid), **{k: p.relative_to(run_dir).as_posix() for k, p in files.items()}}
