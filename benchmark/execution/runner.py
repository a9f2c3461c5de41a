"""The run loop: plan jobs (method x protocol x split x video), execute them (``executors``:
in this process, joblib processes, or a Dask cluster), write each job's record atomically,
resume what a killed run left, record failures and go on.
What a protocol cannot serve (a video too short for its rule, an empty fold, a transfer
dataset that is not in the data) is planned as a skip with its reason, not as a job.

A task is the unit of parallel work: one test video for a method that does not train, one
whole split (fit once, then every test video) for a method that does. Each finished video
is written to ``OUT/jobs/METHOD/PROTOCOL/SPLIT/VIDEO_ID.json`` with a fingerprint of what
produced it; a later run with the same fingerprint reads it instead of recomputing.
Resume is decided by the client: tasks whose records are all in ``OUT/jobs`` are not submitted,
and a task is submitted with its unfinished videos only. With ``local`` execution each video's
record is written as soon as it is done (in the worker process), so a killed run loses nothing
finished. With ``dask`` the workers write nothing into OUT (it need not exist on their machines):
a task returns its records and the client writes each as it arrives; a trained model's
checkpoint (and its mid-training checkpoints) stays in a temporary folder on the worker and is
deleted with it, so an interrupted Dask run trains that split again. A task that fails as a
whole (an exception escaping it; under Dask also its worker dying: KilledWorker) becomes one
failed record per unfinished video, written by the client, and the run goes on. With ``dask``
and a scheduler address, ``jobs`` does not apply: the cluster's workers set the parallelism.

Every job runs with OpenCV and torch at ``RunOptions.threads`` intra-op threads (1 by default),
so parallel jobs do not oversubscribe the cores; a deep method's jobs (training and
segmenting) at ``RunOptions.deep_threads`` (1 by default, whatever the cores or jobs): torch's
CPU reductions split by thread, so its weights and maps depend on the count, which therefore
keys every deep job. A video's decoded frames (memmaps) are released
after the last task of this process that uses it, and reopened lazily if needed again.

A method that batches videos (``Method.batches_videos``, e.g. gmm_sg) gets up to
``RunOptions.video_batch`` test videos of one shape as one task and segments them at once
(``videorun.run_videos``); each video still ends as its own record. Segmenting and scoring one
video, and its speed figure, are ``bgbench.execution.videorun``'s.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence


from bgbench.records import results
from bgbench.errors import BadInput
from bgbench.safefs import is_disk_full
from bgbench.method import Method, method_class
from bgbench.protocols import Planned, Protocol, Split
from bgbench.records.provenance import code_fingerprint
from bgbench.records.types import MethodSpec  # noqa: F401 - re-exported: plan() takes MethodSpecs
from bgbench.execution.videorun import SCORE_BATCH, fps_frames, run_video, run_videos  # noqa: F401 - re-exported
from bgbench.execution.videorun import safe_name as _safe
from bgbench.data.video import LabelledFrames, TrainingSet, Video

SCORED = ("ok", "truncated")  # the statuses of a job that was scored (``truncated``: see ``with_training``)


def with_training(rec: dict, training: dict | None, accept_truncated: bool) -> dict:
    """``rec`` (a scored job) with its ``training`` record and the status it implies: steps are
    the budget, so a job whose model has a stage stopped by ``max_train_seconds`` is
    ``truncated`` (not ok: its numbers depend on the machine's speed), unless the run accepts
    truncation (``--accept-truncated``), which the record says (``training.truncation_accepted``).
    A reused record is judged again under this run's choice."""
    if not training:
        return rec
    stages = training.get("stages") or ()
    truncated = any(st.get("stopped_by") != "steps" for st in stages)
    training = {**training, "truncated": truncated, "truncation_accepted": bool(truncated and accept_truncated)}
    return {**rec, "training": training, "status": "truncated" if truncated and not accept_truncated else "ok"}


@dataclass
class Task:
    method: MethodSpec
    protocol: Protocol
    split: Split
    tests: list[tuple[Video, tuple[int, ...]]]
    train_videos: dict[str, Video] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)  # video id -> fingerprint
    video_batch: int = 1  # test videos of one shape segmented at once (a method that batches videos)


