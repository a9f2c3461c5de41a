"""A video's job inside a task: segment its test frames, score each map as it comes, time it.

``run_video``: one video through ``Method.segment``. ``run_videos``: several videos of one
shape through ``Method.segment_videos`` as one batch (a method that sets ``batches_videos``,
e.g. gmm_sg, whose update runs over a leading video axis; ``bgbench run --video-batch N``).
Each video's maps are scored into its own record, the one ``run_video`` would write, counts
bit for bit (tests/test_video_batch.py); only the timing says that it ran in a batch.

Speed is frames/s of the method alone: only the time spent inside its generator counts
(decoding comes from the frame cache, scoring happens outside it), after warm-up yields.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from bgbench.scoring.device import is_tensor
from bgbench.scoring.metrics import VideoScore, degenerate, metrics, quantize, threshold_bin

if TYPE_CHECKING:
    from bgbench.data.video import Video
    from bgbench.execution.runner import RunOptions, Task
    from bgbench.method import Method

SCORE_BATCH = 32
# Torch maps on a CPU are scored as NumPy arrays (no copy): bgbench.scoring.device's bincount
# costs ~10x the NumPy path there. Tests set this to score CPU tensors the device's way.
DEVICE_SCORING_ON_CPU = False


def safe_name(name: str) -> str:
    """A name (method, split, protocol key) as one path component."""
    return name.replace("/", "__").replace(":", "_")


def mask_dir(out: Path, method: str, protocol_key: str, video: Video) -> Path:
    """Where ``--save-masks`` writes a job's masks: ``OUT/masks/METHOD/PROTOCOL/`` and below it
    the video's place in its dataset, ``DATASET/CATEGORY/SCENE/`` (``DATASET/SCENE/`` for a
    dataset without categories), holding only ``bin%06d.png``: the CDnet results layout, which
    ``bgbench score PRED --data ROOT`` and the ``masks`` method read and changedetection.net's
    uploader takes. A video is tested once per protocol key, so one folder per job; the record
    holds the path (``masks``): readers take it from there, never rebuild it."""
    place = [video.dataset] + ([video.category] if video.category else []) + [video.name]
    return out / "masks" / safe_name(method) / safe_name(protocol_key) / Path(*place)


def examples_dir(out: Path, method: str, protocol_key: str, video: Video) -> Path:
    """Where a job's example overlay goes (``OUT/examples/jobs/METHOD/PROTOCOL/VIDEO``); the input
    frame and ground truth, the same for every method, go to ``OUT/examples/frames/VIDEO``."""
    return out / "examples" / "jobs" / safe_name(method) / safe_name(protocol_key) / video.id.replace("/", "__")


class VideoScorer:
    """The scoring side of one video's job: ``take`` each (frame id, map) as the method yields
    it (quantised into a batch buffer, or kept on the device for ``bgbench.scoring.device``;
    masks and the example frame written), ``finish`` for the record. The video's frames are
    decoded, and its ground truth and ROI opened and checked, when it is built: before any clock
    starts."""

    def __init__(self, video: Video, frames: Sequence[int], opts: RunOptions, task: Task | None) -> None:
        from bgbench.execution.examples import example_frame

        self.video, self.opts, self.task = video, opts, task
        self.view = video.view()
        self.view.all_frames()
        _ = video.truth_index
        self.score = VideoScore(opts.threshold)
        self.tbin = threshold_bin(opts.threshold)
        self.wanted: set[int] = set(frames)
        self.seen: set[int] = set()
        self.mdir = mask_dir(opts.out, task.method.name, task.protocol.key, video) if (opts.save_masks and task) else None
        if self.mdir is not None and self.mdir.is_dir():  # masks of an earlier variant of this job: replaced, never mixed
            for old in self.mdir.glob("bin*.png"):
                old.unlink()
        self.times: list[float] = []  # seconds inside the method before each yield
        self.processed: list[int] = []  # frames the method had processed when it yielded each map (fps_frames)
        self.ids: list[int] = []
        self.qbuf = np.empty((SCORE_BATCH, *video.shape), np.uint8)  # quantised maps land here: no stacking
        self.on_device: list = []  # maps that are torch tensors: scored where they are
        self.score_seconds = 0.0
        # the frame reports show (input, truth, mask against truth): recorded for every job, masks saved or not
        self.example = example_frame(frames) if task is not None else None
        self.example_pred: np.ndarray | None = None

    def _flush(self) -> None:
        if self.on_device:
            from bgbench.scoring.device import score_device

            self.score.add_scored(*score_device(self.on_device, self.video.gts(self.ids), self.video.roi, self.tbin))
            self.on_device.clear()
        else:
            self.score.add(self.qbuf[:len(self.ids)], self.video.truth(self.ids))
        self.ids.clear()

    def take(self, fid: int, prob: Any, seconds: float) -> None:
        """Score the map of frame ``fid``, which the method took ``seconds`` to yield."""
        t_got = time.perf_counter()
        self.times.append(seconds)
        if fid not in self.wanted or fid in self.seen:
            raise RuntimeError(f"segment yielded frame {fid}, which was "
                               f"{'yielded twice' if fid in self.seen else 'not requested'}")
        # a method that walks the video (frames_through, from its first frame) has processed every
        # frame up to the one it yields, however far ahead it fetched them; any other, its yields
        done = self.view.position(fid) + 1 if self.view.walked else len(self.times)
        self.processed.append(max(done, self.processed[-1] + 1 if self.processed else 1))
        tensor = is_tensor(prob)
        if tensor and prob.device.type == "cpu" and not DEVICE_SCORING_ON_CPU:
            prob, tensor = prob.detach(), False  # NumPy scores faster than torch on a CPU
            prob = (prob.float() if str(prob.dtype) == "torch.bfloat16" else prob).numpy()  # no copy but bfloat16's
        if not tensor:
            prob = np.asarray(prob)
        if tuple(prob.shape) != self.video.shape:
            raise RuntimeError(f"segment yielded a {tuple(prob.shape)} map for frame {fid}; "
                               f"the video is {self.video.shape}")
        self.seen.add(fid)
        if self.ids and tensor != bool(self.on_device):  # a batch holds maps of one kind
            self._flush()
        if tensor:
            self.on_device.append(prob)
            if self.mdir is not None:  # the levels come to the host only where masks are saved
                from bgbench.scoring.device import to_host_levels

                q = to_host_levels(prob)
        else:
            try:
                q = quantize(prob, out=self.qbuf[len(self.ids)])
            except ValueError as e:  # NaN: refused, never scored as some level
                raise RuntimeError(f"segment yielded an unusable map for frame {fid}: {e} (a diverged model?)") from None
        self.ids.append(fid)
        if self.mdir is not None:
            from bgbench.data.imageio import write_mask

            write_mask(self.mdir / f"bin{fid:06d}.png", np.where(q >= self.tbin, 255, 0).astype(np.uint8))
        if fid == self.example:
            self.example_pred = q >= self.tbin
        if len(self.ids) == SCORE_BATCH:
            self._flush()
        self.score_seconds += time.perf_counter() - t_got

    def finish(self, method: Method) -> dict[str, Any]:
        """The record's counts, metrics, timing (of this video's own yields), masks and example;
        RuntimeError if the method left out a requested frame."""
        if self.ids:
            t0 = time.perf_counter()
            self._flush()
            self.score_seconds += time.perf_counter() - t0
        if len(self.seen) != len(self.wanted):
            missing = sorted(self.wanted - self.seen)
            raise RuntimeError(f"segment yielded {len(self.seen)} of {len(self.wanted)} frames "
                               f"(first missing: {missing[0]})")
        warm = self.warm(method)
        seconds = float(sum(self.times[warm:]))
        n_frames = fps_frames(self.processed, warm)
        rec = self.score.to_dict()
        rec["metrics"] = metrics(rec["counts"], rec["dice"])
        untimed = getattr(method, "untimed", None)  # e.g. masks read from disk: reading PNGs is no method's speed
        flag = degenerate(self.score.hist, rec["counts"])
        if flag:
            rec["degenerate"] = flag
        video, opts = self.video, self.opts
        rec["timing"] = {
            "frames": n_frames, "seconds": seconds,
            "fps": None if untimed else n_frames / seconds if seconds > 0 else None,
            **({"fps_note": untimed} if untimed else {}),
            "yields": len(self.times) - warm,
            "device": method.device, "warmup_frames": warm, "segment_seconds_total": float(sum(self.times)),
            "scoring_seconds": self.score_seconds, "input_size": list(method.input_size or (video.width, video.height)),
            "batch": method.infer_batch, "precision": method.precision,
            "threads": opts.threads_for(getattr(method, "family", "")),
        }
        if self.mdir is not None:
            rec["masks"] = self.mdir.relative_to(opts.out).as_posix()
        if self.example_pred is not None:
            from bgbench.execution.examples import write_examples

            task = self.task
            assert task is not None and self.example is not None  # an example is kept for a task's frame only
            rec["examples"] = write_examples(video, self.example, self.example_pred,
                                             examples_dir(opts.out, task.method.name, task.protocol.key, video),
                                             opts.out)
        return rec

    def warm(self, method: Method) -> int:
        """The yields left out of the clock: the method's warm-up, but never every yield."""
        return max(0, min(method.warmup_frames, len(self.times) - 1))


