"""UCSD background subtraction: <seq>/{in/frame_<N>.jpg (N from 1, not padded),
groundtruth/gt%04d.png, ROI.bmp, temporalROI.txt}; ground truth 0/255 on every frame."""

from __future__ import annotations

from pathlib import Path

from ..video import Video
from . import common


class UCSD:
    name = "ucsd"

    def is_scene(self, path: Path) -> bool:
        return (path / "in").is_dir() and (path / "groundtruth").is_dir()

    def load(self, scene: Path, roi_policy: str = "error") -> Video:
        frames = common.numbered(scene / "in", r"frame_(\d+)\.(?:jpg|jpeg|png)", "frame")
        ext = next(iter(frames.values())).suffix
        common.check_contiguous(frames, lambda i: scene / "in" / f"frame_{i}{ext}", "a frame")
        gt = common.numbered(scene / "groundtruth", r"gt(\d{4})\.png", "ground-truth")
        troi, notes = common.temporal_roi(scene, frames, gt, allow_one_past=True)
        common.check_gt_cover(gt, troi, lambda i: scene / "groundtruth" / f"gt{i:04d}.png")
        roi_file = scene / "ROI.bmp" if (scene / "ROI.bmp").exists() else None
        return common.make_video(
            fmt=self.name, dataset=scene.parent.name, category=None, scene=scene, frames=frames, gt=gt,
            troi=troi, roi_file=roi_file, roi_policy=roi_policy, notes=notes,
        )