@dataclass
class RunOptions:
    out: Path
    device: str = "auto"
    seed: int = 0
    threshold: float = 0.5
    save_masks: bool = False
    jobs: int = 1
    executor: str = "local"  # "local" (this process / joblib processes) or "dask"
    scheduler: str | None = None  # Dask scheduler address; None with dask: a LocalCluster of `jobs` workers
    threads: int = 1  # OpenCV/torch intra-op threads per job (0: leave the libraries' defaults)
    # torch threads of a deep method's jobs (training and segmenting): torch's CPU reductions
    # split by thread, so the weights and the maps depend on the count; it keys every deep job,
    # and is never capped at the cores
    deep_threads: int = 1
    parent_pid: int | None = None  # set in worker processes: a job whose run is gone writes nothing
    isolate: bool = True  # local: every task in a child process (a crash fails its jobs, not the run); False: in process
    accept_truncated: bool = False  # a training stage stopped by max_train_seconds leaves the job ok (said in its record)
    # test videos of one shape a method that batches videos (Method.batches_videos) segments at
    # once; 0: auto, VIDEO_BATCH_CUDA on CUDA and 1 (each video alone) on the CPU. Not in any
    # fingerprint: a video's counts are the same bits batched or not (tests/test_video_batch.py)
    video_batch: int = 0

    def threads_for(self, family: str) -> int:
        """The intra-op threads of a job of a method of ``family`` (0: the libraries' defaults)."""
        return self.deep_threads if family == "deep" else self.threads


VIDEO_BATCH_CUDA = 8


def videos_per_batch(opts: RunOptions) -> int:
    """``opts.video_batch``, with auto (0) resolved: VIDEO_BATCH_CUDA where the run's device is
    CUDA (the GPU's launches and copies are shared by the videos), else 1: on a CPU a batch
    saves nothing and one video's crash would take its batch with it."""
    if opts.video_batch > 0:
        return opts.video_batch
    from bgbench.execution.device import resolve

    return VIDEO_BATCH_CUDA if resolve(opts.device).startswith("cuda") else 1


def video_batches(tests: Sequence[tuple[Video, tuple[int, ...]]], size: int) -> list[list[tuple[Video, tuple[int, ...]]]]:
    """``tests`` in batches of at most ``size`` videos of one frame shape, videos of like length
    together (a batch runs as long as its longest video), in a fixed order."""
    order = sorted(tests, key=lambda t: (t[0].shape, -len(t[0].frame_ids), t[0].id))
    batches: list[list[tuple[Video, tuple[int, ...]]]] = []
    for t in order:
        if batches and len(batches[-1]) < size and batches[-1][0][0].shape == t[0].shape:
            batches[-1].append(t)
        else:
            batches.append([t])
    return batches


def _stop_if_orphaned(opts: RunOptions) -> None:
    """In a worker process, exit at once if the run that asked for the job is gone (killed,
    even with SIGKILL): it is checked per job and before every write, so a killed run's
    workers never go on writing into its folder."""
    if opts.parent_pid is not None and not _alive(opts.parent_pid):
        os._exit(0)


