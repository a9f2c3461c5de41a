"""bgbench as a library: ``run``, ``splits``, ``score`` and ``report`` from Python.

The ``bgbench`` command is a thin adapter over these: it reads its options into a
``RunConfig`` and prints what comes back. ::

    from bgbench import api

    res = api.run(api.RunConfig.of(["gmm_zivkovic", "frame_difference"],
                                   data=["../shared/data/CDnet2014/baseline/highway"], out="runs/py",
                                   tracking=False))
    s = res.summary("gmm_zivkovic", "full")
    print(s.datasets["CDnet2014"].overall["f_measure"], s.fps_median)

Everything a run depends on is checked before its folder is locked (methods, configs,
parameters, device, executor, protocols, the run folder and the frame cache), and data and
protocols before any job is computed; bad input raises ``BadInput`` naming the option or
file and the fix. Messages that the command prints on stderr go to ``echo`` (default: the
``bgbench`` logger).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from bgbench.errors import BadInput
from bgbench.records.types import JobRecord, MethodSpec, Results, RunMeta
from bgbench.scoring.files import ScoreOptions

if TYPE_CHECKING:  # the run loop is imported when a run starts, not with this module
    from bgbench.execution.runner import RunOptions
    from bgbench.method import Method

__all__ = ["RunConfig", "MethodSpec", "ScoreOptions", "run", "run_folder", "prepare", "splits", "score", "report", "load_videos",
           "PROTOCOL_OPTIONS"]

Echo = Callable[[str], None]


def __getattr__(name: str) -> Any:
    if name == "PROTOCOL_OPTIONS":  # the protocols' own option fields (bgbench.protocols.option_specs)
        from bgbench.protocols import option_specs

        return tuple(option_specs())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_config(device: str) -> str:
    """The config a deep method gets when none is asked: ``paper`` where ``device`` resolves
    to CUDA, ``cpu`` otherwise (``smoke`` only when asked)."""
    from bgbench.execution.device import resolve

    return "paper" if resolve(device).startswith("cuda") else "cpu"


def _log(msg: str) -> None:
    logging.getLogger("bgbench").info(msg)


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on. ``methods`` empty: the suite's. ``protocols`` empty: each
    method's own (with its paper's options; ``paper_protocols`` adds its paper's other
    experiments, as the paper suite does). ``protocol_options`` (rule, folds, fraction,
    exclude, source, target) apply to every protocol and win over a method's paper options.
    ``data`` empty: the quick data (../shared/data or $BGBENCH_DATA, else synthetic).
    ``on_bad_data`` None: skip bad videos for the quick data, refuse them otherwise.
    ``jobs`` None: every core for the quick data, 1 otherwise. ``tracking`` None: on unless
    ``BGBENCH_TRACKING=0``."""

    methods: tuple[MethodSpec, ...] = ()
    suite: str = "quick"
    config: str | None = None  # the config asked of every method (None: cpu on a CPU, paper on CUDA and for the paper suite)
    data: tuple[str, ...] = ()
    data_format: str = "auto"
    roi_policy: str = "error"
    on_bad_data: str | None = None
    protocols: tuple[str, ...] = ()
    protocol_options: Mapping[str, Any] = field(default_factory=dict)
    paper_protocols: bool | None = None  # None: with the paper suite
    out: Path | None = None
    device: str = "auto"
    seed: int = 0
    threshold: float = 0.5
    save_masks: bool = False
    jobs: int | None = None
    executor: str = "local"
    scheduler: str | None = None
    threads: int | None = None  # OpenCV/torch threads per job; None: the cores shared among the jobs
    deep_threads: int = 1  # torch threads of a deep method's jobs (keys them: weights and maps depend on it)
    report: bool = True
    tracking: bool | None = None
    tracking_uri: str | None = None
    wait: bool = True  # another run holds ``out``: wait for it (False: BadInput naming its pid)
    experiment: Mapping[str, Any] | None = None  # the experiment file it came from ({file, sha1, text}): meta.experiment
    accept_truncated: bool = False  # a training stage stopped by max_train_seconds: job ok, said in its record
    video_batch: int | None = None  # videos a video-batching method (gmm_sg) segments at once; None: 8 on CUDA, else 1

    @classmethod
    def of(cls, methods: Sequence[str] | str = (), config: str | None = None,
           overrides: Mapping[str, Mapping[str, Any]] | None = None, **kw: Any) -> "RunConfig":
        """A RunConfig from method names (a list or "a,b"), one config for all, and
        ``overrides`` {method: {param: value}}; other fields by keyword (``data`` and
        ``protocols`` may be lists, ``out`` a string)."""
        names = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods)
        overrides = dict(overrides or {})
        stray = sorted(set(overrides) - set(names))
        if stray:
            raise BadInput(f"{stray[0]!r} is not among the methods", "--set", f"use one of {', '.join(names)}")
        specs = tuple(MethodSpec(m, config or "default", tuple(sorted(overrides.get(m, {}).items()))) for m in names)
        for k in ("data", "protocols"):
            if k in kw and kw[k] is not None:
                kw[k] = (kw[k],) if isinstance(kw[k], (str, Path)) else tuple(str(x) for x in kw[k])
        if kw.get("out") is not None:
            kw["out"] = Path(kw["out"])
        return cls(methods=specs, config=config, **kw)


