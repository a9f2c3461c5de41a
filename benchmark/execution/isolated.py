"""Crash isolation for local runs: every task runs in a child process, so a method that kills
its process (a native library's segfault, ``os._exit``, an OOM kill, SIGKILL) ends as a failed
job record naming the signal, and the run goes on to write results.json, at any ``--jobs``.

``ProcessExecutor(jobs)`` keeps ``jobs`` worker processes, forked from the run (so they see
exactly what it sees: registered methods, the decoded-frame memmaps, its settings) when the
first task is handed out, and reused task after task: a task is sent down a pipe, its records
come back up it. A worker that dies mid-task is reaped; its task yields an ``Outcome`` whose
error names the signal or exit status, and a fresh worker takes its place for the tasks
left. The cost per job is the pickling of one task and its records through a pipe (measured:
docs/robustness.md); the fork of each worker is paid once per run (and once per crash).

Workers come from a fork server (``forkserver``; ``spawn`` where the OS has none): a clean
process, started once, that imported the run loop and forks each worker. Never a fork of the
run itself: by then the run has threads (OpenCV's pool after decoding, torch's OpenMP team
after any tensor work in the caller, a CUDA context), and a child forked while one of them
held a lock waits on it for ever (seen here: a worker stuck in ``cv2.reduce``, another in a
convolution). Tasks and their method classes travel pickled (by module and name, so a
plug-in registered at import is registered in the worker too). A method class that cannot
travel (made at run time, e.g. in a notebook) runs its tasks in the run's own process,
without crash isolation, and the run says so. ``fork`` stays available to tests that inject
faults into the run's process (``ProcessExecutor(jobs, "fork")``), with OpenCV's pool
stopped around each fork (``_opencv_pool_stopped``). A CUDA
context cannot cross a fork (torch refuses CUDA in a child forked after the parent asked
CUDA anything); the fork server never asks: it imports NumPy, OpenCV, the run loop and the
run's method modules, none of which touches CUDA at import (tests/test_executors.py reads
every method module's top level for it), so workers forked from it may use CUDA whatever
the device. ``spawn`` (a fresh interpreter per worker, about a second) serves where the OS
has no fork server. A worker exits when the run closes its pipe, and
within 0.2 s of the run's death (``runner._watch_parent``).
"""

from __future__ import annotations

import ast
import contextlib
import multiprocessing
import os
import signal
import sys
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Iterable, Iterator

from bgbench.execution.executors import Executor, Outcome, _guarded

CLOSE_TIMEOUT = 5.0  # seconds an idle worker may take to exit before it is killed
START_FAILURES = 3  # workers in a row that die before answering anything: the workers cannot start

_SIGNAL_WHY = {
    signal.SIGSEGV: "segmentation fault: a native library crashed",
    signal.SIGBUS: "bus error: a memory-mapped file could not be backed, e.g. a full disk",
    signal.SIGKILL: "killed: out of memory (the kernel's OOM killer) or by a user",
    signal.SIGABRT: "aborted: a native library's assertion failed",
    signal.SIGFPE: "arithmetic fault in native code",
    signal.SIGILL: "illegal instruction in native code",
    signal.SIGTERM: "terminated",
}


