"""Where a run's tasks execute: ``local`` (this process, or joblib worker processes) or
``dask`` (a Dask cluster: a scheduler given by address, or a LocalCluster started for the run).

One small interface: ``open_executor(opts, n_tasks)`` gives an ``Executor`` whose
``map_unordered(fn, items)`` calls ``fn(item)`` for every item and yields an ``Outcome`` per
item as each finishes (in any order); a task that raised, or whose worker died (Dask's
KilledWorker), yields an Outcome with ``error`` set instead of stopping the others. An
Executor is a context manager (``close()`` on the way out).

- ``local`` (default ``isolate``): ``bgbench.execution.isolated.ProcessExecutor``, ``jobs``
  forked worker processes, at any ``jobs`` including 1; a worker that dies (segfault, OOM,
  SIGKILL) fails its task with the signal named and is replaced; the run goes on.
- ``local`` with ``isolate=False`` (the in-process path, for tests that observe a job from
  the test process): one job or one task in this process, in order; ``jobs`` > 1 joblib's
  loky processes (a worker that dies there still ends the run, as joblib does).
- ``dask``: ``distributed.Client(opts.scheduler)``, or a ``LocalCluster`` of ``jobs`` worker
  processes with one thread each. The scheduler and every worker need bgbench installed
  (the same version) and the data at the same paths; start them with ``dask scheduler`` and
  ``dask worker ADDRESS --nthreads 1`` (one task per process: OpenCV's and torch's thread
  counts are process-wide). ``writes_on_client`` is True: jobs return their records and the
  client writes them (see ``bgbench.execution.runner``).

``check_executor(opts)`` refuses, before any job, what cannot work: an unknown executor, a
scheduler address with ``local``, a scheduler that does not answer, ``save_masks`` with
``dask`` (masks would land on the workers' disks).
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from bgbench.errors import BadInput

EXECUTORS = ("local", "dask")
CONNECT_TIMEOUT = 10.0  # seconds to reach a scheduler, and to wait for its first worker
NO_WORKER_TIMEOUT = 60.0  # seconds a Dask run waits with no worker alive before its unfinished tasks fail


@dataclass
class Outcome:
    """One item's end: ``value`` is what ``fn(item)`` returned, or ``error`` says why not
    (``"Type: message"``, with ``traceback`` text where there is one)."""

    item: Any
    value: Any = None
    error: str | None = None
    traceback: str | None = None


class Executor:
    """Runs ``fn`` over items. ``name``: "inline", "joblib" or "dask"; ``writes_on_client``:
    jobs return their records unwritten and the client writes them."""

    name = "inline"
    writes_on_client = False

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Outcome]:
        for item in items:
            try:
                value = fn(item)
            except Exception as e:  # noqa: BLE001 - the task fails, the others go on
                yield Outcome(item, error=_describe(e), traceback=traceback.format_exc(limit=8))
            else:
                yield Outcome(item, value)

    def close(self) -> None:
        pass

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _guarded(fn: Callable[[Any], Any], k: int, item: Any) -> tuple[int, Any, str | None, str | None]:
    """In a joblib worker: an exception comes back as text (it may not unpickle in the parent)."""
    try:
        return k, fn(item), None, None
    except Exception as e:  # noqa: BLE001
        return k, None, _describe(e), traceback.format_exc(limit=8)


class JoblibExecutor(Executor):
    name = "joblib"

    def __init__(self, jobs: int):
        self.jobs = jobs

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Outcome]:
        from joblib import Parallel, delayed

        items = list(items)
        par = Parallel(n_jobs=self.jobs, return_as="generator_unordered")
        for k, value, error, tb in par(delayed(_guarded)(fn, k, item) for k, item in enumerate(items)):
            yield Outcome(items[k], value, error, tb)


class DaskExecutor(Executor):
    name = "dask"
    writes_on_client = True

    def __init__(self, scheduler: str | None, jobs: int):
        import distributed

        self.cluster = None
        self.address = scheduler
        if scheduler is None:
            self.cluster = distributed.LocalCluster(
                n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=":0",
                memory_limit=0,  # decoded frames are file-backed memmaps: RSS, but not memory to kill a worker for
                silence_logs=logging.ERROR)
            self.client = distributed.Client(self.cluster, set_as_default=False)
        else:
            self.client = _connect(scheduler)

    def check_paths(self, paths: Sequence[str]) -> None:
        """BadInput unless every worker sees every one of ``paths`` (the data, at the same paths)."""
        if self.cluster is not None or not paths:
            return
        _check_workers(self.client, self.address, [str(p) for p in paths], cluster=False)  # type: ignore[arg-type]  # no cluster: an address

    def _workers(self) -> int:
        try:
            return len(self.client.scheduler_info().get("workers", {}))
        except Exception:  # noqa: BLE001 - a scheduler that does not answer has no worker for us
            return 0

    def _completed(self, futures: dict, timeout: float) -> Iterator[Any]:
        """Futures as they finish; if no worker is alive for ``timeout`` seconds (every
        worker died and none came back), the unfinished ones are yielded as ``None`` keys
        of ``self.abandoned`` instead of waiting forever."""
        import time as _time

        from distributed import wait as dwait

        pending = set(futures)
        since = None
        while pending:
            with self.client.as_current():  # the run's client is not the process's default one
                try:
                    done, pending = dwait(pending, timeout=min(2.0, max(timeout, 0.1)), return_when="FIRST_COMPLETED")
                except TimeoutError:
                    done = set()
            yield from done
            if done or not pending:
                since = None
                continue
            if self._workers() > 0:
                since = None
            elif since is None:
                since = _time.monotonic()
            elif _time.monotonic() - since >= timeout:
                self.abandoned = pending
                return

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Outcome]:
        items = list(items)
        futures = {self.client.submit(fn, item, pure=False, priority=-k): item for k, item in enumerate(items)}
        self.abandoned = set()
        try:
            for fut in self._completed(futures, NO_WORKER_TIMEOUT):
                item = futures[fut]
                try:
                    value = fut.result()
                except Exception as e:  # noqa: BLE001 - raised in the task, KilledWorker, a lost graph
                    tb = fut.traceback() if fut.status == "error" else None
                    yield Outcome(item, error=_describe(e),
                                  traceback="".join(traceback.format_tb(tb)) if tb is not None else None)
                else:
                    yield Outcome(item, value)
                fut.release()
            for fut in self.abandoned:
                yield Outcome(futures[fut], error=f"NoWorker: no Dask worker was alive for {NO_WORKER_TIMEOUT:.0f} s "
                                                  "(every worker died); the task was not run")
        finally:
            for fut in futures:
                if not fut.done():
                    fut.cancel()

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


def open_executor(opts: Any, n_tasks: int | None = None) -> Executor:
    """The executor ``opts`` names (``executor``, ``scheduler``, ``jobs``) for ``n_tasks``
    tasks; use it as a context manager. BadInput as ``check_executor`` for bad options; a
    scheduler that does not answer is found here too, as BadInput."""
    _check_options(opts)
    if opts.executor == "dask":
        return DaskExecutor(opts.scheduler, max(1, min(opts.jobs, n_tasks or opts.jobs)))
    if getattr(opts, "isolate", True):  # every task in a child process: a crash is a failed record, not the run's end
        from bgbench.execution.isolated import ProcessExecutor, start_method

        return ProcessExecutor(max(1, min(opts.jobs, n_tasks or opts.jobs)), start_method(opts.device))
    if opts.jobs == 1 or (n_tasks is not None and n_tasks <= 1):
        return Executor()
    return JoblibExecutor(opts.jobs)


def prestart(opts: Any, modules: Iterable[str] = ()) -> None:
    """Start what ``open_executor(opts)`` will fork its workers from now, where that is a fork
    server (``isolated.start_fork_server``, with ``modules`` imported in it), so that its
    start-up overlaps the caller's work before the jobs; a no-op for every other executor."""
    if opts.executor == "local" and getattr(opts, "isolate", True):
        from bgbench.execution.isolated import start_fork_server

        start_fork_server(modules)