@dataclass(frozen=True)
class Prepared:
    """A RunConfig checked and resolved: method classes, specs with each method's config,
    protocols per method, and the run loop's options (``runner.RunOptions``: the run folder,
    the job and thread counts)."""

    config: RunConfig
    classes: Mapping[str, type[Method]]
    specs: tuple[MethodSpec, ...]
    protocols: Mapping[str, list]
    opts: RunOptions
    quick: bool
    data: tuple[str, ...]
    notes: tuple[str, ...] = ()  # one line each, printed before the run (e.g. --jobs capped at the cores)

    @property
    def out(self) -> Path:
        return self.opts.out

    @property
    def jobs(self) -> int:
        return self.opts.jobs

    @property
    def threads(self) -> int:
        return self.opts.threads


def run_folder(cfg: RunConfig) -> Path:
    """Where a run writes: ``cfg.out``, else runs/SUITE for the quick data, runs/custom for ``--data``."""
    return Path(cfg.out) if cfg.out is not None else Path("runs") / (cfg.suite if not cfg.data else "custom")


def _protocol(name: str, cfg: RunConfig, defaults: Mapping[str, Any] | None = None):
    from bgbench.protocols import build_protocol, option_specs

    unknown = set(cfg.protocol_options) - set(option_specs())
    if unknown:
        raise BadInput(f"unknown protocol option {sorted(unknown)[0]!r}", "protocol_options",
                       f"use {', '.join(option_specs())}")
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.protocol_options.items() if v is not None}
    return build_protocol(name, seed=cfg.seed, **{**(defaults or {}), **given})


