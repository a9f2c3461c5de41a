"""SBI2015: <seq>/{input/<frames>, groundtruth/gt%06d.png[, ROI.bmp, temporalROI.txt]}.

Frames are named in%06d.(png|jpg) in some copies and after the sequence,
<Sequence>_%06d.png (Board_000000.png), in others, which also ship no temporalROI.txt and
no ROI.bmp; both namings are read, in input/ (the only place copies in circulation put
them). Frame ids start at 0 and temporalROI.txt holds frame ids. Some sequences' temporal
ROI ends one past the last frame (HighwayI "0 440" with frames 0-439): that end is read as
the last frame and a note says so; anything further outside is an error. No
temporalROI.txt (Foliage) scores every frame that has ground truth.

Ground truth is a foreground mask: 0 background, 255 foreground, 170 unknown (ignored,
as CDnet's 170). Any other value, 50 and 85 included, is refused: SBI2015 has no shadow or
outside-ROI label, so reading them as CDnet codes would silently drop pixels.
"""

from __future__ import annotations

from pathlib import Path

from bgbench.data import codes
from bgbench.data.formats import common
from bgbench.data.formats.cdnet import IN_FRAMES, CDnet, Naming, sequence_frames


class SBI2015(CDnet):
    name = "sbi2015"
    first_id = 0
    allow_troi_one_past = True
    has_category = False
    gt_lut = common.label_lut({0: codes.STATIC, 170: codes.UNKNOWN, 255: codes.MOTION})

    def frame_namings(self, scene: Path) -> tuple[Naming, ...]:
        return (IN_FRAMES, sequence_frames(scene))