def check_executor(opts: Any, paths: Sequence[Any] = ()) -> None:
    """Before any job: BadInput for an executor that cannot run this run, naming the option
    and the fix. With a scheduler address, connects (``CONNECT_TIMEOUT`` s), waits for a
    worker as long, checks that the scheduler and workers can load bgbench's jobs, and that
    every worker sees ``paths`` (e.g. the --data folders)."""
    _check_options(opts)
    if opts.executor == "dask" and opts.scheduler is not None:
        client = _connect(opts.scheduler)
        try:
            _check_workers(client, opts.scheduler, [str(p) for p in paths])
        finally:
            client.close()


def _check_options(opts: Any) -> None:
    if opts.executor not in EXECUTORS:
        raise BadInput(f"unknown executor {opts.executor!r}", "--executor",
                       "use --executor local (this machine) or --executor dask (a Dask cluster)")
    if opts.threads < 0:
        raise BadInput(f"{opts.threads} threads per job is below 0", "--threads",
                       "e.g. --threads 1 (0 leaves OpenCV's and torch's own defaults)")
    if opts.executor == "local":
        if opts.scheduler is not None:
            raise BadInput(f"a scheduler address ({opts.scheduler}) is given but the executor is local", "--scheduler",
                           "add --executor dask to run on that Dask cluster, or drop --scheduler")
        return
    if opts.save_masks:
        raise BadInput("cannot be used with --executor dask: the masks would be written on the workers' disks",
                       "--save-masks", "save masks with --executor local, or drop --save-masks")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise BadInput("--executor dask needs the 'distributed' package, which is not installed", "--executor",
                       "pip install 'dask[distributed]', or use --executor local") from None


