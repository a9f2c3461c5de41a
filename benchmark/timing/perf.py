"""Speed figures the harness reports about itself (printed by ``bgbench speed``), and two
benchmarks that print figures (never asserted in tests):

    python -m bgbench.timing.perf scoring [--before COMMIT] [--maps detector|uniform]
        scoring in Gpix/s per core against the reference loop, bgbench.scoring.reference (what
        ``bgbench speed --scoring`` prints), optionally against scoring.py at a git commit;
    python -m bgbench.timing.perf score-command [--masks DIR] [--video SCENE] [--repeats 7]
        ``bgbench score`` as a whole process against a plain script (cv2 reads, the reference counts).

Figures are medians of interleaved repeats. Per-core figures use the thread's CPU time,
so other processes on a shared machine slow them less than wall time (not at all only on
an idle machine: they still share caches and memory bandwidth).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from bgbench.timing.interleave import interleaved_times


def median_time(fn: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def reference_workload_seconds(repeats: int = 3) -> float:
    """Median seconds of a fixed CPU workload (OpenCV MOG2 over 150 seeded 320x240 frames,
    one thread): the yardstick that makes speeds comparable across machines."""
    import cv2

    from bgbench.execution.scoped import opencv_threads

    rng = np.random.default_rng(12345)
    base = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    frames = [cv2.add(base, rng.integers(0, 20, (240, 320, 3), dtype=np.uint8)) for _ in range(150)]

    def work():
        sub = cv2.createBackgroundSubtractorMOG2()
        for f in frames:
            sub.apply(f)

    with opencv_threads(1):
        return median_time(work, repeats)


# --- scoring --------------------------------------------------------------------------
def detector_maps(video, ids: Sequence[int]) -> np.ndarray:
    """Realistic float32 probabilities for ``ids``: a frame-difference detector,
    min(1, max over channels |frame - first frame| / 80). Deterministic, no method needed."""
    first = video.frame(video.frame_ids[0]).astype(np.int16)
    out = np.empty((len(ids), *video.shape), np.float32)
    for k in range(0, len(ids), 64):
        d = np.abs(video.frames(ids[k:k + 64]).astype(np.int16) - first).max(axis=3)
        np.minimum(d.astype(np.float32) / np.float32(80.0), np.float32(1.0), out=out[k:k + 64])
    return out


def comparator_counts(maps: np.ndarray, gt: np.ndarray, roi: np.ndarray, tbin: int) -> dict[str, int]:
    """The reference comparator (``bgbench.scoring.reference``: the strongest plain loop, per
    frame three class masks and ``np.count_nonzero``) on maps: uint8 values or float32
    probabilities."""
    from bgbench.scoring.reference import map_counts

    return map_counts(maps, gt, roi, tbin)


INDEXED = "with the video's ground truth already gathered (its later methods)"


def scoring_speed(video, repeats: int = 5, batch: int = 32, maps: str = "detector", others: dict | None = None) -> dict:
    """Gpix/s per core of scoring a video's evaluated frames, as the run loop does it
    (``quantize`` per frame into a batch buffer, ``VideoScore.add`` per batch: counts, Dice,
    256-bin histograms per class; the ground truth from a ``TruthIndex`` made new, as for
    a video's first method, and, under ``INDEXED``, already made, as for the later ones),
    for 0/255 masks and float32 probabilities, against the
    reference loop (``bgbench.scoring.reference``) on the same maps (counts at one threshold only). ``maps``: "detector"
    (``detector_maps``, realistic) or "uniform" (uniform noise, as earlier figures used);
    masks are the maps at 0.5. ``others``: {label: a scoring module} timed alongside, e.g.
    an earlier version. One thread; CPU time per repeat."""
    from bgbench.scoring import metrics as scoring
    from bgbench.execution.scoped import threads

    ids = list(video.eval_frames)
    gt, roi = video.gts(ids), video.roi
    if maps == "detector":
        probs = detector_maps(video, ids)
    elif maps == "uniform":  # filled in chunks like detector_maps: one huge rng.random array reads slower here
        rng, probs = np.random.default_rng(0), np.empty((len(ids), *video.shape), np.float32)
        for k in range(0, len(ids), 64):
            probs[k:k + 64] = rng.random(probs[k:k + 64].shape, dtype=np.float32)
    else:
        raise ValueError(f"maps must be 'detector' or 'uniform', not {maps!r}")
    masks = np.where(probs >= 0.5, 255, 0).astype(np.uint8)
    tbin = scoring.threshold_bin(0.5)
    impls = {"": scoring, **(others or {})}

    def ours(mod, maps: np.ndarray, index=None) -> dict[str, int]:
        s = mod.VideoScore(0.5)
        if not hasattr(mod, "TruthIndex"):  # an earlier scoring.py: stacked batches and the ground truth
            for k in range(0, len(ids), batch):
                s.update(np.stack([mod.quantize(m) for m in maps[k:k + batch]]), gt[k:k + batch], roi)
            return s.counts()
        # as the run loop does it: quantised into a batch buffer, the ground truth from the
        # video's index (a new one: gathered while scoring, as for a video's first method)
        index = index or mod.TruthIndex(gt, roi)
        buf = np.empty((batch, *maps.shape[1:]), np.uint8)
        for k in range(0, len(ids), batch):
            n = len(maps[k:k + batch])
            for j in range(n):
                mod.quantize(maps[k + j], out=buf[j])
            s.add(buf[:n], index.batch(range(k, k + n)))
        return s.counts()

    warm = scoring.TruthIndex(gt, roi)
    fns: dict[str, Callable[[], object]] = {}
    for label, mod in impls.items():
        fns[f"{label}masks"] = lambda mod=mod: ours(mod, masks)  # type: ignore[misc]  # the default binds the loop variable
        fns[f"{label}probabilities"] = lambda mod=mod: ours(mod, probs)  # type: ignore[misc]  # the default binds the loop variable
    fns["indexed_masks"] = lambda: ours(scoring, masks, warm)
    fns["indexed_probabilities"] = lambda: ours(scoring, probs, warm)
    fns["comparator_masks"] = lambda: comparator_counts(masks, gt, roi, tbin)
    fns["comparator_probabilities"] = lambda: comparator_counts(probs, gt, roi, tbin)
    load = os.getloadavg()[0]
    with threads(1):  # OpenCV on one thread: figures per core
        for m in (masks, probs):  # same numbers, and warm caches (and the index) before timing
            if any(ours(mod, m, i) != comparator_counts(m, gt, roi, tbin)
                   for mod, i in [*((mod, None) for mod in impls.values()), (scoring, warm)]):
                raise AssertionError("scoring and the comparator disagree")
        t = interleaved_times(fns, repeats, time.thread_time)
    med = {k: statistics.median(v) for k, v in t.items()}
    pixels = gt.size
    out = {"frames": len(ids), "pixels": pixels, "repeats": repeats, "maps": maps, "others": {},
           "load": [load, os.getloadavg()[0]]}
    for label, prefix in [*((label, label) for label in impls), (INDEXED, "indexed_")]:
        r = out if not label else out["others"].setdefault(label, {})
        for kind in ("masks", "probabilities"):
            r[f"{kind}_gpix_per_s"] = pixels / med[prefix + kind] / 1e9
            r[f"{kind}_spread_gpix_per_s"] = [pixels / max(t[prefix + kind]) / 1e9, pixels / min(t[prefix + kind]) / 1e9]
            r[f"{kind}_vs_comparator"] = med[f"comparator_{kind}"] / med[prefix + kind]  # > 1: faster
    for kind in ("masks", "probabilities"):
        out[f"comparator_{kind}_gpix_per_s"] = pixels / med[f"comparator_{kind}"] / 1e9
    return out


def scoring_at_commit(commit: str):
    """``benchmark/scoring/metrics.py`` as it was at a git commit (``benchmark/scoring.py`` before
    the package was split into subpackages), as a module (for before/after)."""
    import types

    here = Path(__file__).resolve().parent
    for path in ("benchmark/scoring/metrics.py", "benchmark/scoring.py"):
        got = subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, text=True, cwd=here)
        if got.returncode == 0:
            src = got.stdout.replace("from benchmark.", "from bgbench.").replace("from .", "from bgbench.")
            break
    else:
        raise SystemExit(f"no scoring module at commit {commit}")
    mod = types.ModuleType(f"bgbench.scoring_at_{commit}")
    mod.__package__ = "bgbench.scoring"
    sys.modules[mod.__name__] = mod  # dataclasses look their module up
    exec(compile(src, f"scoring.py@{commit}", "exec"), mod.__dict__)
    return mod


def print_scoring_speed(video, r: dict) -> None:
    print(f"{video.id}: {r['frames']} evaluated frames ({r['pixels'] / 1e6:.1f} Mpix), "
          f"{'a frame-difference detector' if r['maps'] == 'detector' else 'uniform noise'}'s maps; one thread, "
          f"CPU time, median of {r['repeats']} interleaved repeats; load average {r['load'][0]:.2f} before, "
          f"{r['load'][1]:.2f} after ({os.cpu_count()} cores)")
    for label, res in [("", r), *r["others"].items()]:
        for kind, what in (("masks", "0/255 masks"), ("probabilities", "float32 probabilities")):
            lo, hi = res[f"{kind}_spread_gpix_per_s"]
            print(f"  {(label + ' ') if label else ''}score {what:22s} {res[f'{kind}_gpix_per_s']:.2f} Gpix/s per core "
                  f"(range {lo:.2f}-{hi:.2f}); {res[f'{kind}_vs_comparator']:.2f}x the reference loop's "
                  f"{r[f'comparator_{kind}_gpix_per_s']:.2f} (it counts at one threshold; bgbench also "
                  f"keeps 256-bin histograms by class)")


# --- bgbench score as a whole process ---------------------------------------------------
def comparator_script() -> str:
    """The comparator as a plain script: cv2 reads, then ``bgbench.scoring.reference.frame_counts``
    (its source pasted in, so the script imports nothing of bgbench and counts with the same
    code as every other reference)."""
    import inspect

    from bgbench.scoring import reference

    return COMPARATOR_HEAD + inspect.getsource(reference.frame_counts) + COMPARATOR_LOOP


COMPARATOR_HEAD = r'''
import json, sys
from pathlib import Path
import cv2, numpy as np

'''
COMPARATOR_LOOP = r'''

pred, scene = Path(sys.argv[1]), Path(sys.argv[2])
first, last = (int(x) for x in (scene / "temporalROI.txt").read_text().split()[:2])
roi = cv2.imread(str(scene / "ROI.bmp"), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION) > 0
c = [0] * 6
for i in range(first, last + 1):
    g = cv2.imread(str(scene / "groundtruth" / f"gt{i:06d}.png"), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
    p = cv2.imread(str(pred / f"bin{i:06d}.png"), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION) == 255
    for k, n in enumerate(frame_counts(p, g, roi)):
        c[k] += int(n)
print(json.dumps(dict(zip(("tp", "fp", "tn", "fn", "shadow_errors", "shadow_pixels"), c))))
'''


def write_detector_masks(video, out: Path) -> Path:
    """``detector_maps`` at 0.5 as 0/255 ``bin%06d.png`` masks for the evaluated frames."""
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    ids = list(video.eval_frames)
    for k in range(0, len(ids), 64):
        chunk = ids[k:k + 64]
        for i, p in zip(chunk, detector_maps(video, chunk)):
            cv2.imwrite(str(out / f"bin{i:06d}.png"), np.where(p >= 0.5, 255, 0).astype(np.uint8))
    return out


def default_scene() -> Path:
    """The scene the scoring figures are measured on: CDnet2014 highway in the shared data."""
    from bgbench.suites import shared_data

    return (shared_data() or Path("../shared/data")) / "CDnet2014" / "baseline" / "highway"


def add_mask_options(p: argparse.ArgumentParser, repeats: int) -> None:
    """``--video``, ``--masks`` and ``--repeats``, as every script timing the scoring of masks takes them."""
    p.add_argument("--video", type=Path, help="scene folder (default ../shared/data/CDnet2014/baseline/highway)")
    p.add_argument("--masks", type=Path, help="folder of bin%%06d.png masks (default: a frame-difference "
                                              "detector's, written to a temporary folder)")
    p.add_argument("--repeats", type=int, default=repeats)


def scene_and_masks(args: argparse.Namespace, tmp: Path) -> tuple[Path, Path]:
    """(the scene, its masks) from ``add_mask_options``' arguments: the detector's masks
    written under ``tmp`` unless ``--masks`` names a folder."""
    from bgbench.data.formats import discover

    scene = args.video or default_scene()
    return scene, args.masks or write_detector_masks(discover(scene)[0], Path(tmp) / "masks")


def _bgbench_command() -> list[str]:
    exe = Path(sys.executable).with_name("bgbench")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "bgbench.cli"]


def score_command_vs_comparator(pred_dir: Path, scene: Path, repeats: int = 7) -> dict:
    """Wall (and CPU) seconds of ``bgbench score PRED_DIR --video SCENE`` against ``comparator_script()``
    (a plain single-threaded loop: imread the mask and the ground truth, count with NumPy),
    each a fresh process, medians of interleaved repeats. bgbench runs on a cache of its own,
    empty at first: the first run (untimed in the medians, reported apart) decodes the
    ground truth into it, and the timed runs find its entry settled and checked, as any later
    use of a cache does; the comparator's first run warms the OS file cache for both."""
    ours = [*_bgbench_command(), "score", str(pred_dir), "--video", str(scene), "--json"]
    theirs = [sys.executable, "-c", comparator_script(), str(pred_dir), str(scene)]

    with tempfile.TemporaryDirectory(prefix="bgbench-cache-") as cache:
        env = {**os.environ, "BGBENCH_CACHE": cache}

        cpu: dict[str, list[float]] = {"bgbench_score": [], "comparator": []}

        def run(cmd: list[str], label: str | None = None) -> dict:
            import resource

            c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            if label:  # the process's CPU seconds (user + system, its children included)
                cpu[label].append(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
            if r.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd[:3])} ... failed: {r.stderr.strip()[-500:]}")
            return json.loads(r.stdout)

        run(theirs)  # warms the OS file cache for both
        t0 = time.perf_counter()
        first = run(ours)
        cold = time.perf_counter() - t0
        # a cache entry records that it was found whole only once it is older than filehash.RACY_NS
        # (docs/data.md): let it settle, as every later use of a user's cache finds it
        from bgbench.data.filehash import RACY_NS

        time.sleep(RACY_NS / 1e9 + 0.2)
        run(ours)  # the check that records it
        if first["counts"] != run(theirs):
            raise AssertionError("bgbench score and the comparator script disagree")
        t = interleaved_times({"bgbench_score": lambda: run(ours, "bgbench_score"),
                         "comparator": lambda: run(theirs, "comparator")}, repeats)
    med = {k: statistics.median(v) for k, v in t.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
    return {"frames": first["frames"], "repeats": repeats, "first_run_s": cold,
            "bgbench_score_s": med["bgbench_score"], "comparator_s": med["comparator"],
            "bgbench_score_spread_s": [min(t["bgbench_score"]), max(t["bgbench_score"])],
            "comparator_spread_s": [min(t["comparator"]), max(t["comparator"])],
            "ratio": med["bgbench_score"] / med["comparator"],
            "bgbench_score_cpu_s": cpu_med["bgbench_score"], "comparator_cpu_s": cpu_med["comparator"],
            "cpu_ratio": cpu_med["bgbench_score"] / cpu_med["comparator"]}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bgbench.timing.perf", description="harness speed figures")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("score-command", help="`bgbench score` whole-process time against a comparator script")
    add_mask_options(p, repeats=7)
    p = sub.add_parser("scoring", help="`bgbench speed --scoring`, optionally against the scoring of a git commit")
    p.add_argument("--video", type=Path, help="scene folder (default ../shared/data/CDnet2014/baseline/highway)")
    p.add_argument("--maps", choices=("detector", "uniform"), default="detector",
                   help="a frame-difference detector's maps (default) or uniform noise")
    p.add_argument("--before", metavar="COMMIT", help="also time benchmark/scoring/metrics.py as it was at COMMIT")
    p.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    from bgbench.data.formats import discover

    if args.cmd == "scoring":
        (video,) = discover(args.video or default_scene())
        others = {f"@{args.before}": scoring_at_commit(args.before)} if args.before else None
        print_scoring_speed(video, scoring_speed(video, args.repeats, maps=args.maps, others=others))
        return 0
    with tempfile.TemporaryDirectory(prefix="bgbench-masks-") as tmp:
        scene, masks = scene_and_masks(args, Path(tmp))
        r = score_command_vs_comparator(masks, scene, args.repeats)
    print(f"{scene}: {r['frames']} masks, median of {r['repeats']} interleaved runs (wall seconds, whole process)")
    print(f"  bgbench score      {r['bgbench_score_s']:.3f} s  (range {r['bgbench_score_spread_s'][0]:.3f}-"
          f"{r['bgbench_score_spread_s'][1]:.3f}; first run, decoding the ground truth into an empty cache: "
          f"{r['first_run_s']:.3f} s)")
    print(f"  comparator script  {r['comparator_s']:.3f} s  (range {r['comparator_spread_s'][0]:.3f}-"
          f"{r['comparator_spread_s'][1]:.3f})")
    print(f"  ratio              {r['ratio']:.2f}x wall; CPU time {r['bgbench_score_cpu_s']:.3f} s vs "
          f"{r['comparator_cpu_s']:.3f} s: {r['cpu_ratio']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
