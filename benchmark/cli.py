"""The ``bgbench`` command. Exit codes: 0 success, 1 a job or the scoring failed,
2 bad usage or bad input (one line on stderr naming the file or option and the fix)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

# Before anything imports NumPy: its OpenBLAS starts a thread per extra core that spins for
# about 0.1 s of CPU before sleeping, in every process of a run (the run, its fork server,
# report worker and MLflow logger inherit this); its shortest spin instead. BLAS keeps its
# threads. Measured: `python -c "import numpy"` 0.19 s of user CPU, 0.05-0.11 s with it.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from bgbench.errors import BadInput, LeakageError  # noqa: E402

_LOADED = time.perf_counter()  # a `bgbench` process's command starts here (the printed time counts from it)


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def _names(s: str) -> list[str]:
    """A comma-separated list that must name something (``--methods ,`` is not the suite's)."""
    out = _csv(s)
    if not out:
        raise argparse.ArgumentTypeError(f"{s!r} names nothing -- fix: give comma-separated names, e.g. knn,vibe")
    return out


class _Parser(argparse.ArgumentParser):
    """argparse with bgbench's error form: exit 2 and one line on stderr that names the
    option and the fix (argparse's own prints the usage block first)."""

    commands: Mapping[str, argparse.ArgumentParser]  # the subcommands' parsers (set by _parser)

    def error(self, message: str):
        fix = "" if " -- fix: " in message else f" -- fix: see '{self.prog} -h'"
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}{fix}\n")


def _number(kind: type, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
            hi_open: bool = False, eg: str = ""):
    """An argparse type: an int or a finite float within the bounds, else a one-line message."""
    import math

    what = "an integer" if kind is int else "a number"

    def n(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"

    if lo is not None and hi is not None:
        rule = f"in {'(' if lo_open else '['}{n(lo)}, {n(hi)}{')' if hi_open else ']'}"
    elif lo is not None:
        rule = f"{'>' if lo_open else '>='} {n(lo)}"
    else:
        rule = f"{'<' if hi_open else '<='} {n(hi)}"  # type: ignore[arg-type]  # one bound at least is given

    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"cannot read {text!r} as {what} -- fix: give {what} {rule}, e.g. {eg}") from None
        if not math.isfinite(v) or (lo is not None and (v < lo or (lo_open and v == lo))) \
                or (hi is not None and (v > hi or (hi_open and v == hi))):
            raise argparse.ArgumentTypeError(f"{text} is not {what} {rule} -- fix: e.g. {eg}")
        return v

    parse.__name__ = kind.__name__
    return parse


def _device(text: str) -> str:
    from bgbench.execution.device import validate

    try:
        return validate(text)
    except BadInput:
        raise argparse.ArgumentTypeError(f"unknown device {text!r} -- fix: use auto, cpu, cuda or cuda:N") from None


def _seed_type():
    from bgbench.params import MAX_SEED

    return _number(int, 0, MAX_SEED, eg="--seed 0")


PROTOCOL_HELP = ("full (no training; every scored frame tested), scene-specific (one model per video), cross-scene "
                 "(k scene-disjoint folds), sampled (one model on a small fraction of every video's labelled frames), "
                 "transfer (train on one dataset, test on another)")


def _protocol_options(p: argparse.ArgumentParser) -> None:
    """One option per protocol option field (bgbench.protocols.option_specs), with each
    protocol's help; an option no requested protocol takes is refused when the command runs."""
    from bgbench.protocols import option_specs

    g = p.add_argument_group("protocol options")
    for name, spec in option_specs().items():
        b = dict(spec.bounds)
        kind = {"int": lambda: _number(int, b.get("lo"), b.get("hi"), b.get("lo_open", False), b.get("hi_open", False),
                                       eg=spec.eg),
                "float": lambda: _number(float, b.get("lo"), b.get("hi"), b.get("lo_open", False),
                                         b.get("hi_open", False), eg=spec.eg),
                "csv": lambda: _csv, "str": lambda: str}[spec.kind]()
        g.add_argument(f"--{name}", type=kind, help=spec.help)
    g.add_argument("--seed", type=_seed_type(), default=0, help="seed for splits and methods (default 0)")


def _data_options(p: argparse.ArgumentParser, required: bool = False) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", nargs="+", required=required, metavar="DIR",
                   help="dataset, scene or data folders, or 'synthetic' (default: ../shared/data, else synthetic)")
    g.add_argument("--format", default="auto", help="layout: auto (default), cdnet2014, cdnet2012, sbi2015, ucsd, wallflower")
    g.add_argument("--roi-policy", default="error", choices=("error", "ignore", "from-groundtruth"),
                   help="an ROI.bmp whose size differs from the frames, or a scene whose only ROI is a JPEG "
                        "(ROI.jpg): error (default) refuses the video; ignore scores every pixel (ground truth 85 stays "
                        "excluded); from-groundtruth takes the pixels the ground truth does not mark 85")


