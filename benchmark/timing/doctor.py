"""``bgbench doctor``: every GPU check in one bounded command, written as one JSON and one
Markdown report.

Checks, each given what is left of ``--budget`` seconds (a check still running when the
budget ends is stopped and reported as ``budget``, never as passed):

- ``environment``: torch, CUDA, the device's name and capability, bf16 support, cuDNN;
- ``deep:<method>`` for every deep method: its config (``paper`` by default) trains every
  stage for ``--steps`` steps (``--warmup-steps`` of them untimed) on a real labelled scene,
  then segments the scene's frames under the method's own precision (AMP on CUDA):
  training steps/s and images/s, the share of timed steps spent waiting for data (and on
  checkpoints where the trainer reports it), inference frames/s at batch 1 and at its best
  batch against 10x the paper's frames/s, peak GPU memory (``bgbench.timing.deep.profile``);
- ``gmm_sg``: ``--videos`` copies of the scene's first ``--gmm-frames`` frames run as one
  batch by the torch back end on the device, every copy's maps checked bit for bit against
  the NumPy back end, frames/s against OpenCV MOG2 on one CPU thread.

It imports only what those checks need (torch, NumPy, OpenCV; not MLflow, Dask or the
report), so it also runs from a source tree laid out by ``.ci/srcview`` on a machine that
has nothing else installed: ``PYTHONPATH=DIR python -m bgbench.cli doctor ...``.
"""

from __future__ import annotations

import contextlib
import json
import platform
import signal
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from bgbench.errors import BadInput

STATUSES = ("ok", "failed", "budget", "skipped")


