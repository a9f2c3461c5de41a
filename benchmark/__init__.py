"""bgbench: a benchmark and leaderboard suite for video background subtraction.

``import bgbench`` is light; the library API (``bgbench.run``, ``bgbench.RunConfig``,
``bgbench.score``, ``bgbench.splits``, ``bgbench.report``, ``bgbench.load_results``) is
imported on first use. Plug-in methods import ``bgbench.method``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {"RunConfig", "MethodSpec", "ScoreOptions", "run", "run_folder", "prepare", "splits", "score", "report",
        "load_videos"}
__all__ = ["__version__", *sorted(_API), "load_results"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from bgbench import api

        return getattr(api, name)
    if name == "load_results":
        from bgbench.records.results import load_results

        return load_results
    raise AttributeError(f"module 'bgbench' has no attribute {name!r}")
