"""Starting bgbench's own helper processes (report worker, MLflow logger).

Run as ``python -m bgbench.execution.child PARENT SECONDS MODULE [ARGS...]`` it waits until
process PARENT has exited (this process's parent changes), or SECONDS have passed, and then
runs MODULE as ``python -m MODULE ARGS`` would (``after_exit``). Nothing heavier than the
standard library is imported before that.
"""

from __future__ import annotations

import sys


def module_command(module: str) -> list[str]:
    """``python -m MODULE`` for the installed bgbench: ``-P`` (Python 3.11+) keeps the working
    folder off ``sys.path``, so a folder or module named like one of bgbench's in the user's
    working folder can never stand in for it."""
    return [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []), "-m", module]


def after_exit(module: str, parent: int, seconds: float) -> list[str]:
    """``module_command(module)``, deferred until process ``parent`` (this process, which
    starts it) has exited, or ``seconds`` have passed: a background helper whose interpreter
    start and imports would otherwise compete with its parent's own exit (the command line's:
    measured in docs/performance.md, section 6)."""
    return module_command("bgbench.execution.child") + [str(parent), str(seconds), module]


def _wait_then_run(argv: list[str]) -> None:
    import os
    import runpy
    import time

    parent, seconds, module, args = int(argv[0]), float(argv[1]), argv[2], argv[3:]
    deadline = time.monotonic() + seconds
    while os.getppid() == parent and time.monotonic() < deadline:  # reparented once the parent has exited
        time.sleep(0.02)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _wait_then_run(sys.argv[1:])
