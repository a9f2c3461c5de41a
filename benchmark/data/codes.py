"""CDnet2014 ground-truth codes; every adapter maps its dataset's labels onto these."""

STATIC = 0
SHADOW = 50
OUTSIDE_ROI = 85
UNKNOWN = 170
MOTION = 255
VALID = (STATIC, SHADOW, OUTSIDE_ROI, UNKNOWN, MOTION)
