"""Deep background-subtraction methods, registered lazily by name."""

from benchmark.method import METHODS

_DEEP = dict(family="deep", trains=True, configs=("paper", "cpu", "smoke"),
             requires="torch: pip install torch==2.13.0 (the CPU wheel; README, 'Two commands')")

METHODS.register_lazy("cdn_medal", "methods.cdn_medal:CDNMedal", **_DEEP,
                      summary="CDN-GM background model + MEDAL-net segmentation (papers/002), 3.5K parameters")
METHODS.register_lazy("bmn_bsn", "methods.bmn_bsn:BMNBSN", **_DEEP,
                      summary="BMN-BSN: background-modelling U-Net nested with a segmentation U-Net (papers/000)")
METHODS.register_lazy("crossnet", "methods.crossnet:CrossNet", **_DEEP,
                      summary="CrossNet/HOFAM: appearance and 3D-HOP motion encoders fused by CmDFF (papers/004)")
METHODS.register_lazy("two_stage_cnn", "methods.two_stage_cnn:TwoStageCNN", **_DEEP,
                      summary="Two-stage CNN: background reconstruction + VGG16 DeepLab-LargeFOV segmentation (papers/001)")
METHODS.register_lazy("siamese_fcn", "methods.siamese_fcn:SiameseFCN", **_DEEP,
                      summary="Siamese FCN: VGG16 front, SPP head, distance map, then a U-Net mask (papers/003)")
