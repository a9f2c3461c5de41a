"""Executors: the same tasks give the same records in this process, in joblib processes, on
a real Dask cluster (a `dask scheduler` and two `dask worker` processes) and on a LocalCluster;
bad executor options are refused before any job; a task that fails on a worker, or kills
it, becomes failed records while the rest go on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bgbench.errors import BadInput
from bgbench.method import METHODS, Method, register_method
from conftest import DATA, ROOT, copy_scene, needs_data

DASK = Path(sys.executable).with_name("dask")
METHODS_USED = ("frame_difference", "gmm_zivkovic")
SEEN_THREADS: list[int] = []

if "test_client_only" not in METHODS:

    @register_method("test_client_only")
    class ClientOnly(Method):
        """Registered in the test process only: a worker elsewhere does not know it"""

        def segment(self, video, frames):
            import cv2

            SEEN_THREADS.append(cv2.getNumThreads())
            for f in frames:
                yield f, np.zeros(video.shape, np.float32)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two short real scenes (60 frames each)."""
    if not DATA.is_dir():
        pytest.skip("../shared/data is not present")
    from bgbench.data.formats import discover

    root = tmp_path_factory.mktemp("exec-data")
    copy_scene(DATA / "CDnet2014" / "baseline" / "highway", root / "baseline" / "highway", range(900, 960))
    copy_scene(DATA / "CDnet2014" / "cameraJitter" / "traffic", root / "cameraJitter" / "traffic", range(900, 960))
    return discover(root, roi_policy="ignore")


def _tasks(videos, opts, methods=METHODS_USED):
    from bgbench.protocols import build_protocol
    from bgbench.execution.runner import MethodSpec, plan

    full = build_protocol("full")
    return plan([MethodSpec(m) for m in methods], {m: [full] for m in methods}, videos, opts)


def _run(videos, out: Path, methods=METHODS_USED, **kw) -> list[dict]:
    from bgbench.execution.runner import RunOptions, run_tasks

    opts = RunOptions(out=out, **kw)
    return run_tasks(_tasks(videos, opts, methods), opts)


def _counts(records: list[dict]) -> dict[tuple[str, str], dict]:
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records]
    return {(r["method"], r["video"]): r["counts"] for r in records}


