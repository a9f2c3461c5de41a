"""The example frame a report shows of a job, written at run time into the run folder.

Every job (masks saved or not) records its video's example frame (the middle of its test
frames: the same frame for every method of a protocol): one PNG of its own, the method's mask
coloured against the ground truth (TP green, FP red, FN pink, TN black, not scored grey), in
``OUT/examples/jobs/METHOD/PROTOCOL/VIDEO/``; and, once per video and frame, shared by every
method, the input frame as decoded (in true colour) and the ground truth as displayed (the CDnet
codes as grey levels) in ``OUT/examples/frames/VIDEO/``, their names tagged with the source
files' identity (path, size, modification time), so that changed data never shows an old frame.
The job record holds their paths (``examples``), so a report draws its mosaic from the run
folder alone, never from the data. A 360x240 overlay is about 6 KB.
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


def frames_dir(run_dir: Path, video: Any) -> Path:
    """Where a video's example input frames and ground truth go, shared by every job."""
    return Path(run_dir) / "examples" / "frames" / video.id.replace("/", "__")


def _source_tag(video: Any, fid: int) -> str | None:
    """A short hash of the frame's and ground truth's files (path, size, mtime); None for a
    video without files (its example frames are then written by every job)."""
    import hashlib

    try:
        pos = list(video.frame_ids).index(fid)
        files = [Path(video.frame_files[pos]), Path(dict(video.gt_files)[fid])]
        ident = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    except (AttributeError, ValueError, KeyError, IndexError, TypeError, OSError):
        return None
    return hashlib.sha1(repr(ident).encode()).hexdigest()[:10]


def write_examples(video: Any, fid: int, pred: np.ndarray, folder: Path, run_dir: Path) -> dict[str, Any]:
    """Write ``pred`` of frame ``fid`` of ``video`` coloured against the ground truth into
    ``folder``, and the frame's input and ground truth (once per video and frame) into
    ``frames_dir``; return ``{"frame", "input", "groundtruth", "overlay"}``, the paths
    relative to ``run_dir`` (the record's ``examples``)."""
    folder, run_dir = Path(folder), Path(run_dir)
    gt = np.asarray(video.gt(fid))
    shared = frames_dir(run_dir, video)
    tag = _source_tag(video, fid)
    suffix = f".{tag}" if tag else ""
    files = {"input": shared / f"example_input_{fid:06d}{suffix}.png",
             "groundtruth": shared / f"example_groundtruth_{fid:06d}{suffix}.png",
             "overlay": folder / f"example_overlay_{fid:06d}.png"}
    if tag is None or not files["input"].is_file():  # once per video and frame (atomic: parallel jobs may race)
        _write_png(files["input"], np.asarray(video.frame(fid)))  # BGR, as decoded: a true-colour PNG
    if tag is None or not files["groundtruth"].is_file():
        _write_png(files["groundtruth"], gt.astype(np.uint8))
    _write_png(files["overlay"], colour_mask(np.asarray(pred, bool), gt, np.asarray(video.roi, bool))[..., ::-1])
    return {"frame": int(fid), **{k: p.relative_to(run_dir).as_posix() for k, p in files.items()}}
