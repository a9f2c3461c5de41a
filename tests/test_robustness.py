"""Nothing lost, nothing hung, nothing trusted (issue 24; docs/robustness.md): bgbench deletes
and overwrites only what it wrote, survives a job that kills its process and a full disk,
reads a report's images only inside its run folder, draws names as text, refuses special
files without blocking, bounds --jobs/--threads, and checks weights before any job."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from bgbench.cli import main
from bgbench.method import METHODS, Method, register_method

# how test_crasher ends its process on the shadow scene: its parameter ``how`` (a worker
# process imports this module afresh, so the choice travels with the job, not in a global)

if "test_crasher" not in METHODS:

    @register_method("test_crasher")
    class Crasher(Method):
        """Kills its own process on the shadow scene, predicts nothing elsewhere"""

        params = {"how": ("segv", "how it ends its process: segv, kill or exit", ["segv", "kill", "exit"])}

        def segment(self, video, frames):
            if video.name == "shadow":
                how = self.p["how"]
                if how == "segv":
                    os.kill(os.getpid(), signal.SIGSEGV)
                elif how == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                else:
                    os._exit(3)
            for f in frames:
                yield f, np.zeros(video.shape, np.float32)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two synthetic scenes (moving, shadow), 24 frames each, in the CDnet2014 layout."""
    from bgbench.data.formats.synthetic import write_scenes

    root = tmp_path_factory.mktemp("robust")
    full = write_scenes(root / "all", n_frames=24, first_scored=8)
    two = root / "two" / "ds"
    for cat, scene in (("baseline", "moving"), ("shadow", "shadow")):
        shutil.copytree(full / cat / scene, two / cat / scene)
    return root / "two"


def _run(data: Path, out: Path, *extra: str, methods: str = "temporal_median") -> int:
    # --device cpu: the same run wherever the tests run
    return main(["run", "--data", str(data), "--methods", methods, "--no-tracking", "--device", "cpu", "--out",
                 str(out), *extra])


def _one_line(capsys) -> str:
    """The one error line on stderr (a run's plan line and progress lines may precede it; no
    traceback)."""
    import re

    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and " method(s) x " not in line
             and not re.match(r"bgbench: \d+/\d+ jobs", line)]
    assert len(lines) == 1, lines
    assert "fix:" in lines[0], lines[0]
    return lines[0]


# --- data lost ------------------------------------------------------------------------------------
def test_cache_clear_deletes_only_what_bgbench_wrote(tmp_path, monkeypatch, capsys):
    from bgbench.data import framecache

    cache = tmp_path / "shared-folder"
    monkeypatch.setenv("BGBENCH_CACHE", str(cache))
    srcs = []
    for i in range(3):
        p = tmp_path / f"src{i}.bin"
        p.write_bytes(bytes([i]) * 16)
        srcs.append(p)
    framecache.cached_stack("v/a-gray", srcs, lambda p: np.frombuffer(p.read_bytes(), np.uint8).reshape(4, 4), (4, 4))
    framecache._open.clear()
    (mine,) = [p for p in cache.iterdir() if p.suffix == ".npy"]
    users = {"notes.txt": b"mine", "model-0123456789abcdef0123.npy": b"not a bgbench stack",
             "model-0123456789abcdef0123.json": b'{"name": "mine"}', "backup.tmp": b"x"}
    for name, body in users.items():
        (cache / name).write_bytes(body)
    os.utime(cache / "backup.tmp", (1, 1))  # old: a bgbench temporary file of this age would go
    (cache / "synthetic-mine").mkdir()
    (cache / "synthetic-mine" / "frame.png").write_bytes(b"png")
    assert main(["cache", "clear"]) == 0
    out = capsys.readouterr().out
    assert not mine.exists() and not mine.with_suffix(".json").exists()
    for name, body in users.items():
        assert (cache / name).read_bytes() == body, name
    assert (cache / "synthetic-mine" / "frame.png").read_bytes() == b"png"
    assert "1 entry deleted" in out and f"5 file(s) or folder(s) bgbench did not write (or still in use) left in {cache}" in out


