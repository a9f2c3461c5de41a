"""Figures from a results record: PR curves, the speed/accuracy scatter, and qualitative
mosaics of saved masks (TP green, FP red, FN pink, TN black, ignored grey)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.scoring import pr_curve

MARKERS = {"classical": "o", "deep": "s", "plugin": "^", "": "D"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _pooled_hist(results: dict, method_label: str, protocol: str, dataset: str) -> np.ndarray | None:
    from benchmark.aggregate import dataset_of, method_label as label

    hs = [[j["histograms"]["negative"], j["histograms"]["shadow"], j["histograms"]["positive"]]
          for j in results["jobs"] if j["status"] == "ok" and j["protocol"] == protocol and label(j) == method_label
          and dataset_of(j["video"]) == dataset]
    return np.sum(hs, axis=0) if hs else None


def pr_curves(results: dict, protocol: str, dataset: str, out: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for m in sorted(results["summary"]):
        h = _pooled_hist(results, m, protocol, dataset)
        if h is None:
            continue
        pr = pr_curve(h)
        r, p = np.asarray(pr["recall"], float), np.asarray(pr["precision"], float)
        ax.plot(r, p, label=f"{m} (AP {pr['average_precision']:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"PR curves · {dataset} · {protocol}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def speed_accuracy(results: dict, protocol: str, dataset: str, out: Path, families: dict[str, str]) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    devices = set()
    for m, per in sorted(results["summary"].items()):
        d = per.get(protocol, {}).get("datasets", {}).get(dataset)
        if not d or not d.get("fps_median") or d["overall"].get("f_measure") is None:
            continue
        fam = families.get(m, "")
        ax.scatter(d["fps_median"], d["overall"]["f_measure"], marker=MARKERS.get(fam, "D"), s=40,
                   label=f"{m} ({fam})" if fam else m)
        ax.annotate(m, (d["fps_median"], d["overall"]["f_measure"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        devices |= {j["timing"]["device"] for j in results["jobs"]
                    if j["status"] == "ok" and j["protocol"] == protocol and j["method"] == m.split("[")[0]}
    ax.set_xscale("log")
    ax.set_xlabel("frames/s of segment (log)")
    ax.set_ylabel("overall F-measure")
    ax.set_title(f"speed vs accuracy · {dataset} · {protocol} · device {', '.join(sorted(devices)) or '?'}")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


COLORS = {"tp": (0, 200, 0), "fp": (230, 0, 0), "fn": (255, 150, 200), "tn": (0, 0, 0), "ignored": (128, 128, 128)}


def colour_mask(pred: np.ndarray, gt: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """RGB image of a binary prediction against CDnet ground truth."""
    out = np.zeros((*gt.shape, 3), np.uint8)
    ignored = ~roi | (gt == 85) | (gt == 170)
    pos = gt == 255
    out[pred & pos] = COLORS["tp"]
    out[pred & ~pos] = COLORS["fp"]
    out[~pred & pos] = COLORS["fn"]
    out[ignored] = COLORS["ignored"]
    return out


def mosaic(results: dict, run_dir: Path, out: Path, per_video: int = 1, max_videos: int = 4) -> Path | None:
    """Rows: chosen frames; columns: input, ground truth, each method's coloured mask.
    Needs masks saved by ``bgbench run --save-masks`` and the data of the run."""
    import cv2

    from benchmark.datasets import discover

    masks_root = Path(run_dir) / "masks"
    if not masks_root.is_dir():
        return None
    jobs = [j for j in results["jobs"] if j["status"] == "ok"]
    found = {}
    for j in jobs:
        d = masks_root / j["method"] / j["protocol"] / j["split"].replace("/", "__").replace(":", "_") / j["video"]
        if d.is_dir():
            found.setdefault(j["video"], []).append((j["method"], d))
    if not found:
        return None
    videos = {}
    for p in results["meta"].get("data", []):
        try:
            for v in discover(p, roi_policy="ignore", on_error=lambda e: None):
                videos[v.id] = v
        except Exception:  # noqa: BLE001 - mosaics are best effort: data may have moved
            continue
    rows, methods = [], sorted({m for lst in found.values() for m, _ in lst})
    for vid in sorted(found)[:max_videos]:
        v = videos.get(vid)
        if v is None:
            continue
        dirs = dict(found[vid])
        frames = sorted({int(p.stem[3:]) for d in dirs.values() for p in d.glob("bin*.png")})
        frames = [f for f in frames if f in set(v.eval_frames)]
        for fid in frames[len(frames) // 2:][:per_video]:
            gt, roi = v.gt(fid), v.roi
            tiles = [cv2.cvtColor(v.frame(fid), cv2.COLOR_BGR2RGB), np.repeat(gt[..., None], 3, axis=2)]
            for m in methods:
                f = dirs[m] / f"bin{fid:06d}.png" if m in dirs else None
                pred = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) == 255 if f and f.exists() else None
                tiles.append(colour_mask(pred, gt, roi) if pred is not None else np.full_like(tiles[0], 255))
            h = 160
            tiles = [cv2.resize(t, (int(t.shape[1] * h / t.shape[0]), h), interpolation=cv2.INTER_NEAREST) for t in tiles]
            rows.append((f"{vid} #{fid}", np.concatenate(tiles, axis=1)))
    if not rows:
        return None
    plt = _plt()
    width = max(r.shape[1] for _, r in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(width / 100, 1.9 * len(rows) + 0.4), squeeze=False)
    for ax, (title, img) in zip(axes[:, 0], rows):
        ax.imshow(img)
        ax.set_title(title + "   [input | ground truth | " + " | ".join(methods) + "]", fontsize=7, loc="left")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
