"""``bgbench check``: the CI regression gate. Compares a run's per-method, per-category
F-measure and machine-normalised speed with a stored reference.

Speed is normalised by the reference workload timed in the same run
(``perf.reference_workload_seconds``): ``fps x reference seconds`` is frames per unit of
this machine's speed, so a slower CI machine is not a regression. A regression is an F
below the reference by more than ``f_tol``, a normalised speed below the reference by
more than the fraction ``speed_tol``, or a reference entry missing from the run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .errors import BadInput
from .results import read_json, write_json

REF_SCHEMA = "bgbench-reference/1"


def reference_from(results: dict) -> dict[str, Any]:
    ref_s = results["meta"].get("reference_seconds")
    entries: dict[str, Any] = {}
    for method, per in results["summary"].items():
        for proto, s in per.items():
            for ds, d in s["datasets"].items():
                f = {c: m["f_measure"] for c, m in d["categories"].items()}
                f["overall"] = d["overall"]["f_measure"]
                fps = d.get("fps_median")
                entries.setdefault(method, {}).setdefault(proto, {})[ds] = {
                    "f_measure": f, "fps": fps, "speed_normalized": fps * ref_s if fps and ref_s else None}
    return {"schema": REF_SCHEMA, "reference_seconds": ref_s, "git": results["meta"].get("git"), "entries": entries}


def _bad(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def compare(results: dict, reference: dict, f_tol: float = 0.01, speed_tol: float = 0.25) -> list[dict[str, Any]]:
    """One row per compared figure: what, reference, current, delta, status (ok|better|REGRESSION|missing)."""
    cur = reference_from(results)["entries"]
    rows = []
    for method, per in reference["entries"].items():
        for proto, per_ds in per.items():
            for ds, ref in per_ds.items():
                now = cur.get(method, {}).get(proto, {}).get(ds)
                where = f"{method} {proto} {ds}"
                if now is None:
                    rows.append({"what": where, "metric": "all", "reference": None, "current": None, "delta": None,
                                 "status": "REGRESSION (missing from the run)"})
                    continue
                for cat, f_ref in ref["f_measure"].items():
                    f_now = now["f_measure"].get(cat)
                    if _bad(f_ref):
                        continue
                    delta = None if _bad(f_now) else f_now - f_ref
                    status = ("REGRESSION" if delta is None or delta < -f_tol else
                              "better" if delta > f_tol else "ok")
                    rows.append({"what": where, "metric": f"F {cat}", "reference": f_ref, "current": f_now,
                                 "delta": delta, "status": status})
                s_ref, s_now = ref.get("speed_normalized"), now.get("speed_normalized")
                if not _bad(s_ref) and s_ref:
                    rel = None if _bad(s_now) else s_now / s_ref - 1.0
                    status = ("REGRESSION" if rel is None or rel < -speed_tol else
                              "better" if rel > speed_tol else "ok")
                    rows.append({"what": where, "metric": "speed (normalised, relative)", "reference": s_ref,
                                 "current": s_now, "delta": rel, "status": status})
    return rows


def load_reference(path: Path) -> dict:
    ref = read_json(path)
    if not isinstance(ref, dict) or ref.get("schema") != REF_SCHEMA:
        raise BadInput(f"is not a bgbench reference ({REF_SCHEMA})", path, "write one with bgbench check RUN_DIR --reference FILE --update")
    return ref


def update(results: dict, path: Path) -> None:
    write_json(path, reference_from(results))
