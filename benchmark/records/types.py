"""Typed, versioned records: what a run writes and what reports and trackers read.

``JobKey`` names one job (method, config, protocol key, split, video); ``JobRecord`` is its
outcome (counts, metrics, timing, histograms, or the error); ``Summary`` the numbers of one
method label under one protocol key; ``RunMeta`` what produced the run; ``Results`` the
whole document (``results.json``). Every record converts to and from plain JSON, and
reading checks the schema version and the fields, naming the file and the field that is
wrong. Everything is keyed by the protocol's full key (name and options), never its name:
two variants of one protocol test different pixels.

Schema history: 1 had untyped dicts and no ``family``/``label`` in jobs; 2 is this module;
3 adds the job status ``truncated``, the jobs' ``training`` and ``degenerate`` fields and the
summaries' ``jobs_truncated`` and ``degenerate``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

if TYPE_CHECKING:
    import pandas

    from bgbench.method import Method

from bgbench.errors import BadInput

SCHEMA_VERSION = 3
READABLE_SCHEMAS = (2, 3)  # 3 only adds fields (optional) and a status, so a schema-2 record reads as is
STATUSES = ("ok", "truncated", "failed")  # a job's status; the first two were scored


def _need(d: Any, name: str, kind: type | tuple[type, ...], where: str, optional: bool = False) -> Any:
    """``d[name]`` checked against ``kind``; BadInput naming ``where`` and the field."""
    if not isinstance(d, Mapping):
        raise BadInput(f"{where} is a {type(d).__name__}, not an object", where, "re-run with this bgbench version")
    if name not in d or d[name] is None:
        if optional:
            return None
        raise BadInput(f"{where} has no {name!r}", where, "re-run with this bgbench version, or restore the file")
    v = d[name]
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if not isinstance(v, kind) or (isinstance(v, bool) and kind in (int, float)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BadInput(f"{where}: {name!r} is a {type(v).__name__}, not a {names}", where,
                       "re-run with this bgbench version, or restore the file")
    return v


def label_of(method: str, config: str) -> str:
    """A method's label in tables: ``crossnet[paper]``; a default config is the bare name."""
    return method if config in ("", "default") else f"{method}[{config}]"


@dataclass(frozen=True)
class MethodSpec:
    """A method as a run asks for it: its name, config and parameter overrides."""

    name: str
    config: str = "default"
    overrides: tuple[tuple[str, Any], ...] = ()

    def resolved_params(self) -> dict[str, Any]:
        from bgbench.method import method_class

        return method_class(self.name).resolve(self.config, **dict(self.overrides))[1]

    def build(self, device: str, seed: int) -> Method:
        from bgbench.method import build_method

        return build_method(self.name, self.config, device=device, seed=seed, **dict(self.overrides))


@dataclass(frozen=True, order=True)
class JobKey:
    method: str
    config: str
    protocol_key: str
    split: str
    video: str

    @property
    def label(self) -> str:
        return label_of(self.method, self.config)

    @property
    def dataset(self) -> str:
        return self.video.split("/", 1)[0]


