"""What crash isolation costs: the same tasks run in process and in worker processes (from the fork server).

    python -m tests.perf.bench_isolation [--frames 12] [--scenes 6] [--repeats 5] [--jobs 1]

Runs ``frame_difference`` under the full protocol on ``--scenes`` synthetic scenes of
``--frames`` frames (one task per scene), ``run_tasks`` with ``isolate=False`` (this process,
``--jobs 1``) and ``isolate=True`` (``ProcessExecutor``: ``--jobs`` workers from the fork server),
interleaved over ``--repeats`` passes, each into a fresh run folder (nothing reused), with
the frame cache warm. Prints the median wall time of each and the difference per job, and
the time to start and stop one idle worker (from the fork server, pipe, join). Small clips keep the work per
job small, so the difference is the isolation's overhead; the counts of both paths are
checked to be equal. Other load on the machine skews every figure: compare rows of one
invocation only.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--scenes", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()

    import os

    os.environ.setdefault("BGBENCH_CACHE", tempfile.mkdtemp(prefix="bgbench-cache-"))
    from bgbench.data.formats import discover
    from bgbench.data.formats.synthetic import write_scenes
    from bgbench.execution.isolated import ProcessExecutor
    from bgbench.execution.runner import MethodSpec, RunOptions, plan, run_tasks
    from bgbench.protocols import build_protocol

    tmp = Path(tempfile.mkdtemp(prefix="bgbench-iso-"))
    videos = discover(write_scenes(tmp / "data", n_frames=args.frames, first_scored=args.frames // 3))[:args.scenes]
    for v in videos:
        v.check()  # decoded into the cache before any timing
    full = build_protocol("full")
    times: dict[bool, list[float]] = {False: [], True: []}
    counts: dict[bool, list] = {}
    n = 0
    for r in range(args.repeats):
        for isolate in (False, True):
            n += 1
            opts = RunOptions(out=tmp / f"run{n}", isolate=isolate, jobs=args.jobs if isolate else 1)
            tasks = plan([MethodSpec("frame_difference")], {"frame_difference": [full]}, videos, opts)
            t0 = time.perf_counter()
            recs = run_tasks(tasks, opts)
            times[isolate].append(time.perf_counter() - t0)
            counts[isolate] = sorted((x["video"], tuple(x["counts"].values())) for x in recs)
    assert counts[False] == counts[True], "isolated and in-process records differ"
    jobs = len(counts[True])
    start = []
    for _ in range(args.repeats):
        ex = ProcessExecutor(1)
        t0 = time.perf_counter()
        list(ex.map_unordered(abs, [-1]))
        start.append(time.perf_counter() - t0)
    a, b = statistics.median(times[False]), statistics.median(times[True])
    print(f"{jobs} jobs of {args.frames} frames, median of {args.repeats} interleaved passes "
          f"(load average {os.getloadavg()[0]:.2f}):")
    print(f"  in process:            {a * 1000:8.1f} ms  ({a / jobs * 1000:.1f} ms/job)")
    print(f"  isolated (--jobs {args.jobs}):    {b * 1000:8.1f} ms  ({b / jobs * 1000:.1f} ms/job)")
    print(f"  overhead:              {(b - a) / jobs * 1000:+8.1f} ms/job")
    print(f"  one worker, one trivial task (start from the fork server + pipe + join): {statistics.median(start) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
