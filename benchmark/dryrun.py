"""``bgbench run --dry-run``: what a run would do, and what its training would cost, before
anything runs. Nothing is trained, segmented, decoded into the cache or written.

The run's own checks and planner are used (``api.prepare``, ``runner.plan``), so the jobs and
splits are the ones the run makes, with one difference: videos are not decoded (a run decodes
and validates every frame first; a video that fails that would be refused, or skipped under
``--on-bad-data skip``, there and not here).

Training cost, per training (a task whose method trains: one model per scene under
scene-specific, per fold, one for sampled or transfer): for each stage, ``steps`` (the
method's configured steps; bmn_bsn's ``epochs`` x frames / batch where ``steps`` is 0) times
the FLOPs of one step, taken as ``3 x forward FLOPs through the modules the stage trains``
(forward + backward, the backward pass ~2x the forward) ``+ forward FLOPs through the modules it
only runs`` (frozen). Forward FLOPs are torch's FLOP counter on the method's own modules
(``Method.training_plan``, the counter ``bgbench info`` prints; 2 FLOPs per multiply-add), at the
method's input size (native-size methods: each training video's size, weighted by its share of
the training frames). Not counted: data loading, the optimiser, validation passes, background
models computed for training, inference on the test frames. GPU-hours = FLOPs / (sustained
rate x 3600), at ``--sustained-tflops`` (default 400: an H100's bf16 dense peak is ~990
TFLOP/s; 400 is a good sustained figure for large convolutions, small launch-bound networks
such as cdn_medal's reach far less, so read their hours as a lower bound).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any, Callable

from bgbench.errors import BadInput

if TYPE_CHECKING:
    from bgbench.records.types import MethodSpec

DEFAULT_TFLOPS = 400.0
RULE = ("training FLOPs = sum over stages of steps x (3 x forward FLOPs of one step through the trained modules "
        "+ forward FLOPs through frozen ones); forward FLOPs by torch's counter at the method's input size")


def dry_run(cfg: Any, sustained_tflops: float = DEFAULT_TFLOPS, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The plan of ``cfg`` (a ``bgbench.api.RunConfig``) and its training estimate, as a dict."""
    from bgbench import api
    from bgbench.execution.runner import plan

    if not (sustained_tflops > 0 and sustained_tflops != float("inf")):
        raise BadInput(f"{sustained_tflops} is not a rate", "--sustained-tflops", "give TFLOP/s > 0, e.g. 400")
    echo = echo or (lambda m: None)
    p = api.prepare(cfg, dry_run=True)
    skip_bad = cfg.on_bad_data == "skip" if cfg.on_bad_data else p.quick
    videos, skipped = api.load_videos(p.data, cfg.data_format, cfg.roi_policy, skip_bad, echo, check=False)
    protocol_skips: list[dict[str, Any]] = []
    tasks = plan(p.specs, p.protocols, videos, p.opts, skipped=protocol_skips)
    bad = [s for s in protocol_skips if s.get("bad_data")]
    if bad and not skip_bad:  # as the run refuses it
        raise BadInput(f"{bad[0]['reason']} (protocol {bad[0]['protocol']})", bad[0]["where"], bad[0]["fix"] or None)

    built: dict[MethodSpec, Any] = {}
    plans: dict[tuple[Any, ...], list[dict[str, Any]] | None] = {}
    splits, trainings = [], []
    for t in tasks:
        frames_of: dict[str, int] = defaultdict(int)
        for vid, frames in t.split.train + t.split.val:
            frames_of[vid] += len(frames)
        row = {"method": t.method.name, "config": t.method.config, "protocol": t.protocol.key, "split": t.split.name,
               "jobs": len(t.tests), "test_videos": len(t.tests), "test_frames": sum(len(f) for _, f in t.tests),
               "train_videos": len(frames_of), "train_frames": sum(frames_of.values()),
               "trains": bool(t.train_videos)}  # the split's training part; a method that does not train ignores it
        splits.append(row)
        if not t.train_videos:
            continue
        sizes = tuple((v.width, v.height, frames_of[vid]) for vid, v in sorted(t.train_videos.items()))
        key = (t.method, sizes)
        if key not in plans:
            if t.method not in built:
                m = built[t.method] = t.method.build("cpu", p.opts.seed)  # FLOPs do not depend on the device
                described = m.describe()  # counted once per method (a forward pass per module on the CPU)
                m.describe = lambda d=described: d  # type: ignore[method-assign,misc]  # describe once, then reuse
            plans[key] = built[t.method].training_plan(list(sizes))
        stages = plans[key]
        if stages is None:
            trainings.append({**_where(row), "stages": [], "flops": None})
            continue
        out = [{**s, "flops": int(s["steps"]) * (3 * int(s["trained_flops"]) + int(s["frozen_flops"]))} for s in stages]
        trainings.append({**_where(row), "train_frames": row["train_frames"], "stages": out,
                          "flops": sum(s["flops"] for s in out)})

    rate = sustained_tflops * 1e12
    by_method: dict[str, dict[str, Any]] = {}
    for tr in trainings:
        bm = by_method.setdefault(tr["method"], {"config": tr["config"], "trainings": 0, "flops": 0})
        bm["trainings"] += 1
        bm["flops"] = None if bm["flops"] is None or tr["flops"] is None else bm["flops"] + tr["flops"]
    for bm in by_method.values():
        bm["gpu_hours"] = None if bm["flops"] is None else bm["flops"] / rate / 3600
    known = [tr["flops"] for tr in trainings if tr["flops"] is not None]
    total = sum(known)
    return {
        "dry_run": True, "out": str(p.out), "data": list(p.data), "device": cfg.device,
        "methods": {s.name: s.config for s in p.specs},
        "protocols": sorted({q.key for ps in p.protocols.values() for q in ps}),
        "videos": len(videos), "videos_not_decoded": True,
        "jobs": sum(len(t.tests) for t in tasks), "tasks": len(tasks),
        "skipped": skipped + protocol_skips, "splits": splits, "trainings": trainings,
        "by_method": by_method, "training_flops": total, "sustained_tflops": sustained_tflops,
        "gpu_hours": total / rate / 3600, "unestimated_trainings": len(trainings) - len(known), "rule": RULE,
    }


