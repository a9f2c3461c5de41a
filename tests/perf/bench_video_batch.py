"""gmm_sg through the run path, each video alone (``run_video``) against the videos as one
batch (``run_videos``, what ``bgbench run --video-batch N`` does), on real scenes of one shape.

    python -m tests.perf.bench_video_batch [--backend numpy|torch] [--device cpu|cuda] [--repeats 3]
        [--scenes birds,chopper,flock,jump,skiing,surf]

Prints per mode the wall time of the whole job loop, and per processed frame: the wall time,
the time inside the method (its generator: the update, copies and, on CUDA, the syncs), and
the harness's own time outside it (scoring, quantising, bookkeeping). Medians of ``--repeats``
passes, interleaved (alone, batch, batch, alone, ...), at one OpenCV and one torch thread.
Checks that every video's counts are the same batched or not. On a CPU a batch is expected to
save nothing (the update is memory-bound per pixel either way); on a GPU it shares the launches
and copies among the videos (unmeasured until run there).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.perf.bench_video_batch", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2].parent / "shared" / "data")
    ap.add_argument("--scenes", default="birds,chopper,flock,jump,skiing,surf", help="UCSD scenes of one shape")
    ap.add_argument("--backend", choices=("numpy", "torch"), default="numpy")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)

    from bgbench.data.formats import discover
    from bgbench.execution.runner import RunOptions, run_video, run_videos
    from bgbench.execution.scoped import threads
    from bgbench.method import build_method

    videos = [discover(a.data / "UCSD" / s)[0] for s in a.scenes.split(",")]
    if len({v.shape for v in videos}) != 1:
        raise SystemExit(f"the scenes must share one shape; got {sorted({v.shape for v in videos})}")
    tests = [(v, tuple(v.eval_frames)) for v in videos]
    params = {"backend": a.backend, "fuse": "off"}
    for v in videos:
        v.view().all_frames()  # decoded once, before any clock

    def once(mode: str, out: Path) -> tuple[float, list[dict]]:
        opts = RunOptions(out=out, device=a.device)
        t0 = time.perf_counter()
        if mode == "alone":
            recs = [run_video(build_method("gmm_sg", device=a.device, **params), v, f, opts) for v, f in tests]
        else:
            recs = run_videos(build_method("gmm_sg", device=a.device, **params), tests, opts)
        return time.perf_counter() - t0, recs

    rows: dict[str, dict[str, list[float]]] = {m: {"wall": [], "method": [], "harness": []} for m in ("alone", "batch")}
    counts: dict[str, list] = {}
    frames = sum(len(v.frame_ids) for v in videos)  # every frame is processed (a video is walked from its start)
    load0 = os.getloadavg()[0]
    with threads(1), tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeats):
            for mode in (("alone", "batch") if r % 2 == 0 else ("batch", "alone")):
                wall, recs = once(mode, Path(tmp) / f"{mode}{r}")
                bad = [x for x in recs if not isinstance(x, dict)]
                if bad:
                    raise SystemExit(f"{mode}: {bad[0]!r}")
                inside = sum(x["timing"]["segment_seconds_total"] for x in recs)  # batched: the batch's total
                rows[mode]["wall"].append(wall)
                rows[mode]["method"].append(inside / frames)
                rows[mode]["harness"].append((wall - inside) / frames)
                counts.setdefault(mode, [x["counts"] for x in recs])
    same = counts["alone"] == counts["batch"]
    print(f"gmm_sg backend={a.backend} device={a.device}: {len(videos)} videos {videos[0].shape[1]}x{videos[0].shape[0]}, "
          f"{frames} frames; medians of {a.repeats}; load {load0:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"{'mode':<8}{'wall s':>9}{'frames/s':>10}{'method us/frame':>17}{'harness us/frame':>18}")
    med = {m: {k: statistics.median(v) for k, v in d.items()} for m, d in rows.items()}
    for m in ("alone", "batch"):
        d = med[m]
        print(f"{m:<8}{d['wall']:>9.3f}{frames / d['wall']:>10.1f}{d['method'] * 1e6:>17.0f}{d['harness'] * 1e6:>18.0f}")
    print(f"batch / alone wall: {med['batch']['wall'] / med['alone']['wall']:.2f}x; counts identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
