"""Speed figures the harness reports about itself (printed by ``bgbench speed``)."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np


def median_time(fn: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def reference_workload_seconds(repeats: int = 3) -> float:
    """Median seconds of a fixed CPU workload (OpenCV MOG2 over 150 seeded 320x240 frames,
    one thread): the yardstick that makes speeds comparable across machines."""
    import cv2

    rng = np.random.default_rng(12345)
    base = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    frames = [cv2.add(base, rng.integers(0, 20, (240, 320, 3), dtype=np.uint8)) for _ in range(150)]
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)

    def work():
        sub = cv2.createBackgroundSubtractorMOG2()
        for f in frames:
            sub.apply(f)

    try:
        return median_time(work, repeats)
    finally:
        cv2.setNumThreads(threads)


def scoring_vs_decoding(video, repeats: int = 3) -> dict[str, float]:
    """Seconds to score a video's evaluated frames (float probabilities and 0/255 masks)
    against seconds to decode the same frames' JPEGs and ground-truth PNGs, one thread."""
    import cv2

    from .scoring import VideoScore, quantize

    cv2.setNumThreads(1)
    ids = list(video.eval_frames)
    frame_files = [video.frame_files[video.frame_ids.index(ids[0]) + k] for k in range(len(ids))]
    gt_files = [f for i, f in video.gt_files if i in set(ids)]
    gt = video.gts(ids)
    rng = np.random.default_rng(0)
    probs = rng.random((len(ids), *video.shape), dtype=np.float32)
    masks = np.where(probs > 0.5, 255, 0).astype(np.uint8)
    roi = video.roi

    def score(maps):
        s = VideoScore(0.5)
        for k in range(0, len(ids), 32):
            s.update(quantize(maps[k:k + 32]), gt[k:k + 32], roi)
        return s

    return {
        "frames": len(ids),
        "score_probabilities_s": median_time(lambda: score(probs), repeats),
        "score_masks_s": median_time(lambda: score(masks), repeats),
        "decode_frames_s": median_time(lambda: [cv2.imread(str(f)) for f in frame_files], repeats),
        "decode_groundtruth_s": median_time(lambda: [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in gt_files], repeats),
    }
