"""Starting bgbench's own helper processes (report worker, MLflow logger)."""

from __future__ import annotations

import sys


def module_command(module: str) -> list[str]:
    """``python -m MODULE`` for the installed bgbench: ``-P`` (Python 3.11+) keeps the working
    folder off ``sys.path``, so a folder or module named like one of bgbench's in the user's
    working folder can never stand in for it."""
    return [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []), "-m", module]
