"""The ``bgbench`` command. Exit codes: 0 success, 1 a job or the scoring failed,
2 bad usage or bad input (one line on stderr naming the file or option and the fix)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .errors import BadInput, LeakageError

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
        rule = f"{'<' if hi_open else '<='} {n(hi)}"

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
    from .device import validate

    try:
        return validate(text)
    except BadInput:
        raise argparse.ArgumentTypeError(f"unknown device {text!r} -- fix: use auto, cpu, cuda or cuda:N") from None


def _seed_type():
    from .protocols import MAX_SEED

    return _number(int, 0, MAX_SEED, eg="--seed 0")


def _writable_dir(path: Path, option: str, fix: str | None = None) -> Path:
    """Make sure ``path`` is a folder this process can write to (created if missing): a probe
    file is created and removed, so an unwritable folder is refused before any work."""
    import os

    fix = fix or f"give {option} a folder you can write to (it is created if missing)"
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BadInput(f"is a file, not a folder ({option})", path, fix)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".bgbench-write-probe.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise BadInput(f"cannot be written ({option}: {e.strerror or e})", path, fix) from None
    return path


def _check_cache_writable() -> None:
    """The decoded-frame cache must be writable before frames are decoded into it."""
    from .framecache import cache_root

    _writable_dir(cache_root(), "$BGBENCH_CACHE", "set $BGBENCH_CACHE to a folder you can write to")


PROTOCOL_HELP = ("full (no training; every scored frame tested), scene-specific (one model per video), cross-scene "
                 "(k scene-disjoint folds), sampled (one model on a small fraction of every video's labelled frames), "
                 "transfer (train on one dataset, test on another)")


def _protocol_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("protocol options")
    g.add_argument("--rule", help="scene-specific: first-half | n:N | fraction:F[,val:V] (default first-half); "
                                     "transfer: the source videos' training frames (default all)")
    g.add_argument("--folds", type=_number(int, 2, eg="--folds 3"), help="cross-scene: number of scene-disjoint folds (default 3)")
    g.add_argument("--exclude", type=_csv, help="cross-scene: categories left out, comma-separated (default PTZ)")
    g.add_argument("--fraction", type=_number(float, 0, 1, True, True, eg="--fraction 0.05"), help="sampled: fraction of labelled frames that train (default 0.05)")
    g.add_argument("--source", type=_csv, help="transfer: training datasets (default CDnet2014)")
    g.add_argument("--target", type=_csv, help="transfer: test datasets (default SBI2015,UCSD)")
    g.add_argument("--seed", type=_seed_type(), default=0, help="seed for splits and methods (default 0)")


def _data_options(p: argparse.ArgumentParser, required: bool = False) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", nargs="+", required=required, metavar="DIR",
                   help="dataset, scene or data folders, or 'synthetic' (default: ../shared/data, else synthetic)")
    g.add_argument("--format", default="auto", help="layout: auto (default), cdnet2014, cdnet2012, sbi2015, ucsd, wallflower")
    g.add_argument("--roi-policy", default="error", choices=("error", "ignore", "from-groundtruth"),
                   help="an ROI.bmp whose size differs from the frames: error (default) refuses the video; ignore scores "
                        "every pixel (ground truth 85 stays excluded); from-groundtruth takes the pixels the ground truth "
                        "does not mark 85")


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    from .suites import SUITES

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
                   help="a video that fails validation: error (default with --data) or skip it with its message "
                        "(default without --data), as for run")

    p = sub.add_parser("run", help="run methods under protocols, score, write OUT/results.json (the main job)")
    p.add_argument("--suite", default="quick", choices=list(SUITES), metavar="SUITE",
                   help="; ".join(f"{k}{' (default)' if k == 'quick' else ''}: {v}" for k, v in SUITES.items())
                   + ". --methods overrides its methods")
    p.add_argument("--methods", type=_names, help="comma-separated method names (default: the suite's)")
    p.add_argument("--protocol", action="append", help="protocol (repeatable; default: each method's own): "
                                                       + PROTOCOL_HELP)
    _protocol_options(p)
    _data_options(p)
    p.add_argument("--on-bad-data", choices=("error", "skip"),
                   help="a video that fails validation: error (default with --data) or skip it with its message "
                        "(default for the quick suite)")
    p.add_argument("--config", help="deep methods' config: smoke, cpu or paper (default smoke; paper with --suite paper)")
    p.add_argument("--set", action="append", default=[], metavar="METHOD.PARAM=VALUE", help="override a method parameter")
    p.add_argument("--device", default="auto", type=_device, help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--jobs", type=_number(int, 1, eg="--jobs 2"), help="parallel jobs through joblib (default 1; the quick suite: every core)")
    p.add_argument("--out", type=Path, help="run folder (default runs/quick or runs/custom); re-running resumes it")
    p.add_argument("--threshold", type=_number(float, 0, 1, eg="--threshold 0.5"), default=0.5,
                   help="probability threshold for the counts, in [0, 1] (default 0.5)")
    p.add_argument("--save-masks", action="store_true", help="write 0/255 masks under OUT/masks/")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else the per-user store "
                                          "sqlite:///~/.local/share/bgbench/mlflow.db); logged in the background")
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    p.add_argument("--no-report", action="store_true", help="do not write OUT/report (tables, plots, leaderboard)")
    p.add_argument("--no-wait", action="store_true", help="if another bgbench run holds OUT, exit 2 naming its pid "
                                                          "instead of waiting for it")

    p = sub.add_parser("report", help="tables, PR curves, plots and the HTML leaderboard of a run")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (holding results.json)")
    p.add_argument("--out", type=Path, help="folder (default RUN_DIR/report)")

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
    p.add_argument("--repeats", type=_number(int, 3, eg="--repeats 5"), default=5,
                   help="speed: interleaved repeats of the reference workload and each method, one process, one "
                        "thread (default 5)")
    p.add_argument("--no-speed", action="store_true", help="check accuracy only (no speed measurement)")

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
                   help="an ROI.bmp whose size differs from the frames: error (default), ignore or from-groundtruth, "
                        "as for run")
    p.add_argument("--threshold", type=_number(float, 0, 1, eg="--threshold 0.5"),
                   help="foreground iff value >= 255*T, T in [0, 1] (default: iff value is 255; "
                                                   "0.5 with --probabilities)")
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
    p.add_argument("--batch", type=_number(int, 1, eg="--batch 4"), default=1,
                   help="gmm_sg: also time B copies of the video as one batch")
    p.add_argument("--repeats", type=_number(int, 1, eg="--repeats 5"), default=5, help="passes per method, bgbench and raw interleaved; medians "
                                                          "and ranges are reported (default 5)")
    p.add_argument("--scoring", action="store_true", help="Gpix/s per core of scoring a scene's evaluated frames, "
                                                          "against a straightforward NumPy comparator")
    p.add_argument("--train", action="store_true",
                   help="deep methods on --device: training steps/s and images/s, data-wait share, inference fps "
                        "at batch 1 and at the best batch, peak GPU memory (default: every deep method)")
    p.add_argument("--scene", type=Path, help="with --train: a labelled scene to train and segment "
                                              "(default ../shared/data/CDnet2014/baseline/highway)")
    p.add_argument("--steps", type=_number(int, 1, eg="--steps 30"), default=30, help="with --train: timed training steps per stage (default 30)")
    p.add_argument("--warmup-steps", type=_number(int, 0, eg="--warmup-steps 5"), default=5,
                   help="with --train: steps per stage left out of the timing (default 5)")
    p.add_argument("--json", action="store_true", help="print the timings as JSON")

    p = sub.add_parser("synth", help="write the synthetic scenes (CDnet layout) to a folder")
    p.add_argument("out", type=Path, metavar="OUT", help="the folder to write (the scenes go under OUT/synthetic)")
    p.add_argument("--seed", type=_seed_type(), default=0, help="seed of the generated scenes (default 0)")
    p.add_argument("--frames", type=_number(int, 3, eg="--frames 100"), default=100,
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
        if e.filename is None:
            raise
        print(f"bgbench: error: {e.filename}: {e.strerror or e} -- fix: check that the path exists and that you "
              "can read (or write) it; finished jobs are kept and a re-run resumes", file=sys.stderr)
        return 2


# --- list / info --------------------------------------------------------------------
def cmd_list(args) -> int:
    from .datasets import FORMATS
    from .method import load_catalog
    from .protocols import PROTOCOLS

    def describe(e) -> dict:
        if e.target is None:  # registered directly, already imported
            return {"name": e.name, "family": e.obj.family, "trains": e.obj.trains, "configs": list(e.obj.configs),
                    "summary": e.obj.summary()}
        return {"name": e.name, "family": e.meta.get("family"), "trains": e.meta.get("trains"),
                "configs": list(e.meta.get("configs", ())), "summary": e.meta.get("summary", "")}

    methods = [describe(e) for e in load_catalog()]
    data = {"methods": methods, "formats": FORMATS.names(), "protocols": PROTOCOLS.names()}
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
    from .method import method_class

    from .errors import MethodUnavailable

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
    out.update(m.describe() if m is not None else {})
    if args.json:
        print(json.dumps(out, indent=1, default=str))
        return 0
    print(f"{out['name']} ({cls.family}{', trains' if cls.trains else ''}): {out['summary']}")
    print(f"configs: {', '.join(out['configs'])}; default protocol: {cls.default_protocol}")
    if unavailable:
        print(f"UNAVAILABLE here: {unavailable}")
    for k in ("parameters", "flops", "input_size"):
        if out.get(k) is not None:
            print(f"{k}: {out[k]}")
    for k, v in out["params"].items():
        print(f"  {k} = {v['value']!r}  ({v['help']}; {v['allowed']})")
    return 0


# --- data, protocols -------------------------------------------------------------------
def load_videos(paths: Sequence[str], fmt: str, roi_policy: str, skip_bad: bool) -> tuple[list, list[dict]]:
    from .datasets import discover

    videos, skipped = [], []

    def on_error(e: BadInput) -> None:
        skipped.append({"where": str(e.where), "error": str(e)})
        print(f"bgbench: skipped: {e}", file=sys.stderr)

    for p in paths:
        videos += discover(p, fmt, roi_policy, on_error if skip_bad else None)
    if not videos:
        raise BadInput("no usable video", "--data", "see the skipped messages above")
    return videos, skipped


def protocol_from_args(name: str, args, defaults: dict | None = None) -> Any:
    """A protocol from the command line's options; ``defaults`` (a method's paper options)
    fill what the command line leaves unset."""
    from .protocols import build_protocol

    given = dict(rule=args.rule, folds=args.folds, fraction=args.fraction,
                 exclude=tuple(args.exclude) if args.exclude is not None else None,
                 source=tuple(args.source) if args.source else None,
                 target=tuple(args.target) if args.target else None)
    opts = {**(defaults or {}), **{k: v for k, v in given.items() if v is not None}}
    return build_protocol(name, seed=args.seed, **opts)


def cmd_splits(args) -> int:
    from .suites import quick_data

    skip_bad = args.on_bad_data == "skip" if args.on_bad_data else args.data is None
    from .provenance import check_unique_content

    _check_cache_writable()

    videos, _ = load_videos(args.data or quick_data(), args.format, args.roi_policy, skip_bad)
    check_unique_content(videos)  # one scene under two names would sit on both sides of a split
    planned = protocol_from_args(args.protocol, args).plan(videos)
    if not planned.splits:
        raise BadInput(f"protocol {args.protocol} has no video to test" + (f"; the first skip: {planned.skipped[0].message}"
                       if planned.skipped else ""), "--data", "give videos the protocol can use, or change its options")
    for s in planned.skipped:
        print(f"bgbench: skipped: {s.message}", file=sys.stderr)
    splits = planned.splits
    if args.json:
        print(json.dumps([s.to_json() for s in splits]))
        return 0
    for s in splits:
        n_train = sum(len(f) for _, f in s.train)
        n_test = sum(len(f) for _, f in s.test)
        print(f"{s.name}: train {len(s.train)} video(s) / {n_train} frames, test {len(s.test)} video(s) / {n_test} frames")
    return 0


# --- run -------------------------------------------------------------------------------
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
    """Every option, method, parameter, device and the run folder are checked before the
    run folder is locked; data and protocols before any job is computed."""
    from .method import method_class
    from .runlock import RunLock
    from .runner import MethodSpec
    from .suites import suite_methods

    t_start = time.perf_counter()
    quick = args.data is None
    methods = args.methods or suite_methods(args.suite)
    twice = sorted({m for m in methods if methods.count(m) > 1})
    if twice:
        raise BadInput(f"{twice[0]} is named twice", "--methods", "name each method once")
    if not 0 <= args.threshold <= 1:
        raise BadInput(f"threshold {args.threshold} is outside [0, 1]", "--threshold", "e.g. --threshold 0.5")
    if args.jobs is None:
        import os

        args.jobs = (os.cpu_count() or 1) if args.data is None else 1
    if args.jobs < 1:
        raise BadInput(f"--jobs {args.jobs} must be at least 1", "--jobs", "e.g. --jobs 2")
    classes = {m: method_class(m) for m in methods}
    args.config = args.config or ("paper" if args.suite == "paper" else "smoke")
    over = _overrides(args.set, methods)
    specs = [MethodSpec(m, classes[m].resolve(args.config)[0], tuple(sorted(over[m].items()))) for m in methods]
    for s in specs:
        classes[s.name].check_available()  # a missing optional dependency: exit 2 now, with the fix
        s.resolved_params()  # so do bad --set values (a missing weights=FILE included)
    _check_device(args.device, classes)
    protocols = {m: [protocol_from_args(p, args) for p in args.protocol] if args.protocol
                 else [protocol_from_args(classes[m].default_protocol, args, classes[m].protocol_options)]
                 + ([protocol_from_args(p, args, o) for p, o in classes[m].paper_protocols] if args.suite == "paper" else [])
                 for m in methods}
    for ps in protocols.values():
        keys = [p.key for p in ps]
        if len(set(keys)) < len(keys):
            raise BadInput(f"protocol {next(k for k in keys if keys.count(k) > 1)} is given twice", "--protocol",
                           "give each protocol once")
    out = args.out or Path("runs") / (args.suite if quick else "custom")
    _writable_dir(out, "--out")  # an unwritable run folder is refused now, not after the first job
    _check_cache_writable()
    with RunLock(out, wait=not args.no_wait):  # one run per folder: a second waits, or exits 2 with --no-wait
        return _run_locked(args, t_start, methods, classes, specs, protocols, out)


def _check_device(device: str, classes: dict) -> None:
    """--device before any work: its form always; CUDA's presence for every method that can
    use it (deep methods, gmm_sg); a note that the others run on the CPU whatever it says."""
    from .device import resolve, validate

    validate(device)
    gpu = [m for m, c in classes.items() if c.gpu_capable]
    if gpu and device != "auto":
        resolve(device)
    cpu_only = [m for m, c in classes.items() if not c.gpu_capable]
    if cpu_only and device.startswith("cuda"):
        print(f"bgbench: note: {', '.join(cpu_only)} {'runs' if len(cpu_only) == 1 else 'run'} on the CPU whatever "
              f"--device says (no GPU implementation)", file=sys.stderr)


def _run_locked(args, t_start: float, methods: list[str], classes: dict, specs: list, protocols: dict, out: Path) -> int:
    from . import results
    from .runner import RunOptions, build_results, check_checkpoints, plan, run_tasks
    from .suites import quick_data

    quick = args.data is None
    skip_bad = args.on_bad_data == "skip" if args.on_bad_data else quick
    data = args.data or quick_data()
    videos, skipped = load_videos(data, args.format, args.roi_policy, skip_bad)
    good = []
    for v in videos:  # decode into the cache and validate every frame before any job starts
        try:
            v.check()
            good.append(v)
        except BadInput as e:
            if not skip_bad:
                raise
            skipped.append({"where": str(e.where), "error": str(e)})
            print(f"bgbench: skipped: {e}", file=sys.stderr)
    if not good:
        raise BadInput("no usable video", "--data", "see the skipped messages above")
    opts = RunOptions(out=out, device=args.device, seed=args.seed, threshold=args.threshold,
                      save_masks=args.save_masks, jobs=args.jobs)
    from .perf import reference_workload_seconds
    from .provenance import code_fingerprint

    reference_seconds = reference_workload_seconds()
    protocol_skips: list[dict] = []
    tasks = plan(specs, protocols, good, opts, skipped=protocol_skips)
    check_checkpoints(tasks, opts)  # a truncated checkpoint is refused now, not found mid-run
    for s in protocol_skips:
        print(f"bgbench: skipped under {s['protocol']} ({', '.join(s['methods'])}): {s['error']}", file=sys.stderr)
    n_bad = len(skipped)
    skipped += protocol_skips
    print(f"bgbench: {len(methods)} method(s) x {len({p.key for ps in protocols.values() for p in ps})} protocol(s) "
          f"on {len(good)} video(s): {sum(len(t.tests) for t in tasks)} jobs -> {out}", file=sys.stderr)
    records = run_tasks(tasks, opts)
    from .tracking import folder_id

    meta = {
        "suite": args.suite if not args.methods else None, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git": results.git_hash(), "versions": results.versions(), "machine": results.machine(),
        "device": args.device, "seed": args.seed, "threshold": args.threshold, "config": args.config,
        "methods": {s.name: s.resolved_params() for s in specs},
        "code": {s.name: code_fingerprint(classes[s.name]) for s in specs},
        "protocols": {p.key: {"name": p.name, **p.options()} for ps in protocols.values() for p in ps},
        "data": [str(d) for d in data], "videos": [v.id for v in good], "skipped": skipped,
        "notes": {v.id: list(v.notes) for v in good if v.notes},
        "reference_seconds": reference_seconds,
        "wall_seconds": round(time.perf_counter() - t_start, 3),
        "run_id": folder_id(out),  # stable across re-runs of this folder: tracking finds its MLflow runs by it
        "started": round(time.time() - (time.perf_counter() - getattr(args, "started", t_start)), 3),
        "finished": round(time.time(), 3),
    }
    res = build_results(records, meta)
    results.write_json(out / "results.json", res)
    from reports.tables import terminal_summary

    print(terminal_summary(res))
    report_dir = None
    if not args.no_report:
        from reports.build import build_report

        report_dir = out / "report"
        build_report(res, out, report_dir)
    from .tracking import enabled_by_default, start_background

    if not args.no_tracking and (args.tracking_uri or enabled_by_default()):
        st = start_background(out, args.tracking_uri, report=report_dir is not None)  # results and report are on disk
        print(f"bgbench: logging to MLflow at {st['uri']} in the background; outcome in {out / 'tracking.json'}; "
              f"`bgbench log {out}` retries", file=sys.stderr)
    failed = [r for r in records if r["status"] != "ok"]
    for r in failed:
        print(f"bgbench: FAILED {r['method']} {r['protocol']} {r['split']} {r['video']}: {r['error']}", file=sys.stderr)
    print(f"\n{len(records) - len(failed)} job(s) ok, {len(failed)} failed, {n_bad} video(s) skipped, "
          f"{len(protocol_skips)} protocol skip(s); "
          f"{time.perf_counter() - getattr(args, 'started', t_start):.1f} s; results: {out / 'results.json'}")
    return 1 if failed else 0


# --- score -----------------------------------------------------------------------------
def cmd_score(args) -> int:
    if (args.video is None) == (args.data is None):
        raise BadInput("needs exactly one of --video SCENE and --data ROOT", "--video",
                       "score one scene's masks with --video, or a results tree laid out like a dataset with --data")
    if args.data is not None:
        return _score_tree(args)
    out = _score_scene(args, args.video, args.pred_dir)
    if args.json:
        from .results import _clean

        print(json.dumps(_clean(out), indent=1))
    else:
        print(f"{out['video']}: {out['frames']} frames")
        print("  " + "  ".join(f"{k}={v}" for k, v in out["counts"].items()))
        print("  " + "  ".join(f"{k}={v:.4f}" for k, v in out["metrics"].items()))
    return 0


def _score_tree(args) -> int:
    """Every scene under --data scored against PRED_DIR/<its path under --data>; category =
    mean of its videos' metrics, overall = mean of the category means, per dataset."""
    from .aggregate import ALL_KEYS, _mean, category_of, dataset_of
    from .datasets import discover
    from reports.tables import markdown

    root, pred_root = args.data, args.pred_dir
    if not root.is_dir():
        raise BadInput("is not a folder", root, "give the dataset root the results tree mirrors")
    if not pred_root.is_dir():
        raise BadInput("is not a folder", pred_root, "give the results root: CATEGORY/SCENE/bin%06d.png under it")
    videos = discover(root, args.format, args.roi_policy)
    scored, missing = [], []
    for v in videos:
        rel = Path(v.path).resolve().relative_to(root.resolve()) if Path(v.path).resolve() != root.resolve() else Path(".")
        pred = pred_root / rel
        if not pred.is_dir():
            missing.append((v.id, pred))
            continue
        scored.append(_score_scene(args, Path(v.path), pred, video=v))
    if missing and not args.partial:
        vid, pred = missing[0]
        raise BadInput(f"is missing: {len(missing)} of {len(videos)} scenes have no mask folder (first: {vid})", pred,
                       "write every scene's masks, or pass --partial to score the scenes present")
    if not scored:
        raise BadInput("holds no mask folder for any scene under --data", pred_root,
                       "lay masks out like the dataset: CATEGORY/SCENE/bin%06d.png")
    tables: dict[str, dict] = {}
    for ds in sorted({dataset_of(r["video"]) for r in scored}):
        rows = [r for r in scored if dataset_of(r["video"]) == ds]
        cats: dict[str, list[dict]] = {}
        for r in rows:
            cats.setdefault(category_of(r["video"]), []).append(r["metrics"])
        categories = {c: {k: _mean(m.get(k) for m in ms) for k in ALL_KEYS} for c, ms in sorted(cats.items())}
        overall = {k: _mean(cm[k] for cm in categories.values()) for k in ALL_KEYS}
        tables[ds] = {"videos": {r["video"]: r for r in rows}, "categories": categories, "overall": overall}
    if args.json:
        from .results import _clean

        print(json.dumps(_clean({"datasets": tables, "missing": [str(p) for _, p in missing]}), indent=1))
        return 0
    keys = ("recall", "specificity", "fpr", "fnr", "pwc", "precision", "f_measure")
    for ds, t in tables.items():
        print(f"{ds}: {len(t['videos'])} video(s), {len(t['categories'])} categor(y/ies)")
        print(markdown(["video", "frames", *keys],
                       [[vid, r["frames"], *(r["metrics"].get(k) for k in keys)] for vid, r in t["videos"].items()]))
        print(markdown(["category", *keys], [[c, *(m[k] for k in keys)] for c, m in t["categories"].items()]
                       + [["overall", *(t["overall"][k] for k in keys)]]))
    for vid, pred in missing:
        print(f"bgbench: not scored (no mask folder): {vid} ({pred})", file=sys.stderr)
    return 0


