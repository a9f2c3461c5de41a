"""The errors bgbench raises on purpose, each mapped to an exit code by the CLI."""

from __future__ import annotations

from pathlib import Path


class BadInput(Exception):
    """Bad data, a bad option or a bad file: the CLI prints one line and exits 2.

    The message names the file or parameter (``where``) and says how to fix it (``fix``).
    """

    exit_code = 2

    def __init__(self, what: str, where: str | Path | None = None, fix: str | None = None):
        self.what, self.where, self.fix = what, where, fix
        parts = [f"{where}: {what}" if where is not None else what]
        if fix:
            parts.append(f"fix: {fix}")
        super().__init__(" -- ".join(parts))


class LeakageError(RuntimeError):
    """A split or a method tried to use ground truth it must not see."""


class MethodUnavailable(BadInput):
    """A registered method whose optional dependency is not installed."""
