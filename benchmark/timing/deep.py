"""``bgbench speed --train``: what a deep method costs on this machine's device, at the
size its config sets (``paper`` by default).

Per method: training steps/s and images/s (after warm-up steps, with device sync), the
fraction of the timed steps spent waiting for data, inference frames/s at batch 1 and at
its best batch (whole batches after a warm-up batch, device-synchronised by the copy back
of each batch), and peak GPU memory. Training runs the method's own ``fit`` on a real
labelled scene (its first ``train_frames`` ground-truth frames), every stage shortened to
``warmup + steps`` steps; inference runs ``segment`` on the same scene's frames, decoded
before the clock starts. It is the program ``bgbench run`` runs: the config's checkpoint
settings (rolling checkpoints written off the training thread into a temporary folder, and
each stage's final one) and the same cuDNN settings (``cudnn.benchmark`` left as run leaves
it: off, whose algorithm choice does not depend on timing). Per stage it reports the share
of the stage's time spent waiting for data and on checkpoints.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Sequence

from bgbench.execution.device import synchronize
from bgbench.errors import BadInput

# Published inference speeds: (frames/s, where; source)
PAPER_FPS: dict[str, tuple[float, str]] = {
    "cdn_medal": (129.0, "GTX 1070 Ti (papers/002)"),
    "crossnet": (5.33, "256x256 (papers/004)"),
    "two_stage_cnn": (5.0, "Titan X (papers/001)"),
}
BATCHES = (1, 2, 4, 8, 16, 32, 64)


@contextlib.contextmanager
def _cudnn_benchmark(on: bool):
    import torch

    old = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = old


def inference_fps(method, video, frames: Sequence[int], batch: int, warmup_batches: int = 1) -> float:
    """Frames/s of ``segment`` over whole batches after ``warmup_batches``; refuses fewer
    than 3 timed batches."""
    n_batches = len(frames) // batch
    if n_batches - warmup_batches < 3:
        raise BadInput(f"{len(frames)} frames give {n_batches} batches of {batch}: fewer than 3 left after "
                       f"{warmup_batches} warm-up batch(es)", "--frames", f"give at least {(warmup_batches + 3) * batch}")
    frames = list(frames)[: n_batches * batch]
    method.infer_batch = batch
    view = video.view()
    view.all_frames()
    gen = method.segment(view, frames)
    t_start = None
    for k, _ in enumerate(gen, start=1):
        if k == warmup_batches * batch:
            synchronize(method.device)
            t_start = time.perf_counter()
    synchronize(method.device)
    timed = len(frames) - warmup_batches * batch
    return timed / (time.perf_counter() - t_start)  # type: ignore[operator]  # set after the warm-up batches


def _stage_overrides(cls, steps: int) -> dict[str, Any]:
    out = {}
    for name in cls.stage_steps:
        default = cls.param_specs()[name].default
        out[name] = ",".join([str(steps)] * len(default)) if isinstance(default, (tuple, list)) else steps
    return out


def profile(name: str, video, config: str = "paper", device: str = "auto", steps: int = 30, warmup: int = 5,
            train_frames: int = 200, infer_frames: int | None = None, batches: Sequence[int] = BATCHES,
            overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    import torch

    from bgbench.method import build_method, method_class
    from bgbench.data.video import LabelledFrames, TrainingSet

    cls = method_class(name)
    if not cls.stage_steps:
        raise BadInput(f"{name} does not train", "--methods", "--train times deep methods only")
    kw = {**_stage_overrides(cls, warmup + steps), "max_train_seconds": None, **(overrides or {})}
    m = build_method(name, config=config, device=device, **kw)
    import tempfile

    workdir = tempfile.TemporaryDirectory(prefix="bgbench-speed-")
    m.workdir = Path(workdir.name)  # checkpoints are written as in a run, then deleted
    m.timing_warmup = warmup  # type: ignore[attr-defined]  # read by a deep method's trainer
    cuda = m.device.startswith("cuda")
    labelled = list(video.eval_frames)
    train = TrainingSet(train=(LabelledFrames(video, labelled[:train_frames]),))
    with workdir:
        if cuda:
            torch.cuda.reset_peak_memory_stats(m.device)
        m.fit(train)
        peak_train = torch.cuda.max_memory_allocated(m.device) if cuda else None
        stages = {}
        for tag, s in m.train_stats.items():
            sps = s["timed_steps"] / s["timed_seconds"] if s["timed_seconds"] else None
            stages[tag] = {"steps_per_s": sps, "images_per_s": sps * s["images_per_step"] if sps else None,
                           "data_wait_fraction": s["timed_data_wait_fraction"], "resident": s["resident"],
                           "checkpoint_fraction": s["checkpoint_fraction"],
                           "checkpoints_written": s["checkpoints_written"],
                           "timed_steps": s["timed_steps"]}
        test = list(video.frame_ids)
        fps: dict[int, float] = {}
        for b in batches:
            n = infer_frames or 4 * b
            if n > len(test):
                break
            try:
                if cuda:
                    torch.cuda.reset_peak_memory_stats(m.device)
                fps[b] = inference_fps(m, video, test[:max(n, 4 * b)], b)
            except torch.cuda.OutOfMemoryError:  # the largest batch that fits was the one before
                torch.cuda.empty_cache()
                break
        peak_infer = torch.cuda.max_memory_allocated(m.device) if cuda else None
    best = max(fps, key=fps.__getitem__) if fps else None
    gpu = torch.cuda.get_device_name(m.device) if cuda else None
    paper = PAPER_FPS.get(name)
    return {"method": name, "config": config, "device": m.device, "gpu": gpu, "precision": m.precision,
            "input_size": m.describe().get("input_size"), "stages": stages,
            "infer_fps_batch1": fps.get(1), "infer_best_batch": best, "infer_fps_best": fps.get(best) if best else None,
            "infer_fps": fps, "peak_train_bytes": peak_train, "peak_infer_bytes": peak_infer,
            "paper_fps": paper[0] if paper else None, "paper_fps_where": paper[1] if paper else None,
            "video": video.id, "train_frames": len(train.train[0].frames), "warmup_steps": warmup}


def run_train_speed(methods: Sequence[str], scene: Path, **kw: Any) -> list[dict[str, Any]]:
    from bgbench.data.formats import discover

    videos = discover(scene)
    if len(videos) != 1:
        raise BadInput(f"holds {len(videos)} scenes", scene, "give one labelled scene folder, e.g. CDnet2014/baseline/highway")
    video = videos[0]
    video.check()
    return [profile(name, video, **kw) for name in methods]
