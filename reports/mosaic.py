"""The qualitative mosaic: rows of chosen frames, columns of input, ground truth and each
method's coloured mask (TP green, FP red, FN pink, TN black, ignored grey;
``bgbench.execution.examples``), drawn from the example frames a run recorded in its folder,
never from the data.

Drawn without matplotlib (``bgbench.reports.sketch``): a report whose only figure is the
mosaic (a run of one binary method) needs no figure library at all: 0.15-0.18 s of CPU for
the whole report against 1.24-1.55 s when the mosaic was drawn by matplotlib in the report
worker (docs/performance.md, section 6). Written as a 300-dpi PNG and a PDF, two paper
columns wide (7.16 in; wider beyond five methods), no text under 8 pt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bgbench.execution.examples import COLOR_NAMES, COLORS
from bgbench.records.types import Results

from .sketch import LINE_SPACING, Sketch, text_extent

PAGE_WIDTH = 7.16  # inches: both columns of a two-column paper (figure*)
FONT_SIZE = 8.0  # points
KEY = ("tp", "fp", "fn", "tn", "ignored")


def _read_rgb(run_dir: Path, rel: Any) -> np.ndarray | None:
    """A recorded example PNG (``rel``, a path relative to the run folder, as the record holds
    it) as H x W x 3 RGB, or None where it is missing, unreadable, not a regular file, or
    outside the run folder (absolute, ``..``, a symlink out: refused with a warning, never read)."""
    import cv2

    from bgbench.errors import BadInput
    from bgbench.safefs import inside, read_bytes

    path = inside(run_dir, rel, "the example image")
    if path is None:
        return None
    try:
        data = read_bytes(path)
    except (OSError, BadInput):
        return None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if data else None
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _mosaic_rows(results: Results, run_dir: Path, per_video: int, max_videos: int):
    """(video id, frame id, [input, ground truth, one tile per method label or None]),
    method labels: from the example frames the run recorded (``JobRecord.examples``, paths
    in the run folder), never from the data. One row per protocol key and frame of a video
    (the example frame is its test frames' middle one, the same for every method)."""
    run_dir = Path(run_dir)
    groups: dict[tuple[str, str, int], dict[str, dict]] = {}
    for j in results.jobs_of(ok=True):
        ex = j.examples
        if not ex or not isinstance(ex.get("frame"), int):
            continue
        groups.setdefault((j.key.video, j.key.protocol_key, ex["frame"]), {}).setdefault(j.key.label, dict(ex))
    if not groups:
        return [], []
    videos = sorted({vid for vid, _, _ in groups})[:max_videos]
    chosen = [g for vid in videos for g in sorted(g for g in groups if g[0] == vid)[:per_video]]
    methods = sorted({label for g in chosen for label in groups[g]})
    rows = []
    for g in chosen:
        vid, _, fid = g
        per = groups[g]
        # the input and ground truth of the frame, from the first method's folder that still holds both
        pair = next(((inp, gt) for ex in (per[m] for m in sorted(per))
                     if (inp := _read_rgb(run_dir, ex.get("input"))) is not None
                     and (gt := _read_rgb(run_dir, ex.get("groundtruth"))) is not None), None)
        if pair is None:  # the run folder lost them: no row rather than a wrong one
            continue
        inp, gt = pair
        tiles: list[np.ndarray | None] = [inp, gt]
        for m in methods:
            tiles.append(_read_rgb(run_dir, per[m].get("overlay")) if m in per else None)
        rows.append((vid, fid, tiles))
    return (rows, methods) if rows else ([], [])


def _wrap(name: str, width: int) -> str:
    """``name`` on lines of at most ``width`` characters, broken after ``_`` or ``-`` or
    before ``[`` (a word longer than ``width`` stays whole)."""
    import re

    lines = [""]
    for part in filter(None, re.findall(r"\[?[^_\-\[]*[_\-]?", name)):
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)


NO_MASK_GREY = 235  # the tile of a method whose example is missing: light grey, "no mask" written on it


