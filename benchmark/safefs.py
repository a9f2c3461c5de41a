"""Guards around the files bgbench reads and writes (docs/robustness.md).

Reading: ``regular_file``/``read_bytes``/``read_text`` refuse anything that is not a regular
file (a FIFO, socket, device or folder where a frame, ROI.bmp, temporalROI.txt, a mask, a
JSON record or a checkpoint is expected) with BadInput naming it; a FIFO is opened with
``O_NONBLOCK`` and checked with ``fstat`` before any read, so it can never block.
``inside`` takes a path recorded in a results.json and returns it only if it resolves
inside the run folder (no absolute path, no ``..``, no symlink out of it).

Writing: ``DiskFull`` (a BadInput, exit 2) names the folder a full disk refused a write in;
``atomic_write`` writes through a temporary file that never outlives a failure. The folders
bgbench writes whole files into (a run folder, a report folder) carry an ownership marker
(``claim``/``check_owned``): a folder holding files bgbench would overwrite but did not
write is refused, naming the file and the fix.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from bgbench.errors import BadInput

RUN_MARK = ".bgbench-run"  # in a run folder bgbench made: results.json, jobs/, report/ ... are its own
REPORT_MARK = ".bgbench-report"  # in a report folder bgbench wrote
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


# --- reading ----------------------------------------------------------------------------------
def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "a special file"


def not_regular(path: Path | str, mode: int, fix: str | None = None) -> BadInput:
    return BadInput(f"is {_kind(mode)}, not a regular file", path,
                    fix or "replace it with the file itself (bgbench reads regular files only)")


def regular_file(path: Path | str, fix: str | None = None, missing_fix: str | None = None) -> Path:
    """``path`` if it is a regular file (symlinks followed), else BadInput naming it. Nothing is opened."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise BadInput("does not exist", path, missing_fix or fix or "give an existing file") from None
    except OSError as e:
        raise BadInput(f"cannot be read ({e.strerror or e})", path, "check the path and its permissions") from None
    if not stat.S_ISREG(st.st_mode):
        raise not_regular(path, st.st_mode, fix)
    return Path(path)


# Set by ``bgbench.data.filehash.noting_reads`` while a caller wants every whole file read
# here to be hashed from the bytes read: called as ``on_read(path, fstat, data, ns)``, ``ns``
# the clock (time.time_ns) before the read.
on_read: Callable[[Path | str, os.stat_result, bytes, int], None] | None = None


def read_bytes(path: Path | str, fix: str | None = None) -> bytes:
    """The bytes of a regular file; a FIFO or other special file raises BadInput without
    blocking (opened non-blocking, checked with fstat before reading). OSError (e.g.
    FileNotFoundError) passes through for the caller's own message."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise not_regular(path, st.st_mode, fix)
        hook = on_read
        ns = time.time_ns() if hook is not None else 0
        # os.read, no file object: the whole file in one read, then the empty read at its end
        # (more when it grew since fstat, or is over the 2 GiB one read returns)
        parts = [os.read(fd, st.st_size + 1)]
        while parts[-1]:
            parts.append(os.read(fd, 1 << 24))
        data = parts[0] if len(parts) == 2 else b"".join(parts)
    finally:
        os.close(fd)
    if hook is not None:
        hook(path, st, data, ns)
    return data


def read_text(path: Path | str, fix: str | None = None, encoding: str = "utf-8") -> str:
    return read_bytes(path, fix).decode(encoding)


def inside(root: Path | str, rel: str | None, what: str = "a path",
           warn: Callable[[str], None] | None = None) -> Path | None:
    """``root / rel`` if it resolves inside ``root`` (a relative path, no ``..`` out of it,
    no symlink leading out), else None with one warning naming it: a path recorded in a
    results.json is read only inside its run folder."""
    if not isinstance(rel, str) or not rel:
        return None
    root_r = Path(root).resolve()
    p = Path(rel)
    target = (root_r / p).resolve() if not p.is_absolute() else p.resolve()
    if p.is_absolute() or not target.is_relative_to(root_r):
        (warn or _warn)(f"bgbench: warning: {what} {rel!r} recorded in {Path(root) / 'results.json'} lies outside the "
                        f"run folder {root}; ignored (a report reads only inside its run folder)")
        return None
    return target


def _warn(msg: str) -> None:
    print(msg, file=sys.stderr)


# --- writing -----------------------------------------------------------------------------------
class DiskFull(BadInput):
    """A write refused for lack of space (ENOSPC, EDQUOT): exit 2, naming the folder. Never a
    bad video (``--on-bad-data skip`` does not skip it) and never a failed job record."""


def is_disk_full(e: BaseException) -> bool:
    return isinstance(e, DiskFull) or (isinstance(e, OSError) and e.errno in DISK_FULL)


def disk_full(folder: Path | str, what: str = "files") -> DiskFull:
    return DiskFull(f"no space left on the device while writing {what} (nothing half-written is left)", folder,
                    "free space there (or point it elsewhere: --out, $BGBENCH_CACHE) and run the same command again: "
                    "finished jobs are kept and the re-run resumes exactly")


@contextmanager
def atomic_write(path: Path | str, what: str = "a file") -> Iterator[Path]:
    """``with atomic_write(p) as tmp:`` write ``tmp``; on success it replaces ``p``. On any
    failure the temporary file is removed; a full disk raises ``DiskFull`` naming the folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # one per writer thread
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if is_disk_full(e) and not isinstance(e, DiskFull):
            raise disk_full(path.parent, what) from None
        raise


