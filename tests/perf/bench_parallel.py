"""How much ``--jobs N`` speeds a run up: wall time and summed job time of the same tasks run
with several job counts and per-job thread counts, medians of a few repeats.

    python -m tests.perf.bench_parallel --data ../shared/data/CDnet2014/baseline/highway \\
        ../shared/data/UCSD --methods gmm_zivkovic --jobs 1 2 --threads 1 0 --repeats 3

``--threads 0`` leaves OpenCV and torch at their own defaults (every core per job: what runs
did before jobs were held to ``RunOptions.threads``). Every repeat writes into a fresh
temporary OUT and starts fresh joblib workers (as a new ``bgbench run`` does), after the
videos were decoded into the frame cache, so decoding is not timed. Columns:

- ``wall``: seconds of ``run_tasks``;
- ``job sum``: summed ``segment`` + scoring seconds of every job (what the jobs cost, however
  many ran at once);
- ``cpu``: CPU seconds of this process and its workers (user + system), start-up included:
  what the run cost the machine, which other load on it changes less than the times;
- ``speed-up``: the first row's median wall over this row's;
- ``overhead``: wall minus job sum / jobs (process start-up, shipping tasks, waiting for the
  last task, reading frames).

The machine's load average is printed before and after: other work on the machine skews every
figure, so compare rows of one invocation only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def _fresh_pool() -> None:
    """End joblib's reusable worker processes, so the next parallel run starts its own."""
    try:
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)
    except Exception:  # noqa: BLE001 - nothing to end
        pass


def measure(videos, methods: list[str], jobs: int, threads: int, repeats: int, executor: str = "local") -> dict:
    from bgbench.protocols import build_protocol
    from bgbench.execution.runner import MethodSpec, RunOptions, plan, run_tasks

    full = build_protocol("full")
    import resource

    def cpu() -> float:
        a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

    walls, sums, cpus, counts = [], [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bgbench-bench-") as tmp:
            opts = RunOptions(out=Path(tmp), jobs=jobs, threads=threads, executor=executor)
            tasks = plan([MethodSpec(m) for m in methods], {m: [full] for m in methods}, videos, opts)
            _fresh_pool()
            c0, t0 = cpu(), time.perf_counter()
            records = run_tasks(tasks, opts)
            walls.append(time.perf_counter() - t0)
            _fresh_pool()  # workers reaped: their CPU time counts as this process's children's
            cpus.append(cpu() - c0)
        bad = [r for r in records if r["status"] != "ok"]
        if bad:
            raise RuntimeError(f"{len(bad)} job(s) failed, e.g. {bad[0]['video']}: {bad[0]['error']}")
        sums.append(sum(r["timing"]["segment_seconds_total"] + r["timing"]["scoring_seconds"] for r in records))
        counts.append(len(records))
    return {"jobs": jobs, "threads": threads, "wall": statistics.median(walls), "job_sum": statistics.median(sums),
            "cpu": statistics.median(cpus),
            "walls": walls, "sums": sums, "n": counts[0]}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.perf.bench_parallel", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", required=True, type=Path, help="dataset folders or scenes")
    p.add_argument("--methods", default="gmm_zivkovic", help="comma-separated methods (default gmm_zivkovic)")
    p.add_argument("--jobs", nargs="+", type=int, default=[1, 2], help="job counts to compare (default 1 2)")
    p.add_argument("--threads", nargs="+", type=int, default=[1, 0],
                   help="OpenCV/torch threads per job to compare; 0 = the libraries' defaults (default 1 0)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--executor", default="local", choices=("local", "dask"))
    p.add_argument("--roi-policy", default="ignore")
    args = p.parse_args(argv)

    from bgbench.data.formats import discover

    videos = [v for d in args.data for v in discover(d, roi_policy=args.roi_policy)]
    for v in videos:
        v.check()  # decoded into the cache now, not inside a timed run
        v.release()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    print(f"{len(videos)} video(s) x {', '.join(methods)}; {os.cpu_count()} CPU(s); executor {args.executor}; "
          f"{args.repeats} repeat(s); load average before: {_load()}")
    rows = []
    for jobs in args.jobs:
        for threads in args.threads:
            rows.append(measure(videos, methods, jobs, threads, args.repeats, args.executor))
            r = rows[-1]
            print(f"  jobs {jobs} threads {threads or 'default'}: wall {', '.join(f'{w:.2f}' for w in r['walls'])}; "
                  f"job sum {', '.join(f'{s:.2f}' for s in r['sums'])}", flush=True)
    print(f"\n{'jobs':>4} {'threads':>8} {'jobs run':>8} {'wall s':>8} {'job sum s':>10} {'cpu s':>7} {'speed-up':>9} "
          f"{'overhead s':>11}")
    for r in rows:
        print(f"{r['jobs']:>4} {r['threads'] or 'default':>8} {r['n']:>8} {r['wall']:>8.2f} {r['job_sum']:>10.2f} "
              f"{r['cpu']:>7.2f} "
              f"{rows[0]['wall'] / r['wall']:>8.2f}x {r['wall'] - r['job_sum'] / r['jobs']:>11.2f}")
    print(f"(medians of {args.repeats}; load average after: {_load()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
