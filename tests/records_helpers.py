"""Typed results records made by hand, for the report tests: job records as the runner
writes them (dicts, read through ``JobRecord.from_json``), summarised by
``bgbench.scoring.aggregate.summarize``, under a ``RunMeta`` with the protocols' options."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from bgbench.scoring.aggregate import summarize
from bgbench.records.types import JobRecord, Results, RunMeta

METRIC_NAMES = ("recall", "specificity", "fpr", "fnr", "pwc", "precision", "f_measure", "fpr_shadow", "mcc",
                "mean_dice")


def hist(levels: Mapping[int, tuple[int, int]]) -> dict[str, list[int]]:
    """Histograms from {q: (positives, negatives)}."""
    pos, neg = [0] * 256, [0] * 256
    for q, (p, n) in levels.items():
        pos[q], neg[q] = p, n
    return {"negative": neg, "shadow": [0] * 256, "positive": pos}


SCORED = hist({255: (4, 1), 128: (4, 3), 0: (2, 86)})  # three output levels


def job(method: str, proto: Any, video: str, f: float | None, *, histograms: Mapping | None = None,
        status: str = "ok", error: str | None = None, config: str = "default", family: str = "classical",
        fps: float = 10.0, **extra: Any) -> dict[str, Any]:
    """A job record as the runner writes it, every metric equal to ``f``. ``proto``: a
    ``Protocol`` (its name and key) or a key string whose name is the part before ``[``."""
    key = proto if isinstance(proto, str) else proto.key
    name = key.split("[", 1)[0] if isinstance(proto, str) else proto.name
    rec: dict[str, Any] = {"method": method, "config": config, "family": family, "protocol": name,
                           "protocol_key": key, "split": "s", "video": video, "status": status, "error": error,
                           "fingerprint": "0" * 16}
    if status == "ok":
        rec.update(frames=1, counts={"tp": 10, "fp": 5, "tn": 80, "fn": 5, "shadow_errors": 0, "shadow_pixels": 0},
                   dice={"sum": 0.5, "frames": 1}, histograms=dict(histograms or SCORED),
                   timing={"fps": fps, "device": "cpu"}, metrics={k: f for k in METRIC_NAMES})
    rec.update(extra)
    return rec


def meta(protocols: Iterable[Any] = (), seed: int = 0, skipped: Iterable[Mapping] = (), **kw: Any) -> RunMeta:
    """A run's meta: the protocols' options (``Protocol`` objects), the seed, the skips."""
    fields: dict[str, Any] = dict(
        created="2025-01-01T00:00:00+0000", run_id="test", device="cpu", seed=seed, threshold=0.5, methods={},
        families={}, configs={}, code={},
        protocols={p.key: {"name": p.name, **p.options()} for p in protocols}, data=(), videos=(),
        skipped=tuple(skipped))
    fields.update(kw)
    return RunMeta(**fields)


def results_of(jobs: Iterable[Mapping | JobRecord], protocols: Iterable[Any] = (), seed: int = 0,
               skipped: Iterable[Mapping] = (), **meta_kw: Any) -> Results:
    """Typed results of these job records (dicts as the runner writes them, or JobRecords)."""
    recs = tuple(j if isinstance(j, JobRecord) else JobRecord.from_json(j) for j in jobs)
    return Results(meta=meta(protocols, seed, skipped, **meta_kw), jobs=recs, summaries=summarize(recs))


def through_json(res: Results) -> Results:
    """``res`` written and read back as results.json is (NaN as null, tuples as lists)."""
    import json

    from bgbench.records.results import clean

    return Results.from_json(json.loads(json.dumps(clean(res.to_json()), allow_nan=False)))