@pytest.mark.slow  # several seconds: the fast lane stays under 3 minutes; CI runs it
def test_out_never_overwrites_a_results_json_or_report_bgbench_did_not_write(data, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "results.json").write_text('{"my": "numbers"}')
    assert _run(data, out, "--no-report") == 2
    line = _one_line(capsys)
    assert str(out / "results.json") in line and "not written by bgbench" in line
    assert (out / "results.json").read_text() == '{"my": "numbers"}' and not (out / "jobs").exists()

    out2 = tmp_path / "mine2"
    (out2 / "report").mkdir(parents=True)
    (out2 / "report" / "leaderboard.html").write_text("<p>my page</p>")
    assert _run(data, out2) == 2
    assert "leaderboard.html" in _one_line(capsys)
    assert (out2 / "report" / "leaderboard.html").read_text() == "<p>my page</p>"

    run = tmp_path / "run"  # a run folder bgbench made: re-running and reporting into it is fine
    assert _run(data, run, "--no-report") == 0 and _run(data, run) == 0
    capsys.readouterr()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "metrics_notes.md").write_text("my notes")
    assert main(["report", str(run), "--out", str(theirs)]) == 2
    assert "metrics_notes.md" in _one_line(capsys)
    assert (theirs / "metrics_notes.md").read_text() == "my notes"
    assert main(["report", str(run), "--out", str(tmp_path / "fresh")]) == 0
    assert main(["report", str(run), "--out", str(tmp_path / "fresh")]) == 0  # its own folder: rewritten


def test_check_update_never_overwrites_the_runs_record_or_a_foreign_file(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert _run(data, run, "--no-report") == 0
    record = (run / "results.json").read_bytes()
    capsys.readouterr()
    assert main(["check", str(run), "--reference", str(run / "results.json"), "--update", "--no-speed"]) == 2
    assert "--reference" in _one_line(capsys)
    assert (run / "results.json").read_bytes() == record
    foreign = tmp_path / "notes.json"
    foreign.write_text('{"mine": 1}')
    assert main(["check", str(run), "--reference", str(foreign), "--update", "--no-speed"]) == 2
    assert "notes.json" in _one_line(capsys) and foreign.read_text() == '{"mine": 1}'
    ref = tmp_path / "ref.json"
    assert main(["check", str(run), "--reference", str(ref), "--update", "--no-speed"]) == 0
    assert main(["check", str(run), "--reference", str(ref), "--update", "--no-speed"]) == 0  # a reference: replaced


def test_names_with_glob_characters_never_delete_each_others_records(tmp_path):
    """`hw[1]` is a glob pattern that matches `hw1`: the cleanup of stale records compares
    names literally (and checks the record's own job), so neither deletes the other's."""
    from types import SimpleNamespace

    from bgbench.execution.runner import RunOptions, _write, job_path

    opts = RunOptions(out=tmp_path)
    task = SimpleNamespace(method=SimpleNamespace(name="m"), protocol=SimpleNamespace(name="full"),
                           split=SimpleNamespace(name="all"))
    recs = {}
    for vid, fp in (("ds/c/hw1", "0" * 16), ("ds/c/hw[1]", "1" * 16), ("ds/c/hw?", "2" * 16)):
        rec = {"method": "m", "protocol": "full", "split": "all", "video": vid, "fingerprint": fp, "status": "ok"}
        _write(task, SimpleNamespace(id=vid), rec, opts)
        recs[vid] = job_path(tmp_path, "m", "full", "all", vid, fp)
    assert all(p.is_file() for p in recs.values()), sorted(os.listdir(tmp_path / "jobs" / "m" / "full" / "all"))
    # a new fingerprint of hw[1] replaces hw[1]'s old record only
    rec = {"method": "m", "protocol": "full", "split": "all", "video": "ds/c/hw[1]", "fingerprint": "3" * 16,
           "status": "ok"}
    _write(task, SimpleNamespace(id="ds/c/hw[1]"), rec, opts)
    assert recs["ds/c/hw1"].is_file() and recs["ds/c/hw?"].is_file() and not recs["ds/c/hw[1]"].exists()
    assert job_path(tmp_path, "m", "full", "all", "ds/c/hw[1]", "3" * 16).is_file()


def test_scenes_hw1_and_hw_bracket_1_both_keep_their_records_across_reruns(data, tmp_path):
    ds = tmp_path / "globs" / "ds"
    shutil.copytree(data / "ds" / "baseline" / "moving", ds / "cat" / "hw1")
    shutil.copytree(data / "ds" / "baseline" / "moving", ds / "cat" / "hw[1]")
    (ds / "cat" / "hw[1]" / "input" / "in000001.jpg").write_bytes(  # other content: one scene, not a copy
        (data / "ds" / "shadow" / "shadow" / "input" / "in000001.jpg").read_bytes())
    out = tmp_path / "run"
    for threshold in ("0.5", "0.4"):  # a new fingerprint each time: old records are cleaned up
        assert _run(tmp_path / "globs", out, "--no-report", "--threshold", threshold) == 0
        res = json.loads((out / "results.json").read_text())
        assert sorted(j["video"] for j in res["jobs"]) == ["ds/cat/hw1", "ds/cat/hw[1]"]
        files = sorted(p.name for p in (out / "jobs").rglob("*.json"))
        assert len(files) == 2 and sum(n.startswith("ds__cat__hw1.") for n in files) == 1, files


# --- crashes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("how,jobs,named", [("segv", "1", "SIGSEGV"), ("kill", "1", "SIGKILL"),
                                            ("exit", "2", "exited with status 3")])
