"""A report builder started before a run's jobs, so that the report's start-up is not paid
after them: ``bgbench run`` starts it when its report may draw a matplotlib figure
(``bgbench.api._draws_plots``: two methods or more, or one whose output is not binary), and
asks it for the report once results.json is on disk. The tables and the mosaic need no
figure library: a run without such figures builds its report in its own process.

While the jobs run, the worker imports what the report needs (matplotlib, fontTools, OpenCV,
the report modules) and draws two throw-away figures, a curve as PNG and PDF (the font files
and caches) and a small mosaic (the image paths), on a thread of the lowest CPU priority
(Linux: nice 19 for that thread only), so that it takes idle CPU only and does not slow a
timed method down; asked for the report, it stops after its current step (``_warm_up``).
Then it builds the report at normal priority and answers with the files it wrote. If the
worker cannot start, dies, or fails, the run builds the report in its own process instead
(``ReportWorker.build`` raises, the caller falls back), so a report is never lost to it.

Protocol (one JSON line each way): the run writes ``{"run_dir": ..., "out": ...}``; the
worker answers ``{"ok": true, "files": {kind: [paths]}}`` or ``{"ok": false, "error": ...}``.
An empty line or end of input ends it, at once (``os._exit``: everything it wrote is
flushed and closed already, and the interpreter's teardown would keep the run waiting).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable


REPLY_TIMEOUT = 300.0  # seconds a report may take in the worker before the run builds it itself


class WorkerFailed(RuntimeError):
    pass


class ReportWorker:
    """The run's side: start, ``build``, ``close`` (also on exit from a ``with`` block)."""

    def __init__(self) -> None:
        from bgbench.execution.child import module_command

        self.stderr = tempfile.TemporaryFile("w+")  # a file, not a pipe: warnings can never block the worker
        # a session of its own: stopping it stops its PDF children too (``_kill``)
        self.proc = subprocess.Popen(module_command("bgbench.reports.worker"), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                     start_new_session=True)

    def build(self, run_dir: Path, out: Path, timeout: float = REPLY_TIMEOUT) -> dict[str, list[Path]]:
        """The report of ``run_dir`` into ``out``, built by the worker; WorkerFailed if it cannot,
        or has not answered within ``timeout`` seconds (it is then stopped)."""
        import select

        request = {"run_dir": str(Path(run_dir).resolve()), "out": str(Path(out).resolve())}
        assert self.proc.stdin is not None and self.proc.stdout is not None  # started with pipes
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            ready = select.select([self.proc.stdout], [], [], timeout)[0]
            line = self.proc.stdout.readline() if ready else None
        except (OSError, ValueError):  # a broken pipe: it is gone
            line = ""
        if line is None:
            self._kill()
            raise WorkerFailed(f"the report worker did not answer within {timeout:.0f} s")
        if not line:
            self.proc.wait()
            self.stderr.seek(0)
            err = self.stderr.read().strip().splitlines()
            raise WorkerFailed(f"the report worker exited ({self.proc.returncode})" + (f": {err[-1]}" if err else ""))
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            raise WorkerFailed(f"the report worker answered {line[:200]!r}") from None
        if not reply.get("ok"):
            raise WorkerFailed(reply.get("error", "the report worker failed"))
        return {kind: [Path(p) for p in files] for kind, files in reply["files"].items()}

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None  # started with pipes
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self._kill()
        self.proc.stdout.close()
        self.stderr.close()

    def _kill(self) -> None:
        """Stop the worker and whatever it forked (its process group), and reap it."""
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:  # gone already
            pass
        self.proc.wait()

    def __enter__(self) -> "ReportWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _warm_up(stop: threading.Event | None = None) -> None:
    """Import the report's libraries, save a small curve (PNG and PDF, into memory) and draw a
    small mosaic, on this thread at the lowest priority: what a report's first figures would
    pay (matplotlib's and OpenCV's imports, the text paths, the font subsetting's modules, the
    mosaic's font), paid during the jobs.

    Step by step, and no further step once ``stop`` is set (the report is asked for): on a
    busy machine the warm-up gets little CPU during the jobs, and what it has not done by
    then is left to the report itself, which pays only for what it draws."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # Linux: this thread only
    except (AttributeError, OSError):
        pass  # elsewhere the warm-up runs at normal priority
    import importlib
    import io

    def imports() -> None:
        importlib.import_module("bgbench.reports.plots")
        importlib.import_module("bgbench.reports.build")  # for the build that follows, the mosaic's modules with it

    def curve() -> Any:
        from . import plots

        with plots._style() as figures:
            fig, ax = figures.subplots(figsize=(plots.COLUMN_WIDTH, 1.0))
            ax.plot([0, 1], [0, 1], label="warm-up 0.123")
            ax.set_xlabel("Recall")
            ax.legend()
        return fig

    def saved(fmt: str) -> Callable[[], None]:
        def step() -> None:
            from . import plots

            if not figs:
                figs.append(curve())
            with plots._style():
                figs[0].savefig(io.BytesIO(), format=fmt, dpi=plots.DPI)
        return step

    def mosaic() -> None:
        import cv2  # the examples are read with it
        import numpy as np

        from .mosaic import mosaic_figure

        importlib.import_module("bgbench.safefs")  # the examples' reads
        _, png = cv2.imencode(".png", np.zeros((24, 32, 3), np.uint8))
        tile = cv2.imdecode(png, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        sketch = mosaic_figure([("warm/up", 1, [tile, tile, None])], ["warm-up"])
        sketch.raster(dpi=30)
        sketch.pdf_bytes()

    figs: list = []
    for step in (imports, saved("png"), saved("pdf"), mosaic):
        if stop is not None and stop.is_set():
            return
        step()


def main() -> int:
    # replies go to the pipe on a descriptor of their own; whatever else writes to standard
    # output (a library, C code) lands in the stderr file instead of in a reply
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    asked = threading.Event()
    warm = threading.Thread(target=_warm_up, args=(asked,), name="report-warm-up", daemon=True)
    warm.start()
    for line in sys.stdin:
        if not line.strip():
            break
        asked.set()  # the warm-up ends its current step, and takes no other
        if warm.is_alive():  # asked before it is done: back to normal priority where allowed (root)
            try:
                os.setpriority(os.PRIO_PROCESS, warm.native_id, 0)  # type: ignore[arg-type]  # None: TypeError, below
            except (AttributeError, OSError, TypeError):
                pass
        warm.join()  # imports are done (a failed warm-up shows again in the build)
        from . import plots

        try:
            from bgbench.records.results import load_results

            from .build import build_report

            req = json.loads(line)
            run_dir = Path(req["run_dir"])
            # one thread now: forked children can write the figures' PDFs beside the PNGs
            with plots.forked_pdfs(on=threading.active_count() == 1):
                files = build_report(load_results(run_dir / "results.json"), run_dir, Path(req["out"]))
            reply = {"ok": True, "files": {k: [str(p) for p in v] for k, v in files.items()}}
        except Exception as e:  # the run falls back to building the report itself
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    sys.stderr.flush()
    os._exit(0)  # nothing left to write: no interpreter teardown (0.2 s with matplotlib) for the run to wait on


if __name__ == "__main__":
    sys.exit(main())
