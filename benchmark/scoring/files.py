"""Scoring masks written to disk, as the official CDnet comparator does: one scene's
``bin%06d.png`` folder against its ground truth, or a results tree laid out like a dataset
(``CATEGORY/SCENE/bin%06d.png``) with per-video, per-category and overall tables.
``bgbench score`` and ``bgbench.api.score`` call these."""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bgbench.errors import BadInput

if TYPE_CHECKING:
    from concurrent.futures import Future

    from bgbench.data.video import Video


@dataclass(frozen=True)
class ScoreOptions:
    data_format: str = "auto"  # the layout of the scene(s) holding the ground truth
    roi_policy: str = "error"
    threshold: float | None = None  # None: foreground iff 255 (0.5 with probabilities)
    partial: bool = False  # score only the scored frames (scenes) that have masks
    probabilities: bool = False  # masks are value/255 probabilities, not 0/255


def score_tree(pred_root: Path, root: Path, opts: ScoreOptions) -> dict[str, Any]:
    """Every scene under ``root`` scored against ``pred_root/<its path under root>`` (else the
    first of ``mask_folder_candidates`` that exists, e.g. a tree ``--save-masks`` wrote);
    category = mean of its videos' metrics, overall = mean of the category means, per
    dataset. Returns ``{"datasets": {name: {videos, categories, overall}}, "missing": [...]}``."""
    from bgbench.scoring.aggregate import category_means, dataset_of
    from bgbench.data.formats import discover

    root, pred_root = Path(os.path.abspath(root)), Path(pred_root)  # as discover spells the scenes under it
    if not root.is_dir():
        raise BadInput("is not a folder", root, "give the dataset root the results tree mirrors")
    if not pred_root.is_dir():
        raise BadInput("is not a folder", pred_root, "give the results root: CATEGORY/SCENE/bin%06d.png under it")
    videos = discover(root, opts.data_format, opts.roi_policy)
    scored, missing = [], []
    for v in videos:
        # the scene's path under root as spelt (a dataset folder may be a link to elsewhere)
        rel = Path(v.path).relative_to(root) if Path(v.path) != root else Path(".")
        pred = pred_root / rel  # the tree mirrors --data, as the official comparator walks it
        if not pred.is_dir() or (rel == Path(".") and not _holds_masks(pred)):
            # else the layouts the masks method reads (DATASET/CATEGORY/SCENE, CATEGORY/SCENE, SCENE)
            pred = next((c for c in mask_folder_candidates(pred_root, v)[:-1] if c.is_dir()), pred)
        if not pred.is_dir():
            missing.append((v.id, pred))
            continue
        scored.append(score_masks(v, pred, opts))
    if missing and not opts.partial:
        vid, pred = missing[0]
        raise BadInput(f"is missing: {len(missing)} of {len(videos)} scenes have no mask folder (first: {vid})", pred,
                       "write every scene's masks, or pass --partial to score the scenes present")
    if not scored:
        raise BadInput("holds no mask folder for any scene under --data", pred_root,
                       "lay masks out like the dataset: CATEGORY/SCENE/bin%06d.png")
    tables: dict[str, dict[str, Any]] = {}
    for ds in sorted({dataset_of(r["video"]) for r in scored}):
        rows = [r for r in scored if dataset_of(r["video"]) == ds]
        categories, overall = category_means({r["video"]: r["metrics"] for r in rows})
        tables[ds] = {"videos": {r["video"]: r for r in rows}, "categories": categories, "overall": overall}
    return {"datasets": tables, "missing": [(vid, str(p)) for vid, p in missing]}


def score_scene(scene: Path, pred_dir: Path, opts: ScoreOptions) -> dict[str, Any]:
    """Counts and metrics of one scene's masks: ``{video, frames, counts, metrics, notes}`` (notes:
    what the scene's loading assumed, e.g. no ROI file, every pixel scored)."""
    from bgbench.data.formats import NOT_A_SCENE_FIX, adapter, detect_scene, why_not_scene

    scene = Path(os.path.abspath(scene))  # its id from its folders' names, whatever the spelling (discover)
    if not scene.is_dir():
        raise BadInput("is not a folder", scene, "give the scene folder that holds the ground truth")
    fmt = detect_scene(scene) if opts.data_format == "auto" else opts.data_format
    if fmt is None:
        lacking = why_not_scene(scene)
        if lacking:
            raise BadInput(f"is not a complete scene: it {lacking}", scene, NOT_A_SCENE_FIX)
        raise BadInput("is not a scene in a known layout (cdnet2014/sbi2015: input/ and groundtruth/; ucsd: in/ and "
                       "groundtruth/; wallflower: b%05d.bmp and hand_segmented_%05d.BMP)", scene,
                       "give --video one scene folder, or name its layout with --format")
    return score_masks(adapter(fmt).load(scene, opts.roi_policy), Path(pred_dir), opts)


SLICE = 8  # masks one decoding task reads in a row
MASK_NAME = "bin{:06d}.png"  # one mask per frame id, numbered like the ground truth (the CDnet results layout)


def read_video_mask(path: Path, shape: tuple[int, int], probabilities: bool = False) -> np.ndarray:
    """One mask file of a video, as ``bgbench score`` and the ``masks`` method read it: a 0/255
    mask (or, with ``probabilities``, grey levels value/255) of the video's size; 0/1, 0/127,
    colour or another size are refused naming the file (never F = 0 in silence)."""
    from bgbench.data.imageio import read_mask

    m = read_mask(path, probabilities)
    if m.shape != tuple(shape):
        raise BadInput(f"mask is {m.shape[1]}x{m.shape[0]} but the frames are {shape[1]}x{shape[0]}", path,
                       "write masks at the video's size")
    return m


