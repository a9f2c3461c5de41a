"""Dataset formats (one adapter per on-disk layout) and discovery of videos under a folder.

``discover(path)`` accepts a scene folder, a dataset folder, or a folder of datasets, and
finds every scene below it in a known layout. The special path ``synthetic`` generates
(once, into the cache) the built-in synthetic scenes with known ground truth.
"""

from __future__ import annotations

import os

from pathlib import Path
from typing import Callable

from bgbench.errors import BadInput
from bgbench.registry import Registry
from bgbench.data.video import Video

FORMATS: Registry = Registry("dataset format")
FORMATS.register_lazy("cdnet2014", "bgbench.data.formats.cdnet:CDnet", layout="<category>/<scene>/{input/in%06d.jpg,groundtruth/gt%06d.png,ROI.bmp,temporalROI.txt}")
FORMATS.register_lazy("cdnet2012", "bgbench.data.formats.cdnet:CDnet2012", layout="as cdnet2014")
FORMATS.register_lazy("sbi2015", "bgbench.data.formats.sbi:SBI2015", layout="<seq>/{input/(in%06d|<seq>_%06d).(png|jpg),groundtruth/gt%06d.png}, ids from 0")
FORMATS.register_lazy("ucsd", "bgbench.data.formats.ucsd:UCSD", layout="<seq>/{in/frame_<N>.jpg,groundtruth/gt%04d.png,ROI.bmp,temporalROI.txt}")
FORMATS.register_lazy("wallflower", "bgbench.data.formats.wallflower:Wallflower", layout="<seq>/{b%05d.bmp,hand_segmented_%05d.BMP}")
FORMATS.register_lazy("synthetic", "bgbench.data.formats.synthetic:Synthetic", layout="generated scenes in the cdnet2014 layout")

# detection order for --format auto: the most specific layouts first
_AUTO = ("ucsd", "wallflower", "sbi2015", "cdnet2014")


def adapter(fmt: str):
    return FORMATS.get(fmt)()


def detect_scene(path: Path) -> str | None:
    for fmt in _AUTO:
        a = adapter(fmt)
        if getattr(a, "auto_match", a.is_scene)(path):
            return fmt
    return None


def why_not_scene(path: Path) -> str | None:
    """What a folder that looks like part of a scene lacks (e.g. ``input/`` without
    ``groundtruth/``), or None if it does not look like a scene at all."""
    path = Path(path)
    if not path.is_dir():
        return None
    has = {n for n in ("input", "in", "groundtruth") if (path / n).is_dir()}
    if "groundtruth" not in has and "input" in has:
        return ("has input/ but no groundtruth/ folder: a scene needs its ground truth "
                "(cdnet2014, cdnet2012, sbi2015: groundtruth/gt%06d.png)")
    if "groundtruth" not in has and "in" in has:
        return "has in/ but no groundtruth/ folder: a scene needs its ground truth (ucsd: groundtruth/gt%04d.png)"
    if "groundtruth" in has and not has & {"input", "in"}:
        return ("has groundtruth/ but no frames folder (cdnet2014, cdnet2012, sbi2015: input/in%06d.jpg; "
                "ucsd: in/frame_<N>.jpg)")
    try:
        names = [f.name.lower() for f in path.iterdir()]
    except OSError:
        return None
    if any(n.startswith("b") and n.endswith(".bmp") and n[1:-4].isdigit() for n in names):
        return "has b%05d.bmp frames but no hand_segmented_%05d.BMP masks (wallflower): a scene needs its ground truth"
    return None


NOT_A_SCENE_FIX = "restore the missing folder or files from the dataset's archive, or leave the scene out"


def discover(
    path: str | Path,
    fmt: str = "auto",
    roi_policy: str = "error",
    on_error: Callable[[BadInput], None] | None = None,
) -> list[Video]:
    """Every video under ``path``. A bad video raises BadInput, or goes to ``on_error``."""
    if str(path) == "synthetic" or fmt == "synthetic":
        if fmt not in ("auto", "synthetic", "cdnet2014"):
            raise BadInput(f"the synthetic scenes are in the cdnet2014 layout, not {fmt}", "--format",
                           "leave --format at auto with --data synthetic")
        from bgbench.data.formats.synthetic import ensure_synthetic

        path, fmt = ensure_synthetic(), "cdnet2014"
    # absolute and without . or ..: a video's dataset and category are the names of its
    # scene's parent folders, whatever the spelling (``--data .``, ``baseline/../baseline/office``)
    path = Path(os.path.abspath(path))
    if not path.is_dir():
        raise BadInput("is not a folder", path, "give a dataset folder, a scene folder, or 'synthetic' to --data")
    if fmt != "auto":
        FORMATS.entry(fmt)
    videos: list[Video] = []
    _walk(path, fmt, roi_policy, on_error, videos, depth=0)
    if not videos and on_error is None:
        raise BadInput(
            "holds no scene in a known layout (" + ", ".join(n for n in FORMATS.names() if n != "synthetic") + ")",
            path,
            "point --data at a dataset or scene folder (README, 'Data'), or name the layout with --format",
        )
    ids = [v.id for v in videos]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise BadInput(f"two scenes share the id {sorted(dupes)[0]}", path, "give each dataset folder its own name")
    return videos


def _walk(path: Path, fmt: str, roi_policy: str, on_error, out: list[Video], depth: int) -> None:
    kind = detect_scene(path) if fmt == "auto" else (fmt if adapter(fmt).is_scene(path) else None)
    if kind is not None:
        try:
            out.append(adapter(kind).load(path, roi_policy))
        except BadInput as e:
            from bgbench.safefs import DiskFull

            if on_error is None or isinstance(e, DiskFull):  # a full disk is no bad video: never skipped
                raise
            on_error(e)
        return
    lacking = why_not_scene(path)
    if lacking is not None:  # a scene with a folder missing is refused, never passed over in silence
        err = BadInput(lacking, path, NOT_A_SCENE_FIX)
        if on_error is None:
            raise err
        on_error(err)
        return
    if depth >= 3:
        return
    for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        _walk(child, fmt, roi_policy, on_error, out, depth + 1)