def _alive(pid: int) -> bool:
    """The run process ``pid`` still exists (a worker's parent may be a fork server, not the
    run: the run's own pid is what is watched)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, under another user: not ours, but alive
        return True
    try:  # a zombie (killed, not yet reaped) is gone for our purposes
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return True


_watched_parent: int | None = None


def _watch_parent(parent: int) -> None:
    """Once per worker process: a daemon thread that ends the worker within 0.2 s of the run's
    death, so a long fit stops too. (Not PR_SET_PDEATHSIG: that fires when the
    parent's spawning *thread* ends, and joblib's loky spawns workers from a helper thread.)"""
    global _watched_parent
    if _watched_parent == parent:
        return
    _watched_parent = parent

    def loop() -> None:
        while _alive(parent):
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=loop, name="bgbench-parent-watch", daemon=True).start()


def _execute_in_worker(task: "Task", opts: RunOptions, write: bool = True) -> list[dict]:
    """The job function every executor runs per task (in a joblib or Dask worker, or here)."""
    if opts.parent_pid is not None:
        _watch_parent(opts.parent_pid)
        _stop_if_orphaned(opts)
    return execute(task, opts, write=write)


def job_path(out: Path, method: str, protocol: str, split: str, video_id: str, fp: str | None = None) -> Path:
    """Where a job's record lives. The name carries the job's fingerprint, so a job whose
    code, parameters or data changed gets a new file and the old record stays beside it
    until the new one is written (``_write`` then removes it)."""
    stem = video_id.replace("/", "__")
    return out / "jobs" / _safe(method) / protocol / _safe(split) / (f"{stem}.{fp}.json" if fp else f"{stem}.json")


def fingerprint(**parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def plan(methods: Sequence[MethodSpec], protocols: Mapping[str, list[Protocol]], videos: Sequence[Video], opts: RunOptions,
         skipped: list[dict] | None = None) -> list[Task]:
    """The tasks of a run. ``protocols`` maps each method name to its protocols.

    What a protocol cannot serve on these videos (a rule a video cannot meet, an empty fold,
    a transfer name not in the data) is appended to ``skipped``, one record per protocol and
    place (``where``, ``reason``, ``fix``, ``error``, ``protocol``, ``methods``), and the rest
    is planned; with ``skipped`` None the first such case raises BadInput. If skips leave no
    job at all, BadInput says why before anything runs."""
    from bgbench.data.nearcopy import check_splits as check_near_copies
    from bgbench.records.provenance import check_unique_content, data_digest, param_digests

    by_id = {v.id: v for v in videos}
    check_unique_content(videos)  # one content twice in a run: BadInput naming both paths
    content = {v.id: data_digest(v) for v in videos}  # every byte each video's counts depend on
    tasks: list[Task] = []
    planned: dict[str, Planned] = {}
    batch_size = videos_per_batch(opts) if any(method_class(m.name).batches_videos for m in methods) else 1
    skips: dict[tuple[str, str], dict] = {}
    for spec in methods:
        cls = method_class(spec.name)
        params = spec.resolved_params()
        files = param_digests(params)  # a replaced weights file (any file a parameter names) re-runs
        code = code_fingerprint(cls)
        # a file parameter (a trained model, VGG16 weights) keys the job by the file's content, not its name
        for proto in protocols[spec.name]:
            if proto.key not in planned:
                planned[proto.key] = proto.plan(videos)
                check_near_copies(planned[proto.key].splits, by_id)  # footage shared across train and test: BadInput
            for s in planned[proto.key].skipped:
                rec = skips.setdefault((proto.key, s.where), {**s.to_json(), "protocol": proto.key, "methods": []})
                if spec.name not in rec["methods"]:
                    rec["methods"].append(spec.name)
            for split in planned[proto.key].splits:
                tests = [(by_id[vid], frames) for vid, frames in split.test]
                trains = cls.trains and bool(split.train)
                if trains:
                    groups = [tests]  # one fit, then every test video
                elif cls.batches_videos and batch_size > 1:
                    groups = video_batches(tests, batch_size)  # one task per batch of like videos
                else:
                    groups = [[t] for t in tests]
                for group in groups:
                    task = Task(spec, proto, split, group,
                                {vid: by_id[vid] for vid, _ in split.train + split.val} if trains else {},
                                video_batch=batch_size if cls.batches_videos else 1)
                    for v, frames in group:
                        inputs = cls.job_inputs(params, v, frames)  # e.g. the masks method: its files' content
                        task.fingerprints[v.id] = fingerprint(
                            method=spec.name, config=spec.config, params=params, protocol=proto.key,
                            split=split.name, train=split.train if trains else None, video=v.id, frames=frames,
                            threshold=opts.threshold, seed=opts.seed, device=opts.device if cls.family == "deep" else None,
                            code=code, content=content[v.id], **({"param_files": files} if files else {}),
                            train_content=sorted(content[vid] for vid, _ in split.train + split.val) if trains else None,
                            deep_threads=opts.deep_threads if cls.family == "deep" else None,
                            **({"inputs": inputs} if inputs is not None else {}))
                    tasks.append(task)
    if not tasks and not skips:
        taken = {p.key for ps in protocols.values() for p in ps}
        raise BadInput(f"no job to run: {', '.join(sorted(taken))} make(s) no test split from these "
                       f"{len(videos)} video(s) (e.g. every category excluded, or no video of the formats taken)",
                       "--data", "give videos the protocols take, or change their options (--exclude, --folds, --rule, "
                       "--source, --target)")
    if skips:
        first = next(iter(skips.values()))
        if skipped is None:
            raise BadInput(f"{first['reason']} (protocol {first['protocol']})", first["where"], first["fix"] or None)
        if not tasks:
            raise BadInput(f"no job can run: every protocol skips every video; the first: {first['error']} "
                           f"(protocol {first['protocol']})", "--data", "give videos the protocols can use, or change "
                           "their options (--rule, --folds, --fraction, --source, --target)")
        skipped.extend(skips.values())
    return tasks


def finished(task: Task, opts: RunOptions) -> dict[str, dict]:
    """The job records of this task that a previous run completed, by video id. With
    ``--save-masks`` a record made without masks (or whose masks were deleted) is not done."""
    done = {}
    for v, _ in task.tests:
        p = job_path(opts.out, task.method.name, task.protocol.name, task.split.name, v.id, task.fingerprints[v.id])
        if p.exists():
            try:
                rec = json.loads(p.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if rec.get("status") in SCORED and rec.get("fingerprint") == task.fingerprints[v.id] and (
                    not opts.save_masks or (isinstance(rec.get("masks"), str) and _in_run(opts.out, rec["masks"]))):
                done[v.id] = with_training(rec, rec.get("training"), opts.accept_truncated)
    return done


def _in_run(out: Path, rel: str) -> bool:
    """A recorded mask folder that is a folder inside the run folder (never one elsewhere)."""
    from bgbench.safefs import inside

    p = inside(out, rel, "the mask folder", warn=lambda _: None)
    return p is not None and p.is_dir()


def _base_record(task: Task, video: Video, frames: Sequence[int]) -> dict[str, Any]:
    return {
        "method": task.method.name, "config": task.method.config, "params": dict(task.method.overrides),
        "family": method_class(task.method.name).family,
        "protocol": task.protocol.name, "protocol_key": task.protocol.key, "split": task.split.name,
        "video": video.id, "fingerprint": task.fingerprints[video.id], "frames": len(frames),
        "code": code_fingerprint(method_class(task.method.name)),
        "status": "failed", "error": None,
    }


def execute(task: Task, opts: RunOptions, write: bool = True) -> list[dict]:
    """Run one task; every test video ends as a record, ok or failed, inside
    ``scoped.threads(opts.threads)``. ``write``: records already in OUT are reused and each
    new one is written as soon as it is done. Not ``write`` (a Dask worker): OUT is neither
    read nor written; the records are returned for the client to write, and a trained model's
    checkpoints go to a temporary folder, deleted afterwards; the example frames written there
    travel in the record (``_files``: run-folder-relative path -> PNG bytes) for the client to
    write into OUT (``_write``)."""
    import contextlib

    from bgbench.execution.scoped import threads

    n = opts.threads_for(method_class(task.method.name).family) or None
    with contextlib.ExitStack() as held:
        held.enter_context(threads(n))
        if not write:
            import tempfile

            tmp = held.enter_context(tempfile.TemporaryDirectory(prefix="bgbench-"))
            opts = dataclasses.replace(opts, out=Path(tmp))

        def built() -> None:  # the method's build may have imported torch: hold its thread count too
            held.enter_context(threads(n))

        records = _execute(task, opts, write, built)
        if not write:
            for rec in records:
                files = [p for k, p in (rec.get("examples") or {}).items() if k != "frame"]
                rec["_files"] = {p: (opts.out / p).read_bytes() for p in files if (opts.out / p).is_file()}
        return records


def _execute(task: Task, opts: RunOptions, write: bool, built: Callable[[], None]) -> list[dict]:
    done = finished(task, opts) if write else {}
    pending = [(v, f) for v, f in task.tests if v.id not in done]
    records = [done[v.id] for v, _ in task.tests if v.id in done]
    if not pending:
        return records
    fit_seconds: float | None = None
    training: dict[str, Any] | None = None
    try:
        method = task.method.build(opts.device, opts.seed)
        built()
        if method.pretrained:  # the whole model came from a file (weights=FILE): nothing is trained here
            training = {"pretrained": method.pretrained, "note": "pretrained, not trained here", "stages": [],
                        "tensors": getattr(method, "model_weights_loaded", None)}
        elif task.train_videos:
            fit_seconds, training = _fit(method, task, opts)
    except Exception as e:  # noqa: BLE001 - a failed method is recorded, the run goes on
        if is_disk_full(e):
            raise
        for v, frames in pending:
            rec = _base_record(task, v, frames)
            rec.update(error=_describe(e), traceback=traceback.format_exc(limit=8))
            if write:
                _write(task, v, rec, opts)
            records.append(rec)
        return records
    size = task.video_batch if method.batches_videos else 1
    for batch in (video_batches(pending, size) if size > 1 else [[t] for t in pending]):
        _stop_if_orphaned(opts)
        if len(batch) == 1:
            v, frames = batch[0]
            try:
                outcomes: list[dict | BaseException] = [run_video(method, v, frames, opts, task)]
            except Exception as e:  # noqa: BLE001
                outcomes = [e]
        else:
            outcomes = run_videos(method, batch, opts, task)
        for (v, frames), got in zip(batch, outcomes):
            rec = _base_record(task, v, frames)
            if isinstance(got, BaseException):
                if is_disk_full(got):  # not the method's fault: the run stops with one line naming the folder
                    raise got
                rec.update(error=_describe(got), traceback="".join(traceback.format_exception(got, limit=8)))
            else:
                rec.update(got, status="ok")
                if fit_seconds is not None:
                    rec["timing"]["fit_seconds"] = fit_seconds
                if method.history:
                    rec["loss_history"] = method.history
                rec = with_training(rec, training, opts.accept_truncated)
            if write:
                _write(task, v, rec, opts)
            records.append(rec)
    return records


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _write(task: Task, video: Video, rec: dict, opts: RunOptions) -> None:
    """Write the record, then (an ok one) remove the records of the same job made by other
    code, parameters or data: they were kept until this one was safely on disk."""
    _stop_if_orphaned(opts)
    for rel, data in (rec.pop("_files", None) or {}).items():  # a Dask worker's example frames, written here
        if ".." not in Path(rel).parts and not Path(rel).is_absolute():
            dest = opts.out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(dest)
    path = job_path(opts.out, task.method.name, task.protocol.name, task.split.name, video.id, rec["fingerprint"])
    results.write_json(path, rec)
    if rec.get("status") == "ok":
        stem = video.id.replace("/", "__")
        # names compared literally, never as a glob pattern: `hw[1]` must not match `hw1`'s records
        for name in os.listdir(path.parent):
            if name != path.name and (name == f"{stem}.json" or (
                    name.startswith(f"{stem}.") and name.endswith(".json")
                    and re.fullmatch(r"[0-9a-f]{16}", name[len(stem) + 1:-len(".json")]))) \
                    and _same_job(path.parent / name, rec):  # two ids can share a file stem (a/b, a__b)
                _drop_masks_of(path.parent / name, rec, opts.out)
                (path.parent / name).unlink(missing_ok=True)


def _same_job(path: Path, rec: dict) -> bool:
    """The record at ``path`` is of the same job as ``rec`` (method, protocol, split, video)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(old, dict) and all(old.get(k) == rec.get(k) for k in ("method", "protocol", "split", "video"))