def _unimportable_main() -> str | None:
    """The run's ``__main__`` file when a worker started by ``forkserver`` or ``spawn`` could not
    read it (multiprocessing runs the main script again in each worker: a script piped to
    ``python -`` is ``<stdin>``, which no worker can open), else None."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or getattr(sys, "frozen", False):
        return None
    return None if os.path.exists(path) else str(path)


def _main_test(test: ast.expr) -> type[ast.cmpop] | None:
    """``ast.Eq`` or ``ast.NotEq`` where ``test`` compares ``__name__`` with ``"__main__"`` (or
    holds such a comparison, e.g. ``and``-ed with another), else None."""
    for n in ast.walk(test):
        if isinstance(n, ast.Compare) and len(n.ops) == 1 and type(n.ops[0]) in (ast.Eq, ast.NotEq) and \
                {getattr(x, "id", None) or getattr(x, "value", None) for x in (n.left, *n.comparators)} \
                == {"__name__", "__main__"}:
            return type(n.ops[0])
    return None


def _guarded_by_main_check(tree: ast.Module, line: int) -> bool:
    """Whether ``line`` lies in the branch of a top-level ``if`` of ``tree`` that runs only as
    the main script: the body of ``if __name__ == "__main__":``, the ``else`` of ``!=``."""
    for stmt in tree.body:
        if stmt.lineno <= line <= (stmt.end_lineno or stmt.lineno):
            if not isinstance(stmt, ast.If):
                return False
            op = _main_test(stmt.test)
            branch = stmt.body if op is ast.Eq else stmt.orelse if op is ast.NotEq else []
            return any(b.lineno <= line <= (b.end_lineno or b.lineno) for b in branch)
    return False


def unguarded_main_call() -> tuple[str, int] | None:
    """(file, line) of the main script's top-level statement that led to this call, when that
    statement is not under ``if __name__ == "__main__":``; None when it is, or when the call
    does not come from a script's top level (a notebook, ``python -c``, a function called
    from a guarded block, the ``bgbench`` command)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path:
        return None
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "<module>" and frame.f_globals is vars(main)):
        frame = frame.f_back
    if frame is None:
        return None
    try:
        tree = ast.parse(Path(path).read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    return None if _guarded_by_main_check(tree, frame.f_lineno) else (str(path), frame.f_lineno)


def refuse_unguarded_main(what: str = "bgbench.run()") -> None:
    """Raise ``BadInput`` when ``what`` would start worker processes from a script that calls it
    at its top level, not under ``if __name__ == "__main__":``: multiprocessing runs the main
    script again in each worker it starts (``forkserver`` and ``spawn`` both do), so each
    worker would start a run of its own and wait for ever on workers of its own. Checked in
    the run (the script's statement, read with ``ast``) and, should that miss a case, in the
    worker, which then exits naming the fix on stderr."""
    from bgbench.errors import BadInput

    fix = f'call {what} under `if __name__ == "__main__":` in that script'
    if getattr(multiprocessing.current_process(), "_inheriting", False):  # a worker importing the main script
        main = getattr(sys.modules.get("__main__"), "__file__", None) or "the main script"
        raise BadInput(f"{what} was called while a worker process imported the script that started the run "
                       "(multiprocessing runs the main script again in each worker)", main, fix)
    where = unguarded_main_call()
    if where is not None:
        raise BadInput(f"{what} is called at the top level of the script, which every worker process runs again "
                       "as it starts (multiprocessing does), so each would start a run of its own",
                       f"{where[0]}, line {where[1]}", fix)


def describe_start_failure(exitcode: int | None) -> str:
    """Why a task failed whose worker processes all died before answering anything."""
    return (f"WorkerDied: {START_FAILURES} worker processes in a row exited (last status {exitcode}) before taking "
            "a task: they cannot start here (their traceback is on stderr); e.g. a run started from a script read "
            "from standard input, which a worker process cannot import -- fix: run the script from a file")


def describe_exit(exitcode: int | None, first: bool = False) -> str:
    """Why a worker ended without answering, as a job's ``error``: ``WorkerDied: ...``.
    ``first``: the worker had answered no task before (it may not have started at all)."""
    if exitcode is not None and exitcode < 0:
        try:
            sig = signal.Signals(-exitcode)
            name, why = sig.name, _SIGNAL_WHY.get(sig, "")
        except ValueError:
            name, why = f"signal {-exitcode}", ""
        return (f"WorkerDied: the job's process was killed by {name} (signal {-exitcode}"
                + (f", {why}" if why else "") + "); the run went on without it")
    return (f"WorkerDied: the job's process exited with status {exitcode} before returning its records"
            + ("; it had taken no task before this one (a worker that could not start says why on stderr)"
               if first else ""))


# imported once, by the fork server: what every job needs (a worker forks with them loaded)
PRELOAD = ["numpy", "cv2", "bgbench.execution.runner", "bgbench.execution.isolated", "bgbench.scoring.metrics",
           "bgbench.data.framecache", "bgbench.data.video", "bgbench.method"]


def start_method(device: str = "cpu") -> str:
    """``forkserver`` where the OS has it, else ``spawn``, for every device: never a fork of
    the run itself (see the module's docstring)."""
    del device  # a fork server never touched CUDA, OpenMP or OpenCV's pool, whatever the device
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _preload(modules: Iterable[str] = ()) -> None:
    """What the fork server imports before its first fork: the main module (multiprocessing's
    default), ``PRELOAD`` and ``modules`` (bgbench's own only: the server stops at an import
    error other than ImportError, and a plug-in's import is its worker's affair). Only the
    server's start reads it: a server already running keeps what it imported."""
    extra = sorted({m for m in modules if m.startswith("bgbench.")} - set(PRELOAD))
    multiprocessing.get_context("forkserver").set_forkserver_preload(["__main__", *PRELOAD, *extra])


def start_fork_server(modules: Iterable[str] = ()) -> None:
    """Start the fork server now, where workers come from one, with ``PRELOAD`` and ``modules``
    (e.g. the run's method classes' modules) imported in it: its start-up (NumPy, OpenCV,
    the run loop) then overlaps the run's data checks instead of
    delaying the first job, and every worker forks with them loaded instead of importing
    them itself. Returns at once (the server imports in its own process)."""
    if start_method() != "forkserver" or _unimportable_main():  # the jobs will run in this process
        return
    from multiprocessing import forkserver

    _preload(modules)
    forkserver.ensure_running()


def _serve(conn, fn: Callable[[Any], Any], classes: tuple = (), verified: dict | None = None) -> None:
    """A worker: take ``(k, item)`` from the pipe, answer ``_guarded(fn, k, item)``; stop at None
    or when the run closes the pipe. ``verified``: the frame-cache entries the run verified
    (not hashed again here while their stat is unchanged)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle: it closes the pipes
    del classes  # unpickled already (spawn): their modules are imported, their plug-ins registered
    if verified:
        from bgbench.data import framecache

        framecache.trust(verified)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        if msg is None:
            break
        k, item = msg
        answer = _guarded(fn, k, item)
        try:
            conn.send(answer)
        except Exception as e:  # noqa: BLE001 - records that do not pickle: the task fails, the worker goes on
            conn.send((k, None, f"{type(e).__name__}: the job's records could not be sent back ({e})",
                       traceback.format_exc(limit=8)))
    conn.close()
    from bgbench.data import framecache

    framecache.wait_synced()  # cache entries this worker built reach the disk before it goes
    os._exit(0)  # no interpreter teardown in a forked copy of the run (its atexit hooks are the run's)


def _method_classes(items: list) -> tuple[tuple, list[str]]:
    """The method classes of tasks (``item.method.name``), for a worker to import, and the
    names of those that cannot travel (made at run time: not importable by module and name)."""
    import pickle

    from bgbench.method import method_class

    names = sorted({n for it in items if isinstance(n := getattr(getattr(it, "method", None), "name", None), str)})
    out, stay = [], []
    for n in names:
        try:
            cls = method_class(n)
        except Exception:  # noqa: BLE001 - the task fails in the worker, with its own message
            continue
        try:
            if pickle.loads(pickle.dumps(cls)) is not cls:  # by module and name, the same class
                stay.append(n)
                continue
        except Exception:  # noqa: BLE001 - a class made inside a function cannot travel
            stay.append(n)
            continue
        out.append(cls)
    return tuple(out), stay


@contextlib.contextmanager
def _opencv_pool_stopped(forking: bool) -> Iterator[None]:
    """For a fork: OpenCV's worker threads joined first (``setNumThreads(1)`` stops them), so
    none can hold the pool's lock in the child; the run's thread count is set again after."""
    cv2 = sys.modules.get("cv2") if forking else None
    if cv2 is None:
        yield
        return
    n = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(n)


@dataclass
class _Worker:
    proc: Any
    conn: Any
    task: int | None = None  # index of the item it is running
    sent: list = field(default_factory=list)
    answered: int = 0  # tasks it answered: a worker that dies before any may not have started at all


class ProcessExecutor(Executor):
    """``map_unordered`` over ``jobs`` forked worker processes that outlive crashes of a task."""

    name = "processes"

    def __init__(self, jobs: int, start: str | None = None):
        self.jobs = max(1, int(jobs))
        self.start_method = start or start_method()
        self.ctx: Any = multiprocessing.get_context(self.start_method)  # spawn, fork or forkserver: all have Process
        if self.start_method == "forkserver":
            _preload()  # where the run did not start the server earlier (``start_fork_server``)
        self.workers: list[_Worker] = []
        self.started = 0  # worker processes started (the first ``jobs``, then one per crash)
        self.classes: tuple = ()  # spawn: the tasks' method classes, imported in each worker first

    def _start(self, fn: Callable[[Any], Any]) -> _Worker:
        parent, child = self.ctx.Pipe(duplex=True)
        from bgbench.data import framecache

        proc = self.ctx.Process(target=_serve, args=(child, fn, self.classes, framecache.verified()),
                                name="bgbench-job", daemon=True)
        with _opencv_pool_stopped(self.start_method == "fork"):
            proc.start()
        child.close()
        self.started += 1
        return _Worker(proc, parent)

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Outcome]:
        items = list(items)
        if self.start_method != "fork":
            self.classes, stay = _method_classes(items)
            main = _unimportable_main()
            if stay or main:
                why = (f"{', '.join(stay)} cannot be imported by a worker process (defined at run time, e.g. in a "
                       "notebook)" if stay else f"the run's main script ({main}) cannot be read by a worker process "
                       "(a script on standard input?)")
                print(f"bgbench: note: {why}: the run's jobs run in this process, without crash isolation",
                      file=sys.stderr)
                for k, item in enumerate(items):
                    _, value, error, tb = _guarded(fn, k, item)
                    yield Outcome(item, value, error, tb)
                return
        todo = list(range(len(items)))[::-1]  # popped from the end: items in their order
        busy = 0
        unstarted = 0  # workers in a row that died before answering anything
        try:
            while todo or busy:
                while todo and (len(self.workers) < self.jobs or any(w.task is None for w in self.workers)):
                    w = next((w for w in self.workers if w.task is None), None)
                    if w is None:
                        w = self._start(fn)
                        self.workers.append(w)
                    k = todo.pop()
                    try:
                        w.conn.send((k, items[k]))
                    except Exception as e:  # noqa: BLE001 - an item that does not pickle, or a worker gone
                        # a closed pipe is a worker that is gone, even if not yet reaped: never the task's fault
                        if isinstance(e, OSError) or not w.proc.is_alive():
                            self._drop(w)
                            unstarted = unstarted + 1 if not w.answered else 0
                            if unstarted >= START_FAILURES:  # no worker can start: the task fails, said why
                                yield Outcome(items[k], error=describe_start_failure(w.proc.exitcode))
                                unstarted = 0
                                continue
                            todo.append(k)  # a new worker takes the task
                            continue
                        yield Outcome(items[k], error=f"{type(e).__name__}: the task could not be sent to its "
                                                      f"process ({e})", traceback=traceback.format_exc(limit=8))
                        continue
                    w.task = k
                    busy += 1
                if not busy:  # every task left was settled without a worker: nothing to wait for
                    continue
                ready = wait([w.conn for w in self.workers if w.task is not None]
                             + [w.proc.sentinel for w in self.workers if w.task is not None])
                for w in list(self.workers):
                    if w.task is None:
                        continue
                    if w.conn in ready or w.proc.sentinel in ready:
                        answer = None
                        if w.conn.poll():
                            try:
                                answer = w.conn.recv()
                            except (EOFError, OSError):
                                answer = None
                        k, w.task = w.task, None
                        busy -= 1
                        if answer is not None:
                            w.answered += 1
                            unstarted = 0
                            _, value, error, tb = answer
                            yield Outcome(items[k], value, error, tb)
                            continue
                        self._drop(w)  # died mid-task: its task fails, a new worker takes the rest
                        unstarted = unstarted + 1 if not w.answered else 0
                        yield Outcome(items[k], error=describe_start_failure(w.proc.exitcode)
                                      if unstarted >= START_FAILURES else describe_exit(w.proc.exitcode, not w.answered))
        finally:
            self.close()

    def _drop(self, w: _Worker) -> None:
        w.proc.join()
        self.workers.remove(w)
        w.conn.close()

    def close(self) -> None:
        for w in self.workers:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        for w in self.workers:
            w.proc.join(CLOSE_TIMEOUT if w.task is None else 0)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()
            w.conn.close()
        self.workers = []