def test_a_job_that_kills_its_process_is_a_failed_record_and_the_run_goes_on(data, tmp_path, capsys, monkeypatch,
                                                                              how, jobs, named):
    out = tmp_path / "run"
    code = _run(data, out, "--jobs", jobs, "--no-report", "--set", f"test_crasher.how={how}",
                methods="test_crasher,frame_difference")
    assert code == 1
    res = json.loads((out / "results.json").read_text())
    by = {(j["method"], j["video"].rsplit("/", 1)[-1]): j for j in res["jobs"]}
    assert len(by) == 4
    bad = by[("test_crasher", "shadow")]
    assert bad["status"] == "failed" and named in bad["error"] and bad["error"].startswith("WorkerDied"), bad["error"]
    assert all(j["status"] == "ok" for k, j in by.items() if k != ("test_crasher", "shadow"))
    err = capsys.readouterr().err
    assert f"FAILED test_crasher" in err and named in err
    # a re-run recomputes only the crashed job, and fails it again the same way
    assert _run(data, out, "--jobs", jobs, "--no-report", "--set", f"test_crasher.how={how}",
                methods="test_crasher,frame_difference") == 1
    res2 = json.loads((out / "results.json").read_text())
    assert [j["status"] for j in res2["jobs"]] == [j["status"] for j in res["jobs"]]


def test_isolation_overhead_per_job_is_small(data, tmp_path):
    """The forked worker costs a fork per run and a pipe round trip per task: the same tasks
    in process and isolated give the same counts (the overhead is in docs/robustness.md)."""
    from bgbench.data.formats import discover
    from bgbench.execution.runner import MethodSpec, RunOptions, plan, run_tasks
    from bgbench.protocols import build_protocol

    videos = discover(data)
    full = build_protocol("full")
    counts = []
    for isolate in (False, True):
        opts = RunOptions(out=tmp_path / str(isolate), isolate=isolate)
        recs = run_tasks(plan([MethodSpec("frame_difference")], {"frame_difference": [full]}, videos, opts), opts)
        counts.append(sorted((r["video"], tuple(r["counts"].values())) for r in recs))
    assert counts[0] == counts[1] and len(counts[0]) == 2


@pytest.mark.slow
def test_a_dask_run_whose_workers_all_die_ends_within_a_bounded_time(monkeypatch):
    pytest.importorskip("distributed")
    import time

    from bgbench.execution import executors

    monkeypatch.setattr(executors, "NO_WORKER_TIMEOUT", 3.0)
    ex = executors.DaskExecutor(None, 1)
    try:
        ex.client.wait_for_workers(1, timeout=60)
        ex.cluster.scale(0)
        deadline = time.monotonic() + 60
        while ex._workers() and time.monotonic() < deadline:
            time.sleep(0.2)
        t0 = time.monotonic()
        outs = list(ex.map_unordered(abs, [-1, -2]))
        assert time.monotonic() - t0 < 30
        assert [o.error is not None and o.error.startswith("NoWorker") for o in outs] == [True, True]
    finally:
        ex.close()