def _score_scene(args, scene: Path, pred_dir: Path, video=None) -> dict:
    """Counts and metrics of one scene's masks (``video``: the scene, already loaded)."""
    from .datasets import NOT_A_SCENE_FIX, adapter, detect_scene, why_not_scene

    if video is not None:
        return _score_masks(args, video, pred_dir)
    if not scene.is_dir():
        raise BadInput("is not a folder", scene, "give the scene folder that holds the ground truth")
    fmt = detect_scene(scene) if args.format == "auto" else args.format
    if fmt is None:
        lacking = why_not_scene(scene)
        if lacking:
            raise BadInput(f"is not a complete scene: it {lacking}", scene, NOT_A_SCENE_FIX)
        raise BadInput("is not a scene in a known layout (cdnet2014/sbi2015: input/ and groundtruth/; ucsd: in/ and "
                       "groundtruth/; wallflower: b%05d.bmp and hand_segmented_%05d.BMP)", scene,
                       "give --video one scene folder, or name its layout with --format")
    return _score_masks(args, adapter(fmt).load(scene, args.roi_policy), pred_dir)


def _score_masks(args, video, pred_dir: Path) -> dict:
    import itertools
    import os
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from .imageio import read_mask
    from .scoring import VideoScore, metrics

    if not pred_dir.is_dir():
        raise BadInput("is not a folder", pred_dir, "give the folder of bin%06d.png masks")
    files = {i: pred_dir / f"bin{i:06d}.png" for i in video.eval_frames}
    present = {i: f for i, f in files.items() if f.exists()}
    if not present:
        raise BadInput(f"holds none of the {len(files)} masks bin{video.eval_frames[0]:06d}.png.. it must score",
                       pred_dir, "write one bin%06d.png per scored frame, numbered like the ground truth")
    if len(present) < len(files) and not args.partial:
        first = next(f for i, f in files.items() if i not in present)
        raise BadInput(f"is missing ({len(files) - len(present)} of {len(files)} scored frames have no mask)", first,
                       "write the missing masks, or pass --partial to score only the frames present")
    threshold = (0.5 if args.probabilities else 1.0) if args.threshold is None else args.threshold
    score = VideoScore(threshold)
    roi = video.roi
    ids = list(present)

    def read(i: int) -> np.ndarray:
        m = read_mask(present[i], args.probabilities)  # refuses 0/1, 0/127, colour: never F = 0 silently
        if m.shape != video.shape:
            raise BadInput(f"mask is {m.shape[1]}x{m.shape[0]} but the frames are {video.width}x{video.height}",
                           present[i], "write masks at the video's size")
        return m

    # PNG decoding releases the GIL: a thread per core decodes ahead (at most two batches
    # in flight, so memory stays bounded) while this thread scores; errors surface in id order.
    batch = 64
    buf = np.empty((min(batch, len(ids)), *video.shape), np.uint8)  # one batch buffer, reused
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        todo = iter(ids)
        ahead = deque(pool.submit(read, i) for i in itertools.islice(todo, 2 * batch))
        for k in range(0, len(ids), batch):
            chunk = ids[k:k + batch]
            masks = np.stack([ahead.popleft().result() for _ in chunk], out=buf[:len(chunk)])
            ahead.extend(pool.submit(read, i) for i in itertools.islice(todo, batch))
            score.update(masks, video.gts(chunk), roi)
    rec = score.to_dict()
    return {"video": video.id, "frames": rec["frames"], "counts": rec["counts"], "metrics": metrics(rec["counts"], rec["dice"])}


