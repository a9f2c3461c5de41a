"""Classical background-subtraction baselines, registered lazily by name."""

from benchmark.method import METHODS

_CLASSICAL = dict(family="classical", trains=False, configs=("default",))

METHODS.register_lazy("gmm_zivkovic", "baselines.opencv_bgs:GMMZivkovic", **_CLASSICAL,
                      summary="Zivkovic's improved GMM (OpenCV MOG2), shadows mapped to background")
METHODS.register_lazy("temporal_median", "baselines.temporal_median:TemporalMedian", **_CLASSICAL,
                      summary="Per-pixel temporal median of sampled past frames, distance scored")
