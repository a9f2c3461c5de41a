"""SBI2015: <seq>/{input/in%06d.(png|jpg), groundtruth/gt%06d.png[, ROI.bmp, temporalROI.txt]}.

Frame ids start at 0 and temporalROI.txt holds frame ids. Some sequences' temporal ROI
ends one past the last frame (HighwayI "0 440" with frames 0-439): that end is read as the
last frame and a note says so; anything further outside is an error. No temporalROI.txt
(Foliage) scores every frame.
"""

from __future__ import annotations

from .cdnet import CDnet


class SBI2015(CDnet):
    name = "sbi2015"
    first_id = 0
    allow_troi_one_past = True
    has_category = False