def cmd_speed(args) -> int:
    if args.train:
        return _speed_train(args)
    if not args.scoring:
        return _speed_methods(args)
    from .datasets import discover
    from .perf import print_scoring_speed, scoring_speed
    from .suites import shared_data

    scene = args.video or ((shared_data() or Path("synthetic")) / "CDnet2014" / "baseline" / "highway")
    _check_cache_writable()
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
    from .errors import MethodUnavailable
    from .method import build_method
    from .speed import default_video, run_speed
    from .suites import available_classical

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
    from .method import method_class

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
    from reports.tables import markdown

    print(f"{video.name}, {rows[0]['frames']} frames at {rows[0]['size']}, median of {args.repeats} passes")
    print(markdown(["method", "device", "fps", "raw fps", "overhead % (median)", "overhead % (range)"],
                   [[r["method"], r["device"], r["fps"], r["raw_fps"],
                     None if r["overhead"] is None else 100 * r["overhead"],
                     "" if not r.get("overhead_range") else
                     f"{100 * r['overhead_range'][0]:+.1f} .. {100 * r['overhead_range'][1]:+.1f}"] for r in rows]))
    return 0


def _speed_train(args) -> int:
    from .deep_speed import run_train_speed
    from .method import load_catalog
    from .suites import shared_data

    if args.steps < 1 or args.warmup_steps < 0:
        raise BadInput("must be at least 1 (--steps) and 0 (--warmup-steps)", "--steps", "e.g. --steps 30 --warmup-steps 5")
    scene = args.scene or ((shared_data() or Path("../shared/data")) / "CDnet2014" / "baseline" / "highway")
    if not Path(scene).is_dir():
        raise BadInput("is not a folder", scene, "give a labelled scene with --scene")
    _check_cache_writable()
    methods = args.methods or sorted(e.name for e in load_catalog() if e.meta.get("family") == "deep")
    rows = run_train_speed(methods, Path(scene), config=args.config, device=args.device, steps=args.steps,
                           warmup=args.warmup_steps, infer_frames=args.frames)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    from reports.tables import markdown

    r0 = rows[0]
    print(f"{r0['video']}: {r0['train_frames']} training frames; {args.steps} timed steps per stage after "
          f"{args.warmup_steps} warm-up; device {r0['gpu'] or r0['device']}; config {args.config}")
    table = []
    for r in rows:
        for k, (tag, st) in enumerate(r["stages"].items()):
            first = k == 0
            table.append([r["method"] if first else "", r["input_size"] if first else "", r["precision"] if first else "",
                          tag, st["steps_per_s"], st["images_per_s"], 100 * st["data_wait_fraction"],
                          r["infer_fps_batch1"] if first else None,
                          f"{r['infer_fps_best']:.1f} @ {r['infer_best_batch']}" if first and r["infer_best_batch"] else "",
                          None if not first or r["peak_train_bytes"] is None else r["peak_train_bytes"] / 2**30,
                          f"{r['paper_fps']} ({r['paper_fps_where']})" if first and r["paper_fps"] else ""])
    print(markdown(["method", "input", "precision", "stage", "train steps/s", "train images/s", "data wait %",
                    "infer fps @1", "infer fps @best", "peak train GiB", "paper fps"], table))
    return 0


