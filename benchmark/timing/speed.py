"""``bgbench speed``: frames/s of methods on a real video, and the harness's overhead.

For each method: frames/s of ``segment`` through bgbench's interface (the time spent
inside the generator, as the run loop counts it) and, where the method has one, of a raw
loop that calls the same library directly on the same in-memory frames. Overhead is
``1 - bgbench fps / raw fps`` over whole passes (warm-up included on both sides), paired
per repeat; the two alternate in alternating order, with OpenCV and torch on one thread
(as ``bgbench run`` runs them), and the median and range over the repeats are reported.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bgbench.errors import BadInput
from bgbench.data.video import Clip


def load_clip(path: Path, size: tuple[int, int] | None = None, max_frames: int | None = None) -> Clip:
    import cv2

    from bgbench.safefs import regular_file

    regular_file(path, "give a video file OpenCV reads (e.g. .avi)")  # a FIFO would block the decoder
    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
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
    batch = max(1, int(method.infer_batch))
    warm = -(-max(1, method.warmup_frames) // batch) * batch  # whole batches
    timed_batches = (len(times) - warm) // batch
    if timed_batches < 3:
        raise BadInput(f"{len(times)} frames leave {max(timed_batches, 0)} timed batch(es) of {batch} after {warm} "
                       f"warm-up frame(s) for {method.name}; 3 are needed", "--frames",
                       f"give at least {warm + 3 * batch} frames")
    timed = times[warm:warm + timed_batches * batch]
    return sum(times), sum(timed), len(timed)


def measure(method, clip: Clip, repeats: int = 5) -> dict[str, Any]:
    """Frames/s through bgbench's interface and, where the method has one, through a raw
    library loop on the same frames. The two alternate within each repeat, in alternating
    order (bgbench first on even repeats, raw first on odd ones), so drifting load falls
    on both; the overhead of a repeat is ``1 - bgbench fps / raw fps`` over whole passes,
    and the record keeps its median and range over the repeats."""
    n = len(clip.frames_bgr)
    ours, steady, raw = [], [], []
    has_raw = hasattr(method, "raw_loop")

    def ours_pass():
        total, steady_seconds, steady_frames = _segment_pass(method, clip)
        ours.append(n / total)
        steady.append(steady_frames / steady_seconds)

    def raw_pass():
        t0 = time.perf_counter()
        method.raw_loop(clip.frames_bgr)
        raw.append(n / (time.perf_counter() - t0))

    from bgbench.timing.interleave import interleaved_times

    # bgbench's pass and the raw library loop take turns, the order rotated each round
    interleaved_times({"ours": ours_pass, **({"raw": raw_pass} if has_raw else {})}, repeats, rotate=True)
    overhead = [1.0 - o / r for o, r in zip(ours, raw)]
    out = {"method": method.name, "device": method.device, "frames": n, "size": f"{clip.shape[1]}x{clip.shape[0]}",
           "repeats": repeats, "fps": statistics.median(steady), "fps_whole_pass": statistics.median(ours),
           "raw_fps": statistics.median(raw) if raw else None,
           "overhead": statistics.median(overhead) if overhead else None,
           "overhead_range": [min(overhead), max(overhead)] if overhead else None}
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
            "raw_fps": None, "overhead": None, "overhead_range": None, "repeats": repeats}


def default_video() -> Path | None:
    from bgbench.suites import shared_data

    root = shared_data()
    p = root / "videos" / "bgslibrary_video02_320x240.avi" if root else None
    return p if p and p.exists() else None


def run_speed(methods: Sequence[str], video: Path, device: str, size: tuple[int, int] | None, frames: int | None,
              repeats: int, batch: int, config: str = "paper") -> list[dict[str, Any]]:
    from bgbench.method import build_method

    from bgbench.timing.deep import _cudnn_benchmark
    from bgbench.execution.scoped import one_thread

    clip = load_clip(video, size, frames)
    rows = []
    with one_thread():  # the thread setting `bgbench run` uses, for bgbench and the raw loop alike
        for name in methods:
            m = build_method(name, config=config, device=device)
            with _cudnn_benchmark(m.device.startswith("cuda")):
                rows.append({**measure(m, clip, repeats), "threads": 1})
                if batch > 1 and hasattr(m, "run"):
                    rows.append({**measure_batched(m, clip, batch, repeats), "threads": 1})
    return rows