def mask_folder_candidates(root: Path, video: Video) -> list[Path]:
    """Where a results tree rooted at ``root`` may hold ``video``'s masks, most specific first:
    ``ROOT/DATASET/CATEGORY/SCENE`` (a tree of datasets, as ``--save-masks`` writes it under
    ``OUT/masks/METHOD/PROTOCOL``), ``ROOT/CATEGORY/SCENE`` (one dataset's tree, the CDnet
    results layout), ``ROOT/SCENE`` (flat), and ``ROOT`` itself when it holds ``bin*.png``
    (one scene). Datasets without categories (SBI2015, UCSD) skip the CATEGORY level."""
    root = Path(root)
    cat = [video.category] if video.category else []
    out = [root.joinpath(video.dataset, *cat, video.name), root.joinpath(*cat, video.name)]
    if cat:
        out.append(root / video.name)
    out.append(root)
    return list(dict.fromkeys(out))


def _holds_masks(folder: Path) -> bool:
    return folder.is_dir() and any(e.name.startswith("bin") and e.name.endswith(".png") for e in os.scandir(folder))


def find_mask_folder(root: Path, video: Video) -> Path:
    """The first of ``mask_folder_candidates`` that exists (``root`` itself only if it holds
    masks directly), else BadInput naming where it looked."""
    cands = mask_folder_candidates(root, video)
    for c in cands[:-1]:
        if c.is_dir():
            return c
    if _holds_masks(root):
        return root
    if not Path(root).is_dir():
        raise BadInput("is not a folder", root, "give the root of a results tree: CATEGORY/SCENE/bin%06d.png under it")
    shown = ", ".join(str(c) for c in cands[:-1])
    raise BadInput(f"holds no mask folder for {video.id} (looked for {shown})", root,
                   "lay masks out as CATEGORY/SCENE/bin%06d.png (or DATASET/CATEGORY/SCENE, or SCENE) under it")


def score_masks(video: Video, pred_dir: Path, opts: ScoreOptions) -> dict[str, Any]:
    """One loaded video's masks in ``pred_dir`` scored against its ground truth."""
    from bgbench.data.imageio import decode_workers
    from bgbench.execution.scoped import opencv_threads
    from bgbench.scoring.metrics import VideoScore, metrics

    if not pred_dir.is_dir():
        raise BadInput("is not a folder", pred_dir, "give the folder of bin%06d.png masks")
    nothing = video.nothing_to_score()  # bad data, as `bgbench run` refuses it: never an F of 0 or NaN in silence
    if nothing is not None:
        raise BadInput(f"{video.id} has nothing to score: {nothing[1]}", nothing[0],
                       "score masks against a scene with labelled frames inside its temporal ROI and a spatial ROI "
                       "that marks pixels")
    files = {i: pred_dir / MASK_NAME.format(i) for i in video.eval_frames}
    names = {e.name for e in os.scandir(pred_dir)}  # one listing, not a stat per mask
    present = {i: f for i, f in files.items() if f.name in names}
    if not present:
        raise BadInput(f"holds none of the {len(files)} masks bin{video.eval_frames[0]:06d}.png.. it must score",
                       pred_dir, "write one bin%06d.png per scored frame, numbered like the ground truth")
    if len(present) < len(files) and not opts.partial:
        first = next(f for i, f in files.items() if i not in present)
        raise BadInput(f"is missing ({len(files) - len(present)} of {len(files)} scored frames have no mask)", first,
                       "write the missing masks, or pass --partial to score only the frames present")
    threshold = (0.5 if opts.probabilities else 1.0) if opts.threshold is None else opts.threshold
    score = VideoScore(threshold)
    roi = video.roi
    ids = list(present)

    def read(i: int) -> np.ndarray:
        return read_video_mask(present[i], video.shape, opts.probabilities)

    # PNG decoding releases the GIL: a pool (a thread per core) decodes straight into one of three
    # batch buffers, two batches ahead (memory stays bounded), while this thread scores the
    # third. A task decodes a run of SLICE masks (fewer futures and hand-overs between the
    # threads); errors surface in id order.
    batch = 64
    chunks = [ids[k:k + batch] for k in range(0, len(ids), batch)]
    bufs = [np.empty((min(batch, len(ids)), *video.shape), np.uint8) for _ in range(3)]

    def fill(buf: np.ndarray, row: int, run: list[int]) -> None:
        for r, i in enumerate(run, row):
            buf[r] = read(i)

    with opencv_threads(1), ThreadPoolExecutor(max_workers=decode_workers()) as pool:
        def submit(c: int) -> list[Future[None]]:
            return [pool.submit(fill, bufs[c % 3], r, chunks[c][r:r + SLICE]) for r in range(0, len(chunks[c]), SLICE)]

        ahead = deque(submit(c) for c in range(min(2, len(chunks))))
        for c, chunk in enumerate(chunks):
            for f in ahead.popleft():
                f.result()
            if c + 2 < len(chunks):
                ahead.append(submit(c + 2))
            score.update(bufs[c % 3][:len(chunk)], video.gts(chunk), roi)
    # the largest level scored (the histograms hold it: no pass over the masks); each mask
    # alone may be a faint map, all of them at 0 and 1 are 0/1 masks
    peak = int(np.flatnonzero(score.hist.sum(0)).max(initial=0))
    if opts.probabilities and peak == 1:
        raise BadInput(f"every mask holds only 0 and 1: read as probabilities (--probabilities) they are 0 and 1/255, "
                       "which scores F = 0", pred_dir,
                       "write 0/255 masks (mask * 255) and drop --probabilities, or scale probabilities to 0..255")
    rec = score.to_dict()
    return {"video": video.id, "frames": rec["frames"], "counts": rec["counts"], "metrics": metrics(rec["counts"], rec["dice"]),
            "notes": list(video.notes)}
