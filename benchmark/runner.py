"""The run loop: plan jobs (method x protocol x split x video), execute them through joblib,
write each job's record atomically, resume what a killed run left, record failures and go on.

A task is the unit of parallel work: one test video for a method that does not train, one
whole split (fit once, then every test video) for a method that does. Each finished video
is written to ``OUT/jobs/METHOD/PROTOCOL/SPLIT/VIDEO_ID.json`` with a fingerprint of what
produced it; a later run with the same fingerprint reads it instead of recomputing.
Speed is frames/s of ``segment`` alone: only the time spent inside the generator counts
(decoding comes from the frame cache, scoring happens outside it), after warm-up yields.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import results
from .aggregate import summarize
from .method import Method, build_method, method_class
from .protocols import Protocol, Split
from .scoring import VideoScore, metrics, quantize, threshold_bin
from .video import LabelledFrames, TrainingSet, Video

SCORE_BATCH = 32


@dataclass(frozen=True)
class MethodSpec:
    name: str
    config: str = "default"
    overrides: tuple[tuple[str, Any], ...] = ()

    def resolved_params(self) -> dict[str, Any]:
        return method_class(self.name).resolve(self.config, **dict(self.overrides))[1]

    def build(self, device: str, seed: int) -> Method:
        return build_method(self.name, self.config, device=device, seed=seed, **dict(self.overrides))


@dataclass
class Task:
    method: MethodSpec
    protocol: Protocol
    split: Split
    tests: list[tuple[Video, tuple[int, ...]]]
    train_videos: dict[str, Video] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)  # video id -> fingerprint


@dataclass
class RunOptions:
    out: Path
    device: str = "auto"
    seed: int = 0
    threshold: float = 0.5
    save_masks: bool = False
    jobs: int = 1


def _safe(name: str) -> str:
    return name.replace("/", "__").replace(":", "_")


def job_path(out: Path, method: str, protocol: str, split: str, video_id: str) -> Path:
    return out / "jobs" / _safe(method) / protocol / _safe(split) / (video_id.replace("/", "__") + ".json")


def mask_dir(out: Path, method: str, protocol: str, split: str, video_id: str) -> Path:
    return out / "masks" / _safe(method) / protocol / _safe(split) / video_id


def fingerprint(**parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def plan(methods: Sequence[MethodSpec], protocols: dict[str, Protocol], videos: Sequence[Video], opts: RunOptions) -> list[Task]:
    """The tasks of a run. ``protocols`` maps each method name to its protocol list key."""
    by_id = {v.id: v for v in videos}
    tasks: list[Task] = []
    split_cache: dict[str, list[Split]] = {}
    for spec in methods:
        cls = method_class(spec.name)
        params = spec.resolved_params()
        for proto in protocols[spec.name]:
            if proto.key not in split_cache:
                split_cache[proto.key] = proto.splits(videos)
            for split in split_cache[proto.key]:
                tests = [(by_id[vid], frames) for vid, frames in split.test]
                trains = cls.trains and bool(split.train)
                groups = [tests] if trains else [[t] for t in tests]
                for group in groups:
                    task = Task(spec, proto, split, group,
                                {vid: by_id[vid] for vid, _ in split.train + split.val} if trains else {})
                    for v, frames in group:
                        task.fingerprints[v.id] = fingerprint(
                            method=spec.name, config=spec.config, params=params, protocol=proto.key,
                            split=split.name, train=split.train if trains else None, video=v.id, frames=frames,
                            threshold=opts.threshold, seed=opts.seed, device=opts.device if cls.family == "deep" else None)
                    tasks.append(task)
    return tasks


def finished(task: Task, opts: RunOptions) -> dict[str, dict]:
    """The job records of this task that a previous run completed, by video id."""
    done = {}
    for v, _ in task.tests:
        p = job_path(opts.out, task.method.name, task.protocol.name, task.split.name, v.id)
        if p.exists():
            try:
                rec = json.loads(p.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if rec.get("status") == "ok" and rec.get("fingerprint") == task.fingerprints[v.id]:
                done[v.id] = rec
    return done


def _base_record(task: Task, video: Video, frames: Sequence[int]) -> dict[str, Any]:
    return {
        "method": task.method.name, "config": task.method.config, "params": dict(task.method.overrides),
        "protocol": task.protocol.name, "protocol_key": task.protocol.key, "split": task.split.name,
        "video": video.id, "fingerprint": task.fingerprints[video.id], "frames": len(frames),
        "status": "failed", "error": None,
    }


def execute(task: Task, opts: RunOptions) -> list[dict]:
    """Run one task; every test video ends as a written record, ok or failed."""
    done = finished(task, opts)
    pending = [(v, f) for v, f in task.tests if v.id not in done]
    records = [done[v.id] for v, _ in task.tests if v.id in done]
    if not pending:
        return records
    fit_seconds = None
    try:
        method = task.method.build(opts.device, opts.seed)
        if task.train_videos:
            fit_seconds = _fit(method, task, opts)
    except Exception as e:  # noqa: BLE001 - a failed method is recorded, the run goes on
        for v, frames in pending:
            rec = _base_record(task, v, frames)
            rec.update(error=_describe(e), traceback=traceback.format_exc(limit=8))
            _write(task, v, rec, opts)
            records.append(rec)
        return records
    for v, frames in pending:
        rec = _base_record(task, v, frames)
        try:
            rec.update(run_video(method, v, frames, opts, task), status="ok")
            if fit_seconds is not None:
                rec["timing"]["fit_seconds"] = fit_seconds
            if getattr(method, "history", None):
                rec["loss_history"] = method.history
        except Exception as e:  # noqa: BLE001
            rec.update(error=_describe(e), traceback=traceback.format_exc(limit=8))
        _write(task, v, rec, opts)
        records.append(rec)
    return records


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _write(task: Task, video: Video, rec: dict, opts: RunOptions) -> None:
    results.write_json(job_path(opts.out, task.method.name, task.protocol.name, task.split.name, video.id), rec)


def _fit(method: Method, task: Task, opts: RunOptions) -> float:
    from . import checkpoint

    ckpt = opts.out / "checkpoints" / _safe(task.method.name) / task.protocol.name / f"{_safe(task.split.name)}.pt"
    fp = fingerprint(fps=sorted(task.fingerprints.values()))
    method.workdir = ckpt.parent / _safe(task.split.name)
    if ckpt.exists():
        state = checkpoint.load(ckpt, expect=fp)
        method.load_state_dict(state["state"])
        method.history = state.get("history", [])
        return 0.0
    train = TrainingSet(
        train=tuple(LabelledFrames(task.train_videos[vid], fr) for vid, fr in task.split.train),
        val=tuple(LabelledFrames(task.train_videos[vid], fr) for vid, fr in task.split.val),
    )
    t0 = time.perf_counter()
    method.fit(train)
    seconds = time.perf_counter() - t0
    checkpoint.save(ckpt, {"state": method.state_dict(), "history": getattr(method, "history", [])}, fp)
    return seconds


def run_video(method: Method, video: Video, frames: Sequence[int], opts: RunOptions, task: Task | None = None) -> dict:
    """Segment and score one video's test frames; return counts, metrics, timing."""
    view = video.view()
    view.all_frames()  # decoded before the clock starts
    roi = video.roi
    score = VideoScore(opts.threshold)
    tbin = threshold_bin(opts.threshold)
    wanted, seen = set(frames), set()
    mdir = mask_dir(opts.out, task.method.name, task.protocol.name, task.split.name, video.id) if (opts.save_masks and task) else None
    times: list[float] = []
    ids: list[int] = []
    qs: list[np.ndarray] = []
    score_seconds = 0.0

    def flush() -> None:
        score.update(np.stack(qs), video.gts(ids), roi)
        ids.clear()
        qs.clear()

    gen = method.segment(view, list(frames))
    t_prev = time.perf_counter()
    for fid, prob in gen:
        t_got = time.perf_counter()
        times.append(t_got - t_prev)
        if fid not in wanted or fid in seen:
            raise RuntimeError(f"segment yielded frame {fid}, which was {'yielded twice' if fid in seen else 'not requested'}")
        prob = np.asarray(prob)
        if prob.shape != video.shape:
            raise RuntimeError(f"segment yielded a {prob.shape} map for frame {fid}; the video is {video.shape}")
        seen.add(fid)
        q = quantize(prob)
        ids.append(fid)
        qs.append(q)
        if mdir is not None:
            from .imageio import write_mask

            write_mask(mdir / f"bin{fid:06d}.png", np.where(q >= tbin, 255, 0).astype(np.uint8))
        if len(ids) == SCORE_BATCH:
            flush()
        score_seconds += time.perf_counter() - t_got
        t_prev = time.perf_counter()
    if ids:
        t0 = time.perf_counter()
        flush()
        score_seconds += time.perf_counter() - t0
    if len(seen) != len(wanted):
        missing = sorted(wanted - seen)
        raise RuntimeError(f"segment yielded {len(seen)} of {len(wanted)} frames (first missing: {missing[0]})")
    warm = min(method.warmup_frames, len(times) - 1)
    timed = times[warm:]
    seconds = float(sum(timed))
    rec = score.to_dict()
    rec["metrics"] = metrics(rec["counts"], rec["dice"])
    rec["timing"] = {
        "frames": len(timed), "seconds": seconds, "fps": len(timed) / seconds if seconds > 0 else None,
        "device": getattr(method, "device", "cpu"), "warmup_frames": warm, "segment_seconds_total": float(sum(times)),
        "scoring_seconds": score_seconds, "input_size": list(method.input_size or (video.width, video.height)),
        "batch": getattr(method, "batch_size", 1), "precision": getattr(method, "precision", "float32"),
    }
    return rec


