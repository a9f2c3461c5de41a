"""Bounds on the options that size a run by the machine: ``--jobs`` and ``--threads``.

Chosen rule (docs/robustness.md): a value beyond the cores this process may use
(``os.sched_getaffinity``, else ``os.cpu_count``) is capped at that number, with one line
saying so; it is never refused, since the same command line should run on a smaller
machine. With ``--executor dask --scheduler ADDRESS`` the work runs on other machines: no
cap applies (``--jobs`` does not apply there; ``--threads`` is the workers' business).
Neither value changes a result (results depend on code, data, parameters and seed only);
both are recorded in results.json as used.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cap_jobs_threads(jobs: int, threads: int | None, executor: str = "local", scheduler: str | None = None
                     ) -> tuple[int, int, list[str]]:
    """(jobs, threads per job, notes): ``threads`` None means the cores shared among the jobs."""
    cores = available_cores()
    notes: list[str] = []
    remote = executor == "dask" and scheduler is not None
    if not remote and jobs > cores:
        notes.append(f"bgbench: --jobs {jobs} capped at {cores}: this machine gives the run {cores} core(s)")
        jobs = cores
    if threads is None:
        threads = max(1, cores // jobs)
    elif not remote and threads > cores:
        notes.append(f"bgbench: --threads {threads} capped at {cores}: this machine gives the run {cores} core(s)")
        threads = cores
    return jobs, threads, notes
