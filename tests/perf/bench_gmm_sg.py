"""gmm_sg's per-frame cost: aten ops dispatched per frame, and frames/s against OpenCV MOG2.

    python -m tests.perf.bench_gmm_sg [--frames 200] [--device cpu|cuda] [--fuse auto|on|off]
        [--k 3] [--batch 1] [--repeats 3] [--scene ../shared/data/CDnet2014/baseline/highway]

Prints, for the first ``--frames`` frames of the scene (CDnet2014 highway, 320x240, by
default):

- the aten ops one eager ``step`` dispatches on a CPU tensor (``TorchDispatchMode``): all of
  them, those with a float64 output, the kernels among them (ops that are not views: what
  launches on a GPU) and the bytes those kernels read and write (an unfused traffic
  estimate; a broadcast operand counts once);
- frames/s of the NumPy back end, of torch eager on ``--device`` and, with ``--fuse on`` (or
  ``auto`` on CUDA), of the compiled update (its compile time apart), each through
  ``GMMStaufferGrimson.run`` (frames uploaded as uint8 in chunks, maps copied back per
  chunk; CUDA synchronised before the clock stops); with ``--batch B``, B copies of the clip
  as one batch (B x frames frames);
- OpenCV MOG2 (``cv2.createBackgroundSubtractorMOG2()`` defaults, one thread) on the same
  frames, and every row's ratio to it.

Medians of ``--repeats`` passes, interleaved (NumPy, torch, compiled, MOG2, NumPy, ...), on
one OpenCV and one torch CPU thread (MOG2's one core; torch's CPU kernels otherwise spin on
every core). The load average is printed before and after: other work on the machine skews
every figure, so compare rows of one invocation only. The maps of every torch row are
checked to equal NumPy's bit for bit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bgbench.execution.device import synchronize


def count_ops(fn: Callable[[], Any]) -> dict[str, int]:
    """The aten ops ``fn()`` dispatches: ``total``; ``float64``, those with a float64 output;
    ``kernels``, those that are not views (each launches a kernel on a GPU); and
    ``kernel_bytes``, the bytes those read and write (inputs at their storage size when
    broadcast, outputs in full), what an unfused run moves through memory."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    def nbytes(t, is_input: bool) -> int:
        full = t.numel() * t.element_size()
        return min(full, t.untyped_storage().nbytes()) if is_input else full

    class Counter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.counts = {"total": 0, "float64": 0, "kernels": 0, "kernel_bytes": 0}

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
            c = self.counts
            c["total"] += 1
            c["float64"] += any(t.dtype == torch.float64 for t in outs)
            if not func.is_view:
                c["kernels"] += 1
                ins = [t for t in tree_flatten((args, kwargs or {}))[0] if isinstance(t, torch.Tensor)]
                c["kernel_bytes"] += sum(nbytes(t, True) for t in ins) + sum(nbytes(t, False) for t in outs)
            return out

    with Counter() as counter:
        fn()
    return counter.counts


def step_op_counts(frames: np.ndarray, k: int = 3, rho_rule: str = "paper", weight_rule: str = "paper",
                   state_cls=None, step_fn=None, warm: int = 3) -> dict[str, int]:
    """``count_ops`` of one ``step`` on CPU tensors (frame ``warm`` of ``frames``, after
    ``warm`` frames), with the method's other defaults. ``state_cls``/``step_fn``: another
    implementation's (default: bgbench.baselines.gmm_sg's)."""
    import torch

    from bgbench.baselines import gmm_sg

    state_cls, step_fn = state_cls or gmm_sg.GMMState, step_fn or gmm_sg.step
    xs = [torch.from_numpy(np.ascontiguousarray(f)).to(torch.float64) for f in frames[:warm + 1]]
    state = state_cls(xs[0], k, 900.0, 0.05, torch)
    args = (0.01, 0.7, 2.5, rho_rule, 4.0, weight_rule)
    for x in xs[:warm]:
        step_fn(state, x, *args)
    return count_ops(lambda: step_fn(state, xs[warm], *args))


