"""Experiment files: a run described in TOML (read with the standard library's ``tomllib``),
``bgbench run --experiment FILE``. docs/experiments.md describes the format; in short::

    # every top-level key is optional
    seed = 0
    threshold = 0.5
    data = ["../shared/data/CDnet2014", "../shared/data/SBI2015"]
    out = "runs/paper_table"
    roi_policy = "ignore"

    [methods.gmm_zivkovic]            # in this order; config and set (parameter overrides) optional
    set = { history = 200 }
    [methods.knn]
    [methods.crossnet]
    config = "cpu"

    [[protocols]]                     # in this order; options as on the command line
    name = "full"
    [[protocols]]
    name = "scene-specific"
    rule = "n:200"

Precedence: bgbench's defaults < the file < options given explicitly on the command line (an
option left at its default on the command line does not override the file). ``--methods``
replaces the file's list (a method in both keeps the file's config and ``set``); ``--set``
adds to or overrides the file's ``set``; ``--config`` overrides every method's config;
``--protocol`` replaces the file's protocols; ``--rule``, ``--folds``, ... apply to every
protocol and win over the file's options. Relative paths (``data``, ``out``) are taken from
the folder bgbench runs in, as on the command line.

An unknown key anywhere, a value of the wrong type, or an option a protocol does not take is
refused (BadInput naming the key and the file). The file's text, name and SHA-1 go into the
run's ``meta.experiment`` (results.json) and the MLflow parent (``experiment.toml`` artifact,
``experiment.*`` parameters).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from bgbench.errors import BadInput

# key -> (RunConfig field, accepted types, what to write)
TOP: dict[str, tuple[str, tuple[type, ...], str]] = {
    "suite": ("suite", (str,), 'a suite name, e.g. "quick"'),
    "config": ("config", (str,), 'every method\'s config, e.g. "smoke"'),
    "data": ("data", (list, str), 'a list of folders, e.g. ["../shared/data/CDnet2014"], or "synthetic"'),
    "format": ("data_format", (str,), 'a layout, e.g. "auto" or "cdnet2014"'),
    "roi_policy": ("roi_policy", (str,), '"error", "ignore" or "from-groundtruth"'),
    "on_bad_data": ("on_bad_data", (str,), '"error" or "skip"'),
    "out": ("out", (str,), 'a run folder, e.g. "runs/paper_table"'),
    "device": ("device", (str,), '"auto", "cpu", "cuda" or "cuda:N"'),
    "seed": ("seed", (int,), "an integer, e.g. 0"),
    "threshold": ("threshold", (float, int), "a number in [0, 1], e.g. 0.5"),
    "save_masks": ("save_masks", (bool,), "true or false"),
    "jobs": ("jobs", (int,), "an integer >= 1"),
    "executor": ("executor", (str,), '"local" or "dask"'),
    "scheduler": ("scheduler", (str,), 'a Dask scheduler address, e.g. "tcp://127.0.0.1:8786"'),
    "threads": ("threads", (int,), "an integer >= 1"),
    "deep_threads": ("deep_threads", (int,), "an integer >= 1"),
    "video_batch": ("video_batch", (int,), "an integer >= 1"),
    "report": ("report", (bool,), "true or false"),
    "tracking": ("tracking", (bool,), "true or false"),
    "tracking_uri": ("tracking_uri", (str,), 'an MLflow URI, e.g. "sqlite:///mlflow.db"'),
    "paper_protocols": ("paper_protocols", (bool,), "true or false"),
}
SECTIONS = ("methods", "protocols")
METHOD_KEYS = ("config", "set")


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment file: ``fields`` (RunConfig keyword arguments), the methods in
    order with their config and overrides, the protocols in order with their options."""

    path: Path
    text: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    methods: tuple[tuple[str, str | None, Mapping[str, Any]], ...] = ()  # (name, config or None, set)
    protocols: tuple[tuple[str, Mapping[str, Any]], ...] = ()  # (name, options)

    @property
    def record(self) -> dict[str, Any]:
        """What the run's ``meta.experiment`` holds: the file's name, SHA-1 and text."""
        return {"file": self.path.name, "sha1": hashlib.sha1(self.text.encode()).hexdigest(), "text": self.text}