def mosaic_image(rows: list) -> tuple[np.ndarray, list[int], list[tuple[int, int]], int, int]:
    """The mosaic's tiles as one RGB image: every tile scaled (nearest neighbour, as masks
    must be) to one pixel width, rows of tiles with white gaps between them; a missing tile
    is light grey. Returns (image, each column's left edge, each row's (top, height), the
    tile width and the gap, in pixels)."""
    import cv2

    tw = max(t.shape[1] for _, _, tiles in rows for t in tiles if t is not None)
    gap = max(2, tw // 60)
    ncol = len(rows[0][2])
    heights = [max(1, round(tw * tiles[0].shape[0] / tiles[0].shape[1])) for _, _, tiles in rows]
    lefts = [c * (tw + gap) for c in range(ncol)]
    spans, top = [], 0
    for h in heights:
        spans.append((top, h))
        top += h + gap
    img = np.full((top - gap, lefts[-1] + tw, 3), 255, np.uint8)
    for (_, _, tiles), (y, h) in zip(rows, spans):
        for x, tile in zip(lefts, tiles):
            if tile is None:
                img[y:y + h, x:x + tw] = NO_MASK_GREY
            else:
                same = tile.shape[:2] == (h, tw)
                img[y:y + h, x:x + tw] = tile[..., :3] if same else cv2.resize(
                    np.ascontiguousarray(tile[..., :3]), (tw, h), interpolation=cv2.INTER_NEAREST)
    return img, lefts, spans, tw, gap


def mosaic_figure(rows: list, methods: list[str]) -> Sketch:
    """One row per chosen frame (labelled with its scene and frame id, reading upwards), one
    column per input, ground truth and method (headed; long names wrap), and the colour key
    below. Up to five methods fit a page's width (7.16 in); more make the figure wider. The
    tiles are one image (``mosaic_image``), placed unresampled in the PDF."""
    ncol = 2 + len(methods)
    key_h, margin = 0.34, 0.02  # inches: colour key, right edge
    line = FONT_SIZE * LINE_SPACING / 72
    img, lefts, spans, tw, gap = mosaic_image(rows)
    label_w = 0.3
    while True:  # labels on more lines leave the tiles less width, the rows less height: settle the two
        img_w = max(PAGE_WIDTH - label_w - margin, ncol * 0.95)  # under ~0.95 in a tile, a method's name no longer fits
        scale = img.shape[1] / img_w  # pixels per inch
        labels = [_row_label(vid, fid, h / scale) for (vid, fid, _), (_, h) in zip(rows, spans)]
        need = 0.3 + (max(lab.count("\n") for lab in labels)) * line
        if need <= label_w:
            break
        label_w = need
    headers = [_wrap(h, int(tw / scale / 0.075)) for h in ["input", "ground truth", *methods]]
    header_h = max(h.count("\n") + 1 for h in headers) * line + 0.06
    img_h = img.shape[0] / scale
    sk = Sketch(label_w + img_w + margin, header_h + img_h + key_h)
    sk.image(label_w, key_h, img_w, img_h, img)
    top = key_h + img_h

    def at(px: float, py: float) -> tuple[float, float]:  # a pixel of the tiles' image on the figure
        return label_w + px / scale, top - py / scale

    for x, header in zip(lefts, headers):
        sk.text(*at(x + tw / 2, -gap), header, FONT_SIZE, ha="center", va="bottom")
    for (vid, fid, tiles), (y, h), label in zip(rows, spans, labels):
        # reading upwards, its descenders towards the tiles: the label's bottom at the gap
        sk.text(*at(-gap, y + h / 2), label, FONT_SIZE, ha="center", va="bottom", rotation=90)
        for x, tile in zip(lefts, tiles):
            if tile is None:
                sk.text(*at(x + tw / 2, y + h / 2), "no mask", FONT_SIZE, ha="center", va="center")
    _colour_key(sk, key_h)
    return sk


def _row_label(video: str, frame: int, height: float) -> str:
    """The row's label, ``scene #frame``, on as few lines as fit along the row's ``height``
    (inches): whole, then the frame on a line of its own, then the scene's name broken after
    ``_`` or ``-``, then anywhere."""
    scene = video.rsplit("/", 1)[-1]

    def tries():
        yield f"{scene} #{frame}"
        yield f"{scene}\n#{frame}"
        for width in range(len(scene) - 1, 0, -1):
            yield f"{_wrap(scene, width)}\n#{frame}"
        for width in range(len(scene) - 1, 0, -1):
            yield "\n".join([scene[i:i + width] for i in range(0, len(scene), width)] + [f"#{frame}"])

    last = ""
    for last in tries():
        if text_extent(last, FONT_SIZE)[0] <= height:
            break
    return last  # else the narrowest: one character a line


def _colour_key(sk: Sketch, key_h: float) -> None:
    """The colours' names in one row under the tiles, centred: a swatch (edged in grey) and
    its name each."""
    em = FONT_SIZE / 72
    sw, sh, pad, space = 1.2 * em, 0.7 * em, 0.4 * em, 1.0 * em
    names = [COLOR_NAMES[k] for k in KEY]
    widths = [sk.text_extent(n, FONT_SIZE)[0] for n in names]
    x = (sk.width - sum(sw + pad + w for w in widths) - space * (len(KEY) - 1)) / 2
    y = key_h / 2 - 0.03  # the row's middle
    for k, name, w in zip(KEY, names, widths):
        r, g, b = (v / 255 for v in COLORS[k])
        sk.rect(x, y - sh / 2, sw, sh, (r, g, b), edge=(0.4, 0.4, 0.4), linewidth=0.5)
        sk.text(x + sw + pad, y, name, FONT_SIZE, ha="left", va="center")
        x += sw + pad + w + space


def mosaic(results: Results, run_dir: Path, out: Path, per_video: int = 1, max_videos: int = 4) -> list[Path]:
    """The mosaic as ``out`` (PNG, 300 dpi) and beside it as PDF, from the example frames a run
    recorded in its folder (``JobRecord.examples``); [] where it recorded none."""
    rows, methods = _mosaic_rows(results, run_dir, per_video, max_videos)
    if not rows:
        return []
    sk = mosaic_figure(rows, methods)
    out = Path(out)
    return [sk.png(out.with_suffix(".png")), sk.pdf(out.with_suffix(".pdf"))]