def fps_frames(processed: Sequence[int], warm: int) -> int:
    """The frames the timed part of a segment() call processed: ``processed[k]`` is how many
    frames the method had processed when it yielded its k-th map (for a method that walks the
    video, every frame up to the yielded one, warm-up and unscored frames included; else the
    maps yielded so far), and the first ``warm`` yields are left out of the clock, so their
    frames are left out here too. FPS = this / the seconds of the timed yields, the same rule
    under every protocol (docs/scoring.md, "FPS")."""
    if not processed:
        return 0
    return processed[-1] - (processed[warm - 1] if warm > 0 else 0)


def _device_maps(method: Method, gen_of):
    """Run ``gen_of()`` (the method's segment generator) with ``method.device_maps`` set: torch
    maps may stay on the device, where they are scored (bgbench.scoring.device)."""
    method.device_maps = True
    try:
        yield from gen_of()
    finally:
        method.device_maps = False


def run_video(method: Method, video: Video, frames: Sequence[int], opts: RunOptions, task: Task | None = None) -> dict:
    """Segment and score one video's test frames; return counts, metrics, timing."""
    scorer = VideoScorer(video, frames, opts, task)
    gen = _device_maps(method, lambda: method.segment(scorer.view, list(frames)))
    t_prev = time.perf_counter()
    for fid, prob in gen:
        scorer.take(fid, prob, time.perf_counter() - t_prev)
        t_prev = time.perf_counter()
    return scorer.finish(method)