class _OutOfBudget(BaseException):
    """Raised inside a check when the doctor's budget runs out (BaseException: a check's own
    ``except Exception`` cannot swallow it)."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def on_alarm(signum, frame):
        raise _OutOfBudget()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def environment(device: str) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                           "cuda_available": torch.cuda.is_available(), "device": device}
    if device.startswith("cuda"):
        out.update(gpu=torch.cuda.get_device_name(device), capability=".".join(map(str, torch.cuda.get_device_capability(device))),
                   bf16=torch.cuda.is_bf16_supported(), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(),
                   memory_gib=round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1))
    return out


def deep_check(name: str, video, config: str, device: str, steps: int, warmup: int,
               batches: Sequence[int]) -> dict[str, Any]:
    from bgbench.timing.deep import profile

    r = profile(name, video, config=config, device=device, steps=steps - warmup, warmup=warmup,
                train_frames=len(video.eval_frames), batches=batches)
    best = r.get("infer_fps_best")
    target = 10 * r["paper_fps"] if r.get("paper_fps") else None
    r["target_fps"] = target
    r["meets_target"] = None if target is None or best is None else best >= target
    return r


def gmm_sg_check(video, device: str, videos: int, frames: int) -> dict[str, Any]:
    import numpy as np

    from bgbench.baselines.gmm_sg import GMMStaufferGrimson
    from bgbench.execution.device import synchronize
    from bgbench.execution.scoped import one_thread

    ids = list(video.frame_ids[:frames])
    clip = np.ascontiguousarray(video.frames(ids))
    batch = np.ascontiguousarray(np.broadcast_to(clip[:, None], (len(clip), videos, *clip.shape[1:])))
    reference = np.stack(list(GMMStaufferGrimson(backend="numpy").run(iter(clip))))
    runs = {}
    for graph in ("auto", "off"):  # replayed from a CUDA graph (on CUDA), and launched kernel by kernel
        m = GMMStaufferGrimson(backend="torch", device=device, cuda_graph=graph)
        list(m.run(iter(batch[:2])))  # warm-up (compilation, where the update is compiled; the capture)
        synchronize(device)
        t0 = time.perf_counter()
        maps = np.stack(list(m.run(iter(batch))))  # the same instance: compiled and captured already
        synchronize(device)
        runs[graph] = (time.perf_counter() - t0, all(np.array_equal(maps[:, v], reference) for v in range(videos)),
                       m.graphed())
    seconds, identical, graphed = runs["auto"]

    import cv2

    with one_thread():
        times = []
        for _ in range(3):
            sub = cv2.createBackgroundSubtractorMOG2()
            t0 = time.perf_counter()
            for f in clip:
                sub.apply(f)
            times.append(time.perf_counter() - t0)
    mog2 = len(clip) / statistics.median(times)
    fps = len(clip) * videos / seconds
    return {"video": video.id, "frames": len(clip), "videos": videos, "device": device, "fused": m.fused(),
            "cuda_graph": graphed, "fps": fps, "fps_without_graph": len(clip) * videos / runs["off"][0],
            "mog2_fps": mog2, "vs_mog2": fps / mog2,
            "bit_identical_to_numpy": identical and runs["off"][1]}


def run_doctor(scene: Path, out: Path, methods: Sequence[str] | None = None, config: str = "paper",
               device: str = "auto", steps: int = 200, warmup: int = 5, budget: float = 540.0,
               videos: int = 8, gmm_frames: int = 200, batches: Sequence[int] | None = None,
               echo: Callable[[str], None] = print) -> dict[str, Any]:
    from bgbench.data.formats import discover
    from bgbench.execution.device import resolve
    from bgbench.method import METHODS

    started = time.monotonic()
    device = resolve(device)
    vids = discover(scene)
    if len(vids) != 1:
        raise BadInput(f"holds {len(vids)} scenes", scene, "give one labelled scene folder (e.g. a CDnet2014 scene)")
    video = vids[0]
    video.check()
    deep = sorted(e.name for e in METHODS if e.meta.get("family") == "deep")
    methods = list(methods) if methods else deep
    unknown = [m for m in methods if m not in deep and m != "gmm_sg"]
    if unknown:
        raise BadInput(f"{unknown[0]} is not a deep method or gmm_sg", "--methods", f"use some of {', '.join(deep)}, gmm_sg")
    batches = tuple(batches) if batches else ((1, 2, 4, 8, 16, 32, 64) if device.startswith("cuda") else (1, 2))
    checks: list[tuple[str, Callable[[], dict[str, Any]]]] = [("environment", lambda: environment(device))]
    for name in methods:
        if name != "gmm_sg":
            checks.append((f"deep:{name}", lambda n=name: deep_check(n, video, config, device, steps, warmup, batches)))  # type: ignore[misc]  # the default binds the loop variable
    if "gmm_sg" in methods or not methods or set(methods) == set(deep):
        checks.append(("gmm_sg", lambda: gmm_sg_check(video, device, videos, gmm_frames)))
    report: dict[str, Any] = {"command": "bgbench doctor", "scene": str(scene), "device": device, "config": config,
                              "steps": steps, "warmup_steps": warmup, "budget_s": budget, "checks": []}
    for label, fn in checks:
        left = budget - (time.monotonic() - started)
        entry: dict[str, Any] = {"check": label}
        t0 = time.monotonic()
        if left < 1:
            entry.update(status="budget", error=f"not started: the {budget:.0f} s budget was spent")
        else:
            try:
                with _deadline(left):
                    entry.update(status="ok", result=fn())
            except _OutOfBudget:
                entry.update(status="budget", error=f"stopped after {time.monotonic() - t0:.0f} s: the budget ran out")
            except Exception as e:  # one check's failure is its own; the others still run
                entry.update(status="failed", error=f"{type(e).__name__}: {e}")
        entry["seconds"] = round(time.monotonic() - t0, 2)
        report["checks"].append(entry)
        echo(f"doctor: {label}: {entry['status']} ({entry['seconds']:.1f} s)" + (f": {entry['error']}" if entry.get("error") else ""))
    report["seconds"] = round(time.monotonic() - started, 2)
    report["ok"] = all(c["status"] == "ok" for c in report["checks"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "doctor.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "doctor.md").write_text(markdown(report))
    return report


def _f(x: Any, fmt: str = "{:.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def markdown(report: dict[str, Any]) -> str:
    env = next((c.get("result") or {} for c in report["checks"] if c["check"] == "environment"), {})
    lines = [f"# bgbench doctor: {env.get('gpu') or report['device']}", "",
             f"Scene `{report['scene']}`, config `{report['config']}`, {report['steps']} steps per stage "
             f"({report['warmup_steps']} untimed), budget {report['budget_s']:.0f} s, took {report['seconds']:.0f} s.", "",
             "| check | status | seconds |", "|---|---|---:|"]
    lines += [f"| {c['check']} | {c['status']}{': ' + c['error'] if c.get('error') else ''} | {c['seconds']:.1f} |"
              for c in report["checks"]]
    deep = [c for c in report["checks"] if c["check"].startswith("deep:") and c["status"] == "ok"]
    if deep:
        lines += ["", "| method | precision | train steps/s (per stage) | data wait | infer fps b=1 | best batch | fps best "
                  "| 10x paper fps | peak train MiB | peak infer MiB |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for c in deep:
            r = c["result"]
            st = r.get("stages") or {}
            sps = ", ".join(f"{k} {_f(v.get('steps_per_s'), '{:.2f}')}" for k, v in st.items())
            wait = max((v.get("data_wait_fraction") or 0 for v in st.values()), default=None)
            mib = (lambda b: None if b is None else b / 2**20)
            lines.append(f"| {r['method']} | {r['precision']} | {sps} | {_f(wait, '{:.1%}')} | {_f(r.get('infer_fps_batch1'))} "
                         f"| {r.get('infer_best_batch') or '-'} | {_f(r.get('infer_fps_best'))} | {_f(r.get('target_fps'))} "
                         f"| {_f(mib(r.get('peak_train_bytes')), '{:.0f}')} | {_f(mib(r.get('peak_infer_bytes')), '{:.0f}')} |")
    g = next((c for c in report["checks"] if c["check"] == "gmm_sg" and c["status"] == "ok"), None)
    if g:
        r = g["result"]
        lines += ["", f"gmm_sg: {r['videos']} videos x {r['frames']} frames batched on {r['device']}: {r['fps']:.0f} frames/s "
                  f"({'from a CUDA graph; ' if r.get('cuda_graph') else ''}{_f(r.get('fps_without_graph'), '{:.0f}')} "
                  f"launched kernel by kernel), {r['vs_mog2']:.1f}x OpenCV MOG2 ({r['mog2_fps']:.0f} frames/s, one CPU thread); maps bit-identical to "
                  f"NumPy's: {'yes' if r['bit_identical_to_numpy'] else 'NO'}"]
    return "\n".join(lines) + "\n"