def _maps(method, frames: np.ndarray, device: str) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    out = list(method.run(iter(frames)))
    synchronize(device)
    return time.perf_counter() - t0, np.stack(out)


def _mog2(frames: np.ndarray) -> float:
    import cv2

    sub = cv2.createBackgroundSubtractorMOG2()
    t0 = time.perf_counter()
    for f in frames:
        sub.apply(f)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.perf.bench_gmm_sg", description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, default=None, help="a CDnet scene folder (default: highway in the shared data)")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N] for the torch rows")
    ap.add_argument("--fuse", choices=("auto", "on", "off"), default="auto",
                    help="also time the compiled update: on, or auto on CUDA")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1, help="copies of the clip run as one batch (GPU throughput)")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)

    from bgbench.baselines.gmm_sg import GMMStaufferGrimson
    from bgbench.data.formats import discover
    from bgbench.execution.scoped import one_thread
    from bgbench.suites import shared_data

    scene = a.scene
    if scene is None:
        root = shared_data()
        scene = root / "CDnet2014" / "baseline" / "highway" if root else None
    if scene is None or not Path(scene).is_dir():
        ap.error(f"no scene at {scene}: give --scene")
    (video,) = discover(scene)
    ids = list(video.frame_ids[: a.frames])
    clip = np.ascontiguousarray(video.frames(ids))
    frames = clip if a.batch == 1 else np.ascontiguousarray(
        np.broadcast_to(clip[:, None], (len(clip), a.batch, *clip.shape[1:])))
    n = len(clip) * a.batch
    compiled = a.fuse == "on" or (a.fuse == "auto" and a.device.startswith("cuda"))

    print(f"scene {scene}: {len(clip)} frames of {clip.shape[2]}x{clip.shape[1]}"
          + (f", batch {a.batch} ({n} frames a pass)" if a.batch > 1 else "") + f"; k = {a.k}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for rho, weight in (("paper", "paper"), ("alpha", "opencv")):  # the paper's rules, OpenCV's
        c = step_op_counts(clip, k=a.k, rho_rule=rho, weight_rule=weight)
        print(f"eager step, rho_rule={rho}, weight_rule={weight}: {c['total']} aten ops per frame, {c['float64']} with a float64 output, "
              f"{c['kernels']} kernels (not views), {c['kernel_bytes'] / 1e6:.0f} MB read + written by them "
              f"(on CUDA +2 kernels: the two sqrt, which eager CPU tensors take from NumPy)")

    k = {"k": a.k}
    rows: dict[str, Any] = {
        "numpy": GMMStaufferGrimson(backend="numpy", **k),
        f"torch eager ({a.device})": GMMStaufferGrimson(backend="torch", fuse="off", device=a.device, **k),
    }
    if compiled:
        rows[f"torch compiled ({a.device})"] = GMMStaufferGrimson(backend="torch", fuse="on", device=a.device, **k)
    times: dict[str, list[float]] = {name: [] for name in [*rows, "opencv mog2"]}
    with one_thread():
        if compiled:  # the first pass compiles
            m = rows[f"torch compiled ({a.device})"]
            t0 = time.perf_counter()
            list(m.run(iter(frames[:2])))
            synchronize(a.device)
            print(f"compile (first 2 frames): {time.perf_counter() - t0:.1f} s")
        ref = None
        for _ in range(a.repeats):
            for name, m in rows.items():
                seconds, maps = _maps(m, frames, a.device)
                times[name].append(seconds)
                if ref is None:
                    ref = maps
                elif not np.array_equal(maps, ref):
                    raise SystemExit(f"{name}: maps differ from NumPy's")
            times["opencv mog2"].append(_mog2(clip) * (n / len(clip)))
    mog2 = n / statistics.median(times["opencv mog2"])
    print(f"frames/s, median of {a.repeats} (1 OpenCV and 1 torch CPU thread):")
    for name, ts in times.items():
        fps = n / statistics.median(ts)
        print(f"  {name:<28} {fps:9.1f} frames/s  {fps / mog2:7.3f}x MOG2  (passes {min(ts):.2f}-{max(ts):.2f} s)")
    print(f"maps: every torch row equal to NumPy's bit for bit over {n} frames")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