def run_videos(method: Method, tests: Sequence[tuple[Video, Sequence[int]]], opts: RunOptions,
               task: Task | None = None) -> list[dict[str, Any] | BaseException]:
    """Several videos of one shape through ``method.segment_videos`` as one batch: for each, its
    record (as ``run_video``'s) or the exception that failed it. A video whose maps are refused
    (a NaN map, a wrong frame) fails alone; an exception of the method fails every video of the
    batch not finished.

    Timing: the batch has one clock, so every video's ``fps`` is the batch's throughput (the
    frames of all its videos over the batch's seconds, each video's warm-up yields left out),
    and ``timing.video_batch`` holds the batch's videos, frames and seconds; ``frames`` and
    ``seconds`` are the video's share of them (its frames, and the seconds in proportion)."""
    scorers = [VideoScorer(v, f, opts, task) for v, f in tests]
    outcome: list[dict[str, Any] | BaseException | None] = [None] * len(tests)
    views = [s.view for s in scorers]
    gen = _device_maps(method, lambda: method.segment_videos(views, [list(f) for _, f in tests]))
    t_prev = time.perf_counter()
    try:
        for i, fid, prob in gen:
            seconds = time.perf_counter() - t_prev
            if outcome[i] is None:
                try:
                    scorers[i].take(fid, prob, seconds)
                except Exception as e:  # noqa: BLE001 - this video fails, the others go on
                    outcome[i] = e
            t_prev = time.perf_counter()
    except Exception as e:  # noqa: BLE001 - the method failed: every unfinished video of the batch
        outcome = [e if o is None else o for o in outcome]
    for k, s in enumerate(scorers):
        if outcome[k] is None:
            try:
                outcome[k] = s.finish(method)
            except Exception as e:  # noqa: BLE001
                outcome[k] = e
    ok = [k for k, o in enumerate(outcome) if isinstance(o, dict)]
    frames = sum(fps_frames(scorers[k].processed, scorers[k].warm(method)) for k in ok)
    seconds = sum(sum(scorers[k].times[scorers[k].warm(method):]) for k in ok)
    for k in ok:
        timing = outcome[k]["timing"]  # type: ignore[index]
        if timing["fps"] is not None:
            timing["seconds"] = seconds * timing["frames"] / frames if frames else 0.0
            timing["fps"] = frames / seconds if seconds > 0 else None
        timing["video_batch"] = {"videos": len(tests), "frames": frames, "seconds": seconds}
    return outcome  # type: ignore[return-value]
