"""What the on-disk adapters share: numbered file listings, temporal ROI, spatial ROI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from ..errors import BadInput
from ..imageio import image_size
from ..video import ROI_POLICIES, Video


def numbered(folder: Path, pattern: str, what: str) -> dict[int, Path]:
    """{id: file} for files in ``folder`` whose name matches ``pattern`` (one int group)."""
    rx = re.compile(pattern, re.IGNORECASE)
    out: dict[int, Path] = {}
    if not folder.is_dir():
        raise BadInput(f"{what} folder is missing", folder, "check the dataset layout (README, 'Data')")
    for f in folder.iterdir():
        m = rx.fullmatch(f.name)
        if m:
            out[int(m.group(1))] = f
    if not out:
        raise BadInput(f"holds no {what} files matching {pattern}", folder, "check the dataset layout (README, 'Data')")
    return dict(sorted(out.items()))


def check_contiguous(ids: dict[int, Path], name_of: Callable[[int], Path], what: str) -> None:
    """Raise on the first gap in the numbering, naming the missing file."""
    keys = list(ids)
    if keys[-1] - keys[0] + 1 != len(keys):
        have = set(keys)
        missing = next(i for i in range(keys[0], keys[-1]) if i not in have)
        n_missing = keys[-1] - keys[0] + 1 - len(keys)
        raise BadInput(
            f"{what} is missing ({n_missing} missing between {keys[0]} and {keys[-1]}): the numbering has a gap",
            name_of(missing),
            "restore the missing files from the dataset's archive",
        )


def read_temporal_roi(path: Path) -> tuple[int, int] | None:
    if not path.exists():
        return None
    try:
        a, b = (int(x) for x in path.read_text().split()[:2])
    except ValueError:
        raise BadInput("does not hold two integers 'first last'", path, "write the scored frame range as 'first last'") from None
    return a, b


def check_temporal_roi(troi: tuple[int, int], first: int, last: int, path: Path, allow_one_past: bool = False) -> tuple[tuple[int, int], tuple[str, ...]]:
    a, b = troi
    notes: tuple[str, ...] = ()
    if allow_one_past and b == last + 1:
        notes = (f"{path.name} ends at {b}, one past the last frame {last}: read as {last}",)
        b = last
    if a > b or a < first or b > last:
        raise BadInput(
            f"temporal ROI {troi[0]}-{troi[1]} is outside the frames {first}-{last}",
            path,
            f"write a range within {first} {last}",
        )
    return (a, b), notes


def temporal_roi(scene: Path, frames: dict[int, Path], gt: dict[int, Path], allow_one_past: bool
                 ) -> tuple[tuple[int, int], tuple[str, ...]]:
    """The scored frame range from ``scene/temporalROI.txt``, checked against the frames;
    without the file, every frame that has ground truth."""
    first, last = next(iter(frames)), next(reversed(frames))
    tfile = scene / "temporalROI.txt"
    troi = read_temporal_roi(tfile)
    if troi is None:
        return (max(first, min(gt)), min(last, max(gt))), ("no temporalROI.txt: every frame with ground truth is scored",)
    return check_temporal_roi(troi, first, last, tfile, allow_one_past)


def roi_mismatch(roi_file: Path | None, shape: tuple[int, int]) -> str | None:
    if roi_file is None:
        return None
    h, w = image_size(roi_file)
    if (h, w) != shape:
        return f"ROI is {w}x{h} but the frames are {shape[1]}x{shape[0]}"
    return None


def check_gt_cover(gt: dict[int, Path], troi: tuple[int, int], name_of: Callable[[int], Path]) -> None:
    missing = [i for i in range(troi[0], troi[1] + 1) if i not in gt]
    if missing:
        raise BadInput(
            f"ground truth is missing for {len(missing)} frame(s) of the temporal ROI {troi[0]}-{troi[1]}",
            name_of(missing[0]),
            "restore the ground-truth files, or narrow temporalROI.txt",
        )


def make_video(
    *,
    fmt: str,
    dataset: str,
    category: str | None,
    scene: Path,
    frames: dict[int, Path],
    gt: dict[int, Path],
    troi: tuple[int, int],
    roi_file: Path | None,
    roi_policy: str,
    notes: tuple[str, ...] = (),
    gt_lut: tuple[int, ...] | None = None,
) -> Video:
    if roi_policy not in ROI_POLICIES:
        raise BadInput(f"unknown ROI policy {roi_policy!r}", "--roi-policy", f"use one of {', '.join(ROI_POLICIES)}")
    first_file = next(iter(frames.values()))
    shape = image_size(first_file)
    mismatch = roi_mismatch(roi_file, shape)
    video = Video(
        dataset=dataset,
        category=category,
        name=scene.name,
        path=scene,
        format=fmt,
        frame_files=tuple(frames.values()),
        frame_ids=tuple(frames),
        gt_files=tuple(gt.items()),
        roi_file=roi_file,
        temporal_roi=troi,
        shape=shape,
        roi_policy=roi_policy,
        roi_mismatch=mismatch,
        gt_lut=gt_lut,
        notes=notes + ((f"{mismatch}: --roi-policy {roi_policy}",) if mismatch and roi_policy != "error" else ()),
    )
    if mismatch and roi_policy == "error":
        _ = video.roi  # raises the BadInput that explains the choices
    return video
