"""Classical background-subtraction baselines, registered lazily by name.

The metadata here is what ``bgbench list`` shows without importing OpenCV, torch or
BGSLibrary; a test checks it against the classes.
"""

from benchmark.method import METHODS

_CLASSICAL = dict(family="classical", trains=False, configs=("default",))
_BGS = dict(_CLASSICAL, requires="BGSLibrary's Python module: apt-get install libopencv-dev cmake, then "
            "pip install bgslibrary==3.3.1 (or pip install -e '.[bgslibrary]'); see README, 'BGSLibrary'")

for _name, _target, _summary, _meta in (
    ("gmm_sg", "baselines.gmm_sg:GMMStaufferGrimson",
     "Stauffer & Grimson adaptive mixture of Gaussians (1999), NumPy or torch, GPU-batchable", _CLASSICAL),
    ("gmm_zivkovic", "baselines.opencv_bgs:GMMZivkovic",
     "Zivkovic's improved GMM (OpenCV MOG2), shadows mapped to background", _CLASSICAL),
    ("mog_kb", "baselines.opencv_bgs:MOGKaewTraKulPong", "KaewTraKulPong & Bowden's GMM (OpenCV bgsegm MOG)", _CLASSICAL),
    ("knn", "baselines.opencv_bgs:KNN",
     "K-nearest-neighbours background model (OpenCV KNN), shadows mapped to background", _CLASSICAL),
    ("gsoc", "baselines.opencv_bgs:GSOC",
     "GSoC 2017 background subtractor with LSBP-style features (OpenCV bgsegm GSOC)", _CLASSICAL),
    ("lsbp", "baselines.opencv_bgs:LSBP", "Local SVD binary pattern background subtractor (OpenCV bgsegm LSBP)", _CLASSICAL),
    ("cnt", "baselines.opencv_bgs:CNT", "Counting-based background subtractor (OpenCV bgsegm CNT)", _CLASSICAL),
    ("frame_difference", "baselines.frame_difference:FrameDifference",
     "Absolute difference to the frame `gap` frames earlier, distance scored", _CLASSICAL),
    ("temporal_median", "baselines.temporal_median:TemporalMedian",
     "Per-pixel temporal median of sampled past frames, distance scored", _CLASSICAL),
    ("subsense", "baselines.bgslib:SuBSENSE", "SuBSENSE (St-Charles et al. 2015), BGSLibrary", _BGS),
    ("pawcs", "baselines.bgslib:PAWCS", "PAWCS (St-Charles et al. 2016), BGSLibrary", _BGS),
    ("vibe", "baselines.bgslib:ViBe", "ViBe (Barnich & Van Droogenbroeck 2011), BGSLibrary", _BGS),
    ("lobster", "baselines.bgslib:LOBSTER", "LOBSTER (St-Charles & Bilodeau 2014), BGSLibrary", _BGS),
    ("pbas", "baselines.bgslib:PBAS", "PBAS pixel-based adaptive segmenter (Hofmann et al. 2012), BGSLibrary", _BGS),
):
    METHODS.register_lazy(_name, _target, summary=_summary, **_meta)