# --- full disk -----------------------------------------------------------------------------------------
def _enospc(*a, **k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _resumes_like_a_clean_run(data: Path, out: Path, clean: Path) -> None:
    """Re-running into ``out`` finishes (exit 0) with the counts of a run into an empty folder."""
    assert _run(data, out, "--no-report") == 0
    assert _run(data, clean, "--no-report") == 0
    a, b = (json.loads((d / "results.json").read_text()) for d in (out, clean))
    assert [j["counts"] for j in a["jobs"]] == [j["counts"] for j in b["jobs"]]


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name)


def test_a_full_cache_disk_ends_in_exit_2_naming_the_folder_and_resumes_exactly(data, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BGBENCH_CACHE", str(cache))
    monkeypatch.setattr(os, "posix_fallocate", _enospc)
    out = tmp_path / "run"
    assert _run(data, out, "--no-report", "--on-bad-data", "skip") == 2  # a full disk is never a skipped video
    line = _one_line(capsys)
    assert str(cache) in line and "no space left" in line
    assert _leftovers(cache) == [] and not (out / "results.json").exists()
    monkeypatch.undo()
    monkeypatch.setenv("BGBENCH_CACHE", str(cache))
    _resumes_like_a_clean_run(data, out, tmp_path / "clean")


def test_a_full_out_disk_ends_in_exit_2_naming_the_folder_and_resumes_exactly(data, tmp_path, monkeypatch, capsys):
    from bgbench.execution import isolated
    from bgbench.records import results

    # the fault is injected into this process: its workers must be forks of it to share it
    monkeypatch.setattr(isolated, "start_method", lambda device="cpu": "fork")
    out = tmp_path / "run"
    calls = {"n": 0}
    real_fsync = os.fsync

    def fsync_fills_up(fd):  # the second record written finds the disk full
        calls["n"] += 1
        if calls["n"] >= 2:
            _enospc()
        real_fsync(fd)

    monkeypatch.setattr(results.os, "fsync", fsync_fills_up)
    assert _run(data, out, "--no-report") == 2
    line = _one_line(capsys)
    assert str(out) in line and "no space left" in line
    assert _leftovers(out) == [] and not (out / "results.json").exists()
    kept = sorted(p.name for p in (out / "jobs").rglob("*.json"))
    assert len(kept) == 1  # the job finished before the disk filled is kept
    monkeypatch.undo()
    _resumes_like_a_clean_run(data, out, tmp_path / "clean")


def test_a_full_disk_while_writing_the_report_leaves_no_temporary_file(data, tmp_path, monkeypatch, capsys):
    from bgbench.safefs import DiskFull, atomic_write

    target = tmp_path / "r" / "x.md"
    target.parent.mkdir()
    with pytest.raises(DiskFull) as e:
        with atomic_write(target, "the report") as tmp:
            tmp.write_text("half")
            _enospc()
    assert str(target.parent) in str(e.value) and os.listdir(target.parent) == []


# --- trust --------------------------------------------------------------------------------------------
def _png(path: Path, colour: tuple[int, int, int], shape: tuple[int, int]) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*shape, 3), colour[::-1], np.uint8))


def test_report_reads_only_inside_the_run_folder(data, tmp_path, capsys):
    """Overlays recorded as an absolute path, a path climbing out with .., and a symlink
    inside the run folder pointing out, all to a magenta image outside it: none is read
    (one warning each), and no magenta pixel reaches the mosaic."""
    import cv2

    run = tmp_path / "run"
    assert _run(data, run, "--no-report", "--save-masks", methods="frame_difference,temporal_median") == 0
    doc = json.loads((run / "results.json").read_text())
    shape = cv2.imread(str(run / doc["jobs"][0]["examples"]["input"])).shape[:2]
    secret = tmp_path / "secret.png"  # pure magenta: never in a frame, a mask or the colour key
    _png(secret, (255, 0, 255), shape)
    (run / "masks" / "link.png").symlink_to(secret)
    ways = iter([str(secret), "../secret.png", "masks/link.png"])
    changed = 0
    for job in doc["jobs"]:
        if job["method"] == "temporal_median":
            job["examples"]["overlay"] = next(ways)
            changed += 1
    assert changed == 2
    doc["jobs"][0]["examples"]["input"] = next(ways)  # the symlink as one row's input: that row is left out
    (run / "results.json").write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["report", str(run)]) == 0
    err = capsys.readouterr().err
    assert err.count("outside the run folder") >= 3, err
    mosaic = cv2.imread(str(run / "report" / "mosaic.png"))[..., ::-1]
    magenta = (mosaic[..., 0] > 200) & (mosaic[..., 1] < 60) & (mosaic[..., 2] > 200)
    assert not magenta.any()