def _drop_masks_of(old: Path, rec: dict, out: Path) -> None:
    """The masks a superseded record saved, where ``rec`` (its job's new record) did not save
    them again in the same folder: removed, so the masks tree never shows a stale variant."""
    try:
        masks = json.loads(old.read_text()).get("masks")
    except (OSError, ValueError):
        return
    if not isinstance(masks, str) or masks == rec.get("masks") or ".." in Path(masks).parts or Path(masks).is_absolute():
        return
    folder = out / masks
    for f in folder.glob("bin*.png") if folder.is_dir() else ():
        f.unlink(missing_ok=True)
    try:
        folder.rmdir()  # only if nothing else is in it
    except OSError:
        pass


def checkpoint_path(task: Task, opts: RunOptions) -> Path:
    """Where the trained model of a task that trains is kept (named by its jobs' fingerprints)."""
    fp = fingerprint(fps=sorted(task.fingerprints.values()))
    return opts.out / "checkpoints" / _safe(task.method.name) / task.protocol.name / f"{_safe(task.split.name)}.{fp}.pt"


def check_checkpoints(tasks: Sequence[Task], opts: RunOptions) -> None:
    """Before any job runs: every checkpoint a task would load is whole (BadInput names a
    truncated or corrupt one and says to delete it), so it is not found only mid-run."""
    from bgbench.execution import checkpoint

    for task in tasks:
        if task.train_videos and set(finished(task, opts)) != {v.id for v, _ in task.tests}:
            path = checkpoint_path(task, opts)
            if path.exists():
                checkpoint.check(path)
            else:  # training resumes from the method's own mid-training checkpoints
                for mid in sorted(_workdir(path).glob("*.pt")):
                    checkpoint.check(mid)


