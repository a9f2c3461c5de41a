"""CDnet2014 (and CDnet2012): <category>/<scene>/{input/in%06d.jpg, groundtruth/gt%06d.png,
ROI.bmp, temporalROI.txt}; frame ids from 1; temporal ROI 1-based and inclusive."""

from __future__ import annotations

from pathlib import Path

from ..video import Video
from . import common


class CDnet:
    name = "cdnet2014"
    frame_pattern = r"in(\d{6})\.(?:jpg|jpeg|png)"
    first_id = 1
    allow_troi_one_past = False
    has_category = True

    def is_scene(self, path: Path) -> bool:
        return (path / "input").is_dir() and (path / "groundtruth").is_dir()

    def auto_match(self, path: Path) -> bool:
        """For --format auto: the layouts of CDnet and SBI2015 differ only in numbering
        (CDnet from 1, SBI2015 from 0), so the first frame's number decides."""
        if not self.is_scene(path):
            return False
        first = min((f.name for f in (path / "input").iterdir() if f.name.lower().startswith("in")), default="")
        return (first[2:8] == "000000") == (self.first_id == 0)

    def load(self, scene: Path, roi_policy: str = "error") -> Video:
        frames = common.numbered(scene / "input", self.frame_pattern, "frame")
        ext = next(iter(frames.values())).suffix
        common.check_contiguous(frames, lambda i: scene / "input" / f"in{i:06d}{ext}", "a frame")
        gt = common.numbered(scene / "groundtruth", r"gt(\d{6})\.png", "ground-truth")
        troi, notes = common.temporal_roi(scene, frames, gt, self.allow_troi_one_past)
        common.check_gt_cover(gt, troi, lambda i: scene / "groundtruth" / f"gt{i:06d}.png")
        roi_file = next((scene / n for n in ("ROI.bmp", "ROI.png", "ROI.jpg") if (scene / n).exists()), None)
        category = scene.parent.name if self.has_category else None
        dataset = (scene.parent.parent if self.has_category else scene.parent).name
        return common.make_video(
            fmt=self.name, dataset=dataset, category=category, scene=scene, frames=frames, gt=gt,
            troi=troi, roi_file=roi_file, roi_policy=roi_policy, notes=notes,
        )


class CDnet2012(CDnet):
    name = "cdnet2012"