def _where(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("method", "config", "protocol", "split")}


def _pflop(x: float | None) -> str:
    return "-" if x is None else f"{x / 1e15:.4g}"


def text(d: dict[str, Any]) -> str:
    """The dry run as the command prints it."""
    from bgbench.reports.tables import markdown

    lines = [f"dry run: nothing is trained, decoded or written (run folder would be {d['out']})",
             f"{len(d['methods'])} method(s) ({', '.join(f'{m} {c}' for m, c in d['methods'].items())}) x "
             f"{len(d['protocols'])} protocol(s) on {d['videos']} video(s): {d['jobs']} jobs in {d['tasks']} task(s)"
             + (f"; {len(d['skipped'])} skip(s)" if d["skipped"] else "")]
    for s in d["skipped"]:
        lines.append(f"  skipped{' under ' + s['protocol'] if s.get('protocol') else ''}: {s['error']}")
    lines.append("")
    lines.append(markdown(["method", "protocol", "split", "trains", "train videos", "train frames", "test videos",
                           "test frames", "jobs"],
                          [[r["method"] + f"[{r['config']}]", r["protocol"], r["split"], "yes" if r["trains"] else "no",
                            r["train_videos"], r["train_frames"], r["test_videos"], r["test_frames"], r["jobs"]]
                           for r in d["splits"]], ["text"] * 4 + ["int"] * 5))
    if d["trainings"]:
        lines += ["", "training (steps per stage; PFLOP = 1e15 FLOPs):"]
        rows = []
        for tr in d["trainings"]:
            steps = ", ".join(f"{s['stage']} {s['steps']:,}" for s in tr["stages"]) or "no estimate"
            rows.append([tr["method"] + f"[{tr['config']}]", tr["protocol"], tr["split"], steps, _pflop(tr["flops"])])
        lines.append(markdown(["method", "protocol", "split", "steps per stage", "PFLOP"], rows, ["text"] * 5))
        lines += ["", markdown(["method", "trainings", "PFLOP", f"GPU-hours at {d['sustained_tflops']:g} TFLOP/s"],
                               [[m + f"[{v['config']}]", v["trainings"], _pflop(v["flops"]),
                                 "-" if v["gpu_hours"] is None else f"{v['gpu_hours']:.4g}"]
                                for m, v in d["by_method"].items()], ["text", "int", "text", "text"])]
    lines += ["", f"estimated training: {_pflop(d['training_flops'])} PFLOP = {d['gpu_hours']:.4g} GPU-hours at a "
                  f"sustained {d['sustained_tflops']:g} TFLOP/s (--sustained-tflops)"
              + (f"; {d['unestimated_trainings']} training(s) without an estimate" if d["unestimated_trainings"] else ""),
              f"rule: {d['rule']}; data loading, validation and inference not counted",
              "videos were not decoded: a video whose frames fail validation is refused (or skipped) by the run itself"]
    return "\n".join(lines)