def prepare(cfg: RunConfig, dry_run: bool = False) -> Prepared:
    """Check everything that needs no data: BadInput for the first problem found. ``dry_run``:
    nothing is created or probed by writing (the run folder, the frame cache) and no executor is
    started; the rest is checked as for a run."""
    from bgbench.execution.device import check_for
    from bgbench.execution.executors import check_executor
    from bgbench.method import method_class
    from bgbench.execution.paths import check_cache_writable, writable_dir
    from bgbench.execution.runner import RunOptions
    from bgbench.suites import SUITES, quick_data, suite_methods

    if cfg.suite not in SUITES:
        raise BadInput(f"unknown suite {cfg.suite!r}", "--suite", f"use one of {', '.join(SUITES)}")
    quick = not cfg.data
    specs = list(cfg.methods) or [MethodSpec(m) for m in suite_methods(cfg.suite)]
    names = [s.name for s in specs]
    twice = sorted({m for m in names if names.count(m) > 1})
    if twice:
        raise BadInput(f"{twice[0]} is named twice", "--methods", "name each method once")
    if not specs:
        raise BadInput(f"the {cfg.suite} suite has no method available here", "--methods", "name methods with --methods")
    if not 0 <= cfg.threshold <= 1:
        raise BadInput(f"threshold {cfg.threshold} is outside [0, 1]", "--threshold", "e.g. --threshold 0.5")
    from bgbench.execution.limits import cap_jobs_threads

    jobs = cfg.jobs if cfg.jobs is not None else ((os.cpu_count() or 1) if quick else 1)
    if jobs < 1:
        raise BadInput(f"--jobs {jobs} must be at least 1", "--jobs", "e.g. --jobs 2")
    if cfg.threads is not None and cfg.threads < 1:
        raise BadInput(f"--threads {cfg.threads} must be at least 1", "--threads", "e.g. --threads 1")
    if cfg.deep_threads < 1:
        raise BadInput(f"--deep-threads {cfg.deep_threads} must be at least 1", "--deep-threads",
                       "e.g. --deep-threads 1")
    jobs, threads, notes = cap_jobs_threads(jobs, cfg.threads, cfg.executor, cfg.scheduler)
    if cfg.on_bad_data not in (None, "skip", "error"):
        raise BadInput(f"unknown choice {cfg.on_bad_data!r}", "--on-bad-data", "use skip or error")
    classes = {s.name: method_class(s.name) for s in specs}
    asked = cfg.config or ("paper" if cfg.suite == "paper" else None)
    if asked is None and any(classes[s.name].family == "deep" and s.config == "default" for s in specs):
        check_for(cfg.device, classes)  # a bad --device is named before it is resolved
        asked = default_config(cfg.device)
    resolved = []
    for s in specs:
        cls = classes[s.name]
        config = cls.resolve((asked or "default") if s.config == "default" else s.config)[0]
        spec = MethodSpec(s.name, config, tuple(sorted(dict(s.overrides).items())))
        cls.check_available()  # a missing optional dependency: refused now, with the fix
        spec.resolved_params()  # so are bad parameter values (a missing weights=FILE included)
        resolved.append(spec)
    check_for(cfg.device, classes)
    paper = cfg.paper_protocols if cfg.paper_protocols is not None else cfg.suite == "paper"
    protocols = {}
    for m, cls in classes.items():
        # a protocol is a name, or (name, its own options) from an experiment file
        ps = ([_protocol(p, cfg) if isinstance(p, str) else _protocol(p[0], cfg, p[1]) for p in cfg.protocols]
              if cfg.protocols
              else [_protocol(cls.default_protocol, cfg, cls.protocol_options)]
              + ([_protocol(p, cfg, o) for p, o in cls.paper_protocols] if paper else []))
        keys = [p.key for p in ps]
        if len(set(keys)) < len(keys):
            raise BadInput(f"protocol {next(k for k in keys if keys.count(k) > 1)} is given twice", "--protocol",
                           "give each protocol once")
        protocols[m] = ps
    from bgbench.protocols import refuse_untaken

    refuse_untaken([k for k, v in cfg.protocol_options.items() if v is not None],
                   [q.name for ps in protocols.values() for q in ps])
    out = run_folder(cfg)
    data = tuple(cfg.data) if cfg.data else tuple(quick_data())
    opts = RunOptions(out=out, device=cfg.device, seed=cfg.seed, threshold=cfg.threshold, save_masks=cfg.save_masks,
                      jobs=jobs, executor=cfg.executor, scheduler=cfg.scheduler, threads=threads,
                      deep_threads=cfg.deep_threads, accept_truncated=cfg.accept_truncated,
                      video_batch=cfg.video_batch or 0)
    if not dry_run:
        check_executor(opts, [d for d in data if d != "synthetic"])
        writable_dir(out, "--out")  # an unwritable run folder is refused now, not after the first job
        from bgbench.safefs import check_run_folder

        check_run_folder(out)  # a results.json or report bgbench did not write is never overwritten
        check_cache_writable()
    return Prepared(cfg, classes, tuple(resolved), protocols, opts, quick, data, tuple(notes))


