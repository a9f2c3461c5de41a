"""Wallflower (Toyama et al. 1999): <seq>/b%05d.bmp frames and one or more
hand_segmented_%05d.BMP masks (0 background, 255 foreground). Only the hand-segmented
frames are scored; there is no spatial or temporal ROI file."""

from __future__ import annotations

from pathlib import Path

from ..video import Video
from . import common


class Wallflower:
    name = "wallflower"

    def is_scene(self, path: Path) -> bool:
        return any(f.name.lower().startswith("hand_segmented_") for f in path.iterdir() if f.is_file())

    def load(self, scene: Path, roi_policy: str = "error") -> Video:
        frames = common.numbered(scene, r"b(\d{5})\.bmp", "frame")
        common.check_contiguous(frames, lambda i: scene / f"b{i:05d}.bmp", "a frame")
        gt = common.numbered(scene, r"hand_segmented_(\d{5})\.bmp", "hand-segmented mask")
        first, last = next(iter(frames)), next(reversed(frames))
        outside = [i for i in gt if not first <= i <= last]
        if outside:
            raise common.BadInput(f"mask for frame {outside[0]} has no frame", gt[outside[0]], "remove the stray mask")
        return common.make_video(
            fmt=self.name, dataset=scene.parent.name, category=None, scene=scene, frames=frames, gt=gt,
            troi=(first, last), roi_file=None, roi_policy=roi_policy,
        )