def _parser() -> _Parser:
    from bgbench import __version__
    from bgbench.suites import SUITES

    ap = _Parser(
        prog="bgbench", description="Benchmark for video background subtraction.",
        epilog="The main job is `bgbench run`: with no options it runs the quick suite on ../shared/data "
               "(or $BGBENCH_DATA) and writes runs/quick/. `bgbench COMMAND -h` describes a command.")
    ap.add_argument("--version", action="version", version=f"bgbench {__version__}")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")
    ap.commands = sub.choices  # main() sends an unknown option to its command's parser

    p = sub.add_parser("list", help="methods, dataset formats and protocols")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = sub.add_parser("info", help="a method's parameters (and size, for deep methods)")
    p.add_argument("method", metavar="METHOD", help="a method name, as `bgbench list` prints it")
    p.add_argument("--config", default="default", help="the config to describe: default, or a deep method's smoke, cpu "
                                                       "or paper (default: default)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = sub.add_parser("splits", help="the train/test splits a protocol makes")
    p.add_argument("--protocol", required=True, help="one of: " + PROTOCOL_HELP)
    _protocol_options(p)
    _data_options(p)
    p.add_argument("--json", action="store_true", help="print the splits as JSON")
    p.add_argument("--on-bad-data", choices=("error", "skip"),
                   help="a video that fails validation (or that a --rule frame list cannot serve): error (default with "
                        "--data) or skip it with its message "
                        "(default without --data), as for run")

    p = sub.add_parser("run", help="run methods under protocols, score, write OUT/results.json (the main job)")
    p.add_argument("--suite", default="quick", choices=list(SUITES), metavar="SUITE",
                   help="; ".join(f"{k}{' (default)' if k == 'quick' else ''}: {v}" for k, v in SUITES.items())
                   + ". --methods overrides its methods")
    p.add_argument("--experiment", type=Path, metavar="FILE",
                   help="an experiment file (TOML: methods with configs and set, protocols with options, data, seed, "
                        "threshold, out, ...; docs/experiments.md); options given here explicitly override it")
    p.add_argument("--methods", type=_names, help="comma-separated method names (default: the suite's)")
    p.add_argument("--protocol", action="append", help="protocol (repeatable; default: each method's own): "
                                                       + PROTOCOL_HELP)
    _protocol_options(p)
    _data_options(p)
    p.add_argument("--on-bad-data", choices=("error", "skip"),
                   help="a video that fails validation (or that a --rule frame list cannot serve): error (default with "
                        "--data) or skip it with its message "
                        "(default for the quick suite)")
    p.add_argument("--config", help="deep methods' config: smoke, cpu or paper (default: cpu where --device resolves "
                                    "to the CPU, paper on CUDA and with --suite paper; smoke only when asked)")
    p.add_argument("--set", action="append", default=[], metavar="METHOD.PARAM=VALUE", help="override a method parameter")
    p.add_argument("--device", default="auto", type=_device, help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--jobs", type=_number(int, 1, eg="--jobs 2"), help="parallel jobs, each task in a worker process that may crash without ending the run "
                        "(default 1; the quick suite: every core; capped at the cores, with a note)")
    p.add_argument("--executor", default="local", choices=("local", "dask"),
                   help="local (default): worker processes on this machine with --jobs N; dask: a Dask cluster "
                        "(--scheduler ADDRESS, else a local cluster of --jobs workers)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="with --executor dask: the scheduler, e.g. "
                                                          "tcp://127.0.0.1:8786 (start one with `dask scheduler`)")
    p.add_argument("--threads", type=_number(int, 1, eg="--threads 1"),
                   help="OpenCV/torch threads per job (default: the cores shared among the jobs, e.g. 1 with "
                        "--jobs 2 on 2 cores; capped at the cores, with a note; recorded in results.json)")
    p.add_argument("--deep-threads", type=_number(int, 1, eg="--deep-threads 1"), default=1, metavar="N",
                   help="torch threads of a deep method's jobs, training and segmenting (default 1, whatever the cores "
                        "or --jobs): torch's CPU reductions split by thread, so the weights and maps depend on it; it "
                        "keys every deep job (the same N gives the same numbers on any machine) and is never capped")
    p.add_argument("--video-batch", type=_number(int, 1, eg="--video-batch 8"), metavar="N",
                   help="test videos of one size that a method which batches videos (gmm_sg) segments as one batch "
                        "(default: 8 on CUDA, 1 on a CPU, where batching saves nothing); each video keeps its own "
                        "record, the same counts; its fps is the batch's throughput")
    p.add_argument("--out", type=Path, help="run folder (default runs/quick or runs/custom); re-running resumes it")
    p.add_argument("--threshold", type=_number(float, 0, 1, eg="--threshold 0.5"), default=0.5,
                   help="probability threshold for the counts, in [0, 1] (default 0.5): a pixel is foreground iff "
                        "round(255 p) >= floor(255 T + 0.5)")
    p.add_argument("--save-masks", action="store_true",
                   help="write 0/255 masks as OUT/masks/METHOD/PROTOCOL/DATASET/CATEGORY/SCENE/bin%%06d.png (the CDnet "
                        "results layout: `bgbench score --data` and the masks method read it)")
    p.add_argument("--accept-truncated", action="store_true",
                   help="a deep method whose training a max_train_seconds cap stopped short of its steps counts as "
                        "ok (its record says so); without it such a job is 'truncated', not ok")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else the per-user store "
                                          "sqlite:///~/.local/share/bgbench/mlflow.db); logged in the background")
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    p.add_argument("--no-report", action="store_true", help="do not write OUT/report (tables, plots, leaderboard)")
    p.add_argument("--no-wait", action="store_true", help="if another bgbench run holds OUT, exit 2 naming its pid "
                                                          "instead of waiting for it")
    p.add_argument("--dry-run", action="store_true",
                   help="print the jobs, splits, training steps per stage and the estimated training FLOPs and "
                        "GPU-hours, then exit: nothing runs, nothing is written")
    p.add_argument("--sustained-tflops", type=_number(float, 0, lo_open=True, eg="--sustained-tflops 400"),
                   default=400.0, help="with --dry-run: the sustained rate the GPU-hours assume, TFLOP/s (default 400, "
                                       "an H100 at bf16)")
    p.add_argument("--json", action="store_true", help="with --dry-run: print the plan as JSON")

    p = sub.add_parser("report", help="tables, PR curves, plots and the HTML leaderboard of a run")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (holding results.json)")
    p.add_argument("--out", type=Path, help="folder (default RUN_DIR/report)")

    p = sub.add_parser("compare", help="two runs side by side: metric deltas (B - A) and a paired test on shared videos")
    p.add_argument("run_a", type=Path, metavar="RUN_A", help="a run folder (holding results.json), or a results.json")
    p.add_argument("run_b", type=Path, metavar="RUN_B", help="the run compared with RUN_A")
    p.add_argument("--format", default="md", choices=("md", "csv", "json"), help="md (default), csv or json")
    p.add_argument("--out", type=Path, help="write to this file (default: print)")

    p = sub.add_parser("log", help="log a run folder to MLflow (e.g. after the server was unreachable)")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (holding results.json)")
    p.add_argument("--tracking-uri", help="default: the URI the run logged to (RUN_DIR/tracking.json), else "
                                          "$MLFLOW_TRACKING_URI, else the per-user store; logging again updates, never duplicates")

    p = sub.add_parser("check", help="the CI gate: F-measure and normalised speed against a reference; exit 1 on regression")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (holding results.json)")
    p.add_argument("--reference", required=True, type=Path, help="reference JSON (write one with --update)")
    p.add_argument("--f-tol", type=_number(float, 0, eg="--f-tol 0.01"), default=0.01, help="allowed F-measure drop (default 0.01)")
    p.add_argument("--speed-tol", type=_number(float, 0, eg="--speed-tol 0.25"), default=0.25,
                   help="allowed relative drop of normalised speed (default 0.25); a drop inside the spread measured "
                        "on either side is never a regression")
    p.add_argument("--update", action="store_true",
                   help="write the run (and a fresh speed measurement) as the new reference instead of checking")
    p.add_argument("--repeats", type=_number(int, 3, 100, eg="--repeats 5"), default=5,
                   help="speed: interleaved repeats of the reference workload and each method, one process, one "
                        "thread (default 5)")
    p.add_argument("--no-speed", action="store_true", help="check accuracy only (no speed measurement)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the verdict as JSON (every checked item)")
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML: one testcase per checked item")

    p = sub.add_parser("score", help="score a folder of bin%%06d.png masks like the official comparator")
    p.add_argument("pred_dir", type=Path, metavar="PRED_DIR",
                   help="a folder of 0/255 masks bin%%06d.png, numbered like the scene's ground truth")
    p.add_argument("--video", type=Path, help="the scene folder with the ground truth (PRED_DIR holds its masks)")
    p.add_argument("--data", type=Path,
                   help="a dataset root instead of --video: PRED_DIR is then a results tree laid out like it "
                        "(CATEGORY/SCENE/bin%%06d.png, as the official comparator walks it); prints per-video, "
                        "per-category and overall tables")
    p.add_argument("--format", default="auto", help="the scene's layout: auto (default), cdnet2014, cdnet2012, sbi2015, "
                                                    "ucsd, wallflower")
    p.add_argument("--roi-policy", default="error", choices=("error", "ignore", "from-groundtruth"),
                   help="an ROI.bmp whose size differs from the frames, or only a ROI.jpg: error (default), ignore or "
                        "from-groundtruth, as for run")
    p.add_argument("--threshold", type=_number(float, 0, 1, eg="--threshold 0.5"),
                   help="foreground iff value >= floor(255*T + 0.5), T in [0, 1] (default: iff value is 255; "
                        "0.5, i.e. value >= 128, with --probabilities)")
    p.add_argument("--partial", action="store_true", help="score only the scored frames that have a mask (with "
                                                          "--data: and only the scenes that have a mask folder)")
    p.add_argument("--probabilities", action="store_true",
                   help="the masks are grey-level probabilities (value/255), not 0/255 masks; without it a mask "
                        "holding any value other than 0 and 255 is refused")
    p.add_argument("--json", action="store_true", help="print counts and metrics as JSON")

    p = sub.add_parser("speed", help="frames/s of methods on a real video with the harness overhead; "
                                     "--scoring times scoring")
    p.add_argument("--methods", type=_names, help="methods to time (default: every available classical baseline)")
    p.add_argument("--video", type=Path, help="a video file (default ../shared/data/videos/bgslibrary_video02_320x240.avi);"
                                              " with --scoring a scene folder (default CDnet2014 highway)")
    p.add_argument("--device", default="cpu", type=_device, help="cpu (default), cuda, cuda:N, auto")
    p.add_argument("--config", default="paper", help="deep methods' config (default paper: the paper's input size)")
    p.add_argument("--size", help="resize frames to WxH, e.g. 640x480")
    p.add_argument("--frames", type=_number(int, 1, eg="--frames 100"), help="use the first N frames")
    p.add_argument("--batch", type=_number(int, 1, 4096, eg="--batch 4"), default=1,
                   help="gmm_sg: also time B copies of the video as one batch")
    p.add_argument("--repeats", type=_number(int, 1, 100, eg="--repeats 5"), default=5, help="passes per method, bgbench and raw interleaved; medians "
                                                          "and ranges are reported (default 5)")
    p.add_argument("--scoring", action="store_true", help="Gpix/s per core of scoring a scene's evaluated frames, "
                                                          "against the reference loop (bgbench.scoring.reference)")
    p.add_argument("--train", action="store_true",
                   help="deep methods on --device: training steps/s and images/s, data-wait share, inference fps "
                        "at batch 1 and at the best batch, peak GPU memory (default: every deep method)")
    p.add_argument("--scene", type=Path, help="with --train: a labelled scene to train and segment "
                                              "(default ../shared/data/CDnet2014/baseline/highway)")
    p.add_argument("--steps", type=_number(int, 1, 100000, eg="--steps 30"), default=30, help="with --train: timed training steps per stage (default 30)")
    p.add_argument("--warmup-steps", type=_number(int, 0, 10000, eg="--warmup-steps 5"), default=5,
                   help="with --train: steps per stage left out of the timing (default 5)")
    p.add_argument("--json", action="store_true", help="print the timings as JSON")

    p = sub.add_parser("doctor", help="every GPU check in one bounded command: deep configs train and segment, "
                                      "inference fps, data-wait share, peak memory, gmm_sg batched vs MOG2")
    p.add_argument("--scene", type=Path, help="a labelled scene (default ../shared/data/CDnet2014/baseline/office)")
    p.add_argument("--methods", type=_names, help="deep methods and/or gmm_sg (default: every deep method and gmm_sg)")
    p.add_argument("--config", default="paper", help="deep methods' config (default paper)")
    p.add_argument("--device", default="auto", type=_device, help="auto (default), cuda, cuda:N, cpu")
    p.add_argument("--steps", type=_number(int, 1, 100000, eg="--steps 200"), default=200,
                   help="training steps per stage, warm-up included (default 200)")
    p.add_argument("--warmup-steps", type=_number(int, 0, 1000, eg="--warmup-steps 5"), default=5,
                   help="steps per stage left out of the timing (default 5)")
    p.add_argument("--budget", type=_number(float, 10, 86400, eg="--budget 540"), default=540.0,
                   help="seconds for all the checks; a check still running then is stopped and reported (default 540)")
    p.add_argument("--videos", type=_number(int, 1, 256, eg="--videos 8"), default=8,
                   help="gmm_sg: copies of the scene run as one batch (default 8)")
    p.add_argument("--gmm-frames", type=_number(int, 2, 100000, eg="--gmm-frames 200"), default=200,
                   help="gmm_sg: frames per copy (default 200, at most the scene's)")
    p.add_argument("--out", type=Path, default=Path("runs/doctor"), help="where doctor.json and doctor.md go "
                                                                           "(default runs/doctor)")

    p = sub.add_parser("synth", help="write the synthetic scenes (CDnet layout) to a folder")
    p.add_argument("out", type=Path, metavar="OUT", help="the folder to write (the scenes go under OUT/synthetic)")
    p.add_argument("--seed", type=_seed_type(), default=0, help="seed of the generated scenes (default 0)")
    p.add_argument("--frames", type=_number(int, 3, 100000, eg="--frames 100"), default=100,
                   help="frames per scene, at least 3 (default 100)")

    p = sub.add_parser("cache", help="the decoded-frame cache: where it is, what it holds (info), or empty it (clear)")
    p.add_argument("action", choices=("info", "clear"), help="info: location, size of every entry (video x kind x "
                                                            "size) against its source files, total; clear: delete all")
    p.add_argument("--json", action="store_true", help="info as JSON")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    started = _LOADED if argv is None else time.perf_counter()
    parser = _parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # named by the command's own parser, whose -h lists its options
            parser.commands.get(args.cmd, parser).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # a bad option (2, its line printed) or -h/--version (0): returned, in process too
        return e.code if isinstance(e.code, int) else int(e.code is not None)
    args.started = started
    args.exiting = argv is None  # the console script: the process ends when the command does
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.cmd is None:  # the main job is `bgbench run`; a bare `bgbench` says what there is
        parser.print_help()
        return 0
    try:
        return COMMANDS[args.cmd](args)
    except (BadInput, LeakageError) as e:
        print(f"bgbench: error: {' '.join(str(e).split())}", file=sys.stderr)  # one line, always
        return 2
    except KeyboardInterrupt:
        print("bgbench: interrupted; finished jobs are kept and a re-run resumes", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `bgbench list | head`: the reader left; not an error
        sys.stderr.close()
        return 0
    except OSError as e:  # a file or folder the system refused (the checks above missed it): named, one line
        from bgbench.safefs import disk_full, is_disk_full

        if is_disk_full(e):  # a writer without its own guard: the folder it wrote in, one line
            where = Path(e.filename).parent if e.filename else Path.cwd()
            print(f"bgbench: error: {' '.join(str(disk_full(where)).split())}", file=sys.stderr)
            return 2
        if e.filename is None:
            raise
        print(f"bgbench: error: {e.filename}: {e.strerror or e} -- fix: check that the path exists and that you "
              "can read (or write) it; finished jobs are kept and a re-run resumes", file=sys.stderr)
        return 2


# --- list / info --------------------------------------------------------------------
def cmd_list(args) -> int:
    from bgbench.data.formats import FORMATS
    from bgbench.method import METHODS
    from bgbench.protocols import PROTOCOLS

    def describe(e) -> dict:
        m = e.meta  # read once: static for an entry point, the class's own once imported
        return {"name": e.name, "family": m.get("family"), "trains": m.get("trains"),
                "configs": list(m.get("configs", ())), "summary": m.get("summary", "")}

    methods = [describe(e) for e in METHODS]
    data: dict[str, Any] = {"methods": methods, "formats": FORMATS.names(), "protocols": PROTOCOLS.names()}
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    w = max(len(m["name"]) for m in methods)
    print("methods:")
    for m in methods:
        print(f"  {m['name']:<{w}}  {m['family']:<9}  {'trains' if m['trains'] else '      '}  "
              f"[{','.join(m['configs'])}]  {m['summary']}")
    print("dataset formats: " + ", ".join(data["formats"]))
    print("protocols: " + ", ".join(data["protocols"]))
    return 0


def cmd_info(args) -> int:
    from bgbench.method import method_class

    from bgbench.errors import MethodUnavailable

    cls = method_class(args.method)
    try:
        m = cls(config=args.config)
        values, unavailable = m.p, None
    except MethodUnavailable as e:
        m, values, unavailable = None, {k: p.default for k, p in cls.param_specs().items()}, str(e)
    out = {"name": args.method, "family": cls.family, "trains": cls.trains, "summary": cls.summary(),
           "configs": list(cls.configs), "config": args.config, "default_protocol": cls.default_protocol,
           "input_size": cls.input_size, "temporal_context": cls.temporal_context,
           "params": {k: {"value": values[k], "default": p.default, "help": p.help, "allowed": p.allowed()}
                      for k, p in cls.param_specs().items()},
           "unavailable": unavailable}
    from bgbench.reports.citations import NO_PAPER, method_key, reference_text

    key = method_key(args.method)
    out["reference"] = {"key": key, "text": reference_text(key)} if key else None
    out.update(m.describe() if m is not None else {})
    if args.json:
        print(json.dumps(out, indent=1, default=str))
        return 0
    print(f"{out['name']} ({cls.family}{', trains' if cls.trains else ''}): {out['summary']}")
    print(f"configs: {', '.join(out['configs'])}; default protocol: {cls.default_protocol}")
    print(f"paper: {out['reference']['text']} [{key}]" if key else f"paper: none ({NO_PAPER.get(args.method, 'none recorded')})")
    if unavailable:
        print(f"UNAVAILABLE here: {unavailable}")
    for k in ("parameters", "flops", "input_size"):
        if out.get(k) is not None:
            print(f"{k}: {out[k]}")
    for k, v in out["params"].items():
        print(f"  {k} = {v['value']!r}  ({v['help']}; {v['allowed']})")
    return 0


# --- splits, run -----------------------------------------------------------------------
def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def _run_config(args, methods: Sequence[str] = (), overrides: dict | None = None, **kw: Any):
    """The RunConfig the command line describes (the CLI is an adapter over bgbench.api)."""
    from bgbench.api import PROTOCOL_OPTIONS, RunConfig

    given = {k: getattr(args, k, None) for k in PROTOCOL_OPTIONS}
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if v is not None}
    return RunConfig.of(methods, config=getattr(args, "config", None), overrides=overrides, data=args.data or (),
                        data_format=args.format, roi_policy=args.roi_policy, on_bad_data=args.on_bad_data,
                        protocol_options=options, seed=args.seed, **kw)


