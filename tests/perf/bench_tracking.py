"""What a whole ``bgbench run`` costs against the plain script it stands for.

    python -m tests.perf.bench_tracking [--scene DIR] [--repeats 8] [--warm-cache] [--load N] [--json]

The comparator is the script a user would write without bgbench: decode every frame of a
CDnet scene (highway by default) with OpenCV, feed it to OpenCV MOG2 (``gmm_zivkovic``'s
defaults), and count TP/FP/FN/TN against the ground truth over the temporal ROI (ROI
pixels only, 85 and 170 ignored, 50 negative; MOG2's shadow value 127 is background). It is
timed as a whole process, like the bgbench commands beside it:

* ``bgbench run --data SCENE --methods gmm_zivkovic`` as a user types it: report and MLflow
  tracking on, into the default per-user store (kept for the whole benchmark, as a user's
  is; a first untimed round creates it);
* the same with ``--no-tracking``, with ``--no-report``, and with both: what the report and
  what tracking add to the command.

Rounds are interleaved (raw, then the four bgbench variants in an order rotated each
round, so that none always follows the raw script; with ``--repeats`` a multiple of 4 each
follows it equally often, as with the default 8) after one untimed warm-up round, and the
medians are compared. Each bgbench run gets a fresh run folder and, unless
``--warm-cache``, a fresh frame cache, since the raw script decodes every JPEG too (only the
code's parsed import lists are carried over from the warm-up round, as a bgbench that has
run once keeps them: they depend on its installed sources, not on the data). The
background MLflow logger a run leaves behind is waited for before the next process
starts (so it takes no CPU from it); its own duration is printed apart. The counts of every
run are checked against the raw script's: a faster run that counts differently is no win.

``--load N`` runs N busy processes (a Python loop each, normal priority) for the whole
measurement, as other work on a shared machine would: the raw script and bgbench then
compete with them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METHOD = "gmm_zivkovic"
VARIANTS = {  # name: (label, extra options)
    "default": ("bgbench run (report + MLflow)", []),
    "no-tracking": ("bgbench run --no-tracking (report)", ["--no-tracking"]),
    "no-report": ("bgbench run --no-report (MLflow)", ["--no-report"]),
    "bare": ("bgbench run --no-tracking --no-report", ["--no-tracking", "--no-report"]),
}


def raw_counts(scene: Path) -> dict[str, int]:
    """The plain script: decode, MOG2, count. Returns int TP/FP/FN/TN."""
    import cv2

    from bgbench.scoring.reference import frame_counts

    first, last = (int(x) for x in (scene / "temporalROI.txt").read_text().split()[:2])
    roi = cv2.imread(str(scene / "ROI.bmp"), cv2.IMREAD_GRAYSCALE) > 0
    sub = cv2.createBackgroundSubtractorMOG2(history=500, varThreshold=16.0, detectShadows=True)
    tp = fp = fn = tn = 0
    for f in sorted((scene / "input").glob("in*.jpg")):
        i = int(f.stem[2:])
        mask = sub.apply(cv2.imread(str(f)))
        if not first <= i <= last:
            continue
        gt_file = scene / "groundtruth" / f"gt{i:06d}.png"
        if not gt_file.exists():
            continue
        gt = cv2.imread(str(gt_file), cv2.IMREAD_GRAYSCALE)
        c = frame_counts(mask == 255, gt, roi)  # the one reference comparator
        tp, fp, tn, fn = tp + int(c[0]), fp + int(c[1]), tn + int(c[2]), fn + int(c[3])
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def _bgbench() -> list[str]:
    return [sys.executable, "-m", "bgbench.cli"]  # what the console script runs, from this source tree


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return seconds, p.stdout


def _wait_logger(out: Path, timeout: float = 600.0) -> float | None:
    """Seconds the background logger took (from its outcome file), once it has finished;
    None where the run left no logger behind."""
    if not (out / "tracking.json").exists():
        return None
    from bgbench.tracking import wait

    state = wait(out, timeout)
    if state is None:
        return None
    if state.get("state") != "logged":
        raise SystemExit(f"the background logger of {out} did not log: {state}")
    return state.get("seconds")


def _counts_of(out: Path) -> dict[str, int]:
    from bgbench.records.results import load_results

    job = load_results(out).jobs[0]
    return {k: job.counts[k] for k in ("tp", "fp", "fn", "tn")}


def measure(scene: Path, repeats: int, warm_cache: bool, work: Path) -> dict:
    base_env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "BGBENCH_TRACKING")}
    base_env["XDG_DATA_HOME"] = str(work / "home")  # the benchmark's own per-user store, kept across rounds
    root = str(Path(__file__).resolve().parents[2])  # the repository root: tests.perf is importable
    base_env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
    variants = {k: v for k, (_, v) in VARIANTS.items()}
    from bgbench.records.provenance import IMPORTS_MEMO_NAME

    code_memo = work / "code-imports.json"  # kept from the warm-up round: only the decoded frames start cold
    times: dict[str, list[float]] = {"raw": [], **{v: [] for v in variants}}
    logger: list[float] = []
    expected = None
    n = 0
    for rnd in range(repeats + 1):  # round 0 warms the page cache and creates the store: not timed
        s, stdout = _timed([sys.executable, "-m", "tests.perf.bench_tracking", "--raw", str(scene)], base_env)
        counts = json.loads(stdout)
        expected = expected or counts
        if rnd:
            times["raw"].append(s)
        names = list(variants)  # rotated each timed round: each variant follows the raw script as often
        shift = (rnd - 1) % len(names)  # (over a multiple of 4 rounds)
        for name in names[shift:] + names[:shift]:
            extra = variants[name]
            n += 1
            out = work / f"run{n}"
            env = dict(base_env, BGBENCH_CACHE=str(work / ("cache" if warm_cache else f"cache{n}")))
            if not warm_cache and code_memo.exists():  # the code's import lists, as an installed bgbench keeps them
                (Path(env["BGBENCH_CACHE"]) / "digests").mkdir(parents=True, exist_ok=True)
                shutil.copy(code_memo, Path(env["BGBENCH_CACHE"]) / "digests" / IMPORTS_MEMO_NAME)
            cmd = _bgbench() + ["run", "--data", str(scene), "--methods", METHOD, "--out", str(out), *extra]
            s, _ = _timed(cmd, env)
            lsec = _wait_logger(out)
            if _counts_of(out) != expected:
                raise SystemExit(f"bgbench counted {_counts_of(out)}, the raw script {expected}")
            if rnd:
                times[name].append(s)
                if lsec is not None:
                    logger.append(lsec)
            if not warm_cache:
                kept = Path(env["BGBENCH_CACHE"]) / "digests" / IMPORTS_MEMO_NAME
                if kept.exists() and not code_memo.exists():
                    shutil.copy(kept, code_memo)
                shutil.rmtree(env["BGBENCH_CACHE"], ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"scene": str(scene), "repeats": repeats, "warm_cache": warm_cache, "counts": expected,
            "seconds": times, "median": med, "ratio": {k: med[k] / med["raw"] for k in variants},
            "logger_seconds_median": statistics.median(logger) if logger else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.perf.bench_tracking", description=__doc__.split("\n\n")[0])
    ap.add_argument("--scene", type=Path,
                    help="a CDnet scene folder (default ../shared/data/CDnet2014/baseline/highway)")
    ap.add_argument("--repeats", type=int, default=8, help="timed rounds (default 8: each variant after the raw script twice)")
    ap.add_argument("--warm-cache", action="store_true", help="share one frame cache across runs (default: cold)")
    ap.add_argument("--load", type=int, default=0, metavar="N",
                    help="N busy processes beside the measurement, as on a shared machine (default 0)")
    ap.add_argument("--json", action="store_true", help="print the timings as JSON")
    ap.add_argument("--raw", type=Path, metavar="SCENE", help=argparse.SUPPRESS)  # the comparator process itself
    args = ap.parse_args(argv)
    if args.raw:
        print(json.dumps(raw_counts(args.raw)))
        return 0
    from bgbench.suites import shared_data

    scene = args.scene or ((shared_data() or Path("../shared/data")) / "CDnet2014" / "baseline" / "highway")
    if not (scene / "temporalROI.txt").exists():
        raise SystemExit(f"{scene} is not a CDnet scene folder; give one with --scene")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    load0 = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="bgbench-bench-") as tmp:
            r = measure(scene.resolve(), args.repeats, args.warm_cache, Path(tmp))
    finally:
        for b in busy:
            b.kill()
            b.wait()
    r["busy_processes"], r["load"] = args.load, [round(load0, 2), round(os.getloadavg()[0], 2)]
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    print(f"{scene}: {METHOD}, median of {args.repeats} interleaved rounds, "
          f"{'warm' if args.warm_cache else 'cold'} frame cache, {args.load} busy process(es) beside, "
          f"load {r['load'][0]:.1f} -> {r['load'][1]:.1f}; counts {r['counts']}")
    for k, label in [("raw", "raw script (decode + MOG2 + count)")] + [(k, v[0]) for k, v in VARIANTS.items()]:
        v = r["seconds"][k]
        ratio = "" if k == "raw" else f"  {r['ratio'][k]:.2f}x raw"
        print(f"  {label:<40} {r['median'][k]:7.2f} s  (min {min(v):.2f}, max {max(v):.2f}){ratio}")
    if r["logger_seconds_median"] is not None:
        print(f"  background MLflow logger (after the command returned): {r['logger_seconds_median']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
