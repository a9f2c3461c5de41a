"""Every figure of issue 27 that a CPU can measure, printed and written to
docs/measurements/performance.json with the command, the machine and its load.

    python -m tests.perf.perf_figures [--repeats 5] [--out docs/measurements/performance.json]
        [--only scoring,independent,score_command,report,device_scoring,jobs]

Figures (each against the one reference comparator, ``bgbench.scoring.reference``: the
strongest plain loop, per frame three class masks and ``np.count_nonzero``):

- ``scoring``: ``bgbench speed --scoring`` (``bgbench.timing.perf.scoring_speed``): Gpix/s
  per core of scoring highway's 1231 evaluated frames, 0/255 masks and float32
  probabilities, a video's first method and its later ones, against the reference loop
  on the same maps; one thread, CPU time, medians of interleaved repeats;
- ``independent``: the same maps scored by a loop written here with the public API only
  (``quantize`` + ``VideoScore.update`` per batch of 32), thread CPU time;
- ``score_command``: ``bgbench score`` as a whole process against a plain script (cv2.imread
  the mask and the ground truth, count with the reference), wall and CPU time;
- ``report``: CPU seconds a one-method run's report adds, where the run builds it: for
  gmm_zivkovic (0/255 masks: tables and the mosaic, no matplotlib) in the run's own process
  after the jobs (``build_report`` in a process holding what a run's holds by then), for
  frame_difference (probabilities: a PR curve) in the report worker (start, warm-up, build,
  exit; forked PDF writers included); CDnet2014 office;
- ``device_scoring``: host CPU per frame of scoring torch maps with
  ``bgbench.scoring.device`` (torch on the CPU) against the NumPy path on the same frames,
  and of gmm_sg's torch path (CPU) yielding tensors (scored there) against NumPy maps;
- ``jobs``: ``bgbench run``'s ``run_tasks`` wall and CPU with ``--jobs 1`` and ``2``
  (tests/perf/bench_parallel.measure), gmm_zivkovic over the four 51-frame CDnet scenes.

No GPU figure is measured here (none is reachable from this script's machine unless torch
sees one); the JSON says which figures it holds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
HIGHWAY = DATA / "CDnet2014" / "baseline" / "highway"
OFFICE = DATA / "CDnet2014" / "baseline" / "office"
SMALL_SCENES = [DATA / "CDnet2014" / "baseline" / s for s in ("office", "PETS2006", "pedestrians")] + [
    DATA / "CDnet2014" / "intermittentObjectMotion" / "abandonedBox"]
ALL = ("scoring", "independent", "score_command", "report", "device_scoring", "jobs")


def machine() -> dict:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version(), "platform": platform.platform()}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# --- scoring ---------------------------------------------------------------------------------
def scoring(repeats: int) -> dict:
    from bgbench.data.formats import discover
    from bgbench.timing.perf import scoring_speed

    (video,) = discover(HIGHWAY)
    return scoring_speed(video, repeats)


def independent(repeats: int, batch: int = 32) -> dict:
    """The public API in a plain loop, against the reference, thread CPU time."""
    from bgbench.data.formats import discover
    from bgbench.execution.scoped import threads
    from bgbench.scoring.metrics import VideoScore, quantize, threshold_bin
    from bgbench.scoring.reference import map_counts
    from bgbench.timing.perf import detector_maps

    (video,) = discover(HIGHWAY)
    ids = list(video.eval_frames)
    gt, roi = video.gts(ids), video.roi
    probs = detector_maps(video, ids)
    masks = np.where(probs >= 0.5, 255, 0).astype(np.uint8)
    tbin = threshold_bin(0.5)

    def ours(maps):
        s = VideoScore(0.5)
        for k in range(0, len(ids), batch):
            s.update(np.stack([quantize(m) for m in maps[k:k + batch]]), gt[k:k + batch], roi)
        return s.counts()

    fns = {"masks": lambda: ours(masks), "probabilities": lambda: ours(probs),
           "reference_masks": lambda: map_counts(masks, gt, roi, tbin),
           "reference_probabilities": lambda: map_counts(probs, gt, roi, tbin)}
    t: dict[str, list[float]] = {k: [] for k in fns}
    with threads(1):
        for m in (masks, probs):
            if ours(m) != map_counts(m, gt, roi, tbin):
                raise AssertionError("scoring and the reference disagree")
        for r in range(repeats):
            for k, fn in (fns.items() if r % 2 == 0 else reversed(list(fns.items()))):
                t0 = time.thread_time()
                fn()
                t[k].append(time.thread_time() - t0)
    pix = gt.size
    out = {"frames": len(ids), "pixels": pix, "repeats": repeats, "api": "quantize + VideoScore.update, batches of 32"}
    for k, v in t.items():
        out[f"{k}_gpix_per_s"] = pix / statistics.median(v) / 1e9
        out[f"{k}_spread_gpix_per_s"] = [pix / max(v) / 1e9, pix / min(v) / 1e9]
    for k in ("masks", "probabilities"):
        out[f"{k}_vs_reference"] = statistics.median(t[f"reference_{k}"]) / statistics.median(t[k])
    return out


def score_command(repeats: int) -> dict:
    from bgbench.data.formats import discover
    from bgbench.timing.perf import score_command_vs_comparator, write_detector_masks

    with tempfile.TemporaryDirectory(prefix="bgbench-masks-") as tmp:
        masks = write_detector_masks(discover(HIGHWAY)[0], Path(tmp))
        return score_command_vs_comparator(masks, HIGHWAY, repeats)


# --- the report -------------------------------------------------------------------------------
def _one_method_run(method: str, out: Path) -> Path:
    cmd = [sys.executable, "-m", "bgbench.cli", "run", "--data", str(OFFICE), "--methods", method, "--no-report",
           "--no-tracking", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def report_worker_cpu(run: Path, repeats: int) -> dict:
    """CPU seconds of a fresh report worker (start, warm-up, build on request, exit)."""
    from bgbench.execution.child import module_command

    cpu, walls, figures = [], [], []
    for r in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bgbench-report-") as out:
            c0, t0 = _children_cpu(), time.perf_counter()
            p = subprocess.Popen(module_command("bgbench.reports.worker"), stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            p.stdin.write(json.dumps({"run_dir": str(run.resolve()), "out": out}) + "\n")
            p.stdin.flush()
            reply = json.loads(p.stdout.readline())
            p.stdin.write("\n")
            p.stdin.flush()
            p.wait()
            walls.append(time.perf_counter() - t0)
            cpu.append(_children_cpu() - c0)
            if not reply.get("ok"):
                raise RuntimeError(reply)
            figures = sorted(Path(f).name for f in reply["files"]["figures"])
    return {"cpu_s": statistics.median(cpu), "cpu_spread_s": [min(cpu), max(cpu)], "wall_s": statistics.median(walls),
            "figures": figures, "repeats": repeats}


_IN_PROCESS = """
import json, resource, sys, time
from pathlib import Path
import cv2, numpy, bgbench.api  # what a run's process holds when it builds its report
from bgbench.records.results import load_results
run, out = Path(sys.argv[1]), Path(sys.argv[2])
res = load_results(run / "results.json")
def cpu():
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + c.ru_utime + c.ru_stime
c0, t0 = cpu(), time.perf_counter()
from bgbench.reports.build import build_report
files = build_report(res, run, out)
print(json.dumps({"cpu": cpu() - c0, "wall": time.perf_counter() - t0,
                  "figures": sorted(p.name for p in files["figures"]), "matplotlib": "matplotlib" in sys.modules}))