def cmd_splits(args) -> int:
    from bgbench.api import splits

    found = splits(_run_config(args), args.protocol, echo=_stderr)
    if args.json:
        print(json.dumps([s.to_json() for s in found]))
        return 0
    for s in found:
        n_train = sum(len(f) for _, f in s.train)
        n_test = sum(len(f) for _, f in s.test)
        print(f"{s.name}: train {len(s.train)} video(s) / {n_train} frames, test {len(s.test)} video(s) / {n_test} frames")
    return 0


def _overrides(sets: list[str], methods: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {m: {} for m in methods}
    for s in sets:
        key, eq, value = s.partition("=")
        method, dot, param = key.partition(".")
        if not (eq and dot and param):
            raise BadInput(f"cannot read {s!r}", "--set", "write METHOD.PARAM=VALUE, e.g. gmm_zivkovic.history=200")
        if method not in out:
            raise BadInput(f"{method!r} is not among --methods", "--set", f"use one of {', '.join(methods)}")
        if param in out[method] and out[method][param] != value:
            raise BadInput(f"{key} is set twice ({out[method][param]!r} and {value!r})", "--set", "give each parameter once")
        out[method][param] = value
    return out


def cmd_run(args) -> int:
    """Builds a RunConfig and calls bgbench.api.run, which checks every option, method,
    parameter, device, executor and the run folder before locking it, and data and
    protocols before any job is computed."""
    from bgbench import api
    from bgbench.suites import suite_methods

    if args.experiment is not None:  # the file, with the options given explicitly on top
        cfg = _experiment_config(args)
    else:
        methods = args.methods or suite_methods(args.suite)
        cfg = _run_config(args, methods, _overrides(args.set, methods), suite=args.suite,
                          protocols=tuple(args.protocol or ()), out=args.out, device=args.device,
                          threshold=args.threshold, save_masks=args.save_masks, jobs=args.jobs, executor=args.executor,
                          scheduler=args.scheduler, threads=args.threads, deep_threads=args.deep_threads,
                          video_batch=args.video_batch,
                          report=not args.no_report,
                          tracking=False if args.no_tracking else None, tracking_uri=args.tracking_uri,
                          wait=not args.no_wait, accept_truncated=args.accept_truncated)
    if args.accept_truncated and not cfg.accept_truncated:  # the flag given on top of an experiment file
        import dataclasses

        cfg = dataclasses.replace(cfg, accept_truncated=True)
    if args.json and not args.dry_run:
        raise BadInput("--json prints a dry run's plan", "--json", "add --dry-run, or read OUT/results.json")
    if args.dry_run:
        from bgbench.dryrun import dry_run, text

        plan = dry_run(cfg, args.sustained_tflops, echo=_stderr)
        print(json.dumps(plan, indent=1, default=str) if args.json else text(plan))
        return 0
    res = api.run(cfg, echo=_stderr, started=getattr(args, "started", None),
                  exiting=getattr(args, "exiting", False))
    from bgbench.reports.tables import terminal_summary

    print(terminal_summary(res))
    failed = [j for j in res.jobs if j.status == "failed"]
    truncated = [j for j in res.jobs if j.truncated]
    for j in failed:
        print(f"bgbench: FAILED {j.key.method} {j.protocol} {j.key.split} {j.key.video}: {j.error}", file=sys.stderr)
    for j in truncated:
        print(f"bgbench: TRUNCATED {j.key.method} {j.protocol} {j.key.split} {j.key.video}: {j.training_note()} "
              "(not ok: run without a max_train_seconds cap, or pass --accept-truncated)", file=sys.stderr)
    n_protocol = sum(1 for s in res.meta.skipped if "protocol" in s)
    where = api.run_folder(cfg) / "results.json"
    print(f"\n{sum(j.ok for j in res.jobs)} job(s) ok, {len(truncated)} truncated, {len(failed)} failed, "
          f"{len(res.meta.skipped) - n_protocol} "
          f"video(s) skipped, {n_protocol} protocol skip(s); "
          f"{time.perf_counter() - getattr(args, 'started', _LOADED):.1f} s; results: {where}")
    return 1 if failed or truncated else 0


# `run` options -> RunConfig fields, for options given explicitly beside --experiment
_RUN_FIELDS = {"suite": "suite", "config": "config", "format": "data_format", "roi_policy": "roi_policy",
               "on_bad_data": "on_bad_data", "seed": "seed", "device": "device", "jobs": "jobs", "executor": "executor",
               "scheduler": "scheduler", "threads": "threads", "deep_threads": "deep_threads",
               "video_batch": "video_batch", "out": "out", "threshold": "threshold",
               "save_masks": "save_masks", "tracking_uri": "tracking_uri"}


def _explicit(args) -> set[str]:
    """The options of ``args.cmd`` given on the command line (not left at their defaults):
    its parser again, with every default suppressed."""
    sub = _parser().commands[args.cmd]
    for a in sub._actions:
        a.default = argparse.SUPPRESS
    rest = args.argv[args.argv.index(args.cmd) + 1:] if args.cmd in args.argv else args.argv
    given, _ = sub.parse_known_args(rest)
    return set(vars(given))


def _experiment_config(args):
    """``run --experiment FILE``: the file's RunConfig with the options given explicitly on
    top (bgbench.experiment: defaults < file < command line)."""
    from bgbench import experiment
    from bgbench.api import PROTOCOL_OPTIONS

    exp = experiment.load(args.experiment)
    given = _explicit(args)
    cli: dict[str, Any] = {f: getattr(args, k) for k, f in _RUN_FIELDS.items() if k in given}
    if "data" in given:
        cli["data"] = tuple(args.data)
    if "protocol" in given:
        cli["protocols"] = tuple(args.protocol)
    if "no_tracking" in given:
        cli["tracking"] = False
    if "no_report" in given:
        cli["report"] = False
    if "no_wait" in given:
        cli["wait"] = False
    options = {k: tuple(v) if isinstance(v, list) else v for k in PROTOCOL_OPTIONS if k in given
               for v in [getattr(args, k)]}
    if options:
        cli["protocol_options"] = options
    names = args.methods if "methods" in given else [m for m, _, _ in exp.methods]
    if "methods" in given:
        cli["methods"] = names
    if "set" in given:
        cli["overrides"] = _overrides(args.set, list(names))
    return experiment.run_config(exp, cli)


def _check_device(device: str, classes: dict) -> None:
    """--device before any work (``device.check_for``), and a note naming the methods that run
    on the CPU whatever it says."""
    from bgbench.execution.device import check_for, cpu_only_note

    note = cpu_only_note(device, check_for(device, classes))
    if note:
        print(note, file=sys.stderr)


# --- score -----------------------------------------------------------------------------
def cmd_score(args) -> int:
    from bgbench.api import ScoreOptions, score

    opts = ScoreOptions(data_format=args.format, roi_policy=args.roi_policy, threshold=args.threshold,
                        partial=args.partial, probabilities=args.probabilities)
    out = score(args.pred_dir, video=args.video, data=args.data, options=opts)
    scored = [r for t in out["datasets"].values() for r in t["videos"].values()] if "datasets" in out else [out]
    for r in scored:  # what loading assumed (no ROI file: every pixel scored, ...): said, in text and JSON alike
        for note in r.get("notes", ()):
            print(f"bgbench: note: {r['video']}: {note}", file=sys.stderr)
    if args.json:
        from bgbench.records.results import clean

        if "datasets" in out:
            out = {**out, "missing": [p for _, p in out["missing"]]}
        print(json.dumps(clean(out), indent=1))
    elif "datasets" in out:
        from bgbench.reports.tables import markdown

        keys = ("recall", "specificity", "fpr", "fnr", "pwc", "precision", "f_measure")
        for ds, t in out["datasets"].items():
            print(f"{ds}: {len(t['videos'])} video(s), {len(t['categories'])} categor(y/ies)")
            print(markdown(["video", "frames", *keys],
                           [[vid, r["frames"], *(r["metrics"].get(k) for k in keys)] for vid, r in t["videos"].items()]))
            print(markdown(["category", *keys], [[c, *(m[k] for k in keys)] for c, m in t["categories"].items()]
                           + [["overall", *(t["overall"][k] for k in keys)]]))
        for vid, pred in out["missing"]:
            print(f"bgbench: not scored (no mask folder): {vid} ({pred})", file=sys.stderr)
    else:
        print(f"{out['video']}: {out['frames']} frames")
        print("  " + "  ".join(f"{k}={v}" for k, v in out["counts"].items()))
        print("  " + "  ".join(f"{k}={v:.4f}" if v == v else f"{k}=undefined" for k, v in out["metrics"].items()))
        if out["metrics"].get("f_measure") != out["metrics"].get("f_measure"):
            print("  F undefined: the scored frames hold no foreground (TP + FN = 0), as the official comparator's "
                  "2PR/(P+R) (docs/scoring.md)")
    return 0


def cmd_speed(args) -> int:
    if args.train:
        return _speed_train(args)
    if not args.scoring:
        return _speed_methods(args)
    from bgbench.data.formats import discover
    from bgbench.timing.perf import print_scoring_speed, scoring_speed
    from bgbench.suites import shared_data

    scene = args.video or ((shared_data() or Path("synthetic")) / "CDnet2014" / "baseline" / "highway")
    from bgbench.execution.paths import check_cache_writable

    check_cache_writable()
    found = discover(scene)
    if len(found) != 1:
        raise BadInput(f"holds {len(found)} scenes; --scoring times one", scene, "give --video one scene folder, e.g. "
                       f"{found[0].path}")
    (video,) = found
    video.check()
    r = scoring_speed(video, args.repeats)
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    print_scoring_speed(video, r)
    return 0


def _speed_methods(args) -> int:
    from bgbench.errors import MethodUnavailable
    from bgbench.method import build_method
    from bgbench.timing.speed import default_video, run_speed
    from bgbench.suites import available_classical

    size = None
    if args.size:
        try:
            w, h = (int(x) for x in args.size.lower().split("x"))
            size = (w, h)
        except ValueError:
            raise BadInput(f"cannot read {args.size!r}", "--size", "write WxH, e.g. 640x480") from None
        if w < 1 or h < 1:
            raise BadInput(f"{args.size!r} is not a size: width and height must be at least 1", "--size",
                           "write WxH, e.g. 640x480")
    video = args.video or default_video()
    if video is None:
        raise BadInput("no video to time", "--video", "give a video file, e.g. ../shared/data/videos/*.avi")
    methods = args.methods or available_classical()
    from bgbench.method import method_class

    for m in methods:  # e.g. masks: reading another tool's PNGs is no method's speed
        if getattr(method_class(m), "untimed", None):
            raise BadInput(f"{m} has no speed to measure ({method_class(m).untimed})", "--methods",
                           f"time the methods that compute their masks; leave {m} out")

    _check_device(args.device, {m: method_class(m) for m in methods})
    for m in methods:
        try:
            build_method(m, config=args.config, device=args.device)
        except MethodUnavailable as e:
            if args.methods:
                raise
            print(f"bgbench: skipped: {e}", file=sys.stderr)
    rows = run_speed(methods, video, args.device, size, args.frames, args.repeats, args.batch, args.config)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    from bgbench.reports.tables import markdown

    print(f"{video.name}, {rows[0]['frames']} frames at {rows[0]['size']}, median of {args.repeats} passes")
    print(markdown(["method", "device", "fps", "raw fps", "overhead % (median)", "overhead % (range)"],
                   [[r["method"], r["device"], r["fps"], r["raw_fps"],
                     None if r["overhead"] is None else 100 * r["overhead"],
                     "" if not r.get("overhead_range") else
                     f"{100 * r['overhead_range'][0]:+.1f} .. {100 * r['overhead_range'][1]:+.1f}"] for r in rows]))
    return 0


def _speed_train(args) -> int:
    from bgbench.timing.deep import run_train_speed
    from bgbench.method import METHODS
    from bgbench.suites import shared_data

    if args.steps < 1 or args.warmup_steps < 0:
        raise BadInput("must be at least 1 (--steps) and 0 (--warmup-steps)", "--steps", "e.g. --steps 30 --warmup-steps 5")
    scene = args.scene or ((shared_data() or Path("../shared/data")) / "CDnet2014" / "baseline" / "highway")
    if not Path(scene).is_dir():
        raise BadInput("is not a folder", scene, "give a labelled scene with --scene")
    from bgbench.execution.paths import check_cache_writable

    check_cache_writable()
    methods = args.methods or sorted(e.name for e in METHODS if e.meta.get("family") == "deep")
    rows = run_train_speed(methods, Path(scene), config=args.config, device=args.device, steps=args.steps,
                           warmup=args.warmup_steps, infer_frames=args.frames)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    from bgbench.reports.tables import markdown

    r0 = rows[0]
    print(f"{r0['video']}: {r0['train_frames']} training frames; {args.steps} timed steps per stage after "
          f"{args.warmup_steps} warm-up; device {r0['gpu'] or r0['device']}; config {args.config}")
    table = []
    for r in rows:
        for k, (tag, st) in enumerate(r["stages"].items()):
            first = k == 0
            table.append([r["method"] if first else "", r["input_size"] if first else "", r["precision"] if first else "",
                          tag, st["steps_per_s"], st["images_per_s"], 100 * st["data_wait_fraction"],
                          100 * st["checkpoint_fraction"],
                          r["infer_fps_batch1"] if first else None,
                          f"{r['infer_fps_best']:.1f} @ {r['infer_best_batch']}" if first and r["infer_best_batch"] else "",
                          None if not first or r["peak_train_bytes"] is None else r["peak_train_bytes"] / 2**30,
                          f"{r['paper_fps']} ({r['paper_fps_where']})" if first and r["paper_fps"] else ""])
    print(markdown(["method", "input", "precision", "stage", "train steps/s", "train images/s", "data wait %",
                    "checkpoint %",
                    "infer fps @1", "infer fps @best", "peak train GiB", "paper fps"], table))
    return 0


def cmd_report(args) -> int:
    from bgbench.api import report

    written = report(args.run_dir, args.out)
    n = sum(len(v) for v in written.values())
    print(f"{n} files in {args.out or args.run_dir / 'report'}; open {written['html'][0]}")
    return 0


def cmd_compare(args) -> int:
    from bgbench.records.results import load_results
    from bgbench.reports import compare

    if args.out is not None:
        from bgbench.execution.paths import writable_dir

        if args.out.is_dir():
            raise BadInput("is a folder", args.out, "give --out a file name, e.g. compare.md")
        writable_dir(args.out.parent, "--out", "give --out a file in a folder you can write to")
    comp = compare.compare_runs(load_results(args.run_a), load_results(args.run_b))
    compare.write(compare.render(comp, args.format), args.out)
    if args.out is not None:
        print(f"comparison written to {args.out}")
    return 0


def cmd_log(args) -> int:
    from bgbench.tracking import log_now

    return log_now(args.run_dir, args.tracking_uri)


def cmd_check(args) -> int:
    from bgbench import check
    from bgbench.timing import gate as speed_gate
    from bgbench.records.results import load_results
    from bgbench.reports.tables import markdown

    for opt, v in (("--f-tol", args.f_tol), ("--speed-tol", args.speed_tol)):
        if not (v >= 0 and v == v and v != float("inf")):
            raise BadInput(f"{v} is not a tolerance", opt, "give a number >= 0, e.g. 0.01 for F, 0.25 for speed")
    if args.repeats < 3:
        raise BadInput(f"{args.repeats} repeats give no spread", "--repeats", "give at least 3")
    run_dir = args.run_dir if args.run_dir.is_dir() else args.run_dir.parent
    res = check.validate_results(load_results(args.run_dir), args.run_dir)
    if args.update:  # the reference must be writable before minutes of speed measurement
        from bgbench.execution.paths import writable_dir

        if args.reference.is_dir():
            raise BadInput("is a folder", args.reference, "give --reference a JSON file name, e.g. ci_reference.json")
        writable_dir(args.reference.parent, "--reference", "give --reference a file in a folder you can write to")
        # never over the run's own record, nor over any file that is not a bgbench reference
        check.check_reference_target(args.reference, run_dir)
    outputs = [(opt, f) for opt, f in (("--json", args.json), ("--junit", args.junit)) if f is not None]
    for opt, f in outputs:  # writable before minutes of speed measurement
        from bgbench.execution.paths import writable_dir

        if f.is_dir():
            raise BadInput(f"is a folder ({opt})", f, f"give {opt} a file name, e.g. check.{opt[2:].replace('junit', 'xml')}")
        writable_dir(f.parent, opt, f"give {opt} a file in a folder you can write to")
    ref = None if args.update else check.load_reference(args.reference)
    speed = None
    if not args.no_speed and (args.update or (ref and ref.get("speed"))):
        methods = speed_gate.methods_of(res)
        if methods:
            print(f"timing {len(methods)} method(s) against the reference workload, {args.repeats} interleaved "
                  "repeats, one process, one thread", file=sys.stderr)
            speed = speed_gate.measure(methods, args.repeats)
            speed_gate.write(speed, run_dir)
    if args.update:
        check.update(res, speed, args.reference)
        print(f"reference written to {args.reference}")
        return 0
    assert ref is not None  # loaded unless --update, which returned above
    acc = check.compare_accuracy(res, ref, args.f_tol)
    spd = [] if args.no_speed else check.compare_speed(speed, ref, args.speed_tol, check.params_from(res))
    if not acc and not spd:
        raise BadInput("shares nothing with the run", args.reference, "check the run against a reference of the same suite")
    moved = [r for r in acc if r["status"] != "ok"]
    print("accuracy:")
    print(markdown(["what", "metric", "reference", "current", "delta", "status", "changed parameters"],
                   [[r["what"], r["metric"], r["reference"], r["current"], r["delta"], r["status"], r["changed"]]
                    for r in moved]) if moved else f"  {len(acc)} F-measures within {args.f_tol} of the reference")
    if not moved:  # the rows are not shown: their parameter changes still are
        for method, changed in dict.fromkeys((r["method"], r["changed"]) for r in acc if r["changed"]):
            print(f"  {method}: parameters differ from the reference's: {changed}")
    if spd:
        print(f"speed, in {check.SPEED_UNIT} ({check.SPEED_UNIT_SHORT}: frames/s x the reference workload's seconds "
              "in the same repeat; median of the repeats):")
        unit = check.SPEED_UNIT_SHORT
        print(markdown(["method", f"reference ({unit})", f"current ({unit})", "change %", "status", "changed parameters"],
                       [[r["what"], r["reference"], r["current"], None if r["relative"] is None else 100 * r["relative"],
                         r["status"], r["changed"]] for r in spd]))
    bad = [r for r in acc + spd if r["status"].startswith(("REGRESSION", "NOT COMPARABLE"))]
    if outputs:
        from bgbench import check_output

        doc = check_output.document(args.run_dir, args.reference, args.f_tol, args.speed_tol, acc, spd)
        if args.json is not None:
            check_output.write_json(doc, args.json)
        if args.junit is not None:
            check_output.write_junit(doc, args.junit)
    print(f"{len(acc)} F-measures (tolerance {args.f_tol}) and {len(spd)} speeds (tolerance {args.speed_tol:.0%} or "
          f"the measured spread) compared: {len(bad)} regression(s)")
    return 1 if bad else 0


def cmd_synth(args) -> int:
    from bgbench.data.formats.synthetic import write_scenes
    from bgbench.execution.paths import writable_dir

    from bgbench.data.framecache import SYNTHETIC_MARK

    writable_dir(args.out, "OUT")
    target = args.out / "synthetic"  # overwritten only where bgbench wrote it (its marker), or new
    if target.is_dir() and any(target.iterdir()) and not (target / SYNTHETIC_MARK).is_file():
        raise BadInput("holds files bgbench did not write; synth would overwrite them", target,
                       "give OUT a new folder, or one synth wrote")
    root = write_scenes(args.out, args.seed, n_frames=args.frames, first_scored=min(31, args.frames // 3))
    (root / SYNTHETIC_MARK).write_text("written by bgbench synth\n")
    print(f"synthetic scenes written to {root}")
    return 0


def cmd_cache(args) -> int:
    import os

    from bgbench.data import framecache

    root, cap = framecache.cache_root(), framecache.max_bytes()
    where = "$BGBENCH_CACHE" if os.environ.get("BGBENCH_CACHE") else "default; set $BGBENCH_CACHE to move it"
    if args.action == "clear":
        n, freed, left = framecache.clear(root)
        print(f"{root}: {n} entr{'y' if n == 1 else 'ies'} deleted, {freed / 1e9:.2f} GB freed; "
              + (f"{len(left)} file(s) or folder(s) bgbench did not write (or still in use) left in {root}"
                 if left else "nothing left"))
        return 0
    found = framecache.entries(root)
    total = sum(e.bytes for e in found)
    known = [e for e in found if e.source_bytes]
    ratio = sum(e.bytes for e in known) / sum(e.source_bytes for e in known) if known else None  # type: ignore[misc]  # known: set
    if args.json:
        print(json.dumps({"root": str(root), "max_bytes": cap, "total_bytes": total, "x_source": ratio,
                          "entries": [{"name": e.name, "kind": e.kind, "file": e.path.name, "bytes": e.bytes,
                                       "frames": e.frames, "shape": e.shape, "source_bytes": e.source_bytes,
                                       "last_used": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(e.last_used))}
                                      for e in sorted(found, key=lambda e: e.name)]}, indent=1))
        return 0
    from bgbench.reports.tables import markdown

    def size(e) -> str:  # width x height, as frames are named elsewhere
        return f"{e.shape[1]}x{e.shape[0]}" + "".join(f"x{c}" for c in e.shape[2:]) if e.shape and len(e.shape) >= 2 else "-"

    print(f"cache: {root} ({where})")
    print(f"cap: {f'{cap / 1e9:g} GB' if cap is not None else 'none'} (${framecache.MAX_GB_ENV}; least recently used "
          f"entries go first)")
    if found:
        rows = [[e.name, e.frames if e.frames is not None else "-", size(e), f"{e.bytes / 1e6:.1f}",
                 f"{e.source_bytes / 1e6:.1f}" if e.source_bytes else "-",
                 f"{e.bytes / e.source_bytes:.1f}x" if e.source_bytes else "-",
                 time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))] for e in sorted(found, key=lambda e: e.name)]
        print(markdown(["entry (video-kind)", "frames", "frame size", "MB", "source MB", "x source", "last used"], rows,
                       ["text"] * 7))
    print(f"total: {len(found)} entr{'y' if len(found) == 1 else 'ies'}, {total / 1e9:.2f} GB"
          + (f"; decoded stacks take {ratio:.1f}x their source files" if ratio else ""))
    return 0


