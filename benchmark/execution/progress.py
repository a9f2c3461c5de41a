"""Progress bars: tqdm's notebook widget under IPython, else its plain terminal bar (the
choice ``tqdm.auto`` makes, without importing asyncio into every command: ~30 ms).

Where stderr is not a terminal (a CI log, a file) tqdm's bar would print nothing (``disable=None``)
or a line per redraw; there a ``LogProgress`` prints one plain line instead, on the first job
done, then whenever a job finishes at least ``interval`` seconds after the last line, and from a
daemon thread at least every ``interval`` seconds (30) even while no job finishes, so that a CI
log never goes quiet for longer than that. The lines only report; nothing a run computes reads
the clock they use.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable

INTERVAL = 30.0  # seconds: the longest a non-terminal log goes without a progress line


def bar(**kwargs):
    if "IPython" in sys.modules:
        from tqdm.auto import tqdm
    else:
        if kwargs.get("disable") is None and not _is_tty(sys.stderr):
            return LogProgress(total=kwargs.get("total"), unit=kwargs.get("unit", "it"), desc=kwargs.get("desc", ""))
        from tqdm import tqdm
    return tqdm(**kwargs)


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class LogProgress:
    """The tqdm methods the run loop uses (``update``, ``set_postfix_str``, ``close``) as plain
    lines: ``bgbench: 3/12 jobs (25%), 61 s; last: knn CDnet2014/baseline/highway ok``.
    ``clock`` and ``write`` are injectable (a test drives ``tick`` with a fake clock);
    ``thread=False`` starts no heartbeat thread."""

    def __init__(self, total: int | None, unit: str = "job", desc: str = "bgbench", interval: float = INTERVAL,
                 clock: Callable[[], float] = time.monotonic, write: Callable[[str], None] | None = None,
                 thread: bool = True):
        self.total, self.unit, self.desc, self.interval = total, unit, desc or "bgbench", interval
        self.clock = clock
        self.write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self.n = 0
        self.postfix = ""
        self.start = self.last = clock()
        self.lines = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if thread and interval > 0:
            self._thread = threading.Thread(target=self._beat, name="bgbench-progress", daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        step = min(1.0, self.interval / 4)
        while not self._stop.wait(step):
            self.tick()

    def line(self) -> str:
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        last = f"; last: {self.postfix}" if self.postfix else ""
        return f"{self.desc}: {done} {self.unit}s{pct}, {self.clock() - self.start:.0f} s{last}"

    def _emit(self) -> None:
        self.last = self.clock()
        self.lines += 1
        self.write(self.line())

    def tick(self) -> bool:
        """Print a line if ``interval`` seconds passed since the last one; True if it printed."""
        with self._lock:
            if self._stop.is_set() or self.clock() - self.last < self.interval:
                return False
            self._emit()
            return True

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.n += n

    def set_postfix_str(self, s: str) -> None:
        with self._lock:
            self.postfix = s
            if self.lines == 0 or self.clock() - self.last >= self.interval:
                self._emit()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