def _workdir(ckpt: Path) -> Path:
    """The folder of a task's mid-training checkpoints, beside its final checkpoint."""
    return ckpt.with_suffix("")


def _fit(method: Method, task: Task, opts: RunOptions) -> tuple[float, dict | None]:
    """Train (or load the task's trained model); return the training seconds and the
    ``training`` record (steps configured and trained per stage), kept in the checkpoint."""
    from bgbench.execution import checkpoint

    fp = fingerprint(fps=sorted(task.fingerprints.values()))
    ckpt = checkpoint_path(task, opts)
    method.workdir = _workdir(ckpt)
    if ckpt.exists():
        state = checkpoint.load(ckpt, expect=fp)
        method.load_state_dict(state["state"])
        method.history = state.get("history", [])
        # the training time and steps of the run that made it
        return float(state.get("fit_seconds", 0.0)), state.get("training")
    train = TrainingSet(
        train=tuple(LabelledFrames(task.train_videos[vid], fr) for vid, fr in task.split.train),
        val=tuple(LabelledFrames(task.train_videos[vid], fr) for vid, fr in task.split.val),
    )
    t0 = time.perf_counter()
    method.fit(train)
    # training resumed from a mid-training checkpoint: add the seconds spent before the restart
    before = sum(s.get("resumed_seconds", 0.0) for s in method.train_stats.values())
    seconds = time.perf_counter() - t0 + before
    _stop_if_orphaned(opts)
    training = method.training_record()
    checkpoint.save(ckpt, {"state": method.state_dict(), "history": method.history,
                           "fit_seconds": seconds, "training": training}, fp)
    return seconds, training