def test_names_with_mathtext_and_markup_are_text_everywhere(data, tmp_path, capsys):
    """A dataset, scene and method named with $...$, a bad TeX command and HTML: the report
    is made, the names appear as written (HTML-escaped in the page)."""
    if "te$^$t<b>" not in METHODS:
        register_method("te$^$t<b>")(type("Odd", (Method,), {
            "__doc__": "An odd name",
            "segment": lambda self, video, frames: ((f, np.zeros(video.shape, np.float32)) for f in frames)}))
    root = tmp_path / "odd"
    ds = root / "d$\\frac{$s"
    shutil.copytree(data / "ds" / "baseline" / "moving", ds / "c$_{$at" / "sc$^$<i>e")
    run = tmp_path / "run"
    assert _run(root, run, "--save-masks", methods="te$^$t<b>,frame_difference") == 0, capsys.readouterr().err
    page = (run / "report" / "leaderboard.html").read_text()
    assert "te$^$t&lt;b&gt;" in page and "d$\\frac{$s" in page and "t<b>" not in page
    assert (run / "report" / "mosaic.png").is_file()
    assert any(p.name.startswith("pr_") for p in (run / "report").iterdir())


# --- hangs and resources ------------------------------------------------------------------------------
def _within(seconds: float, fn, *args):
    """``fn(*args)`` in a daemon thread; its return value, or a failure if it hangs."""
    box = {}

    def call():
        try:
            box["v"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - raised again in the test's thread
            box["e"] = e

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"hung for {seconds} s"
    if "e" in box:
        raise box["e"]
    return box.get("v")


@pytest.mark.parametrize("where", ["ROI.bmp", "temporalROI.txt", "input/in000003.jpg", "groundtruth/gt000010.png"])
def test_a_fifo_in_a_scene_is_refused_without_hanging(data, tmp_path, capsys, where):
    ds = tmp_path / "fifo" / "ds"
    scene = shutil.copytree(data / "ds" / "baseline" / "moving", ds / "cat" / "moving")
    (scene / where).unlink()
    os.mkfifo(scene / where)
    assert _within(60, _run, tmp_path / "fifo", tmp_path / "run", "--no-report") == 2
    line = _one_line(capsys)
    assert Path(where).name in line and "FIFO" in line


def test_fifos_as_mask_reference_record_checkpoint_and_weights_are_refused(data, tmp_path, capsys):
    from bgbench.execution import checkpoint
    from bgbench.errors import BadInput

    run = tmp_path / "run"
    assert _run(data, run, "--no-report") == 0
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    capsys.readouterr()
    assert _within(30, main, ["check", str(run), "--reference", str(fifo), "--no-speed"]) == 2
    assert "pipe" in _one_line(capsys)
    (tmp_path / "run2").mkdir()
    os.mkfifo(tmp_path / "run2" / "results.json")
    assert _within(30, main, ["report", str(tmp_path / "run2")]) == 2
    assert "results.json" in _one_line(capsys)
    masks = tmp_path / "masks"
    masks.mkdir()
    os.mkfifo(masks / "bin000010.png")
    scene = data / "ds" / "baseline" / "moving"
    assert _within(30, main, ["score", str(masks), "--video", str(scene), "--partial"]) == 2
    assert "bin000010.png" in _one_line(capsys)
    for fn in (checkpoint.check, checkpoint.load):
        with pytest.raises(BadInput, match="FIFO"):
            _within(30, fn, fifo)
    pytest.importorskip("torch")
    with pytest.raises(BadInput, match="FIFO"):
        _within(30, checkpoint.check_weights, fifo, "x.weights")


def test_jobs_and_threads_beyond_the_machine_are_capped_with_one_note(data, tmp_path, capsys):
    from bgbench.execution.limits import available_cores

    cores = available_cores()
    out = tmp_path / "run"
    assert _run(data, out, "--no-report", "--jobs", "200", "--threads", "100000") == 0
    err = capsys.readouterr().err
    assert f"--jobs 200 capped at {cores}" in err and f"--threads 100000 capped at {cores}" in err
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert meta["jobs"] == cores and meta["threads"] == cores


@pytest.mark.parametrize("argv,named", [
    (["check", "{run}", "--reference", "{ref}", "--repeats", "100000"], "--repeats"),
    (["speed", "--methods", "frame_difference", "--repeats", "100000"], "--repeats"),
    (["synth", "{tmp}/s", "--frames", "10000000"], "--frames"),
    (["run", "--data", "{data}", "--methods", "temporal_median", "--protocol", "cross-scene", "--folds", "100000",
      "--out", "{tmp}/o"], "--folds"),
])
def test_other_unbounded_numbers_are_refused(data, tmp_path, capsys, argv, named):
    values = {"run": str(tmp_path / "nope"), "ref": str(tmp_path / "ref.json"), "tmp": str(tmp_path), "data": str(data)}
    assert main([a.format(**values) for a in argv]) == 2
    assert named in _one_line(capsys)


@pytest.mark.parametrize("method", ["two_stage_cnn", "siamese_fcn"])
def test_weights_that_do_not_load_are_refused_before_any_job(data, tmp_path, capsys, method):
    pytest.importorskip("torch")
    bad = tmp_path / "vgg16.pt"
    bad.write_bytes(b"PK\x03\x04 not a state dict")
    out = tmp_path / "run"
    assert _run(data, out, "--no-report", "--config", "smoke", "--protocol", "scene-specific", "--device", "cpu",
                "--set", f"{method}.weights={bad}", methods=method) == 2
    line = _one_line(capsys)
    assert "vgg16.pt" in line and "weights_only" in line
    assert not (out / "jobs").exists()


def test_a_real_full_disk_tmpfs_cache_exits_2_without_sigbus_and_resumes(data, tmp_path):
    """Where this process may mount (root), a 1 MiB tmpfs as $BGBENCH_CACHE: the run ends with
    exit 2 and one line naming it (never SIGBUS, exit 135), leaves no temporary file, and once
    the tmpfs is grown the same command gives the clean run's counts."""
    import subprocess
    import sys

    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        env = {**os.environ, "BGBENCH_CACHE": str(mnt / "cache"), "BGBENCH_TRACKING": "0"}
        argv = [sys.executable, "-m", "bgbench.cli", "run", "--data", str(data), "--methods", "temporal_median",
                "--no-report", "--no-tracking", "--out", str(tmp_path / "run")]
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
        errors = [line for line in p.stderr.splitlines() if line.startswith("bgbench: error")]
        assert len(errors) == 1 and str(mnt / "cache") in errors[0] and "no space left" in errors[0], p.stderr
        assert _leftovers(mnt) == []
        assert subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)]).returncode == 0
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
    finally:
        subprocess.run(["umount", "-l", str(mnt)])
    assert _run(data, tmp_path / "clean", "--no-report") == 0
    a, b = (json.loads((d / "results.json").read_text()) for d in (tmp_path / "run", tmp_path / "clean"))
    assert [j["counts"] for j in a["jobs"]] == [j["counts"] for j in b["jobs"]]