def cmd_report(args) -> int:
    from reports.build import build_report

    from .results import load_results

    from .check import validate_results

    res = validate_results(load_results(args.run_dir), args.run_dir)
    _writable_dir(args.out or args.run_dir / "report", "--out")  # before any table is made
    written = build_report(res, args.run_dir, args.out)
    n = sum(len(v) for v in written.values())
    print(f"{n} files in {args.out or args.run_dir / 'report'}; open {written['html'][0]}")
    return 0


def cmd_log(args) -> int:
    from .tracking import log_now

    return log_now(args.run_dir, args.tracking_uri)


def cmd_check(args) -> int:
    from . import check, speed_gate
    from .results import load_results
    from reports.tables import markdown

    for opt, v in (("--f-tol", args.f_tol), ("--speed-tol", args.speed_tol)):
        if not (v >= 0 and v == v and v != float("inf")):
            raise BadInput(f"{v} is not a tolerance", opt, "give a number >= 0, e.g. 0.01 for F, 0.25 for speed")
    if args.repeats < 3:
        raise BadInput(f"{args.repeats} repeats give no spread", "--repeats", "give at least 3")
    run_dir = args.run_dir if args.run_dir.is_dir() else args.run_dir.parent
    res = check.validate_results(load_results(args.run_dir), args.run_dir)
    if args.update:  # the reference must be writable before minutes of speed measurement
        if args.reference.is_dir():
            raise BadInput("is a folder", args.reference, "give --reference a JSON file name, e.g. ci_reference.json")
        _writable_dir(args.reference.parent, "--reference", "give --reference a file in a folder you can write to")
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
    acc = check.compare_accuracy(res, ref, args.f_tol)
    spd = [] if args.no_speed else check.compare_speed(speed, ref, args.speed_tol, check.params_from(res))
    if not acc and not spd:
        raise BadInput("shares nothing with the run", args.reference, "check the run against a reference of the same suite")
    moved = [r for r in acc if r["status"] != "ok"]
    print("accuracy:")
    print(markdown(["what", "metric", "reference", "current", "delta", "status", "changed parameters"],
                   [[r["what"], r["metric"], r["reference"], r["current"], r["delta"], r["status"], r["changed"]]
                    for r in moved]) if moved else f"  {len(acc)} F-measures within {args.f_tol} of the reference")
    if spd:
        print("speed (normalised by the reference workload; median of the repeats):")
        print(markdown(["method", "reference", "current", "change %", "status", "changed parameters"],
                       [[r["what"], r["reference"], r["current"], None if r["relative"] is None else 100 * r["relative"],
                         r["status"], r["changed"]] for r in spd]))
    bad = [r for r in acc + spd if r["status"].startswith("REGRESSION")]
    print(f"{len(acc)} F-measures (tolerance {args.f_tol}) and {len(spd)} speeds (tolerance {args.speed_tol:.0%} or "
          f"the measured spread) compared: {len(bad)} regression(s)")
    return 1 if bad else 0