@dataclass(frozen=True)
class JobRecord:
    """One job's outcome. ``status`` is "ok" (counts, metrics, histograms, timing set),
    "truncated" (scored like ok, but a training stage of its model was stopped by
    ``max_train_seconds`` before its steps: not ok, its numbers depend on the machine's
    speed) or "failed" (``error`` set). ``family`` is the method's family at run time;
    ``masks`` the run-folder-relative folder of its saved masks (``--save-masks``),
    ``examples`` the frame and ground-truth files of the frames a report may show.
    ``training`` (methods that train, or load a whole model): ``stages`` [{name,
    steps_configured, steps_trained, stopped_by: "steps" | "max_train_seconds"}],
    ``truncated``, ``truncation_accepted`` (``--accept-truncated``), or ``pretrained`` (the
    file) and ``note`` "pretrained, not trained here". ``degenerate``: why the output is
    degenerate ("constant map", "no positive pixel"; ``scoring.metrics.degenerate``), else None."""

    key: JobKey
    protocol: str  # the protocol's name (``key.protocol_key`` carries its options)
    status: str
    fingerprint: str
    family: str = ""
    frames: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)  # the overrides given (``--set``)
    code: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    counts: Mapping[str, int] | None = None
    dice: Mapping[str, float] | None = None
    histograms: Mapping[str, list[Any]] | None = None
    metrics: Mapping[str, float | None] | None = None
    timing: Mapping[str, Any] | None = None
    masks: str | None = None
    examples: Mapping[str, Any] | None = None
    loss_history: tuple[Mapping[str, float], ...] = ()
    training: Mapping[str, Any] | None = None
    degenerate: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def truncated(self) -> bool:
        return self.status == "truncated"

    @property
    def scored(self) -> bool:
        """Counts, metrics and histograms are set (ok or truncated)."""
        return self.status in ("ok", "truncated")

    def training_note(self) -> str:
        """One line on training: its stages cut short ("unet: 46 of 1500 steps, stopped by
        max_train_seconds"), the pretrained file, or "" (every stage trained its steps)."""
        t = self.training or {}
        if t.get("pretrained"):
            return f"{t.get('note', 'pretrained, not trained here')}: {t['pretrained']}"
        short = [st for st in t.get("stages") or () if st.get("stopped_by") != "steps"]
        return "; ".join(f"{st.get('name')}: {st.get('steps_trained')} of {st.get('steps_configured')} steps, "
                         f"stopped by {st.get('stopped_by')}" for st in short)

    @property
    def fps(self) -> float | None:
        return (self.timing or {}).get("fps")

    def to_json(self) -> dict[str, Any]:
        d = {"method": self.key.method, "config": self.key.config, "label": self.key.label,
             "family": self.family, "params": dict(self.params), "protocol": self.protocol,
             "protocol_key": self.key.protocol_key, "split": self.key.split, "video": self.key.video,
             "fingerprint": self.fingerprint, "frames": self.frames, "code": dict(self.code),
             "status": self.status, "error": self.error}
        for name in ("traceback", "counts", "dice", "histograms", "metrics", "timing", "masks", "examples",
                     "training", "degenerate"):
            v = getattr(self, name)
            if v is not None:
                d[name] = dict(v) if isinstance(v, Mapping) else v
        if self.loss_history:
            d["loss_history"] = [dict(h) for h in self.loss_history]
        return d

    @classmethod
    def from_json(cls, d: Any, where: str = "job record") -> "JobRecord":
        s: Callable[..., Any] = lambda n, opt=False: _need(d, n, str, where, opt)  # noqa: E731
        status = s("status")
        if status not in STATUSES:
            raise BadInput(f"{where}: status {status!r} is not one of {', '.join(STATUSES)}", where, "re-run the job")
        key = JobKey(s("method"), s("config"), _need(d, "protocol_key", str, where, True) or s("protocol"),
                     s("split"), s("video"))
        ok = status in ("ok", "truncated")  # scored
        rec = cls(
            key=key, protocol=s("protocol"), status=status, fingerprint=s("fingerprint", True) or "",
            family=s("family", True) or "", frames=_need(d, "frames", int, where, True) or 0,
            params=_need(d, "params", dict, where, True) or {}, code=_need(d, "code", dict, where, True) or {},
            error=s("error", True), traceback=s("traceback", True),
            counts=_need(d, "counts", dict, where, not ok), dice=_need(d, "dice", dict, where, not ok),
            histograms=_need(d, "histograms", dict, where, not ok), metrics=_need(d, "metrics", dict, where, not ok),
            timing=_need(d, "timing", dict, where, not ok), masks=s("masks", True),
            examples=_need(d, "examples", dict, where, True),
            loss_history=tuple(_need(d, "loss_history", list, where, True) or ()),
            training=_need(d, "training", dict, where, True), degenerate=s("degenerate", True),
        )
        if ok:
            assert rec.counts is not None and rec.histograms is not None  # _need refuses them missing when ok
            for k in ("tp", "fp", "tn", "fn"):
                if not isinstance(rec.counts.get(k), int):
                    raise BadInput(f"{where}: counts.{k} is missing or not an integer", where, "re-run the job")
            for k in ("negative", "shadow", "positive"):
                if not isinstance(rec.histograms.get(k), list):
                    raise BadInput(f"{where}: histograms.{k} is missing or not a list", where, "re-run the job")
        return rec


