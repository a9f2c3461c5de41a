"""CDnet2014 (and CDnet2012): <category>/<scene>/{input/in%06d.jpg, groundtruth/gt%06d.png,
ROI.bmp, temporalROI.txt}; frame ids from 1; temporal ROI 1-based and inclusive. Ground
truth holds the CDnet codes themselves (0, 50, 85, 170, 255)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from bgbench.data.video import Video
from bgbench.data.formats import common
from bgbench.data.formats.common import Naming

IN_FRAMES = Naming("in%06d.(jpg|jpeg|png)", r"in(?P<id>\d{6})(?P<ext>\.(?:jpg|jpeg|png))", "in{:06d}{ext}")
GT_MASKS = Naming("gt%06d.png", r"gt(?P<id>\d{6})\.png", "gt{:06d}.png")
NO_ROI_NOTE = "no ROI.bmp: every pixel is in the spatial ROI (only ground truth 85 and 170 are left out)"


class CDnet:
    name = "cdnet2014"
    first_id = 1
    allow_troi_one_past = False
    has_category = True
    gt_lut: tuple[int, ...] | None = None  # the files hold CDnet codes

    def frame_namings(self, scene: Path) -> tuple[Naming, ...]:
        return (IN_FRAMES,)

    def is_scene(self, path: Path) -> bool:
        return (path / "input").is_dir() and (path / "groundtruth").is_dir()

    def auto_match(self, path: Path) -> bool:
        """For --format auto: the layouts of CDnet and SBI2015 differ in numbering (CDnet
        from 1, SBI2015 from 0) and in SBI2015's second naming, <Sequence>_%06d."""
        return self.is_scene(path) and sbi_like(path) == (self.first_id == 0)

    def load(self, scene: Path, roi_policy: str = "error") -> Video:
        frames = common.numbered(scene / "input", self.frame_namings(scene), "frames", self.name)
        common.check_contiguous(frames, what="a frame")
        gt = common.numbered(scene / "groundtruth", GT_MASKS, "ground-truth masks", self.name)
        troi, notes = common.temporal_roi(scene, frames.files, gt.files, self.allow_troi_one_past)
        common.check_gt_cover(gt.files, troi, gt.name_of)
        roi_file, roi_notes = common.find_roi(scene)
        notes += roi_notes + common.orphan_gt_notes(gt.files, frames.files)
        category = scene.parent.name if self.has_category else None
        dataset = (scene.parent.parent if self.has_category else scene.parent).name
        if frames.naming is not IN_FRAMES:
            notes += (f"frames named {frames.naming.label}",)
        if roi_file is None:
            notes += (NO_ROI_NOTE,)
        return common.make_video(
            fmt=self.name, dataset=dataset, category=category, scene=scene, frames=frames.files, gt=gt.files,
            troi=troi, roi_file=roi_file, roi_policy=roi_policy, notes=notes, gt_lut=self.gt_lut,
        )


class CDnet2012(CDnet):
    name = "cdnet2012"


def sequence_frames(scene: Path) -> Naming:
    """SBI2015's other naming: frames named after the sequence, <Sequence>_%06d (e.g.
    Board_000000.png, Candela_m1.10_000000.png), as real copies of the dataset ship them."""
    return Naming(f"<Sequence>_%06d.(jpg|png) with <Sequence> = {scene.name}",
                  rf"{re.escape(scene.name)}_(?P<id>\d{{6}})(?P<ext>\.(?:jpg|png))",
                  scene.name.replace("{", "{{").replace("}", "}}") + "_{:06d}{ext}")


def sbi_like(path: Path) -> bool:
    """Frames numbered from 000000, or named after the sequence: SBI2015, not CDnet."""
    own = sequence_frames(path)
    first = None
    for name in os.listdir(path / "input"):
        if own.match(name):
            return True
        m = IN_FRAMES.match(name)
        if m and (first is None or int(m.group("id")) < first):
            first = int(m.group("id"))
    return first == 0