def run_tasks(tasks: list[Task], opts: RunOptions, progress: Callable[[dict], None] | None = None) -> list[dict]:
    """Execute tasks, in this process (jobs=1) or through joblib; return every job record."""
    from tqdm.auto import tqdm

    records: list[dict] = []
    bar = tqdm(total=sum(len(t.tests) for t in tasks), unit="job", desc="bgbench", disable=None, leave=False)

    def collect(recs: list[dict]) -> None:
        for r in recs:
            records.append(r)
            bar.update(1)
            bar.set_postfix_str(f"{r['method']} {r['video']} {r['status']}")
            if progress:
                progress(r)

    try:
        if opts.jobs == 1 or len(tasks) <= 1:
            for t in tasks:
                collect(execute(t, opts))
        else:
            from joblib import Parallel, delayed

            par = Parallel(n_jobs=opts.jobs, return_as="generator_unordered")
            for recs in par(delayed(execute)(t, opts) for t in tasks):
                collect(recs)
    finally:
        bar.close()
    return records


def build_results(records: list[dict], meta: dict) -> dict:
    jobs = sorted(records, key=lambda r: (r["method"], r["config"], r["protocol"], r["split"], r["video"]))
    return {"schema_version": results.SCHEMA_VERSION, "meta": meta, "jobs": jobs, "summary": summarize(jobs)}