def _bad(what: str, path: Path, fix: str) -> BadInput:
    return BadInput(what, path, fix)


def _typed(key: str, value: Any, types: tuple[type, ...], eg: str, path: Path, where: str = "") -> Any:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        raise _bad(f"{where}{key} = {value!r} is a {type(value).__name__}; it must be {eg}", path,
                   f"write {key} as {eg}")
    return value


def load(path: str | Path) -> Experiment:
    """Read and check an experiment file (BadInput naming the key and the file)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the standard library reads TOML from 3.11
        raise BadInput("needs Python 3.11 or later (the standard library's tomllib reads it)", path,
                       "run bgbench with Python >= 3.11, or give the options on the command line") from None

    path = Path(path)
    if not path.is_file():
        raise _bad("is not a file", path, "give --experiment a TOML file, e.g. docs/experiments/paper_table.toml")
    try:
        text = path.read_text(encoding="utf-8")
        doc = tomllib.loads(text)
    except UnicodeDecodeError:
        raise _bad("is not UTF-8 text", path, "save the experiment file as UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as e:
        raise _bad(f"is not valid TOML: {e}", path, "fix the TOML syntax (https://toml.io)") from None
    fields: dict[str, Any] = {}
    for key, value in doc.items():
        if key in SECTIONS:
            continue
        if key not in TOP:
            raise _bad(f"unknown key {key!r}", path, f"use {', '.join([*TOP, *SECTIONS])}")
        name, types, eg = TOP[key]
        _typed(key, value, types, eg, path)
        if key == "data":
            items = [value] if isinstance(value, str) else value
            if not items or not all(isinstance(x, str) and x for x in items):
                raise _bad(f"data = {value!r} must name folders", path, f"write data as {TOP['data'][2]}")
            value = tuple(items)
        elif key == "threshold":
            value = float(value)
        _check_value(key, value, path)
        fields[name] = value
    return Experiment(path, text, fields, _methods(doc.get("methods"), path), _protocols(doc.get("protocols"), path))


CHOICES = {"roi_policy": ("error", "ignore", "from-groundtruth"), "on_bad_data": ("error", "skip"),
           "executor": ("local", "dask")}


def _check_value(key: str, value: Any, path: Path) -> None:
    """The ranges and choices the command line checks, here naming the file's key."""
    from bgbench.params import MAX_SEED

    bad = None
    if key in CHOICES and value not in CHOICES[key]:
        bad = f"one of {', '.join(CHOICES[key])}"
    elif key == "threshold" and not 0 <= value <= 1:
        bad = "a number in [0, 1]"
    elif key == "seed" and not 0 <= value <= MAX_SEED:
        bad = f"an integer in [0, {MAX_SEED}]"
    elif key in ("jobs", "threads", "deep_threads", "video_batch") and value < 1:
        bad = "an integer >= 1"
    elif key == "device":
        from bgbench.execution.device import validate

        try:
            validate(value)
        except BadInput:
            bad = "auto, cpu, cuda or cuda:N"
    if bad:
        raise _bad(f"{key} = {value!r} is not {bad}", path, f"write {key} as {bad}")