def load_videos(paths: Sequence[str], data_format: str = "auto", roi_policy: str = "error", skip_bad: bool = False,
                echo: Echo | None = None, check: bool = True) -> tuple[list, list[dict]]:
    """The usable videos under ``paths`` and the ones skipped (``skip_bad``) with their errors.

    The one gate between the data and every command that uses it (``run``, ``splits``): a
    video is usable if its layout reads (discovery), every frame, mask and ROI decodes and
    checks (``Video.check``, into the cache) and it has something to score
    (``Video.nothing_to_score``). A bad one raises BadInput, or with ``skip_bad`` is left
    out and recorded as ``{"where", "error"}`` (plus ``video``, its id, where it was read)."""
    from bgbench.data.formats import discover
    from bgbench.safefs import DiskFull

    echo = echo or _log
    found, videos, skipped = [], [], []

    def on_error(e: BadInput, video: str | None = None) -> None:
        skipped.append({"where": str(e.where), "error": str(e), **({"video": video} if video else {})})
        echo(f"bgbench: skipped: {e}")

    for p in paths:
        found += discover(p, data_format, roi_policy, on_error if skip_bad else None)
    from bgbench.records.provenance import one_per_id

    found = one_per_id(found)  # one id under two roots: the same bytes once, or BadInput naming both
    if not check:  # a dry run: the layout only, nothing decoded or written
        return found, skipped
    for v in found:  # decode into the cache and validate every frame before any job starts
        try:
            v.check()
            videos.append(v)
        except BadInput as e:
            if not skip_bad or isinstance(e, DiskFull):  # a full disk is no bad video
                raise
            on_error(e, v.id)
    if not videos:
        raise BadInput("no usable video", "--data", "see the skipped messages above")
    by_note: dict[str, list[str]] = {}  # what loading assumed (no ROI file, a temporal ROI read as ...): said once each
    for v in videos:
        for note in v.notes:
            by_note.setdefault(note, []).append(v.id)
    for note, ids in by_note.items():
        shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
        echo(f"bgbench: note: {shown}: {note}")
    return videos, skipped


def run(cfg: RunConfig, echo: Echo | None = None, started: float | None = None, exiting: bool = False) -> Results:
    """Run ``cfg``: every job's record in ``out/jobs`` (a re-run resumes), ``out/results.json``,
    the report (``cfg.report``) and MLflow logging in the background (``cfg.tracking``).
    ``started``: the ``time.perf_counter()`` the caller's command began at (the recorded wall
    time counts from it). ``exiting``: the caller's process exits once this returns (the
    command line): the background logger then waits for that exit before it starts.
    Returns the typed Results; failed jobs are in it, not raised."""
    from bgbench.execution.lock import RunLock

    from bgbench.execution.device import cpu_only_note
    from bgbench.execution.isolated import refuse_unguarded_main

    refuse_unguarded_main()
    started = time.perf_counter() if started is None else started
    p = prepare(cfg)
    if p.quick and p.data == ("synthetic",):  # the quick data fell back: say so, and where it looked
        from bgbench.suites import synthetic_fallback_note

        fallback = synthetic_fallback_note()
        if fallback:
            (echo or _log)(fallback)
    note = cpu_only_note(cfg.device, [s.name for s in p.specs if not p.classes[s.name].gpu_capable])
    if note:
        (echo or _log)(note)
    for line in p.notes:
        (echo or _log)(line)
    with RunLock(p.out, wait=cfg.wait, say=echo or _log):  # one run per folder: a second waits, or BadInput with wait=False
        return _run_locked(p, echo or _log, started, exiting)


