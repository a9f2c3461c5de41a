"""The deep methods' tables, written from records and from the methods themselves, never by hand.

    python -m tests.perf.deep_results [--run runs/paper_cpu] [--write]

1. Results: every deep method's summary in the run folder (the paper suite's ``cpu`` configs
   on the CDnet2014 scenes of ../shared/data: ``RUN`` below), one row per method and protocol:
   videos, job statuses, steps trained of configured per stage (untruncated only when every
   stage ran all its steps), training minutes, F (the mean of the category means, the CDnet
   rule), recall, precision, average precision, degenerate outputs, and the published mean over
   the same categories where the protocol is the paper's (``reports.published.compare``: same
   protocol, options and, for a frame list, the same frames), else why not.
2. Parameters and FLOPs of every deep method's ``paper`` config at its paper's input size
   (``Method.describe``: the modules' parameter counts, torch's FLOP counter).

Prints both as Markdown; ``--write`` also puts table 1 into README.md and table 2 into
docs/methods.md, between their ``<!-- deep-results -->`` / ``<!-- deep-size -->`` markers.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEEP = ("bmn_bsn", "cdn_medal", "crossnet", "siamese_fcn", "two_stage_cnn")
RUN = ("bgbench run --suite paper --config cpu --data ../shared/data/CDnet2014 --on-bad-data skip --jobs 1 "
       "--threads 1 --out runs/paper_cpu --no-tracking")


def _f(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _training(jobs) -> tuple[str, float, bool]:
    """Steps per stage (trained of configured, over the task's fits), training minutes (one
    fit per split), and whether every stage ran all its steps."""
    per_split: dict[str, Any] = {}
    for j in jobs:
        if j.training and j.key.split not in per_split:
            per_split[j.key.split] = (j.training, (j.timing or {}).get("fit_seconds") or 0.0)
    stages: dict[str, list[tuple[int, int]]] = defaultdict(list)
    complete = bool(per_split)
    for training, _ in per_split.values():
        for st in training.get("stages") or ():
            stages[st["name"]].append((st["steps_trained"], st["steps_configured"]))
            complete &= st["stopped_by"] == "steps" and st["steps_trained"] == st["steps_configured"]
    text = ", ".join(f"{name} {min(t for t, _ in v):,}/{max(c for _, c in v):,}" for name, v in stages.items())
    fits = len(per_split)
    minutes = sum(s for _, s in per_split.values()) / 60
    return (f"{fits} fit{'s' if fits != 1 else ''}: {text}" if text else "-"), minutes, complete


def results_table(run: Path) -> str:
    from bgbench.records.results import load_results
    from reports.published import MISSING, compare

    res = load_results(run)
    lines = ["| method | protocol | videos | jobs | training (steps trained/configured) | train min | F | recall | "
             "precision | AP | published F, same categories (source) |",
             "|---|---|---:|---|---|---:|---:|---:|---:|---:|---|"]
    notes: list[str] = []
    for (label, key), s in sorted(res.summaries.items()):
        if s.method not in DEEP:
            continue
        d = s.datasets.get("CDnet2014")
        jobs = list(res.jobs_of(label, key))
        steps, minutes, complete = _training(jobs)
        status = f"{s.jobs_ok} ok" + (f", {s.jobs_truncated} truncated" if s.jobs_truncated else "") + (
            f", {s.jobs_failed} failed" if s.jobs_failed else "")
        if s.degenerate:
            status += f", {len(s.degenerate)} degenerate"
        pub = "-"
        comp = compare(res, key, "CDnet2014")
        for row in comp["rows"]:
            h = dict(zip(comp["header"], row))
            if h["method"] == label and h["metric"] == "f_measure":
                if h["mean published (same categories)"] is not None:
                    pub = (f"{_f(h['mean published (same categories)'])} (ours {_f(h['mean ours'])} on those "
                           f"categories; {h['published in']})")
                else:  # the paper prints an overall only (crossnet: pooled over every CDnet2014 frame)
                    pub = (f"{_f(h['published overall'])} overall (ours {_f(h['ours overall (as published)'])} formed "
                           f"the paper's way; {h['published in']})")
        if pub == "-":
            why = MISSING.get((s.method, s.protocol))
            pub = f"none: {why}" if why else "none: the run's protocol is not the one the paper reports"
        o = d.overall if d else {}
        proto = key.split("[", 1)[0] + ("[" + key.split("[", 1)[1] if "rule=" in key or "fraction=" in key else "")
        proto = re.sub(r"seed=0,?", "", proto).replace(",frames=", " frames ")
        lines.append(f"| {label} | {proto} | {len(d.videos) if d else 0} | {status} | {steps}"
                     f"{'' if complete else ' (NOT all steps)'} | {minutes:.1f} | {_f(o.get('f_measure'))} | "
                     f"{_f(o.get('recall'))} | {_f(o.get('precision'))} | {_f(d.average_precision if d else None)} | "
                     f"{pub} |")
        notes += [f"{label}: {v}: {why}" for v, why in sorted(s.degenerate.items())]
    meta = res.meta
    out = "\n".join(lines)
    wall = getattr(meta, "wall_seconds", None)
    out += f"\n\nCommand: `{RUN}`; then `python -m tests.perf.deep_results --write`."
    out += (f" Run {meta.run_id} ({meta.created}), device {meta.device}, seed {meta.seed}, threshold "
            f"{meta.threshold}, --jobs {meta.jobs} --threads {meta.threads}"
            + (f", {wall / 60:.0f} minutes wall in all" if wall else "") + ". F, recall, precision: the mean of the category means over the videos the run tested "
            "(CDnet's rule); a published mean is over the same categories' full videos, ours over the clips in "
            "../shared/data, so the gap is not a reproduction claim.")
    if notes:
        out += "\n\nDegenerate outputs (docs/deep.md, section 2): " + "; ".join(notes) + "."
    return out


def size_table() -> str:
    from bgbench.method import build_method

    lines = ["| method | input | parameters | forward GFLOPs |", "|---|---|---:|---|"]
    for name in DEEP:
        m = build_method(name, config="paper", device="cpu")
        d = m.describe()
        params = d.get("parameters", {})
        parts = [f"{k} {v / 1e6:.2f}M" if v >= 1e5 else f"{k} {v:,}" for k, v in params.items() if k != "total"]
        total = params["total"]
        ptext = (f"{total / 1e6:.2f}M" if total >= 1e5 else f"{total:,}") + (f" ({', '.join(parts)})" if parts else "")
        flops = ", ".join(f"{k} {v / 1e9:.2f}" for k, v in d.get("flops", {}).items() if isinstance(v, (int, float))
                          and not k.startswith("speedup"))
        size = m.input_size
        lines.append(f"| `{name}` | {f'{size[0]}x{size[1]}' if size else 'native'} | {ptext} | {flops} |")
    return "\n".join(lines) + ("\n\nWritten by `python -m tests.perf.deep_results --write` from each method's "
                               "`describe()` (parameters counted from the modules; FLOPs by torch's counter, one "
                               "forward pass at the input size).")


def _replace(path: Path, marker: str, body: str) -> None:
    text = path.read_text()
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    if start not in text or end not in text:
        raise SystemExit(f"{path}: no {start} ... {end} block to write into")
    a, b = text.index(start) + len(start), text.index(end)
    path.write_text(text[:a] + "\n" + body + "\n" + text[b:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.perf.deep_results", description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, default=ROOT / "runs" / "paper_cpu")
    ap.add_argument("--write", action="store_true", help="write the tables into README.md and docs/methods.md")
    a = ap.parse_args(argv)
    results, size = results_table(a.run), size_table()
    print(results, "\n", size, sep="\n")
    if a.write:
        _replace(ROOT / "README.md", "deep-results", results)
        _replace(ROOT / "docs" / "methods.md", "deep-size", size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