def cmd_doctor(args) -> int:
    from bgbench.suites import shared_data
    from bgbench.timing.doctor import run_doctor

    if args.warmup_steps >= args.steps:
        raise BadInput("must be below --steps", "--warmup-steps", f"e.g. --steps {args.steps} --warmup-steps {min(5, args.steps - 1)}")
    scene = args.scene or ((shared_data() or Path("../shared/data")) / "CDnet2014" / "baseline" / "office")
    if not Path(scene).is_dir():
        raise BadInput("is not a folder", scene, "give a labelled scene with --scene")
    report = run_doctor(Path(scene), args.out, methods=args.methods, config=args.config, device=args.device,
                        steps=args.steps, warmup=args.warmup_steps, budget=args.budget, videos=args.videos,
                        gmm_frames=args.gmm_frames, echo=lambda s: print(s, file=sys.stderr))
    print((Path(args.out) / "doctor.md").read_text(), end="")
    print(f"bgbench: doctor report in {args.out}/doctor.json and doctor.md", file=sys.stderr)
    return 0 if report["ok"] else 1


COMMANDS = {
    "list": cmd_list,
    "info": cmd_info,
    "splits": cmd_splits,
    "run": cmd_run,
    "score": cmd_score,
    "synth": cmd_synth,
    "speed": cmd_speed,
    "cache": cmd_cache,
    "doctor": cmd_doctor,
    "report": cmd_report,
    "log": cmd_log,
    "check": cmd_check,
    "compare": cmd_compare,
}

if __name__ == "__main__":
    sys.exit(main())