def _run_locked(p: Prepared, echo: Echo, started: float, exiting: bool = False) -> Results:
    from bgbench.records import results
    from bgbench.scoring.aggregate import summarize
    from bgbench.records.provenance import code_fingerprint, data_digest
    from bgbench.execution.runner import check_checkpoints, plan, run_tasks
    from bgbench.tracking import enabled_by_default, folder_id, start_background

    from bgbench.safefs import DiskFull, claim_run_folder

    claim_run_folder(p.out)  # checked again under the lock, then marked as bgbench's
    cfg = p.config
    skip_bad = cfg.on_bad_data == "skip" if cfg.on_bad_data else p.quick
    from bgbench.execution.executors import prestart

    prestart(p.opts, {c.__module__ for c in p.classes.values()})  # the workers' imports overlap the data checks
    good, skipped = load_videos(p.data, cfg.data_format, cfg.roi_policy, skip_bad, echo)
    opts = p.opts
    protocol_skips: list[dict] = []
    tasks = plan(p.specs, p.protocols, good, opts, skipped=protocol_skips)
    bad = [s for s in protocol_skips if s.get("bad_data")]
    if bad and not skip_bad:  # a video a published frame list cannot serve is bad data, not a rule unmet
        raise BadInput(f"{bad[0]['reason']} (protocol {bad[0]['protocol']})", bad[0]["where"], bad[0]["fix"] or None)
    check_checkpoints(tasks, opts)  # a truncated checkpoint is refused now, not found mid-run
    for s in protocol_skips:
        echo(f"bgbench: skipped under {s['protocol']} ({', '.join(s['methods'])}): {s['error']}")
    n_keys = len({q.key for ps in p.protocols.values() for q in ps})
    configs = ", ".join(f"{s.name} {s.config}" for s in p.specs if s.config != "default")
    echo(f"bgbench: {len(p.specs)} method(s) x {n_keys} protocol(s) on {len(good)} video(s): "
         f"{sum(len(t.tests) for t in tasks)} jobs -> {p.out}" + (f" (executor {cfg.executor})"
                                                                   if cfg.executor != "local" else "")
         + (f"; configs: {configs}" if configs else ""))
    drawn = cfg.report and _draws_plots([p.classes[s.name] for s in p.specs])
    worker = _report_worker() if drawn else None  # its start-up overlaps the jobs
    try:
        records = run_tasks(tasks, opts)
        jobs = tuple(sorted((JobRecord.from_json(r, f"job {r.get('method')} {r.get('video')}") for r in records),
                            key=lambda j: j.key))
        meta = RunMeta(
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), run_id=folder_id(p.out), device=cfg.device, seed=cfg.seed,
            threshold=cfg.threshold,
            methods={s.name: s.resolved_params() for s in p.specs},
            families={s.name: p.classes[s.name].family for s in p.specs},
            configs={s.name: s.config for s in p.specs},
            code={s.name: code_fingerprint(p.classes[s.name]) for s in p.specs},
            protocols={q.key: {"name": q.name, **q.options()} for ps in p.protocols.values() for q in ps},
            data=tuple(str(d) for d in p.data), videos=tuple(v.id for v in good),
            skipped=tuple(skipped + protocol_skips), notes={v.id: tuple(v.notes) for v in good if v.notes},
            suite=recorded_suite(cfg.suite, p.specs), config=cfg.config, executor=cfg.executor, jobs=p.jobs,
            threads=p.threads, deep_threads=p.opts.deep_threads, git=results.git_hash(), versions=results.versions(), machine=results.machine(),
            wall_seconds=round(time.perf_counter() - started, 3), experiment=cfg.experiment,
            started=round(time.time() - (time.perf_counter() - started), 3), finished=round(time.time(), 3),
            digests={v.id: data_digest(v) for v in good})  # memoised: the jobs' fingerprints hashed them
        doc = results.clean(Results(meta=meta, jobs=jobs, summaries=summarize(jobs)).to_json())
        results.write_json(p.out / "results.json", doc)
        res = Results.from_json(doc, p.out / "results.json")  # what every reader of the file gets (NaN as None)
        if cfg.report:
            _build_report(res, p.out, worker, echo)
        if cfg.tracking if cfg.tracking is not None else (cfg.tracking_uri is not None or enabled_by_default()):
            st = start_background(p.out, cfg.tracking_uri, report=cfg.report, after_exit=exiting)  # all on disk
            echo(f"bgbench: logging to MLflow at {st['uri']} in the background; outcome in {p.out / 'tracking.json'}; "
                 f"`bgbench log {p.out}` retries")
        return res
    finally:
        if worker is not None:
            worker.close()


def recorded_suite(suite: str, specs: Sequence[MethodSpec]) -> str | None:
    """``meta.suite``: the suite whose methods the run has, in its order (the command line
    passes a suite's methods explicitly, so that ``--set`` can reach them), else None."""
    from bgbench.suites import is_suite

    return suite if is_suite(suite, [s.name for s in specs]) else None


def _draws_plots(methods: Sequence[type[Method]]) -> bool:
    """Whether the report of a run of ``methods`` (one class per method spec) may draw a
    matplotlib figure: a speed/accuracy scatter or PR points need two methods, a PR curve one
    method with more than two output levels. The tables and the mosaic need no figure
    library, and no report worker."""
    return len(methods) >= 2 or any(not m.binary_output for m in methods)


def _report_worker():
    """A ``bgbench.reports.worker.ReportWorker`` for this run, or None where it would not pay: the
    report modules are imported in this process already (a second run from Python, the
    tests), or it cannot start."""
    import sys

    if "bgbench.reports.build" in sys.modules:
        return None
    from bgbench.reports.worker import ReportWorker

    try:
        return ReportWorker()
    except OSError:
        return None


