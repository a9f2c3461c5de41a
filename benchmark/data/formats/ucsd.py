"""UCSD background subtraction: <seq>/{in/frame_<N>.jpg (N from 1, not padded),
groundtruth/gt%04d.png, ROI.bmp, temporalROI.txt}; ground truth 0/255 on every frame.

The masks are plain foreground masks: 0 and 255 are the only labels, and any other value
(50 or 85 included, which CDnet would read as shadow or outside the ROI) is refused."""

from __future__ import annotations

from pathlib import Path

from bgbench.data import codes
from bgbench.data.video import Video
from bgbench.data.formats import common
from bgbench.data.formats.common import Naming

FRAMES = Naming("frame_<N>.(jpg|jpeg|png)", r"frame_(?P<id>\d+)(?P<ext>\.(?:jpg|jpeg|png))", "frame_{}{ext}")
GT_MASKS = Naming("gt%04d.png", r"gt(?P<id>\d{4})\.png", "gt{:04d}.png")


class UCSD:
    name = "ucsd"
    gt_lut = common.label_lut({0: codes.STATIC, 255: codes.MOTION})

    def is_scene(self, path: Path) -> bool:
        return (path / "in").is_dir() and (path / "groundtruth").is_dir()

    def load(self, scene: Path, roi_policy: str = "error") -> Video:
        frames = common.numbered(scene / "in", FRAMES, "frames", self.name)
        common.check_contiguous(frames, what="a frame")
        gt = common.numbered(scene / "groundtruth", GT_MASKS, "ground-truth masks", self.name)
        troi, notes = common.temporal_roi(scene, frames.files, gt.files, allow_one_past=True)
        common.check_gt_cover(gt.files, troi, gt.name_of)
        roi_file, roi_notes = common.find_roi(scene)
        notes += roi_notes + common.orphan_gt_notes(gt.files, frames.files)
        if roi_file is None:
            from bgbench.data.formats.cdnet import NO_ROI_NOTE

            notes += (NO_ROI_NOTE,)
        return common.make_video(
            fmt=self.name, dataset=scene.parent.name, category=None, scene=scene, frames=frames.files, gt=gt.files,
            troi=troi, roi_file=roi_file, roi_policy=roi_policy, notes=notes, gt_lut=self.gt_lut,
        )