@dataclass(frozen=True)
class DatasetSummary:
    """One method label's numbers on one dataset under one protocol key. ``videos`` maps a
    video id to its metrics, ``categories`` a category to the mean of its videos',
    ``overall`` is the mean of the category means (the CDnet site's rule), ``pooled`` the
    metrics of the summed counts; the PR curve pools every video's pixels."""

    videos: Mapping[str, Mapping[str, float | None]]
    categories: Mapping[str, Mapping[str, float | None]]
    overall: Mapping[str, float | None]
    pooled: Mapping[str, float | None]
    counts: Mapping[str, int]
    average_precision: float | None
    best_threshold: float | None
    best_f: float | None
    output_levels: int
    fps_median: float | None = None

    @property
    def binary(self) -> bool:
        """Fewer output levels than a PR curve needs (``scoring.MIN_PR_LEVELS``): one
        operating point, no average precision."""
        from bgbench.scoring.metrics import MIN_PR_LEVELS

        return self.output_levels < MIN_PR_LEVELS

    def to_json(self) -> dict[str, Any]:
        return {f.name: (dict(v) if isinstance(v := getattr(self, f.name), Mapping) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, d: Any, where: str) -> "DatasetSummary":
        m: Callable[..., Any] = lambda n: _need(d, n, dict, where)  # noqa: E731
        num: Callable[..., Any] = lambda n: _need(d, n, (int, float), where, True)  # noqa: E731
        return cls(videos=m("videos"), categories=m("categories"), overall=m("overall"), pooled=m("pooled"),
                   counts=m("counts"), average_precision=num("average_precision"),
                   best_threshold=num("best_threshold"), best_f=num("best_f"),
                   output_levels=_need(d, "output_levels", int, where, True) or 0, fps_median=num("fps_median"))


@dataclass(frozen=True)
class Summary:
    """A method label under one protocol key: per-dataset numbers, failures by dataset
    (``[{video, split, error}]``), the median fps over its ok jobs, job counts. A label whose
    every job failed keeps its entry, with no datasets, so reports list it."""

    label: str
    method: str
    config: str
    family: str
    protocol: str
    protocol_key: str
    datasets: Mapping[str, DatasetSummary]
    failures: Mapping[str, tuple[Mapping[str, Any], ...]]
    fps_median: float | None
    jobs_ok: int
    jobs_failed: int
    jobs_truncated: int = 0  # scored, in the numbers, but their training was cut short by the clock
    degenerate: Mapping[str, str] = field(default_factory=dict)  # video -> why its output is degenerate

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "method": self.method, "config": self.config, "family": self.family,
                "protocol": self.protocol, "protocol_key": self.protocol_key,
                "datasets": {k: v.to_json() for k, v in self.datasets.items()},
                "failures": {k: [dict(f) for f in v] for k, v in self.failures.items()},
                "fps_median": self.fps_median, "jobs_ok": self.jobs_ok, "jobs_failed": self.jobs_failed,
                "jobs_truncated": self.jobs_truncated, "degenerate": dict(self.degenerate)}

    @classmethod
    def from_json(cls, d: Any, where: str) -> "Summary":
        s: Callable[..., Any] = lambda n: _need(d, n, str, where)  # noqa: E731
        ds = _need(d, "datasets", dict, where)
        fails = _need(d, "failures", dict, where)
        return cls(label=s("label"), method=s("method"), config=s("config"), family=_need(d, "family", str, where, True) or "",
                   protocol=s("protocol"), protocol_key=s("protocol_key"),
                   datasets={k: DatasetSummary.from_json(v, f"{where}.datasets.{k}") for k, v in ds.items()},
                   failures={k: tuple(v) for k, v in fails.items()},
                   fps_median=_need(d, "fps_median", (int, float), where, True),
                   jobs_ok=_need(d, "jobs_ok", int, where), jobs_failed=_need(d, "jobs_failed", int, where),
                   jobs_truncated=_need(d, "jobs_truncated", int, where, True) or 0,
                   degenerate=_need(d, "degenerate", dict, where, True) or {})