def _build_report(res: Results, run_dir: Path, worker, echo: Echo) -> dict[str, list[Path]]:
    """The run's report, by its worker if it has one, else (or if the worker fails) here."""
    if worker is not None:
        from bgbench.reports.worker import WorkerFailed

        try:
            return worker.build(run_dir, run_dir / "report")
        except WorkerFailed as e:
            echo(f"bgbench: the report worker failed ({e}); building the report in this process")
    from bgbench.reports.build import build_report

    return build_report(res, run_dir, run_dir / "report")


def splits(cfg: RunConfig, protocol: str, echo: Echo | None = None) -> list:
    """The splits ``protocol`` makes of ``cfg``'s data (with ``cfg.protocol_options`` and
    ``cfg.seed``); what it cannot serve is reported through ``echo``. BadInput if it tests
    nothing."""
    from bgbench.execution.paths import check_cache_writable
    from bgbench.records.provenance import check_unique_content
    from bgbench.suites import quick_data

    echo = echo or _log
    from bgbench.protocols import refuse_untaken

    proto = _protocol(protocol, cfg)  # options that cannot work are refused before any data is read
    refuse_untaken([k for k, v in cfg.protocol_options.items() if v is not None], [proto.name])
    check_cache_writable()
    skip_bad = cfg.on_bad_data == "skip" if cfg.on_bad_data else not cfg.data
    if not cfg.data and quick_data() == ["synthetic"]:
        from bgbench.suites import synthetic_fallback_note

        echo(synthetic_fallback_note() or "bgbench: running on the built-in synthetic scenes")
    videos, _ = load_videos(cfg.data or quick_data(), cfg.data_format, cfg.roi_policy, skip_bad, echo)
    check_unique_content(videos)  # one scene under two names would sit on both sides of a split
    planned = proto.plan(videos)
    bad = [s for s in planned.skipped if s.bad_data]
    if bad and not skip_bad:  # a video a published frame list cannot serve is bad data, not a rule unmet
        raise BadInput(bad[0].reason, bad[0].where, bad[0].fix or None)
    from bgbench.data.nearcopy import check_splits as check_near_copies

    check_near_copies(planned.splits, {v.id: v for v in videos})  # a near copy on both sides of a split: BadInput
    if not planned.splits:
        raise BadInput(f"protocol {protocol} has no video to test" + (f"; the first skip: {planned.skipped[0].message}"
                       if planned.skipped else ""), "--data", "give videos the protocol can use, or change its options")
    for s in planned.skipped:
        echo(f"bgbench: skipped: {s.message}")
    return list(planned.splits)


def score(pred: str | Path, video: str | Path | None = None, data: str | Path | None = None,
          options: ScoreOptions = ScoreOptions()) -> dict[str, Any]:
    """Score masks on disk like the official comparator: ``pred`` one scene's ``bin%06d.png``
    folder with ``video`` its scene folder, or a results tree mirroring the dataset root
    ``data`` (per-video, per-category and overall tables)."""
    from bgbench.scoring.files import score_scene, score_tree

    if (video is None) == (data is None):
        raise BadInput("needs exactly one of --video SCENE and --data ROOT", "--video",
                       "score one scene's masks with --video, or a results tree laid out like a dataset with --data")
    if data is not None:
        return score_tree(Path(pred), Path(data), options)
    return score_scene(Path(video), Path(pred), options)  # type: ignore[arg-type]  # exactly one of video, data given


def report(run_dir: str | Path, out: str | Path | None = None) -> dict[str, list[Path]]:
    """Tables, PR curves, plots and the HTML leaderboard of a run folder (default
    ``RUN_DIR/report``); returns the files written by kind."""
    from bgbench.reports.build import build_report

    from bgbench.execution.paths import writable_dir
    from bgbench.records.results import load_results

    run_dir = Path(run_dir)
    res = load_results(run_dir)
    out = Path(out) if out is not None else run_dir / "report"
    writable_dir(out, "--out")  # before any table is made
    from bgbench.safefs import check_report_folder

    check_report_folder(out)  # files bgbench did not write are never overwritten
    return build_report(res, run_dir, out)

