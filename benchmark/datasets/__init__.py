"""Dataset formats (one adapter per on-disk layout) and discovery of videos under a folder.

``discover(path)`` accepts a scene folder, a dataset folder, or a folder of datasets, and
finds every scene below it in a known layout. The special path ``synthetic`` generates
(once, into the cache) the built-in synthetic scenes with known ground truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import BadInput
from ..registry import Registry
from ..video import Video

FORMATS: Registry = Registry("dataset format")
FORMATS.register_lazy("cdnet2014", "benchmark.datasets.cdnet:CDnet", layout="<category>/<scene>/{input/in%06d.jpg,groundtruth/gt%06d.png,ROI.bmp,temporalROI.txt}")
FORMATS.register_lazy("cdnet2012", "benchmark.datasets.cdnet:CDnet2012", layout="as cdnet2014")
FORMATS.register_lazy("sbi2015", "benchmark.datasets.sbi:SBI2015", layout="<seq>/{input/(in%06d|<seq>_%06d).(png|jpg),groundtruth/gt%06d.png}, ids from 0")
FORMATS.register_lazy("ucsd", "benchmark.datasets.ucsd:UCSD", layout="<seq>/{in/frame_<N>.jpg,groundtruth/gt%04d.png,ROI.bmp,temporalROI.txt}")
FORMATS.register_lazy("wallflower", "benchmark.datasets.wallflower:Wallflower", layout="<seq>/{b%05d.bmp,hand_segmented_%05d.BMP}")
FORMATS.register_lazy("synthetic", "benchmark.datasets.synthetic:Synthetic", layout="generated scenes in the cdnet2014 layout")

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


def discover(
    path: str | Path,
    fmt: str = "auto",
    roi_policy: str = "error",
    on_error: Callable[[BadInput], None] | None = None,
) -> list[Video]:
    """Every video under ``path``. A bad video raises BadInput, or goes to ``on_error``."""
    if str(path) == "synthetic" or fmt == "synthetic":
        from .synthetic import ensure_synthetic

        path, fmt = ensure_synthetic(), "cdnet2014"
    path = Path(path)
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
            if on_error is None:
                raise
            on_error(e)
        return
    if depth >= 3:
        return
    for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        _walk(child, fmt, roi_policy, on_error, out, depth + 1)