def _methods(section: Any, path: Path) -> tuple[tuple[str, str | None, Mapping[str, Any]], ...]:
    if section is None:
        return ()
    if not isinstance(section, dict):
        raise _bad("methods must be tables, one per method: [methods.NAME]", path,
                   "write e.g. [methods.knn] with optional config = ... and set = { ... }")
    from bgbench.method import METHODS

    out = []
    for name, body in section.items():
        if name not in METHODS:
            try:
                METHODS.entry(name)  # BadInput: unknown method, with its close matches
            except BadInput as e:
                raise _bad(f"[methods.{name}]: {e.what}", path, e.fix or "use a name `bgbench list` prints") from None
        if not isinstance(body, dict):
            raise _bad(f"methods.{name} must be a table ([methods.{name}])", path,
                       f"write [methods.{name}] with optional config = ... and set = {{ ... }}")
        unknown = sorted(set(body) - set(METHOD_KEYS))
        if unknown:
            raise _bad(f"unknown key {unknown[0]!r} in [methods.{name}]", path,
                       f"use {' and '.join(METHOD_KEYS)} (parameters go in set = {{ ... }})")
        config = body.get("config")
        if config is not None:
            _typed("config", config, (str,), 'a config name, e.g. "cpu"', path, f"methods.{name}.")
        sets = body.get("set", {})
        if not isinstance(sets, dict):
            raise _bad(f"methods.{name}.set must be a table of parameter values", path,
                       f"write set = {{ param = value }} under [methods.{name}]")
        for k, v in sets.items():
            if isinstance(v, (dict, list)) and not (isinstance(v, list) and all(not isinstance(x, (dict, list))
                                                                                for x in v)):
                raise _bad(f"methods.{name}.set.{k} is a {type(v).__name__}", path,
                           "give a number, text, true/false or a list of them")
        out.append((name, config, {k: tuple(v) if isinstance(v, list) else v for k, v in sets.items()}))
    return tuple(out)


def _protocols(section: Any, path: Path) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    if section is None:
        return ()
    if not isinstance(section, list) or not all(isinstance(p, dict) for p in section):
        raise _bad("protocols must be an array of tables: [[protocols]] with name = ...", path,
                   'write [[protocols]] then name = "full" (and its options) for each protocol')
    from dataclasses import fields as dc_fields

    from bgbench.protocols import PROTOCOLS

    out = []
    for k, body in enumerate(section):
        name = body.get("name")
        if not isinstance(name, str):
            raise _bad(f"protocols[{k}] has no name", path, f'add name = "..." ({", ".join(PROTOCOLS.names())})')
        try:
            cls = PROTOCOLS.get(name)  # BadInput for an unknown protocol
        except BadInput as e:
            raise _bad(f"protocols[{k}]: {e.what}", path, e.fix or f"use one of {', '.join(PROTOCOLS.names())}") from None
        taken = {f.name for f in dc_fields(cls)} - {"seed"}  # the seed is the experiment's
        unknown = sorted(set(body) - taken - {"name"})
        if unknown:
            raise _bad(f"unknown key {unknown[0]!r} in protocol {name} (protocols[{k}])", path,
                       f"{name} takes {', '.join(sorted(taken)) or 'no option'}; the seed is set at the top")
        opts = {o: tuple(v) if isinstance(v, list) else v for o, v in body.items() if o != "name"}
        out.append((name, opts))
    return tuple(out)


def run_config(exp: Experiment, cli: Mapping[str, Any] | None = None):
    """The RunConfig of ``exp`` with the command line's explicit options on top. ``cli``:
    RunConfig keyword arguments the command line gave explicitly, plus ``methods`` (names),
    ``overrides`` ({method: {param: value}}) and ``protocol_options`` (the explicit ones)."""
    from bgbench.api import RunConfig
    from bgbench.records.types import MethodSpec

    cli = dict(cli or {})
    names = list(cli.pop("methods", None) or [m for m, _, _ in exp.methods])
    own = {m: (c, s) for m, c, s in exp.methods}
    overrides = cli.pop("overrides", None) or {}
    cli_config = cli.get("config")
    specs = []
    for m in names:
        config, sets = own.get(m, (None, {}))
        merged = {**sets, **overrides.get(m, {})}
        config = "default" if cli_config is not None or config is None else config
        specs.append(MethodSpec(m, config, tuple(sorted(merged.items()))))
    stray = sorted(set(overrides) - set(names))
    if stray:
        raise BadInput(f"{stray[0]!r} is not among the methods", "--set", f"use one of {', '.join(names)}")
    kw = {**exp.fields, **cli}
    if "protocols" not in cli and exp.protocols:
        kw["protocols"] = tuple(exp.protocols)
    if kw.get("out") is not None:
        kw["out"] = Path(kw["out"])
    return RunConfig(methods=tuple(specs), experiment=exp.record, **kw)
