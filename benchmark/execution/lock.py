"""One run per run folder at a time: an exclusive ``flock`` on ``OUT/.lock``, held for the run.

A second ``bgbench run`` into the same folder waits for the first with a message (and then
reuses every job the first finished), or, with ``wait=False``, is refused with the holder's
pid. The kernel drops a ``flock`` when its holder dies, so the lock of a killed run is taken
over at once; the pid written in the file is only there to name the holder. The descriptor
is opened close-on-exec, so worker processes started by the run never hold it.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from bgbench.errors import BadInput

LOCK_NAME = ".lock"


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "a process whose pid is not written yet"


class RunLock:
    """``with RunLock(out):`` holds ``out/.lock``; ``wait=False`` raises BadInput if it is taken."""

    def __init__(self, out: Path, wait: bool = True, say=None):
        self.path = Path(out) / LOCK_NAME
        self.wait = wait
        self.say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise BadInput(f"cannot create the run lock ({e.strerror or e})", self.path,
                           "give an --out folder you can write to") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                if not self.wait:
                    raise BadInput(f"is in use by another bgbench run ({holder})", self.path.parent,
                                   "wait for that run to end (run without --no-wait to wait for it), "
                                   "or give another --out") from None
                self.say(f"bgbench: {self.path.parent} is in use by another bgbench run ({holder}); waiting for it "
                         "to end, then its finished jobs are reused (Ctrl-C to stop)")
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            try:
                os.ftruncate(fd, 0)  # the file stays (removing it would race a waiter); an empty one names no holder
            except OSError:
                pass
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> "RunLock":
        return self.acquire() if self.fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()