def test_spawned_workers_run_the_tasks_too_and_report_a_crash(data, tmp_path):
    """The start method for a GPU run (``spawn``: a CUDA context cannot cross a fork) gives
    the records of the forked one, and a worker killed under it is a failed outcome."""
    from bgbench.data.formats import discover
    from bgbench.execution.isolated import ProcessExecutor
    from bgbench.execution.runner import MethodSpec, RunOptions, _execute_in_worker, plan
    from bgbench.protocols import build_protocol
    import functools

    videos = discover(data)
    full = build_protocol("full")
    got = {}
    for start in ("fork", "spawn"):
        opts = RunOptions(out=tmp_path / start)
        tasks = plan([MethodSpec("frame_difference")], {"frame_difference": [full]}, videos, opts)
        with ProcessExecutor(2, start) as ex:
            outs = list(ex.map_unordered(functools.partial(_execute_in_worker, opts=opts), tasks))
        assert all(o.error is None for o in outs), [o.error for o in outs]
        got[start] = sorted((r["video"], tuple(r["counts"].values())) for o in outs for r in o.value)
    assert got["fork"] == got["spawn"] and len(got["fork"]) == 2
    with ProcessExecutor(1, "spawn") as ex:
        outs = list(ex.map_unordered(os._exit, [5, 6]))
    assert [o.error for o in outs] == [f"WorkerDied: the job's process exited with status {c} before returning its "
                                       "records; it had taken no task before this one (a worker that could not start "
                                       "says why on stderr)" for c in (5, 6)]