def _job_files(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in (out / "jobs").rglob("*.json")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A `dask scheduler` and two `dask worker` processes on 127.0.0.1; its address."""
    from distributed import Client

    tmp = tmp_path_factory.mktemp("dask")
    sched_file = tmp / "scheduler.json"
    log = open(tmp / "dask.log", "w")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], stdout=log, stderr=log, env=env, cwd=tmp,
                              start_new_session=True)]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen([str(DASK), "worker", address, "--nthreads", "1", "--nworkers", "1",
                                           "--no-dashboard", "--host", "127.0.0.1"], stdout=log, stderr=log, env=env,
                                          cwd=tmp, start_new_session=True))
        with Client(address, timeout=30, set_as_default=False) as c:
            c.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in procs:  # each in its own session: a nanny's worker process goes with it
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        log.close()


@pytest.mark.slow
@needs_data
def test_dask_cluster_gives_the_records_of_a_local_run(videos, cluster, tmp_path):
    from bgbench.execution.executors import check_executor
    from bgbench.execution.runner import RunOptions

    local = _run(videos, tmp_path / "local")
    check_executor(RunOptions(out=tmp_path / "dask", executor="dask", scheduler=cluster), [v.path for v in videos])
    on_dask = _run(videos, tmp_path / "dask", executor="dask", scheduler=cluster)
    assert len(local) == len(on_dask) == 4
    assert _counts(on_dask) == _counts(local)
    assert {r["video"] for r in on_dask} == {v.id for v in videos}
    out = tmp_path / "dask"
    files = _job_files(out)
    assert sorted(files) == sorted(_job_files(tmp_path / "local"))
    assert not (out / "checkpoints").exists()
    victim = sorted(files)[0]
    (out / victim).unlink()
    again = _run(videos, out, executor="dask", scheduler=cluster)  # resume: only the lost job is submitted
    assert _counts(again) == _counts(local)
    after = _job_files(out)
    assert sorted(after) == sorted(files) and [k for k in after if after[k] != files[k]] == [victim]


@needs_data
def test_data_the_workers_cannot_see_is_refused_up_front(cluster, tmp_path):
    from bgbench.execution.executors import check_executor
    from bgbench.execution.runner import RunOptions

    gone = tmp_path / "not-on-the-workers"
    with pytest.raises(BadInput, match="cannot see .*not-on-the-workers") as e:
        check_executor(RunOptions(out=tmp_path, executor="dask", scheduler=cluster), [DATA, gone])
    assert e.value.where == "--scheduler"


@needs_data
def test_a_task_failing_on_a_dask_worker_becomes_failed_records(videos, cluster, tmp_path):
    """The workers do not know test_client_only: its tasks fail as a whole there (the error
    escapes the job); the client records them failed and the other tasks' records are ok."""
    recs = _run(videos, tmp_path / "run", methods=("frame_difference", "test_client_only"), executor="dask",
                scheduler=cluster)
    status = {(r["method"], r["video"]): (r["status"], r["error"]) for r in recs}
    assert len(status) == 4
    for v in videos:
        assert status[("frame_difference", v.id)] == ("ok", None)
        st, err = status[("test_client_only", v.id)]
        assert st == "failed" and "test_client_only" in err, err
    written = [json.loads(p.read_text()) for p in (tmp_path / "run" / "jobs").rglob("*.json")]
    assert sorted(r["status"] for r in written) == ["failed", "failed", "ok", "ok"]


@pytest.mark.slow
@needs_data
def test_joblib_and_a_dask_local_cluster_give_the_records_of_one_process(videos, tmp_path):
    local = _run(videos, tmp_path / "local")
    for name, kw in {"joblib": {"jobs": 2}, "dask": {"executor": "dask", "jobs": 2}}.items():
        recs = _run(videos, tmp_path / name, **kw)
        assert _counts(recs) == _counts(local), name
        assert sorted(_job_files(tmp_path / name)) == sorted(_job_files(tmp_path / "local")), name
        # the example frames reach OUT whichever executor ran the job (a Dask worker's travel in its record)
        pngs = {d: sorted(p.relative_to(tmp_path / d) for p in (tmp_path / d / "examples").rglob("*.png"))
                for d in (name, "local")}
        assert pngs[name] and pngs[name] == pngs["local"], name
        for r in recs:
            assert "_files" not in r or name == "dask"
            ex = r["examples"]["overlay"]
            assert (tmp_path / name / ex).read_bytes() == (tmp_path / "local" / ex).read_bytes(), (name, ex)
        assert not any("_files" in json.loads(p.read_text()) for p in (tmp_path / name / "jobs").rglob("*.json"))


def test_a_worker_that_dies_is_a_failed_outcome_and_the_executor_goes_on(tmp_path):
    import dask

    from bgbench.execution.executors import open_executor
    from bgbench.execution.runner import RunOptions

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with open_executor(RunOptions(out=tmp_path, executor="dask", jobs=1)) as ex:
            (dead,) = ex.map_unordered(os._exit, [3])
            assert dead.item == 3 and dead.value is None and "KilledWorker" in dead.error
            (ok,) = ex.map_unordered(abs, [-2])  # a fresh worker takes the next task
            assert ok.error is None and ok.value == 2


@pytest.mark.parametrize("kw,where,says", [
    ({"executor": "spark"}, "--executor", "unknown executor 'spark'"),
    ({"scheduler": "tcp://127.0.0.1:8786"}, "--scheduler", "--executor dask"),
    ({"executor": "dask", "save_masks": True}, "--save-masks", "workers' disks"),
    ({"executor": "dask", "scheduler": "tcp://127.0.0.1:{port}"}, "--scheduler", "dask scheduler"),
    ({"executor": "dask", "scheduler": "nonsense://"}, "--scheduler", "not a Dask scheduler address"),
])
def test_bad_executor_options_are_refused_before_any_job(kw, where, says, tmp_path):
    from bgbench.execution.executors import check_executor, open_executor
    from bgbench.execution.runner import RunOptions, run_tasks

    port = _free_port()  # nothing listens there now
    kw = {k: v.format(port=port) if isinstance(v, str) else v for k, v in kw.items()}
    opts = RunOptions(out=tmp_path, **kw)
    t0 = time.perf_counter()
    with pytest.raises(BadInput) as e:
        check_executor(opts)
    assert time.perf_counter() - t0 < 5
    assert e.value.where == where and says in str(e.value) and e.value.fix
    if "scheduler" in kw and kw.get("executor") == "dask":
        assert kw["scheduler"] in str(e.value)
    with pytest.raises(BadInput):
        open_executor(opts)
    assert run_tasks([], opts) == []  # nothing to run: no executor is opened


@needs_data
def test_jobs_run_at_the_threads_asked_and_the_setting_is_restored(videos, tmp_path):
    import cv2

    before = cv2.getNumThreads()
    SEEN_THREADS.clear()
    # in this process (isolate=False), where the test can see what the job saw
    _run(videos, tmp_path / "a", methods=("test_client_only",), threads=1, isolate=False)
    assert SEEN_THREADS == [1, 1]
    _run(videos, tmp_path / "b", methods=("test_client_only",), threads=3, isolate=False)  # not OpenCV's default here (2)
    assert SEEN_THREADS[2:] == [3, 3]
    assert cv2.getNumThreads() == before


@needs_data
@pytest.mark.slow  # several seconds: the fast lane stays under 3 minutes; CI runs it
def test_the_run_command_on_a_dask_cluster_equals_a_local_run(videos, cluster, tmp_path, capsys):
    """`bgbench run --executor dask --scheduler ADDRESS` end to end: the same job counts and
    summary as the local run, the executor recorded."""
    from bgbench.cli import main
    from bgbench.records.results import load_results

    root = str(Path(videos[0].path).parents[1])
    args = ["run", "--data", root, "--methods", ",".join(METHODS_USED), "--roi-policy", "ignore", "--no-report",
            "--no-tracking"]
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    assert main([*args, "--out", str(tmp_path / "dask"), "--executor", "dask", "--scheduler", cluster]) == 0
    local, on_dask = load_results(tmp_path / "local"), load_results(tmp_path / "dask")
    assert [(j.key, dict(j.counts)) for j in on_dask.jobs] == [(j.key, dict(j.counts)) for j in local.jobs]
    assert len(on_dask.jobs) == 4 and on_dask.meta.executor == "dask" and local.meta.executor == "local"
    assert set(on_dask.summaries) == set(local.summaries)
    for key, s in local.summaries.items():
        assert {d: x.overall for d, x in on_dask.summaries[key].datasets.items()} == \
            {d: x.overall for d, x in s.datasets.items()}


class _GoneProc:
    """A worker process that is gone but not yet reaped: its pipe is closed, is_alive() still
    says True (the race seen when workers cannot start)."""

    exitcode, sentinel = 1, None

    def is_alive(self):
        return True

    def join(self, timeout=None):
        pass

    def kill(self):
        pass


class _ClosedPipe:
    def send(self, msg):
        raise BrokenPipeError(32, "Broken pipe")

    def close(self):
        pass


def test_workers_that_cannot_start_fail_the_tasks_and_never_hang(monkeypatch):
    """A closed pipe is a dead worker, even before it is reaped: the task goes to a new worker,
    and after START_FAILURES such workers in a row it fails, saying why, instead of the loop
    waiting for ever on no worker (the hang this guards against)."""
    import threading

    from bgbench.execution import isolated

    ex = isolated.ProcessExecutor(1, "fork")
    started = []
    monkeypatch.setattr(ex, "_start", lambda fn: started.append(1) or isolated._Worker(_GoneProc(), _ClosedPipe()))
    got: list = []
    t = threading.Thread(target=lambda: got.extend(ex.map_unordered(abs, [-1, -2])), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "map_unordered hung"
    assert [o.item for o in got] == [-1, -2] and all(o.value is None for o in got)
    assert all("cannot start here" in o.error and "standard input" in o.error for o in got)
    assert len(started) == 2 * isolated.START_FAILURES


@needs_data
def test_a_run_from_a_script_on_standard_input_runs_its_jobs_in_process(tmp_path):
    """Workers re-read the run's main script, which ``python -`` has none of: the run says so and
    runs its jobs in its own process (before: every job failed and the run waited for ever)."""
    script = ("import bgbench\n"
              f"res = bgbench.run(bgbench.RunConfig.of(['frame_difference'], data=[{str(DATA / 'CDnet2014' / 'baseline' / 'office')!r}],"
              f" out={str(tmp_path / 'run')!r}, tracking=False, report=False))\n"
              "print('STATUS', [j.status for j in res.jobs])\n")
    r = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "STATUS ['ok']" in r.stdout
    assert "cannot be read by a worker process" in r.stderr and "without crash isolation" in r.stderr


@needs_data
def test_a_script_that_starts_a_run_at_its_top_level_is_refused_at_once(tmp_path):
    """Each worker runs the main script again as it starts; a script whose top level calls
    ``bgbench.run`` (README's snippet pasted as is) started a run in every worker and waited for
    ever. Now it is refused before any job, naming the script's line and the fix; the same
    call under ``if __name__ == "__main__":`` runs."""
    call = (f"bgbench.run(bgbench.RunConfig.of(['frame_difference'], data=[{str(DATA / 'CDnet2014' / 'baseline' / 'office')!r}],"
            f" out={str(tmp_path / 'run')!r}, tracking=False, report=False))")
    bare, guarded = tmp_path / "bare.py", tmp_path / "guarded.py"
    bare.write_text(f"import bgbench\nres = {call}\n")
    guarded.write_text(f"import bgbench\n\nif __name__ == '__main__':\n    res = {call}\n"
                       "    print('STATUS', [j.status for j in res.jobs])\n")
    r = subprocess.run([sys.executable, str(bare)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 1 and f"{bare}, line 2: bgbench.run() is called at the top level" in r.stderr, r.stderr[-2000:]
    assert 'under `if __name__ == "__main__":`' in r.stderr and not (tmp_path / "run").exists()
    r = subprocess.run([sys.executable, str(guarded)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0 and "STATUS ['ok']" in r.stdout, r.stderr[-2000:]


@pytest.mark.parametrize("source, guarded", [
    ("if __name__ == '__main__':\n    run()\n", True),
    ("if '__main__' == __name__:\n    run()\n", True),
    ("if __name__ == \"__main__\" and ok:\n    x = 1\n    run()\n", True),
    ("run()\n", False),
    ("with ctx:\n    run()\n", False),
    ("if True:\n    run()\n", False),
    ("if __name__ in ('__main__', '__mp_main__'):\n    run()\n", False),  # true in a worker as well
    ("if __name__ != '__main__':\n    pass\nelse:\n    run()\n", True),
    ("if __name__ == '__main__':\n    pass\nelse:\n    run()\n", False),  # the branch that runs in a worker
])
def test_the_top_level_check_reads_the_statement_around_the_call(source, guarded):
    import ast

    from bgbench.execution.isolated import _guarded_by_main_check

    assert _guarded_by_main_check(ast.parse(source), source.count("\n")) is guarded


def test_a_worker_importing_the_main_script_refuses_to_start_a_run(monkeypatch):
    """Should the script check miss a case, the worker (multiprocessing marks it as inheriting
    while it imports the main script) refuses instead of starting a run of its own."""
    import multiprocessing

    from bgbench.execution.isolated import refuse_unguarded_main

    refuse_unguarded_main()  # pytest's own main is guarded, and this is no worker
    monkeypatch.setattr(multiprocessing.current_process(), "_inheriting", True, raising=False)
    with pytest.raises(BadInput, match="while a worker process imported the script.*__name__ == \"__main__\""):
        refuse_unguarded_main()


def _parent_pid(_: object) -> int:
    return os.getppid()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc")
def test_workers_fork_from_a_server_that_imported_what_jobs_need(tmp_path):
    """The fork server imports ``PRELOAD`` (NumPy, OpenCV, the run loop) before its first fork,
    so a worker starts with them loaded instead of importing them itself; a run starts the
    server before it checks its data (``prestart``), so those imports overlap the decoding."""
    from bgbench.execution import isolated
    from bgbench.execution.executors import open_executor, prestart
    from bgbench.execution.runner import RunOptions

    opts = RunOptions(out=tmp_path)
    prestart(opts, {"bgbench.baselines.opencv_bgs"})
    with open_executor(opts, 1) as ex:
        assert isinstance(ex, isolated.ProcessExecutor) and ex.start_method == "forkserver"
        (out,) = ex.map_unordered(_parent_pid, [0])
    assert out.error is None
    maps = Path(f"/proc/{out.value}/maps").read_text()  # the server's own memory: what it imported
    assert "cv2" in maps and "numpy" in maps


def _import_time_cuda(tree) -> list[int]:
    """Lines of ``tree`` that name ``cuda`` in code that runs at import: the module's and class
    bodies, decorators and default values; not function bodies."""
    import ast

    hits: list[int] = []

    def visit(node) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for n in [*getattr(node, "decorator_list", []), *node.args.defaults, *node.args.kw_defaults]:
                if n is not None:
                    visit(n)
            return
        if isinstance(node, ast.Attribute) and node.attr == "cuda" or isinstance(node, ast.Name) and node.id == "cuda":
            hits.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return hits


def test_no_module_of_bgbench_touches_cuda_at_import():
    """The fork server imports the run's method modules and workers fork from it; a CUDA call at
    import (even ``torch.cuda.is_available()``) would leave the server with a driver state that
    no forked worker can use. So no module's import-time code names ``cuda``."""
    import ast

    probe = ast.parse("import torch\nA = torch.cuda.is_available()\nclass M:\n    gpu = torch.cuda.device_count()\n"
                      "    def f(self, d=torch.cuda.current_device()):\n        return torch.cuda.synchronize()\n")
    assert _import_time_cuda(probe) == [2, 4, 5]  # the scan finds what it must, and skips the function body
    found = {str(f.relative_to(ROOT)): lines for d in ("benchmark", "baselines", "methods", "reports")
             for f in sorted((ROOT / d).rglob("*.py")) if (lines := _import_time_cuda(ast.parse(f.read_bytes())))}
    assert not found