"""


def report_in_process_cpu(run: Path, repeats: int) -> dict:
    """CPU seconds of ``build_report`` in a process that holds what a run's process holds
    after its jobs (NumPy, OpenCV, the run loop, the results): what the report adds to a
    run that starts no worker."""
    cpu, walls = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bgbench-report-") as out:
            r = subprocess.run([sys.executable, "-c", _IN_PROCESS, str(run), out], check=True, capture_output=True,
                               text=True)
            got = json.loads(r.stdout.splitlines()[-1])
            cpu.append(got["cpu"])
            walls.append(got["wall"])
    return {"where": "the run's process", "cpu_s": statistics.median(cpu), "cpu_spread_s": [min(cpu), max(cpu)],
            "wall_s": statistics.median(walls), "figures": got["figures"], "matplotlib_imported": got["matplotlib"],
            "repeats": repeats}


def report(repeats: int) -> dict:
    from bgbench.api import _draws_plots
    from bgbench.method import method_class

    out = {}
    with tempfile.TemporaryDirectory(prefix="bgbench-run-") as tmp:
        for method in ("gmm_zivkovic", "frame_difference"):
            run = _one_method_run(method, Path(tmp) / method)
            if _draws_plots([method_class(method)]):
                out[method] = {"where": "the report worker", **report_worker_cpu(run, repeats)}
            else:
                out[method] = report_in_process_cpu(run, repeats)
    return out


# --- device scoring on the CPU ----------------------------------------------------------------
def device_scoring(repeats: int, batch: int = 32) -> dict:
    import torch

    from bgbench.data.formats import discover
    from bgbench.execution.scoped import threads
    from bgbench.scoring.device import score_device
    from bgbench.scoring.metrics import VideoScore, quantize
    from bgbench.timing.perf import detector_maps

    (video,) = discover(HIGHWAY)
    ids = list(video.eval_frames)[:256]
    gt, roi = video.gts(ids), video.roi
    probs = detector_maps(video, ids)
    tensors = [torch.from_numpy(p) for p in probs]
    index = None

    def numpy_path():
        nonlocal index
        s = VideoScore(0.5)
        buf = np.empty((batch, *video.shape), np.uint8)
        for k in range(0, len(ids), batch):
            n = len(ids[k:k + batch])
            for j in range(n):
                quantize(probs[k + j], out=buf[j])
            s.add(buf[:n], video.truth(ids[k:k + n]))
        return s

    def device_path():
        s = VideoScore(0.5)
        for k in range(0, len(ids), batch):
            s.add_scored(*score_device(tensors[k:k + batch], gt[k:k + batch], roi, 128))
        return s

    t: dict[str, list[float]] = {"numpy": [], "device_cpu": []}
    with threads(1):
        a, b = numpy_path(), device_path()
        if a.counts() != b.counts() or not np.array_equal(a.hist, b.hist):
            raise AssertionError("device scoring and the NumPy path disagree")
        for r in range(repeats):
            for k, fn in ((("numpy", numpy_path), ("device_cpu", device_path)) if r % 2 == 0
                          else (("device_cpu", device_path), ("numpy", numpy_path))):
                t0 = time.process_time()
                fn()
                t[k].append(time.process_time() - t0)
    out = {"frames": len(ids), "size": f"{video.shape[1]}x{video.shape[0]}", "repeats": repeats,
           "threads": "OpenCV and torch on one thread"}
    for k, v in t.items():
        out[f"{k}_us_per_frame"] = statistics.median(v) / len(ids) * 1e6
    out["gmm_sg_torch_cpu"] = _gmm_sg_host(min(repeats, 2))
    return out


def _gmm_sg_host(repeats: int, frames: int = 8) -> dict:
    """gmm_sg's torch path on the CPU: process CPU per frame of segment + scoring as the run
    loop does it, maps as tensors scored by bgbench.scoring.device against NumPy maps scored
    on the host (the same run_video, the method's device_maps honoured or not)."""
    from bgbench.data.formats import discover
    from bgbench.execution.runner import RunOptions, run_video
    from bgbench.execution.scoped import threads
    from bgbench.method import build_method

    import tests.conftest as conftest  # noqa: F401 (copy_scene)

    with tempfile.TemporaryDirectory(prefix="bgbench-gmm-") as tmp:
        scene = conftest.copy_scene(HIGHWAY, Path(tmp) / "scene", range(800, 800 + frames))
        (video,) = discover(scene)
        t: dict[str, list[float]] = {"tensors": [], "numpy": []}
        counts = {}
        from bgbench.execution import videorun as runner

        runner.DEVICE_SCORING_ON_CPU = True  # CPU tensors scored the device's way, as on a GPU
        with threads(1):
            for r in range(repeats):
                for kind in (("tensors", "numpy") if r % 2 == 0 else ("numpy", "tensors")):
                    m = build_method("gmm_sg", device="cpu", backend="torch")
                    if kind == "numpy":
                        m.run = lambda it, chunk=32, device_maps=False, f=m.run: f(it, chunk, False)
                    t0 = time.process_time()
                    rec = run_video(m, video, list(video.eval_frames), RunOptions(out=Path(tmp) / f"{kind}{r}"))
                    t[kind].append(time.process_time() - t0)
                    counts[kind] = rec["counts"]
        if counts["tensors"] != counts["numpy"]:
            raise AssertionError("gmm_sg: tensor maps and NumPy maps score differently")
    return {"frames": frames, "repeats": repeats,
            **{f"{k}_ms_per_frame": statistics.median(v) / frames * 1e3 for k, v in t.items()}}


# --- --jobs ----------------------------------------------------------------------------------
def jobs(repeats: int) -> dict:
    from bgbench.data.formats import discover
    from tests.perf.bench_parallel import measure

    videos = [v for d in SMALL_SCENES for v in discover(d, roi_policy="ignore")]
    for v in videos:
        v.check()
        v.release()
    rows = [measure(videos, ["gmm_zivkovic"], j, 1, repeats) for j in (1, 2)]
    return {"videos": len(videos), "method": "gmm_zivkovic", "threads_per_job": 1,
            "rows": [{k: r[k] for k in ("jobs", "wall", "cpu", "job_sum", "walls")} for r in rows],
            "speed_up_jobs2": rows[0]["wall"] / rows[1]["wall"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.perf.perf_figures", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", default=",".join(ALL), help=f"comma-separated figures (default all: {','.join(ALL)})")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "measurements" / "performance.json")
    args = ap.parse_args(argv)
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    bad = [w for w in wanted if w not in ALL]
    if bad:
        ap.error(f"--only {','.join(bad)}: not a figure; choose from {','.join(ALL)}")
    record = {"command": "python -m tests.perf.perf_figures " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "load_before": load(), "figures": {},
              "unmeasured": ["every GPU figure (device scoring on CUDA, gmm_sg vs OpenCV MOG2 on CUDA, deep methods' "
                             "resize on the device): no GPU was reachable"]}
    if args.out.exists():  # figures not asked for this time are kept from the last run, with their own load
        try:
            old = json.loads(args.out.read_text())
            record["figures"] = {k: v for k, v in old.get("figures", {}).items() if k not in wanted}
        except (OSError, ValueError):
            pass
    for name in wanted:
        l0 = load()
        t0 = time.perf_counter()
        fig = globals()[name](args.repeats)
        record["figures"][name] = {**fig, "command": record["command"], "load_before": l0, "load_after": load(),
                                   "seconds": round(time.perf_counter() - t0, 1),
                                   "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        print(f"{name}: {json.dumps(record['figures'][name], default=float)}", flush=True)
    record["load_after"] = load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1, default=float) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