def _unreachable(address: str, why: str) -> BadInput:
    return BadInput(f"no Dask scheduler answers at {address} ({why})", "--scheduler",
                    f"start one with `dask scheduler` and workers with `dask worker {address} --nthreads 1`, "
                    "or drop --scheduler to run on a local cluster of --jobs workers")


def _connect(address: str):
    """A Client of the scheduler at ``address``; BadInput at once for a closed port, within
    ``CONNECT_TIMEOUT`` for one that does not answer."""
    import distributed
    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    try:
        scheme, loc = parse_address(address)
        get_backend(scheme)  # an unknown scheme
        host, port = parse_host_port(loc) if scheme in ("tcp", "tls") else (None, None)
    except (ValueError, TypeError) as e:
        raise BadInput(f"{address!r} is not a Dask scheduler address ({e})", "--scheduler",
                       "e.g. --scheduler tcp://127.0.0.1:8786 (what `dask scheduler` prints)") from None
    if host is not None:  # refused at once rather than retried until the timeout
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()  # type: ignore[arg-type]  # host: port too
        except OSError as e:
            raise _unreachable(address, e.strerror or type(e).__name__) from None
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except Exception as e:  # noqa: BLE001 - OSError, TimeoutError, a scheme's own complaint
        raise _unreachable(address, f"{type(e).__name__}: {e}"[:200]) from None


def _probe(paths: Sequence[str]) -> list[str]:
    """On a worker: which of ``paths`` it cannot see."""
    return [p for p in paths if not os.path.exists(p)]


def _check_workers(client: Any, address: str, paths: list[str], cluster: bool = True) -> None:
    """Every worker loads bgbench's jobs and sees ``paths``; with ``cluster``, first a worker
    is there and the scheduler can load them too (what ``check_executor`` checks before a run;
    the run's own ``check_paths`` then asks the workers about its videos only)."""
    if cluster:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except (TimeoutError, OSError):
            raise BadInput(f"the Dask scheduler at {address} has no worker (waited {CONNECT_TIMEOUT:.0f} s)",
                           "--scheduler", f"start workers with `dask worker {address} --nthreads 1` (one per core), "
                           "or drop --scheduler to run on a local cluster") from None
    fix = "install bgbench (this version) in the scheduler's and every worker's Python environment"
    try:  # through the scheduler (it unpickles task graphs), then on every worker
        if cluster:
            try:
                client.submit(_probe, [], pure=False, priority=100).result(timeout=60)
            except TimeoutError:  # a cluster busy with other work: it cannot be told here
                pass
        missing = client.run(_probe, paths)
    except Exception as e:  # noqa: BLE001 - whatever fails here fails every job
        raise BadInput(f"the Dask cluster at {address} cannot run bgbench's jobs ({_describe(e)[:300]})",
                       "--scheduler", fix) from None
    for worker, gone in sorted(missing.items()):
        if gone:
            more = f" (and {len(gone) - 1} more)" if len(gone) > 1 else ""
            raise BadInput(f"Dask worker {worker} cannot see {gone[0]}{more}", "--scheduler",
                           "give every worker the data at the same path (a shared or copied folder), or drop "
                           "--scheduler to run on this machine")
