"""The speed half of the CI gate, measured apart from the parallel run.

In one process, one job, one OpenCV/torch thread: each repeat times the fixed reference
workload (``perf.reference_workload_seconds``, one pass) and then every method's
``segment`` over the same in-memory clip, interleaved, so machine load drifts over both
alike. A method's normalised speed in a repeat is its frames/s (whole batches after the
warm-up ones, as ``bgbench speed`` counts) times that repeat's reference seconds: frames per
unit of this machine's speed. The record keeps every repeat, the median and the spread
((max - min) / median), the thread and job counts, and the clip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from bgbench.records.types import Results

CLIP_FRAMES = 150


def gate_clip(frames: int = CLIP_FRAMES):
    """The clip every method is timed on: the first ``frames`` frames of the shared speed
    video when it is there, else seeded synthetic frames (320x240)."""
    from bgbench.timing.speed import default_video, load_clip
    from bgbench.data.video import Clip

    video = default_video()
    if video is not None:
        return load_clip(video, None, frames)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    stack = np.stack([np.roll(base, 2 * k, axis=1) for k in range(frames)])
    return Clip("synthetic-320x240", stack)


def measure(methods: Sequence[tuple[str, str, dict[str, Any]]], repeats: int = 5, clip=None) -> dict[str, Any]:
    """``methods``: (label, method name, parameter values) triples. Returns the record."""
    from bgbench.method import build_method
    from bgbench.execution.scoped import one_thread
    from bgbench.timing.interleave import interleaved, median_spread
    from bgbench.timing.perf import reference_workload_seconds
    from bgbench.timing.speed import _segment_pass

    clip = clip if clip is not None else gate_clip()
    n = len(clip.frames_bgr)

    def timed(m) -> Callable[[], float]:
        def f() -> float:
            _, seconds, frames = _segment_pass(m, clip)
            return frames / seconds

        return f

    with one_thread():
        built = {label: build_method(name, **params) for label, name, params in methods}
        # the reference workload opens every round; the methods follow it in the same order
        # each round, as the normalisation by that round's reference assumes
        rounds = interleaved({"reference": lambda: reference_workload_seconds(repeats=1),
                              **{label: timed(m) for label, m in built.items()}}, repeats, rotate=False)
    ref = rounds["reference"]
    out = {"repeats": repeats, "jobs": 1, "threads": 1, "clip": clip.name, "frames": n,
           "size": f"{clip.shape[1]}x{clip.shape[0]}", "reference_seconds": ref, "methods": {}}
    for label in built:
        fps = rounds[label]
        norm = [f * r for f, r in zip(fps, ref)]
        med, spread = median_spread(norm)
        out["methods"][label] = {"normalized": norm, "fps": fps, "median": med, "spread": spread}
    return out


def methods_of(results: Results) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, name, parameters) of every method a run holds (classical ones only: the gate
    times what runs on the CPU in seconds), from its record: each summary's label, method and
    family (``Results.family``), the parameters of ``meta.methods``. A
    method not installed here cannot be timed and is left out."""
    from bgbench.method import method_class

    out: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for (label, _), s in sorted(results.summaries.items()):
        family = results.family(label)
        if label in out or family != "classical":
            continue
        try:
            cls = method_class(s.method)
        except Exception:  # noqa: BLE001 - a method not installed here cannot be timed
            continue
        if getattr(cls, "untimed", None):  # e.g. masks read from disk: no speed to gate
            continue
        out[label] = (label, s.method, dict(results.meta.methods.get(s.method, {})))
    return list(out.values())


def write(record: dict[str, Any], run_dir: Path) -> Path:
    from bgbench.records.results import write_json

    path = Path(run_dir) / "speed_gate.json"
    write_json(path, record)
    return path
