"""Wallflower (Toyama et al. 1999): <seq>/b%05d.bmp frames and one or more
hand_segmented_%05d.BMP masks. Only the hand-segmented frames are scored; there is no
spatial or temporal ROI file.

The hand-segmented masks are anti-aliased: besides 0 (background) and 255 (foreground)
a few edge pixels hold values in between. They are binarised at 128 (below: background;
128 and above: foreground) and the video's notes say so. Every value maps to 0 or 255:
Wallflower has no shadow, outside-ROI or unknown label, so a 50, 85 or 170 is never read
as a CDnet code.

The archive ships its masks as 24-bit BMPs, and in some (Camouflage) the anti-aliased edge
pixels have unequal channels (231 of 19,200 pixels there). Such a mask is read as its luma,
``Y = 0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601, OpenCV's BGR2GRAY), and then binarised
at 128 like a grey mask: a grey pixel's luma is its value, so grey masks read exactly as
before, and the weighted sum is the brightness a viewer of the mask sees. On Camouflage's
mask it gives 10,402 foreground pixels (10,268 pure white plus 134 edge pixels), the same
as requiring every channel at 128 or above; "any channel at 128 or above" would add 4
bluish-grey edge pixels (docs/scoring.md, "Wallflower ground truth")."""

from __future__ import annotations

from pathlib import Path

from bgbench.data.video import Video
from bgbench.data.formats import common
from bgbench.data.formats.common import Naming

BINARISE_AT = 128
FRAMES = Naming("b%05d.bmp", r"b(?P<id>\d{5})(?P<ext>\.bmp)", "b{:05d}{ext}")
MASKS = Naming("hand_segmented_%05d.bmp", r"hand_segmented_(?P<id>\d{5})(?P<ext>\.bmp)", "hand_segmented_{:05d}{ext}")
NOTE = (f"ground truth: the hand-segmented masks are anti-aliased and are binarised at {BINARISE_AT} "
        f"(values below {BINARISE_AT} -> background 0, {BINARISE_AT} and above -> foreground 255; a colour mask "
        f"by its luma 0.299 R + 0.587 G + 0.114 B)")


class Wallflower:
    name = "wallflower"
    gt_lut = common.binarising_lut(BINARISE_AT)

    def is_scene(self, path: Path) -> bool:
        return any(f.name.lower().startswith("hand_segmented_") for f in path.iterdir() if f.is_file())

    def load(self, scene: Path, roi_policy: str = "error") -> Video:
        frames = common.numbered(scene, FRAMES, "frames", self.name)
        common.check_contiguous(frames, what="a frame")
        gt = common.numbered(scene, MASKS, "hand-segmented masks", self.name)
        first, last = next(iter(frames.files)), next(reversed(frames.files))
        outside = [i for i in gt.files if not first <= i <= last]
        if outside:
            raise common.BadInput(f"mask for frame {outside[0]} has no frame (frames {first}-{last})",
                                  gt.files[outside[0]], "remove the stray mask, or restore the missing frames")
        return common.make_video(
            fmt=self.name, dataset=scene.parent.name, category=None, scene=scene, frames=frames.files, gt=gt.files,
            troi=(first, last), roi_file=None, roi_policy=roi_policy, notes=(NOTE,), gt_lut=self.gt_lut,
            gt_colour="luma",
        )
