"""Executing a run: the job loop, executors, devices, threads, locks, checkpoints, progress."""