def run_tasks(tasks: list[Task], opts: RunOptions, progress: Callable[[dict], None] | None = None) -> list[dict]:
    """Execute tasks with ``opts.executor`` (``bgbench.execution.executors``); return every job record.

    Records already in OUT are read here and their jobs not submitted. The executor is opened
    only if something is left to run (a Dask cluster or a scheduler connection included)."""
    from bgbench.execution.executors import open_executor
    from bgbench.execution.progress import bar as progress_bar

    records: list[dict] = []
    bar = progress_bar(total=sum(len(t.tests) for t in tasks), unit="job", desc="bgbench", disable=None, leave=False)

    def collect(recs: list[dict]) -> None:
        for r in recs:
            records.append(r)
            bar.update(1)
            bar.set_postfix_str(f"{r['method']} {r['video']} {r['status']}")
            if progress:
                progress(r)

    todo: list[Task] = []
    for t in tasks:  # resume: the client reads OUT/jobs, and submits only what is left
        done = finished(t, opts)
        collect([done[v.id] for v, _ in t.tests if v.id in done])
        pending = [(v, f) for v, f in t.tests if v.id not in done]
        if pending:
            todo.append(t if len(pending) == len(t.tests) else dataclasses.replace(t, tests=pending))
    _release(v for t in tasks for v in _videos(t))  # opened by checks before the run; reopened where used
    try:
        if todo:
            with open_executor(opts, len(todo)) as ex:
                _run_todo(ex, todo, opts, collect)
    finally:
        bar.close()
        _release(v for t in tasks for v in _videos(t))
    return records


