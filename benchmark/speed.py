"""``bgbench speed``: frames/s of methods on a real video, and the harness's overhead.

For each method: frames/s of ``segment`` through bgbench's interface (the time spent
inside the generator, as the run loop counts it) and, where the method has one, of a raw
loop that calls the same library directly on the same in-memory frames. Overhead is
``1 - bgbench fps / raw fps`` over whole passes (warm-up included on both sides); runs
alternate between the two and the medians are reported.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import BadInput
from .video import Clip


def load_clip(path: Path, size: tuple[int, int] | None = None, max_frames: int | None = None) -> Clip:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while max_frames is None or len(frames) < max_frames:
        ok, f = cap.read()
        if not ok:
            break
        if size is not None:
            f = cv2.resize(f, size, interpolation=cv2.INTER_AREA)
        frames.append(f)
    cap.release()
    if not frames:
        raise BadInput("holds no frame OpenCV can decode", path, "give a video file OpenCV reads (e.g. .avi)")
    return Clip(Path(path).stem, np.stack(frames))


def _segment_pass(method, clip: Clip) -> tuple[float, float, int]:
    """(seconds of the whole pass, seconds of the timed batches, frames in them). Timed
    batches are the whole batches of ``method.infer_batch`` frames after the batches that
    hold the method's warm-up yields; fewer than 3 is refused (the figure would be noise,
    or a single yield's microseconds)."""
    view = clip.view()
    times = []
    gen = method.segment(view, list(clip.frame_ids))
    t = time.perf_counter()
    for _ in gen:
        t2 = time.perf_counter()
        times.append(t2 - t)
        t = time.perf_counter()
    batch = max(1, int(getattr(method, "infer_batch", 1)))
    warm = -(-max(1, method.warmup_frames) // batch) * batch  # whole batches
    timed_batches = (len(times) - warm) // batch
    if timed_batches < 3:
        raise BadInput(f"{len(times)} frames leave {max(timed_batches, 0)} timed batch(es) of {batch} after {warm} "
                       f"warm-up frame(s) for {method.name}; 3 are needed", "--frames",
                       f"give at least {warm + 3 * batch} frames")
    timed = times[warm:warm + timed_batches * batch]
    return sum(times), sum(timed), len(timed)


def measure(method, clip: Clip, repeats: int = 3) -> dict[str, Any]:
    n = len(clip.frames_bgr)
    ours, steady, raw = [], [], []
    has_raw = hasattr(method, "raw_loop")
    for _ in range(repeats):
        total, steady_seconds, steady_frames = _segment_pass(method, clip)
        ours.append(n / total)
        steady.append(steady_frames / steady_seconds)
        if has_raw:
            t0 = time.perf_counter()
            method.raw_loop(clip.frames_bgr)
            raw.append(n / (time.perf_counter() - t0))
    out = {"method": method.name, "device": method.device, "frames": n, "size": f"{clip.shape[1]}x{clip.shape[0]}",
           "fps": statistics.median(steady), "fps_whole_pass": statistics.median(ours),
           "raw_fps": statistics.median(raw) if raw else None}
    out["overhead"] = 1.0 - out["fps_whole_pass"] / out["raw_fps"] if raw else None
    return out


def measure_batched(method, clip: Clip, batch: int, repeats: int = 3) -> dict[str, Any]:
    """gmm_sg only: ``batch`` copies of the clip as one batch (one model per copy)."""
    frames = np.broadcast_to(clip.frames_bgr[:, None], (len(clip.frames_bgr), batch, *clip.frames_bgr.shape[1:]))
    fps = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in method.run(iter(frames)):
            pass
        fps.append(batch * len(frames) / (time.perf_counter() - t0))
    return {"method": f"{method.name} x{batch}", "device": method.device, "frames": batch * len(frames),
            "size": f"{clip.shape[1]}x{clip.shape[0]}", "fps": statistics.median(fps), "fps_whole_pass": None,
            "raw_fps": None, "overhead": None}


def default_video() -> Path | None:
    from .suites import shared_data

    root = shared_data()
    p = root / "videos" / "bgslibrary_video02_320x240.avi" if root else None
    return p if p and p.exists() else None


def run_speed(methods: Sequence[str], video: Path, device: str, size: tuple[int, int] | None, frames: int | None,
              repeats: int, batch: int, config: str = "paper") -> list[dict[str, Any]]:
    from .method import build_method

    clip = load_clip(video, size, frames)
    rows = []
    for name in methods:
        m = build_method(name, config=config, device=device)
        rows.append(measure(m, clip, repeats))
        if batch > 1 and hasattr(m, "run"):
            rows.append(measure_batched(m, clip, batch, repeats))
    return rows