def write_bytes(path: Path | str, data: bytes, what: str = "a file") -> None:
    """``data`` into ``path`` atomically (folders created); a full disk is ``DiskFull``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if is_disk_full(e):
            raise disk_full(path.parent, what) from None
        raise
    with atomic_write(path, what) as tmp:
        tmp.write_bytes(data)


# --- ownership of folders bgbench writes into --------------------------------------------------------
def _mark(folder: Path, name: str, kind: str) -> None:
    p = folder / name
    if not p.exists():
        with atomic_write(p, "the ownership marker") as tmp:
            tmp.write_text(json.dumps({"written_by": "bgbench", "kind": kind}) + "\n")


def _is_results(path: Path) -> bool:
    """A results.json bgbench wrote: JSON with its schema version, meta and jobs."""
    try:
        doc = json.loads(read_text(path))
    except (OSError, ValueError, BadInput):
        return False
    return isinstance(doc, dict) and "schema_version" in doc and isinstance(doc.get("meta"), dict) \
        and isinstance(doc.get("jobs"), list)


REPORT_SIGNATURE = "<title>bgbench leaderboard</title>"
REPORT_NAMES = ("leaderboard.html", "leaderboard.json", "mosaic.png", "mosaic.pdf")
REPORT_PREFIXES = ("f_measure_", "metrics_", "pr_", "speed_accuracy_", "leaderboard_", "published_", "categories_")


def _report_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.name in REPORT_NAMES or (p.name.startswith(REPORT_PREFIXES)
                                                and p.suffix in (".md", ".csv", ".tex", ".png", ".pdf")))


def _is_report(folder: Path) -> bool:
    """A report folder from before markers: its leaderboard.html carries bgbench's title."""
    try:
        return REPORT_SIGNATURE in read_bytes(folder / "leaderboard.html")[:4096].decode("utf-8", "replace")
    except (OSError, BadInput):
        return False


def check_report_folder(folder: Path | str, option: str = "--out") -> None:
    """BadInput if ``folder`` holds files a report would overwrite that bgbench did not write."""
    folder = Path(folder)
    if (folder / REPORT_MARK).is_file():
        return
    found = _report_files(folder)
    if found and not _is_report(folder):
        raise BadInput(f"holds {found[0].name}, which bgbench did not write (no {REPORT_MARK} marker); the report "
                       "would overwrite it", found[0], f"give {option} an empty folder or one bgbench wrote, or move "
                       "the file away")


def claim_report_folder(folder: Path | str, option: str = "--out") -> None:
    folder = Path(folder)
    check_report_folder(folder, option)
    folder.mkdir(parents=True, exist_ok=True)
    _mark(folder, REPORT_MARK, "report")


def check_run_folder(out: Path | str) -> None:
    """BadInput if the run folder ``out`` holds a results.json, tracking.json or report that
    bgbench did not write (a run would overwrite them). A folder with the marker is bgbench's;
    one without (made before markers) is accepted when its results.json is a bgbench record."""
    out = Path(out)
    if (out / RUN_MARK).is_file():
        return
    fix = "give --out an empty folder or a run folder bgbench made, or move the file away"
    res = out / "results.json"
    if os.path.lexists(res) and not _is_results(res):
        raise BadInput(f"was not written by bgbench (not a bgbench results record, and {out} has no {RUN_MARK} "
                       "marker); a run would overwrite it", res, fix)
    for name in ("tracking.json",):
        p = out / name
        if os.path.lexists(p) and not os.path.lexists(res):
            raise BadInput(f"was not written by bgbench ({out} has no {RUN_MARK} marker); a run would overwrite it",
                           p, fix)
    check_report_folder(out / "report", "--out")


def claim_run_folder(out: Path | str) -> None:
    out = Path(out)
    check_run_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    _mark(out, RUN_MARK, "run")


def same_file(a: Path | str, b: Path | str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def refuse_overwrite(path: Path | str, is_ours: Callable[[Path], bool], option: str, protected: Sequence[Path] = (),
                     fix: str = "") -> None:
    """Before writing ``path``: BadInput if it is one of ``protected`` (e.g. the run's own
    record) or exists and ``is_ours`` says bgbench did not write it."""
    path = Path(path)
    for p in protected:
        if os.path.lexists(path) and same_file(path, p):
            raise BadInput(f"is {p}, which this command reads; it would be overwritten", option,
                           fix or "give another file name")
    if os.path.lexists(path) and not is_ours(path):
        raise BadInput("exists and was not written by bgbench; it would be overwritten", path,
                       fix or f"give {option} a new file name, or move the file away")
