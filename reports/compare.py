"""``bgbench compare RUN_A RUN_B``: two runs side by side, per method label, protocol key
and dataset.

- Metric deltas: each overall metric (the tables' overall: the mean of the category means)
  and average precision, as B - A (B is the newer run by convention: a positive F delta
  means B is better).
- A paired test of overall F on the videos both runs scored for that method, protocol key
  and dataset: the leaderboard's two-sided sign-flip test
  (``bgbench.reports.leaderboard.paired_test``; per-video F differences, averaged within
  categories, then over categories; exact up to 16 videos, else 20000 random flips seeded
  with run A's seed), with n (shared videos) and the p-value, and Holm's adjustment over
  all the comparisons made. Fewer than 3 shared videos: no test ("n too small"); none
  shared: "no shared videos". A video is paired only where both runs scored the same bytes
  (``meta.digests``, where both runs recorded them) on as many frames; others are left out,
  with a note. Where A and B are over different videos, a note says that the metric
  deltas compare means over different sets.
- A method, protocol key or dataset in one run only is listed with "only in A" / "only in
  B". Protocol keys match exactly (name and every option, the seed too): two keys test
  different pixels. Runs that share no video at all say so (``note``).

Formats: Markdown (the F columns and every delta), CSV (A, B and the delta of every metric,
full precision) and JSON (everything)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bgbench.records.results import clean
from bgbench.records.types import Results

from .leaderboard import MIN_UNITS, TOO_SMALL, _p, _signed, holm, paired_test
from .tables import METRICS, _nan, markdown, to_csv

KEYS = [key for _, key, _ in METRICS] + ["average_precision"]
SHORT = {key: label for label, key, _ in METRICS} | {"average_precision": "AP"}
NO_SHARED = "no shared videos"


def _entries(res: Results) -> dict[tuple[str, str, str], Any]:
    """(label, protocol key, dataset) -> (summary, dataset summary or None where every job failed)."""
    out: dict[tuple[str, str, str], Any] = {}
    for (label, key), s in res.summaries.items():
        for ds, d in s.datasets.items():
            out[(label, key, ds)] = (s, d)
        for ds in s.failures:
            out.setdefault((label, key, ds), (s, None))
    return out


def _overall(d: Any) -> dict[str, float | None]:
    if d is None:
        return {k: None for k in KEYS}
    vals: dict[str, float | None] = {k: d.overall.get(k) for k in KEYS if k != "average_precision"}
    vals["average_precision"] = None if d.binary else d.average_precision
    return vals


def _frames(res: Results) -> dict[tuple[str, str, str], int]:
    """(label, protocol key, video) -> the frames its ok job scored."""
    return {(j.key.label, j.key.protocol_key, j.key.video): j.frames for j in res.jobs if j.ok}


def _unlike(a: Results, b: Results, fa: dict, fb: dict, label: str, proto: str, videos: set[str]) -> list[str]:
    """The videos of ``videos`` that the runs scored on different bytes (``meta.digests``,
    where both runs recorded one) or on a different number of frames (``fa``, ``fb``: each
    run's ``_frames``): no pair."""
    da, db = a.meta.digests, b.meta.digests
    return sorted(v for v in videos if (v in da and v in db and da[v] != db[v])
                  or fa.get((label, proto, v)) != fb.get((label, proto, v)))


def compare_runs(a: Results, b: Results) -> dict[str, Any]:
    """The comparison of run B against run A (see the module's docstring)."""
    ea, eb = _entries(a), _entries(b)
    frames_a, frames_b = _frames(a), _frames(b)  # once, not per row
    rows = []
    notes = []
    for key in sorted(set(ea) | set(eb)):
        label, proto, ds = key
        sa, da = ea.get(key, (None, None))
        sb, db = eb.get(key, (None, None))
        s = sa or sb
        va, vb = _overall(da), _overall(db)
        metrics = {k: {"a": va[k], "b": vb[k],
                       "delta": None if _nan(va[k]) or _nan(vb[k]) else vb[k] - va[k]}  # type: ignore[operator]  # _nan: not None
                   for k in KEYS}
        fa = {v: m.get("f_measure") for v, m in (da.videos.items() if da else ())}
        fb = {v: m.get("f_measure") for v, m in (db.videos.items() if db else ())}
        status = "both" if sa and sb else "only in A" if sa else "only in B"
        row: dict[str, Any] = {"method": label, "protocol_key": proto, "protocol": s.protocol, "dataset": ds,
                               "status": status, "videos_a": len(fa), "videos_b": len(fb), "metrics": metrics,
                               "paired": None}
        if status == "both":
            where = f"{label} {proto} {ds}"
            unlike = _unlike(a, b, frames_a, frames_b, label, proto, set(fa) & set(fb))
            if unlike:  # the same id on other bytes or frames: a pair would compare different tests
                notes.append(f"{where}: {len(unlike)} video(s) were scored on different data or frames in A and B "
                             f"({', '.join(unlike[:3])}{', ...' if len(unlike) > 3 else ''}): left out of the paired "
                             "test.")
                fa = {v: f for v, f in fa.items() if v not in unlike}
                fb = {v: f for v, f in fb.items() if v not in unlike}
            if set(fa) != set(fb) or unlike:
                only_a, only_b = len(set(fa) - set(fb)), len(set(fb) - set(fa))
                notes.append(f"{where}: A and B are over different videos (only in A: {only_a}, only in B: {only_b}"
                             + (f", unlike: {len(unlike)}" if unlike else "") + "): the metric deltas compare means "
                             "over different sets; the paired test uses the videos both scored alike.")
            t = paired_test(fb, fa, seed=a.meta.seed)
            if t["videos"] == 0:
                t["note"] = NO_SHARED
            row["paired"] = t
        rows.append(row)
    tests = [r["paired"] for r in rows if r["paired"]]
    for t, adj in zip(tests, holm([t["p_value"] for t in tests])):
        t["p_holm"] = adj
    vids_a = {j.key.video for j in a.jobs if j.ok}
    vids_b = {j.key.video for j in b.jobs if j.ok}
    shared = vids_a & vids_b
    if not shared:
        notes.append(f"The runs share no video (A scored {len(vids_a)}, B {len(vids_b)}): no paired test can be made.")
    for name, x, y in (("threshold", a.meta.threshold, b.meta.threshold), ("seed", a.meta.seed, b.meta.seed)):
        if x != y:
            notes.append(f"The runs' {name} differs: A {x}, B {y}.")
    return {"a": a.meta.run_id, "b": b.meta.run_id, "delta": "B - A", "shared_videos": len(shared),
            "rows": rows, "notes": notes,
            "test": ("two-sided paired sign-flip test of overall F on the videos both runs scored (the "
                     f"leaderboard's); no test below {MIN_UNITS} shared videos ({TOO_SMALL}); Holm's adjustment "
                     "over all comparisons")}


def _test_cells(r: dict) -> list[Any]:
    t = r["paired"]
    if t is None:
        return [None, 0, None, None, r["status"]]
    return [t["difference"] if t["videos"] else None, t["videos"], t["p_value"], t.get("p_holm"),
            t["note"] or t["test"]]


def table(comp: dict, full: bool = False) -> tuple[list[str], list[list[Any]]]:
    """(header, rows): per method, protocol key and dataset, the F of A and B, every metric's
    delta (``full``: A, B and delta of every metric) and the paired test."""
    header = ["method", "protocol", "dataset", "videos A", "videos B"]
    if full:
        header += [f"{SHORT[k]} {x}" for k in KEYS for x in ("A", "B", "delta")]
    else:
        header += ["F A", "F B"] + [f"Δ{SHORT[k]}" for k in KEYS]
    header += ["paired ΔF", "n", "p", "p (Holm)", "test"]
    rows = []
    for r in comp["rows"]:
        m = r["metrics"]
        cells = [r["method"], r["protocol_key"], r["dataset"], r["videos_a"], r["videos_b"]]
        if full:
            cells += [m[k][x] for k in KEYS for x in ("a", "b", "delta")]
        else:
            cells += [m["f_measure"]["a"], m["f_measure"]["b"]] + [m[k]["delta"] for k in KEYS]
        rows.append(cells + _test_cells(r))
    return header, rows


def render(comp: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(clean(comp), indent=1, allow_nan=False) + "\n"
    if fmt == "csv":
        return to_csv(*table(comp, full=True))
    h, rows = table(comp)
    signed = [i for i, c in enumerate(h) if c.startswith(("Δ", "paired Δ"))]
    for r in rows:  # deltas with their sign; p-values as the leaderboard prints them
        for c in ("p", "p (Holm)"):
            r[h.index(c)] = _p(r[h.index(c)]) if r[h.index(c)] is not None else None
        for i in signed:
            r[i] = None if _nan(r[i]) else _signed(r[i])
    kinds = [{"videos A": "int", "videos B": "int", "F A": "metric", "F B": "metric", "n": "int"}.get(c, "text")
             for c in h]
    lines = [f"Run B ({comp['b']}) against run A ({comp['a']}): deltas are B - A; {comp['shared_videos']} "
             f"video(s) scored in both.", "", markdown(h, rows, kinds), "", f"Paired test: {comp['test']}."]
    lines += [""] + comp["notes"] if comp["notes"] else []
    return "\n".join(lines) + "\n"


def write(text: str, out: Path | None) -> None:
    if out is None:
        print(text, end="")
        return
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