def test_synth_never_overwrites_a_folder_it_did_not_write(tmp_path, capsys):
    mine = tmp_path / "out" / "synthetic" / "baseline" / "moving" / "input"
    mine.mkdir(parents=True)
    (mine / "in000001.jpg").write_bytes(b"my frame")
    assert main(["synth", str(tmp_path / "out"), "--frames", "3"]) == 2
    assert "synthetic" in _one_line(capsys) and (mine / "in000001.jpg").read_bytes() == b"my frame"
    assert main(["synth", str(tmp_path / "new"), "--frames", "3"]) == 0
    assert main(["synth", str(tmp_path / "new"), "--frames", "3"]) == 0  # its own: written again


def test_a_full_disk_while_saving_a_mask_is_disk_full_not_a_failed_job(tmp_path, monkeypatch):
    from pathlib import Path as P

    from bgbench.data.imageio import read_mask, write_mask
    from bgbench.safefs import DiskFull

    mask = np.zeros((6, 8), np.uint8)
    mask[2:4, 3:5] = 255
    write_mask(tmp_path / "m" / "bin000001.png", mask)
    assert np.array_equal(read_mask(tmp_path / "m" / "bin000001.png"), mask)
    monkeypatch.setattr(P, "write_bytes", lambda self, data: _enospc())
    with pytest.raises(DiskFull) as e:
        write_mask(tmp_path / "m" / "bin000002.png", mask)
    assert str(tmp_path / "m") in str(e.value)
    assert sorted(os.listdir(tmp_path / "m")) == ["bin000001.png"]


def test_a_worker_that_dies_while_idle_is_replaced_before_its_next_task():
    from bgbench.execution.isolated import ProcessExecutor

    ex = ProcessExecutor(1, "fork")
    outs = ex.map_unordered(abs, [-1, -2, -3])
    first = next(outs)
    (w,) = ex.workers
    w.proc.kill()  # idle now: the next task must not be lost to it
    w.proc.join()
    rest = list(outs)
    assert [o.value for o in [first, *rest]] == [1, 2, 3] and all(o.error is None for o in rest)
    assert ex.started == 2


POOL_CHECK = """
import os, sys, threading
import cv2, numpy as np
from bgbench.execution.isolated import _opencv_pool_stopped

def tasks():  # native threads that are not Python's (OpenCV's pool among them)
    python = {t.native_id for t in threading.enumerate()}
    return {int(t) for t in os.listdir("/proc/self/task")} - python

cv2.setNumThreads(1)
without = tasks()
cv2.setNumThreads(2)
img = np.random.default_rng(0).integers(0, 255, (960, 1280), np.uint8)
for _ in range(20):  # the pool starts its worker thread on a parallel call
    cv2.GaussianBlur(img, (31, 31), 0)
    if tasks() - without:
        break
pool = tasks() - without
if not pool:
    print("NO POOL")
    sys.exit(0)
with _opencv_pool_stopped(True):
    inside, n_inside = pool & tasks(), cv2.getNumThreads()
print("POOL", len(pool), "LEFT", len(inside), "THREADS", n_inside, cv2.getNumThreads())
"""


def test_workers_are_forked_with_opencvs_thread_pool_stopped():
    """A fork while one of OpenCV's pool threads holds the pool's lock leaves the child waiting
    for ever (seen: a worker stuck in cv2.reduce). Each fork happens with the pool joined, and
    the run's thread count is back after it. Counted in a fresh interpreter: in the test
    process, other tests' native threads came and went while the pool's were counted."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", POOL_CHECK], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    if r.stdout.strip() == "NO POOL":
        pytest.skip("OpenCV started no pool thread here")
    pool, left, inside, after = (int(x) for x in r.stdout.split()[1::2][:3] + [r.stdout.split()[-1]])
    assert pool >= 1 and left == 0 and inside == 1 and after == 2, r.stdout