def cmd_synth(args) -> int:
    from .datasets.synthetic import write_scenes

    _writable_dir(args.out, "OUT")
    root = write_scenes(args.out, args.seed, n_frames=args.frames, first_scored=min(31, args.frames // 3))
    print(f"synthetic scenes written to {root}")
    return 0


def cmd_cache(args) -> int:
    import os

    from . import framecache

    root, cap = framecache.cache_root(), framecache.max_bytes()
    where = "$BGBENCH_CACHE" if os.environ.get("BGBENCH_CACHE") else "default; set $BGBENCH_CACHE to move it"
    if args.action == "clear":
        n, freed = framecache.clear(root)
        print(f"{root}: {n} entr{'y' if n == 1 else 'ies'} deleted, {freed / 1e9:.2f} GB freed")
        return 0
    found = framecache.entries(root)
    total = sum(e.bytes for e in found)
    known = [e for e in found if e.source_bytes]
    ratio = sum(e.bytes for e in known) / sum(e.source_bytes for e in known) if known else None
    if args.json:
        print(json.dumps({"root": str(root), "max_bytes": cap, "total_bytes": total, "x_source": ratio,
                          "entries": [{"name": e.name, "kind": e.kind, "file": e.path.name, "bytes": e.bytes,
                                       "frames": e.frames, "shape": e.shape, "source_bytes": e.source_bytes,
                                       "last_used": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(e.last_used))}
                                      for e in sorted(found, key=lambda e: e.name)]}, indent=1))
        return 0
    from reports.tables import markdown

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


COMMANDS = {"list": cmd_list, "info": cmd_info, "splits": cmd_splits, "run": cmd_run, "score": cmd_score,
            "synth": cmd_synth, "speed": cmd_speed, "cache": cmd_cache,
            "report": cmd_report, "log": cmd_log, "check": cmd_check}

if __name__ == "__main__":
    sys.exit(main())