@dataclass(frozen=True)
class RunMeta:
    """What produced a run: the methods' resolved parameters, families and code fingerprints,
    the protocols (key -> name and options), data, videos, skips with reasons, device, seed,
    threshold, executor and thread setting, versions, machine, git, times."""

    created: str
    run_id: str
    device: str
    seed: int
    threshold: float
    methods: Mapping[str, Mapping[str, Any]]  # method name -> resolved parameters
    families: Mapping[str, str]  # method name -> family
    configs: Mapping[str, str]  # method name -> config
    code: Mapping[str, Any]
    protocols: Mapping[str, Mapping[str, Any]]  # protocol key -> {"name", options...}
    data: tuple[str, ...]
    videos: tuple[str, ...]
    skipped: tuple[Mapping[str, Any], ...] = ()
    notes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    suite: str | None = None
    config: str | None = None  # the config asked for (each method's resolved one is in ``configs``)
    executor: str = "local"
    jobs: int = 1
    threads: int = 1
    deep_threads: int = 1  # torch threads of the deep methods' jobs (RunOptions.deep_threads)
    git: str | None = None
    versions: Mapping[str, str | None] = field(default_factory=dict)
    machine: Mapping[str, Any] = field(default_factory=dict)
    wall_seconds: float | None = None
    started: float | None = None
    finished: float | None = None
    experiment: Mapping[str, Any] | None = None  # the experiment file the run came from: {file, sha1, text}
    digests: Mapping[str, str] = field(default_factory=dict)  # video id -> provenance.data_digest (its bytes' hash)

    def to_json(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "experiment" and v is None:
                continue  # a run from the command line alone: its record is as before
            out[f.name] = (dict(v) if isinstance(v, Mapping) else [dict(x) if isinstance(x, Mapping) else x for x in v]
                           if isinstance(v, tuple) else v)
        return out

    @classmethod
    def from_json(cls, d: Any, where: str = "meta") -> "RunMeta":
        need: Callable[..., Any] = lambda n, k, opt=False: _need(d, n, k, where, opt)  # noqa: E731
        kw: dict[str, Any] = dict(
            created=need("created", str), run_id=need("run_id", str), device=need("device", str),
            seed=need("seed", int), threshold=need("threshold", float), methods=need("methods", dict),
            families=need("families", dict), configs=need("configs", dict), code=need("code", dict),
            protocols=need("protocols", dict), data=tuple(need("data", list)), videos=tuple(need("videos", list)),
            skipped=tuple(need("skipped", list, True) or ()),
            notes={k: tuple(v) for k, v in (need("notes", dict, True) or {}).items()},
            suite=need("suite", str, True), config=need("config", str, True),
            executor=need("executor", str, True) or "local", jobs=need("jobs", int, True) or 1,
            threads=need("threads", int, True) or 1, deep_threads=need("deep_threads", int, True) or 1,
            git=need("git", str, True),
            versions=need("versions", dict, True) or {}, machine=need("machine", dict, True) or {},
            wall_seconds=need("wall_seconds", float, True), started=need("started", float, True),
            finished=need("finished", float, True), experiment=need("experiment", dict, True),
            digests=need("digests", dict, True) or {})
        return cls(**kw)


@dataclass(frozen=True)
class Results:
    """A run's whole record: ``meta``, every job, and the summaries keyed by (label,
    protocol key)."""

    meta: RunMeta
    jobs: tuple[JobRecord, ...]
    summaries: Mapping[tuple[str, str], Summary]
    schema_version: int = SCHEMA_VERSION

    # --- reading -------------------------------------------------------------------------
    def labels(self) -> list[str]:
        return sorted({label for label, _ in self.summaries})

    def protocol_keys(self) -> list[str]:
        return sorted({key for _, key in self.summaries})

    def summary(self, label: str, protocol_key: str) -> Summary | None:
        return self.summaries.get((label, protocol_key))

    def under(self, protocol_key: str) -> list[Summary]:
        """Every label's summary under one protocol key, in label order."""
        return [s for (_, k), s in sorted(self.summaries.items()) if k == protocol_key]

    def jobs_of(self, label: str | None = None, protocol_key: str | None = None, ok: bool | None = None
                ) -> Iterator[JobRecord]:
        for j in self.jobs:
            if ((label is None or j.key.label == label) and (protocol_key is None or j.key.protocol_key == protocol_key)
                    and (ok is None or j.ok == ok)):
                yield j

    def frame(self) -> pandas.DataFrame:
        """One pandas row per job: label, method, config, family, protocol, protocol key,
        dataset, category, video, split, status, error, frames, every metric, fps
        (``bgbench.records.frame``; pandas is imported only here)."""
        from bgbench.records.frame import frame

        return frame(self)

    def family(self, label: str) -> str:
        """The label's family: as its jobs recorded it (the summary's), else ``meta.families``."""
        s = next((s for (lab, _), s in self.summaries.items() if lab == label), None)
        return (s.family if s else "") or (self.meta.families.get(s.method, "") if s else "")

    # --- JSON ----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        nested: dict[str, dict[str, Any]] = {}
        for (label, key), s in sorted(self.summaries.items()):
            nested.setdefault(label, {})[key] = s.to_json()
        return {"schema_version": self.schema_version, "meta": self.meta.to_json(),
                "jobs": [j.to_json() for j in self.jobs], "summary": nested}

    @classmethod
    def from_json(cls, d: Any, where: str | Path = "results.json") -> "Results":
        where = str(where)
        version = d.get("schema_version") if isinstance(d, dict) else None
        if version not in READABLE_SCHEMAS:
            raise BadInput(f"is a results record of schema {version!r}; this bgbench reads schema {SCHEMA_VERSION}",
                           where, "re-run with this bgbench version (job files are reused: only new work is computed)")
        jobs = tuple(JobRecord.from_json(j, f"{where}: jobs[{i}]") for i, j in enumerate(_need(d, "jobs", list, where)))
        summaries: dict[tuple[str, str], Summary] = {}
        for label, per in _need(d, "summary", dict, where).items():
            if not isinstance(per, dict):
                raise BadInput(f"{where}: summary.{label} is not an object", where, "re-run with this bgbench version")
            for key, s in per.items():
                summaries[(label, key)] = Summary.from_json(s, f"{where}: summary.{label}.{key}")
        return cls(meta=RunMeta.from_json(_need(d, "meta", dict, where), f"{where}: meta"), jobs=jobs,
                   summaries=summaries)