def _videos(task: Task) -> list[Video]:
    return [v for v, _ in task.tests] + list(task.train_videos.values())


def _release(videos) -> None:
    for v in videos:
        release = getattr(v, "release", None)
        if release is not None:
            release()


def _cost(task: Task) -> int:
    """A task's rough size: pixels of its test frames, and of its training frames."""
    px = sum(len(f) * v.shape[0] * v.shape[1] for v, f in task.tests)
    by_id = task.train_videos
    return px + sum(len(f) * by_id[vid].shape[0] * by_id[vid].shape[1]
                    for vid, f in task.split.train + task.split.val if vid in by_id)


def _run_todo(ex, todo: list[Task], opts: RunOptions, collect: Callable[[list[dict]], None]) -> None:
    client_writes = ex.writes_on_client
    worker_opts = opts
    if ex.name in ("joblib", "processes"):  # workers die with the run, and a killed run's workers write nothing
        worker_opts = dataclasses.replace(opts, parent_pid=os.getpid())
    if ex.name == "dask":
        ex.check_paths(sorted({str(v.path) for t in todo for v in _videos(t)}))
    if ex.name != "inline":  # longest first, so no long task starts last while the other workers idle
        todo = sorted(todo, key=_cost, reverse=True)
    # in this process, a video's memmaps are released after the last task that uses it
    last = {v.id: k for k, t in enumerate(todo) for v in _videos(t)}
    index = {id(t): k for k, t in enumerate(todo)}
    fn = functools.partial(_execute_in_worker, opts=worker_opts, write=not client_writes)
    for out in ex.map_unordered(fn, todo):
        task: Task = out.item
        if out.error is None:
            recs = out.value
            if client_writes:
                by_id = {v.id: v for v, _ in task.tests}
                for r in recs:
                    _write(task, by_id[r["video"]], r, opts)
        elif out.error.startswith("DiskFull: "):  # a worker found the disk full: the run stops, naming the folder
            from bgbench.safefs import DiskFull

            raise DiskFull(out.error[len("DiskFull: "):])
        else:  # the task failed as a whole: a failed record for each video it did not finish
            done = finished(task, opts) if not client_writes else {}
            recs = [done[v.id] for v, _ in task.tests if v.id in done]
            for v, frames in task.tests:
                if v.id not in done:
                    rec = _base_record(task, v, frames)
                    rec.update(error=out.error, traceback=out.traceback)
                    _write(task, v, rec, opts)
                    recs.append(rec)
        collect(recs)
        if ex.name == "inline":
            k = index[id(task)]
            _release(v for v in _videos(task) if last[v.id] == k)
